"""Verifying AWS Signature Version 4 on incoming requests (Authorization header or presigned query string).

``verify`` returns the access key id that signed the request, or raises one error from ``lambdad.errors``.
The checks run in this order; the first failure is the answer:

1. Find the credentials: an ``Authorization`` header or ``X-Amz-Algorithm``/``X-Amz-Credential``/
   ``X-Amz-Signature`` query parameters, not both.  Neither: MissingAuthenticationTokenException.
2. Parse them, and ``X-Amz-Date``.                              Malformed: IncompleteSignatureException.
   ``host`` must be among the signed headers.
3. Credential scope ``AKID/YYYYMMDD/region/service/aws4_request`` must name this region and service and the
   day of ``X-Amz-Date``.                                                 Else InvalidSignatureException.
4. Clock: ``X-Amz-Date`` within ``max_skew`` of now; a presigned URL also no older than ``X-Amz-Expires``
   seconds.                                                                Else InvalidSignatureException.
5. Look the access key up; a key with a session token needs the same ``X-Amz-Security-Token``, a key without
   one must not get one.                                                  Else UnrecognizedClientException.
6. Recompute the signature and compare in constant time.                   Else InvalidSignatureException
   (whose message, like AWS's, shows the canonical request and string to sign we expected).
7. ``X-Amz-Content-SHA256``, when sent, must be the SHA-256 of the body (``UNSIGNED-PAYLOAD`` is refused).
                                                                           Else InvalidSignatureException.
8. Every other ``X-Amz-*`` header must be signed: they change what an Invoke does (``X-Amz-Invocation-Type``,
   ``X-Amz-Log-Type``, ``X-Amz-Client-Context``), and a captured request must not be replayed with one added.
                                                                                Else AccessDeniedException.

Canonicalisation follows botocore's ``SigV4Auth.canonical_request``/``string_to_sign`` rule for rule (the
unit tests verify requests botocore signed, and compare the two canonical requests on varied input), fed with
what came over the wire: the path exactly as received, percent-encoding intact (encoded once more, as SigV4
does for every service but S3, so ``/functions/arn%3Aaws%3A...`` is signed as ``arn%253Aaws%253A...`` on both
sides; botocore's own path normaliser does this part); the query decoded and re-encoded the SigV4 way (RFC 3986
unreserved characters kept, sorted), which is what botocore sends and what other SDKs sign; and only the
headers the client listed in SignedHeaders. It is written out here rather than run through botocore's signer
objects because verification is on every request's path: this way it costs ~20 µs instead of ~80 µs.

Verification is two steps so that a caller can look the secret up asynchronously in between: ``read_claim``
parses what the request claims (steps 1–2), ``check_claim`` does the rest. ``verify`` does both.

Derived signing keys, canonical paths and parsed dates are memoised in bounded LRUs: pure functions' caches,
not state.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import SigV4Auth

from lambdad.errors import (
    AccessDeniedException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = ["SignedRequest", "Secret", "Claim", "read_claim", "check_claim", "verify", "ALGORITHM", "MAX_PRESIGNED_EXPIRES"]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_PRESIGNED_EXPIRES = 604800  # seven days, as for S3 presigned URLs

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z", re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)
_USUAL_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,=]*), ?SignedHeaders=([^,=]*), ?Signature=([^,=]*)")
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
               "X-Amz-Signature")
# X-Amz-* headers that need not be signed: each is bound or checked another way.
_UNSIGNED_OK = frozenset({"x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "x-amz-user-agent"})

_Headers = dict[str, list[str]]  # lower-cased name -> its values, in the order received

_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
             "Secret Access Key and signing method. Consult the service documentation for details.")
_BAD_TOKEN = "The security token included in the request is invalid."


@dataclass(slots=True)  # one per request: not frozen, which costs ~1 µs more to build
class SignedRequest:
    """An HTTP request as it came over the wire."""

    method: str
    raw_path: str  # exactly as received, percent-encoding intact, no query
    raw_query: str  # exactly as received, without '?'
    headers: Sequence[tuple[str, str]]  # as received: names in any case, a name may repeat; must include Host
    body: bytes


@dataclass(frozen=True)
class Secret:
    """What the server knows about an access key id."""

    secret_access_key: str
    session_token: str | None = None  # when set, the request must carry the same X-Amz-Security-Token


@dataclass(slots=True)  # one per request: not frozen, which costs ~1 µs more to build
class _Auth:
    """The signing parameters a request carried, from its Authorization header or its query string."""

    access_key: str
    scope: tuple[str, str, str, str]  # date, region, service, terminator
    signed_headers: frozenset[str]
    signature: str
    amz_date: str
    expires: int | None  # seconds, presigned URLs only
    token: str | None


@dataclass(slots=True)  # one per request: not frozen, which costs ~1 µs more to build
class Claim:
    """What a request says about its signature, parsed (nothing verified yet)."""

    request: SignedRequest
    headers: dict[str, list[str]]  # lower-cased name -> its values, in the order received
    query: list[tuple[str, str]]  # decoded
    auth: _Auth

    @property
    def access_key(self) -> str:
        return self.auth.access_key


def read_claim(request: SignedRequest) -> Claim:
    """Steps 1–2: find and parse the signature a request carries. Raises what ``verify`` would."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        lname = name.lower()
        values = headers.get(lname)
        if values is None:
            headers[lname] = [value]
        else:
            values.append(value)
    query = _parse_query(request.raw_query) if request.raw_query else []
    return Claim(request, headers, query, _parse_auth(headers, query))


