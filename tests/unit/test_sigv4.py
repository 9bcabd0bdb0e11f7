"""SigV4 verification: requests signed by botocore itself verify; each tampered part is refused with AWS's error."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from lambdad.auth.sigv4 import Secret, SignedRequest, verify
from lambdad.errors import (
    AccessDeniedException,
    IncompleteSignatureException,
    InvalidSignatureException,
    LambdaError,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

REGION = "us-east-1"
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEMP_AKID, TEMP_SECRET, TOKEN = "ASIAEXAMPLE", "temporary/secret", "FwoGZXIvYXdzEXAMPLE//token+="
KEYS = {AKID: Secret(SECRET), TEMP_AKID: Secret(TEMP_SECRET, TOKEN)}
HOST = "localhost:9001"
ARN_PATH = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations"
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")


# -- signing with botocore, as a client would ------------------------------------------------------------------


def sign(method: str = "GET", path: str = "/2015-03-31/functions/", query: str = "", body: bytes = b"",
         headers: dict[str, str] | None = None, *, akid: str = AKID, secret: str = SECRET, token: str | None = None,
         region: str = REGION, service: str = "lambda") -> SignedRequest:
    """Sign with botocore's SigV4Auth the way a boto3 client does (query already encoded in the URL)."""
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(akid, secret, token), service, region).add_auth(request)
    return _as_received(request)


def presign(path: str = "/", params: dict[str, str] | None = None, *, expires: int = 300, token: str | None = None,
            akid: str = AKID, secret: str = SECRET) -> SignedRequest:
    url = f"http://{HOST}{path}" + (f"?{percent_encode_sequence(params)}" if params else "")
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials(akid, secret, token), "lambda", REGION, expires=expires).add_auth(request)
    return _as_received(request)


def _as_received(request: AWSRequest) -> SignedRequest:
    parts = urlsplit(request.url)
    headers = [("Host", HOST)] + list(request.headers.items())  # the HTTP client adds Host
    return SignedRequest(request.method, parts.path, parts.query, headers, request.body or b"")


def signed_at(request: SignedRequest) -> datetime:
    stamp = dict((n.lower(), v) for n, v in request.headers).get("x-amz-date")
    if stamp is None:
        stamp = dict(p.split("=", 1) for p in request.raw_query.split("&"))["X-Amz-Date"]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def check(request: SignedRequest, *, now: datetime | None = None, region: str = REGION) -> str:
    return verify(request, KEYS.get, region=region, now=now or signed_at(request))


def refused(request: SignedRequest, error: type[LambdaError], *, now: datetime | None = None,
            region: str = REGION) -> str:
    with pytest.raises(error) as caught:
        check(request, now=now, region=region)
    assert type(caught.value) is error and caught.value.status == 403
    return caught.value.message


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    """The request with header ``name`` replaced by ``value`` (or removed, for None)."""
    kept = [(n, v) for n, v in request.headers if n.lower() != name.lower()]
    return dataclasses.replace(request, headers=kept + ([(name, value)] if value is not None else []))


def header(request: SignedRequest, name: str) -> str:
    return next(v for n, v in request.headers if n.lower() == name.lower())


# -- requests that verify --------------------------------------------------------------------------------------


