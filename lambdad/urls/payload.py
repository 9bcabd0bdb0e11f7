"""Payload format 2.0 of Lambda function URLs: the event a request becomes, and how a function's answer becomes
the HTTP response (AWS's "Invoking Lambda function URLs", request and response payloads).

The event: ``version`` "2.0", ``routeKey`` "$default", ``rawPath``, ``rawQueryString``, ``cookies`` (the Cookie
header split, and left out of ``headers``), ``headers`` (names lower-cased, repeated ones joined by commas, and
``x-forwarded-for``/``-proto``/``-port`` as Lambda's front end adds them),
``queryStringParameters`` (decoded, repeated keys joined by commas), ``requestContext`` (``accountId`` — ``anonymous`` for NONE, as Lambda's events show it, the function owner's
for AWS_IAM —, ``apiId``
and ``domainPrefix`` the URL id, ``domainName``, ``http`` {method, path, protocol, sourceIp, userAgent},
``requestId``, ``routeKey``, ``stage`` "$default", ``time`` as ``dd/MMM/yyyy:HH:mm:ss +0000``, ``timeEpoch`` in
ms, and ``authorizer.iam`` for AWS_IAM), ``body`` and ``isBase64Encoded`` (a body whose content type is not text,
or not UTF-8, is base64-encoded). Keys without a value (no cookies, no query, no body) are left out.

The answer: a JSON object with ``statusCode`` gives the status, ``headers``, ``cookies`` (one Set-Cookie each)
and ``body`` (base64-decoded when ``isBase64Encoded``); any other JSON value, or an object without
``statusCode``, is the body of a 200 ``application/json`` response: a string as itself (``"hello"`` answers
``hello``), anything else as compact JSON (``{"a":1}``), as Lambda answers (LocalStack's AWS-validated snapshots
of function URL answers). Anything else (not JSON, a bad status) is Lambda's 502.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, Mapping, Sequence
from urllib.parse import parse_qsl

__all__ = ["build_event", "interpret_answer", "is_text", "BadAnswer"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = ("application/json", "application/javascript", "application/xml", "application/x-www-form-urlencoded",
               "application/yaml", "application/x-yaml", "application/graphql", "application/ld+json")


class BadAnswer(Exception):
    """The function's answer cannot be made into an HTTP response (Lambda answers 502)."""


def is_text(content_type: str) -> bool:
    """Whether a body of this Content-Type is passed as text (else base64)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith("+json") or kind.endswith("+xml")


def _clock(epoch: float) -> str:
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def build_event(*, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, peer: str,
                port: str, url_id: str, domain: str, account_id: str, request_id: str,
                iam: Mapping[str, Any] | None = None, now: float | None = None) -> dict[str, Any]:
    """The event of one request (see the module's docstring)."""
    epoch = time.time() if now is None else now
    path, _, raw_query = target.partition("?")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[lname] = f"{joined[lname]},{value}" if lname in joined else value
    # what Lambda's front end adds (kept when a proxy in front of lambdad set them)
    joined.setdefault("x-forwarded-for", peer)
    joined.setdefault("x-forwarded-proto", "http")
    joined.setdefault("x-forwarded-port", port)
    event: dict[str, Any] = {"version": "2.0", "routeKey": "$default", "rawPath": path or "/",
                             "rawQueryString": raw_query}
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    if raw_query:
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        event["queryStringParameters"] = query
    context: dict[str, Any] = {"accountId": account_id if iam is not None else "anonymous", "apiId": url_id}
    if iam is not None:
        context["authorizer"] = {"iam": dict(iam)}
    context.update({
        "domainName": domain, "domainPrefix": url_id,
        "http": {"method": method, "path": path or "/", "protocol": "HTTP/1.1", "sourceIp": peer,
                 "userAgent": joined.get("user-agent", "")},
        "requestId": request_id, "routeKey": "$default", "stage": "$default", "time": _clock(epoch),
        "timeEpoch": int(epoch * 1000),
    })
    event["requestContext"] = context
    if body:
        try:
            text = body.decode("utf-8") if is_text(joined.get("content-type", "")) else None
        except UnicodeDecodeError:
            text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


def interpret_answer(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of a function's answer; ``BadAnswer`` when it cannot be one."""
    try:
        answer = json.loads(payload) if payload else None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadAnswer("the function's answer is not JSON") from exc
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # a JSON string is the body itself; any other value is the body as compact JSON (Lambda's answers)
        whole = answer.encode("utf-8") if isinstance(answer, str) else \
            json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return 200, [("Content-Type", "application/json")], whole
    status = answer.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadAnswer(f"bad statusCode {status!r}")
    out: list[tuple[str, str]] = []
    given = answer.get("headers") or {}
    if not isinstance(given, dict):
        raise BadAnswer("headers is not an object")
    for name, value in given.items():
        if isinstance(value, (dict, list)):
            raise BadAnswer(f"header {name} is not a string")
        out.append((str(name), "true" if value is True else "false" if value is False else str(value)))
    cookies = answer.get("cookies") or []
    if not isinstance(cookies, list):
        raise BadAnswer("cookies is not a list")
    out.extend(("Set-Cookie", str(cookie)) for cookie in cookies)
    body = answer.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if answer.get("isBase64Encoded") is True:
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadAnswer("body is not base64") from exc
        else:
            data = body.encode("utf-8")
    else:
        data = json.dumps(body).encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in out):
        out.append(("Content-Type", "application/json"))
    return status, out, data