def verify(
    request: SignedRequest,
    lookup: Callable[[str], Secret | None],
    *,
    region: str,
    service: str = "lambda",
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> str:
    """Check the request's SigV4 signature; return the access key id that signed it."""
    return check_claim(read_claim(request), lookup, region=region, service=service, now=now, max_skew=max_skew)


def check_preamble(
    claim: Claim,
    known: bool,
    *,
    region: str,
    service: str = "lambda",
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> None:
    """What can be checked of a claim before the body arrives: its scope, its clock, and whether its access key
    (``known``) is one the server has. Raises what ``check_claim`` would for the same faults."""
    signed_at = _check_scope(claim.auth, region, service)
    _check_clock(claim.auth, signed_at, now, max_skew)
    if not known:
        raise UnrecognizedClientException(_BAD_TOKEN)


def check_claim(
    claim: Claim,
    lookup: Callable[[str], Secret | None],
    *,
    region: str,
    service: str = "lambda",
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> str:
    """Steps 3–8 for a parsed claim; return the access key id that signed the request."""
    auth, headers = claim.auth, claim.headers
    signed_at = _check_scope(auth, region, service)
    _check_clock(auth, signed_at, now, max_skew)
    secret = lookup(auth.access_key)
    if secret is None:
        raise UnrecognizedClientException(_BAD_TOKEN)
    if (secret.session_token or auth.token) and not _same(secret.session_token or "", auth.token or ""):
        raise UnrecognizedClientException(_BAD_TOKEN)
    body_sha256 = hashlib.sha256(claim.request.body).hexdigest()
    claimed = _single_header(headers, "x-amz-content-sha256")
    payload_hash = claimed if claimed is not None and "x-amz-content-sha256" in auth.signed_headers else body_sha256
    _check_signature(claim, secret.secret_access_key, payload_hash, region, service)
    if claimed is not None and claimed.strip().lower() != body_sha256:
        raise InvalidSignatureException("The provided 'x-amz-content-sha256' header does not match what was computed.")
    unsigned = sorted({n for n in headers if n.startswith("x-amz-")} - auth.signed_headers - _UNSIGNED_OK)
    if unsigned:
        raise AccessDeniedException(
            f"There were headers present in the request which were not signed: {', '.join(unsigned)}")
    return auth.access_key


# -- parsing ---------------------------------------------------------------------------------------------------


def _parse_query(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def _parse_auth(headers: _Headers, query: list[tuple[str, str]]) -> _Auth:
    header = _single_header(headers, "authorization")
    in_query = {k: v for k, v in query if k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")}
    if header is not None and in_query:
        raise IncompleteSignatureException(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
            "parameter or the Authorization header should be specified")
    if header is not None:
        return _parse_header_auth(headers, header)
    if in_query:
        return _parse_query_auth(headers, query)
    raise MissingAuthenticationTokenException("Missing Authentication Token")


def _parse_header_auth(headers: _Headers, header: str) -> _Auth:
    usual = _USUAL_AUTHORIZATION.fullmatch(header.strip())  # what every SDK sends; the loop below reads the same
    if usual is not None:
        amz_date = _single_header(headers, "x-amz-date")
        if amz_date is not None:
            credential, signed_headers, signature = usual.groups()
            return _auth(credential.strip(), signed_headers.strip(), signature.strip(), amz_date, None,
                         _single_header(headers, "x-amz-security-token"))
    algorithm, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for part in rest.split(","):
            part = part.strip()
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not eq:
                raise IncompleteSignatureException(
                    f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'.")
            params[key.strip()] = value.strip()
    amz_date = _single_header(headers, "x-amz-date")
    missing = [f"Authorization header requires '{p}' parameter. "
               for p in ("Credential", "Signature", "SignedHeaders") if p not in params]
    if amz_date is None:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
    if missing or amz_date is None:
        raise IncompleteSignatureException("".join(missing) + f"Authorization={header}")
    return _auth(params["Credential"], params["SignedHeaders"], params["Signature"], amz_date, None,
                 _single_header(headers, "x-amz-security-token"))


def _parse_query_auth(headers: _Headers, query: list[tuple[str, str]]) -> _Auth:
    found: dict[str, str] = {}
    for key, value in query:
        if key in _QUERY_AUTH or key == "X-Amz-Security-Token":
            if key in found:
                raise IncompleteSignatureException(f"Query-string parameter {key} is given more than once.")
            found[key] = value
    if any(k not in found for k in _QUERY_AUTH):
        raise IncompleteSignatureException(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    if found["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignatureException(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    if not _DIGITS.fullmatch(found["X-Amz-Expires"]):
        raise IncompleteSignatureException("X-Amz-Expires should be a non-negative number")
    digits = found["X-Amz-Expires"].lstrip("0") or "0"
    expires = int(digits) if len(digits) <= 9 else MAX_PRESIGNED_EXPIRES + 1  # no int() of a 5000-digit string
    if expires > MAX_PRESIGNED_EXPIRES:
        raise IncompleteSignatureException(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}")
    token = found.get("X-Amz-Security-Token", _single_header(headers, "x-amz-security-token"))
    return _auth(found["X-Amz-Credential"], found["X-Amz-SignedHeaders"], found["X-Amz-Signature"],
                 found["X-Amz-Date"], expires, token)


def _auth(credential: str, signed_headers: str, signature: str, amz_date: str, expires: int | None,
          token: str | None) -> _Auth:
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'")
    names = _signed_names(signed_headers)
    if "host" not in names:
        raise IncompleteSignatureException("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    return _Auth(parts[0], (parts[1], parts[2], parts[3], parts[4]), names, signature, amz_date, expires, token)


@functools.lru_cache(maxsize=256)
def _signed_names(signed_headers: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in signed_headers.split(";"))


def _single_header(headers: _Headers, lname: str) -> str | None:
    values = headers.get(lname)
    if values is None:
        return None
    if len(values) > 1:
        raise IncompleteSignatureException(f"The '{lname}' header is given more than once.")
    return values[0]


# -- checks ----------------------------------------------------------------------------------------------------


def _check_scope(auth: _Auth, region: str, service: str) -> datetime:
    day, scope_region, scope_service, terminator = auth.scope
    signed_at = _parse_amz_date(auth.amz_date)
    if scope_region != region:
        raise InvalidSignatureException(f"Credential should be scoped to a valid region, not '{scope_region}'. ")
    if scope_service != service:
        raise InvalidSignatureException(f"Credential should be scoped to correct service: '{service}'. ")
    if terminator != "aws4_request":
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. ")
    if day != auth.amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{day}' != '{auth.amz_date[:8]}', from '{auth.amz_date}'.")
    return signed_at


@functools.lru_cache(maxsize=256)
def _parse_amz_date(value: str) -> datetime:
    try:
        if not _AMZ_DATE.fullmatch(value):
            raise ValueError(value)
        return datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]), int(value[11:13]),
                        int(value[13:15]), tzinfo=timezone.utc)
    except ValueError as exc:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from exc


def _check_clock(auth: _Auth, signed_at: datetime, now: datetime | None, max_skew: timedelta) -> None:
    if now is None:  # the usual case, in whole seconds without datetime arithmetic; a failure is worded below
        now_s, signed_s, skew = int(time.time()), _epoch(signed_at), max_skew.total_seconds()
        if signed_s <= now_s + skew and (signed_s >= now_s - skew if auth.expires is None
                                         else signed_s + auth.expires >= now_s):
            return
    now = datetime.now(timezone.utc) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    now = now.replace(microsecond=0)
    if signed_at > now + max_skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {auth.amz_date} is still later than {_stamp(now + max_skew)} "
            f"({_stamp(now)} + {_minutes(max_skew)} min.)")
    if auth.expires is None and signed_at < now - max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {auth.amz_date} is now earlier than {_stamp(now - max_skew)} "
            f"({_stamp(now)} - {_minutes(max_skew)} min.)")
    if auth.expires is not None and signed_at + timedelta(seconds=auth.expires) < now:
        raise InvalidSignatureException(
            f"Signature expired: {auth.amz_date} is now earlier than "
            f"{_stamp(now - timedelta(seconds=auth.expires))} ({_stamp(now)} - {auth.expires} sec.)")


@functools.lru_cache(maxsize=256)
def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple())


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g}"


def _check_signature(claim: Claim, secret: str, payload_hash: str, region: str, service: str) -> None:
    auth = claim.auth
    canonical_request = _canonical_request(claim, payload_hash)
    scope = f"{auth.amz_date[0:8]}/{region}/{service}/aws4_request"
    string_to_sign = (f"{ALGORITHM}\n{auth.amz_date}\n{scope}\n"
                      f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}")
    mac = _signer(secret, auth.amz_date[0:8], region, service).copy()
    mac.update(string_to_sign.encode("utf-8"))
    expected = mac.hexdigest()
    if not _same(expected, auth.signature):
        raise InvalidSignatureException(
            f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical_request}'\n\n"
            f"The String-to-Sign should have been\n'{string_to_sign}'\n")


def _canonical_request(claim: Claim, payload_hash: str) -> str:
    """botocore's ``SigV4Auth.canonical_request`` for the request as received, signing exactly the headers the
    client listed (those it sent; a listed header it did not send is left out, as botocore leaves it out)."""
    request, auth = claim.request, claim.auth
    query = ""
    if claim.query:
        params = [(k, v) for k, v in claim.query if k != "X-Amz-Signature"]
        query = "&".join(f"{k}={v}" for k, v in sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                                                        for k, v in params))
    signed, received = auth.signed_headers, claim.headers
    names = sorted([n for n in received if n in signed])
    headers = "".join([f"{n}:{','.join([' '.join(v.split()) for v in received[n]])}\n" for n in names])
    return (f"{request.method.upper()}\n{_canonical_path(request.raw_path)}\n{query}\n{headers}\n"
            f"{';'.join(names)}\n{payload_hash}")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


_PLAIN_SIGNER = SigV4Auth(None, "", "")  # holds no credentials: only its path rules are used


@functools.lru_cache(maxsize=1024)
def _canonical_path(path: str) -> str:
    """botocore's canonical URI for a non-S3 service (dot and empty segments removed, encoded once more)."""
    return str(SigV4Auth._normalize_url_path(_PLAIN_SIGNER, urlsplit("http://lambdad" + path).path))


@functools.lru_cache(maxsize=256)
def _signer(secret: str, day: str, region: str, service: str) -> "hmac.HMAC":
    """An HMAC-SHA256 keyed with the signing key, its pads already hashed: ``copy()`` it for each message."""
    return hmac.new(_signing_key(secret, day, region, service), digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key