def test_invoke_with_percent_encoded_arn_in_path_and_json_body_verifies() -> None:
    request = sign("POST", ARN_PATH, "Qualifier=%24LATEST", json.dumps({"key": "value"}).encode(),
                   {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"})
    assert "arn%3Aaws" in request.raw_path
    assert check(request) == AKID


def test_get_with_empty_body_and_two_query_params_verifies() -> None:
    query = percent_encode_sequence({"Marker": "next/page:2+a b=c", "MaxItems": "10"})
    request = sign("GET", "/2015-03-31/functions/", query)
    assert request.body == b"" and "&" in request.raw_query
    assert check(request) == AKID


def test_query_order_and_encoding_case_do_not_matter() -> None:
    request = sign("GET", "/2015-03-31/functions/", "MaxItems=10&Marker=a%3Ab")
    assert check(dataclasses.replace(request, raw_query="Marker=a%3ab&MaxItems=10")) == AKID


def test_session_token_verifies() -> None:
    request = sign(akid=TEMP_AKID, secret=TEMP_SECRET, token=TOKEN)
    assert header(request, "X-Amz-Security-Token") == TOKEN
    assert check(request) == TEMP_AKID


def test_repeated_header_verifies() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/2015-03-31/functions/")
    request.headers["X-Custom"] = "one"
    request.headers["X-Custom"] = "two  three"  # HTTPHeaders appends; botocore signs "one,two three"
    SigV4Auth(Credentials(AKID, SECRET), "lambda", REGION).add_auth(request)
    received = _as_received(request)
    assert [v for n, v in received.headers if n == "X-Custom"] == ["one", "two  three"]
    assert check(received) == AKID
    swapped = [(n, {"one": "two  three", "two  three": "one"}.get(v, v)) for n, v in received.headers]
    refused(dataclasses.replace(received, headers=swapped), InvalidSignatureException)


def test_signed_content_sha256_header_verifies() -> None:
    body = b'{"a": 1}'
    request = sign("POST", ARN_PATH, body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert check(request) == AKID


def test_presigned_url_verifies() -> None:
    request = presign("/", {"Marker": "a:b", "MaxItems": "5"})
    assert "X-Amz-Signature=" in request.raw_query
    assert check(request) == AKID
    assert check(presign(token=TOKEN, akid=TEMP_AKID, secret=TEMP_SECRET)) == TEMP_AKID


def test_cached_signing_key_gives_botocores_signature() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/")
    request.context["timestamp"] = "20261123T101010Z"
    botocore_signature = SigV4Auth(Credentials(AKID, SECRET), "lambda", REGION).signature("string", request)
    key = ("AWS4" + SECRET).encode()
    for part in ("20261123", REGION, "lambda", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    assert hmac.new(key, b"string", hashlib.sha256).hexdigest() == botocore_signature
    from lambdad.auth.sigv4 import _signing_key
    assert _signing_key(SECRET, "20261123", REGION, "lambda") == key


@pytest.mark.parametrize("method,path,query,headers", [
    ("GET", "/2015-03-31/functions/", "", {}),
    ("POST", ARN_PATH, "Qualifier=%24LATEST", {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}),
    ("GET", "/a/./b//c/../d%20e%2Ff", "", {}),
    ("GET", "/2015-03-31/functions/", "Marker=%E2%9C%93%20x%2By&MaxItems=1&Marker=a", {"X-Odd": "  spaced   out  "}),
    ("PUT", "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af", "empty=&flag",
     {"X-Amz-Log-Type": "Tail", "Content-Type": "application/x-amz-json-1.1"}),
])
def test_canonical_request_is_botocores(method: str, path: str, query: str, headers: dict[str, str]) -> None:
    """lambdad writes the canonical request out itself (for speed); it must be botocore's, byte for byte."""
    from lambdad.auth.sigv4 import _canonical_request, read_claim

    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=b"{}", headers=headers)
    signer = SigV4Auth(Credentials(AKID, SECRET), "lambda", REGION)
    signer.add_auth(request)
    received = _as_received(request)
    claim = read_claim(received)
    signed = {n: v for n, v in received.headers if n != "Authorization"}  # what the client signed
    botocore_request = AWSRequest(method=method, url=url, data=b"{}", headers=signed)
    botocore_request.context["timestamp"] = header(received, "X-Amz-Date")
    expected = signer.canonical_request(botocore_request)
    assert _canonical_request(claim, hashlib.sha256(b"{}").hexdigest()) == expected
    assert check(received) == AKID


def test_authorization_header_in_an_unusual_layout_verifies() -> None:
    """The fast parse of the usual ``Credential=…, SignedHeaders=…, Signature=…`` and the general one agree."""
    request = sign("POST", ARN_PATH, body=b"{}")
    usual = header(request, "Authorization")
    algorithm, _, rest = usual.partition(" ")
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    for layout in (f"{algorithm} Signature={parts['Signature']},SignedHeaders={parts['SignedHeaders']},"
                   f"Credential={parts['Credential']}",
                   f"  {algorithm}   Credential = {parts['Credential']} ,SignedHeaders={parts['SignedHeaders']}, "
                   f"Signature={parts['Signature']}  "):
        assert check(with_header(request, "Authorization", layout)) == AKID


# -- tampering -------------------------------------------------------------------------------------------------


@pytest.fixture
def invoke() -> SignedRequest:
    return sign("POST", ARN_PATH, "Qualifier=prod&Extra=1", b'{"n": 1}',
                {"Content-Type": "application/json", "X-Amz-Log-Type": "Tail"})


@pytest.mark.parametrize("tamper", [
    lambda r: dataclasses.replace(r, body=b'{"n": 2}'),
    lambda r: dataclasses.replace(r, raw_path=r.raw_path.replace("my-fn", "other")),
    lambda r: dataclasses.replace(r, raw_path=r.raw_path.replace("%3A", ":")),  # decoded ARN is not what was signed
    lambda r: dataclasses.replace(r, raw_query="Qualifier=dev&Extra=1"),
    lambda r: dataclasses.replace(r, raw_query="Qualifier=prod"),
    lambda r: dataclasses.replace(r, method="PUT"),
    lambda r: with_header(r, "Content-Type", "text/plain"),
    lambda r: with_header(r, "X-Amz-Log-Type", "None"),
    lambda r: with_header(r, "Host", "evil.example:9001"),
], ids=["body", "path", "path-decoded", "query-value", "query-dropped", "method", "signed-header", "x-amz-header",
        "host"])
def test_tampered_request_is_refused(invoke: SignedRequest, tamper: object) -> None:
    assert check(invoke) == AKID
    message = refused(tamper(invoke), InvalidSignatureException)  # type: ignore[operator]
    assert message.startswith(MISMATCH + "\n\nThe Canonical String for this request should have been\n'")


def test_wrong_secret_is_refused() -> None:
    message = refused(sign(secret="not-the-secret"), InvalidSignatureException)
    assert message.startswith(MISMATCH)


def test_signature_not_hex_is_refused(invoke: SignedRequest) -> None:
    auth = header(invoke, "Authorization")
    refused(with_header(invoke, "Authorization", auth[:-64] + "é" * 64), InvalidSignatureException)


def test_unknown_access_key_is_refused() -> None:
    message = refused(sign(akid="AKIDUNKNOWN"), UnrecognizedClientException)
    assert message == "The security token included in the request is invalid."


@pytest.mark.parametrize("change", ["other-token", None])
def test_session_token_changed_or_dropped_is_refused(change: str | None) -> None:
    request = sign(akid=TEMP_AKID, secret=TEMP_SECRET, token=TOKEN)
    message = refused(with_header(request, "X-Amz-Security-Token", change), UnrecognizedClientException)
    assert message == "The security token included in the request is invalid."


def test_token_on_a_long_term_key_is_refused() -> None:
    refused(sign(token="made-up"), UnrecognizedClientException)


def test_request_from_the_past_is_refused(invoke: SignedRequest) -> None:
    at = signed_at(invoke)
    assert check(invoke, now=at + timedelta(minutes=15)) == AKID
    message = refused(invoke, InvalidSignatureException, now=at + timedelta(minutes=16))
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    limit = (at + timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    now = (at + timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")
    assert message == f"Signature expired: {stamp} is now earlier than {limit} ({now} - 15 min.)"


def test_request_from_the_future_is_refused(invoke: SignedRequest) -> None:
    at = signed_at(invoke)
    assert check(invoke, now=at - timedelta(minutes=15)) == AKID
    message = refused(invoke, InvalidSignatureException, now=at - timedelta(minutes=16))
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    limit = (at - timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    now = (at - timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")
    assert message == f"Signature not yet current: {stamp} is still later than {limit} ({now} + 15 min.)"


def test_x_amz_date_changed_is_refused(invoke: SignedRequest) -> None:
    at = signed_at(invoke) + timedelta(seconds=1)
    message = refused(with_header(invoke, "X-Amz-Date", at.strftime("%Y%m%dT%H%M%SZ")), InvalidSignatureException,
                      now=at)
    assert message.startswith(MISMATCH)


def test_wrong_region_and_service_are_refused() -> None:
    message = refused(sign(region="eu-west-1"), InvalidSignatureException)
    assert message == "Credential should be scoped to a valid region, not 'eu-west-1'. "
    message = refused(sign(service="s3"), InvalidSignatureException)
    assert message == "Credential should be scoped to correct service: 'lambda'. "


def test_credential_day_must_match_x_amz_date(invoke: SignedRequest) -> None:
    auth = header(invoke, "Authorization")
    day = signed_at(invoke).strftime("%Y%m%d")
    other = with_header(invoke, "Authorization", auth.replace(f"/{day}/", "/20000101/"))
    assert "does not match YYYYMMDD" in refused(other, InvalidSignatureException)


def test_content_sha256_not_matching_body_is_refused() -> None:
    stated = hashlib.sha256(b"something else").hexdigest()
    request = sign("POST", ARN_PATH, body=b"{}", headers={"X-Amz-Content-SHA256": stated})
    message = refused(request, InvalidSignatureException)
    assert message == "The provided 'x-amz-content-sha256' header does not match what was computed."
    unsigned_payload = sign("POST", ARN_PATH, body=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    refused(unsigned_payload, InvalidSignatureException)


def test_unsigned_x_amz_header_is_refused(invoke: SignedRequest) -> None:
    added = with_header(invoke, "X-Amz-Invocation-Type", "Event")
    message = refused(added, AccessDeniedException)
    assert message.endswith(": x-amz-invocation-type")
    assert check(with_header(invoke, "User-Agent", "added-later")) == AKID  # an unsigned non-x-amz header is fine


# -- malformed or missing credentials --------------------------------------------------------------------------


def test_unsigned_request_is_refused() -> None:
    request = SignedRequest("GET", "/2015-03-31/functions/", "", [("Host", HOST)], b"")
    with pytest.raises(MissingAuthenticationTokenException) as caught:
        verify(request, KEYS.get, region=REGION)
    assert caught.value.message == "Missing Authentication Token" and caught.value.status == 403


def test_non_sigv4_authorization_is_incomplete(invoke: SignedRequest) -> None:
    message = refused(with_header(invoke, "Authorization", "Bearer abc.def"), IncompleteSignatureException)
    assert message == ("Authorization header requires 'Credential' parameter. Authorization header requires "
                       "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
                       "Authorization=Bearer abc.def")


def test_missing_x_amz_date_is_incomplete(invoke: SignedRequest) -> None:
    message = refused(with_header(invoke, "X-Amz-Date", None), IncompleteSignatureException, now=signed_at(invoke))
    assert message.startswith("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")


def test_malformed_authorization_is_incomplete(invoke: SignedRequest) -> None:
    auth = header(invoke, "Authorization")
    no_equals = with_header(invoke, "Authorization", auth.replace("SignedHeaders=", "SignedHeaders "))
    assert "not a valid key=value pair (missing equal-sign)" in refused(no_equals, IncompleteSignatureException)
    short = with_header(invoke, "Authorization", auth.replace("/aws4_request", ""))
    assert "exactly 5 slash-delimited elements" in refused(short, IncompleteSignatureException)
    no_host = with_header(invoke, "Authorization", auth.replace(";host;", ";"))
    assert refused(no_host, IncompleteSignatureException) == "'Host' must be a 'SignedHeader' in the AWS Authorization."
    bad_date = with_header(invoke, "X-Amz-Date", "2026-11-23T10:10:10Z")
    assert "ISO-8601 'basic format'" in refused(bad_date, IncompleteSignatureException, now=signed_at(invoke))


def test_two_authorization_mechanisms_are_incomplete(invoke: SignedRequest) -> None:
    both = dataclasses.replace(invoke, raw_query=invoke.raw_query + "&X-Amz-Signature=abc")
    refused(both, IncompleteSignatureException)


# -- presigned URLs --------------------------------------------------------------------------------------------


def test_presigned_url_expires() -> None:
    request = presign(expires=60)
    at = signed_at(request)
    assert check(request, now=at + timedelta(seconds=60)) == AKID
    assert refused(request, InvalidSignatureException, now=at + timedelta(seconds=61)).startswith("Signature expired")
    assert refused(request, InvalidSignatureException, now=at - timedelta(minutes=16)).startswith(
        "Signature not yet current")


def test_presigned_url_outliving_the_skew_window_still_verifies() -> None:
    request = presign(expires=3600)
    assert check(request, now=signed_at(request) + timedelta(minutes=50)) == AKID


@pytest.mark.parametrize("tamper", [
    lambda q: q.replace("X-Amz-Expires=60", "X-Amz-Expires=6000"),
    lambda q: q.replace("MaxItems=5", "MaxItems=50"),
    lambda q: q + "&Extra=1",
], ids=["expires", "param", "added-param"])
def test_tampered_presigned_url_is_refused(tamper: object) -> None:
    request = presign("/", {"MaxItems": "5"}, expires=60)
    tampered = dataclasses.replace(request, raw_query=tamper(request.raw_query))  # type: ignore[operator]
    assert tampered.raw_query != request.raw_query
    refused(tampered, InvalidSignatureException)


def test_presigned_url_missing_a_parameter_is_incomplete() -> None:
    request = presign()
    query = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Expires="))
    refused(dataclasses.replace(request, raw_query=query), IncompleteSignatureException)


@pytest.mark.parametrize("expires", ["soon", "-5", "\u00b2", "604801", "9" * 5000])
def test_presigned_url_with_bad_expires_is_incomplete(expires: str) -> None:
    request = presign(expires=60)
    query = request.raw_query.replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    refused(dataclasses.replace(request, raw_query=query), IncompleteSignatureException)


@pytest.mark.parametrize("authorization", [
    "", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ,,,", "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
    "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=\udcff",
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2026\u0663123/us-east-1/lambda/aws4_request, SignedHeaders=host, "
    "Signature=00",
])
def test_garbage_authorization_is_refused_as_an_aws_error(invoke: SignedRequest, authorization: str) -> None:
    with pytest.raises(LambdaError) as caught:
        check(with_header(invoke, "Authorization", authorization), now=signed_at(invoke))
    assert caught.value.status == 403


def test_garbage_x_amz_date_is_incomplete(invoke: SignedRequest) -> None:
    for stamp in ["20261323T101010Z", "2026112\u0663T101010Z", "", "20261123T101010"]:
        refused(with_header(invoke, "X-Amz-Date", stamp), IncompleteSignatureException, now=signed_at(invoke))


def test_presigned_session_token_dropped_is_refused() -> None:
    request = presign(token=TOKEN, akid=TEMP_AKID, secret=TEMP_SECRET)
    query = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Security-Token="))
    refused(dataclasses.replace(request, raw_query=query), UnrecognizedClientException)


# -- what a real boto3 client puts on the wire -----------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``{}`` after recording it exactly as received."""

    received: list[SignedRequest]

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        self.received.append(SignedRequest(self.command, path, query, list(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_DELETE = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wire() -> Iterator[tuple[str, list[SignedRequest]]]:
    received: list[SignedRequest] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_boto3_requests_verify_as_received_on_the_wire(wire: tuple[str, list[SignedRequest]]) -> None:
    boto3 = pytest.importorskip("boto3")
    endpoint, received = wire
    client = boto3.client("lambda", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=TEMP_AKID,
                          aws_secret_access_key=TEMP_SECRET, aws_session_token=TOKEN)
    client.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:my-fn:prod", Payload=b'{"a": 1}',
                  LogType="Tail")
    client.list_functions(Marker="opaque/marker:with+chars=", MaxItems=7)
    client.get_function(FunctionName="my-fn", Qualifier="$LATEST")
    assert len(received) == 3
    assert "arn%3Aaws%3Alambda" in received[0].raw_path
    assert "&" in received[1].raw_query
    for request in received:
        assert verify(request, KEYS.get, region=REGION) == TEMP_AKID
    tampered = dataclasses.replace(received[1], raw_query=received[1].raw_query.replace("7", "8"))
    with pytest.raises(InvalidSignatureException):
        verify(tampered, KEYS.get, region=REGION)


def test_the_server_clock_is_used_when_no_time_is_given() -> None:
    """``now=None`` (how the server calls verify) takes the clock's time: fresh requests verify, stale or future
    ones are refused with the same words as with an explicit time."""
    assert verify(sign(), KEYS.get, region=REGION) == AKID
    for minutes, words in ((-16, "Signature expired"), (16, "Signature not yet current")):
        moment = datetime.now(timezone.utc) + timedelta(minutes=minutes)
        if moment.date() != datetime.now(timezone.utc).date():
            # add_auth signs the credential scope with today's date whatever the header says: within 16 minutes
            # of midnight this request would be one no client sends (the scope's date refused first)
            continue
        request = AWSRequest(method="GET", url=f"http://{HOST}/2015-03-31/functions/")
        with_time = SigV4Auth(Credentials(AKID, SECRET), "lambda", REGION)
        request.context["timestamp"] = moment.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        with_time._modify_request_before_signing = lambda r: None  # keep the date set above
        with_time.add_auth(request)
        with pytest.raises(InvalidSignatureException) as caught:
            verify(_as_received(request), KEYS.get, region=REGION)
        assert caught.value.message.startswith(words)
    presigned = presign(expires=60)
    assert verify(presigned, KEYS.get, region=REGION) == AKID
