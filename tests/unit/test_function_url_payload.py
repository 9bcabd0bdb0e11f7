"""Payload format 2.0 and CORS of function URLs (urls/payload.py, urls/cors.py): pure logic, no server."""

from __future__ import annotations

import base64

import pytest

from lambdad.urls import cors
from lambdad.urls.payload import BadAnswer, build_event, interpret_answer, is_text

HOST = "abcdefghijabcdefghijabcdefghij12.lambda-url.us-east-1.localhost:9001"


def event(**kw):
    args = dict(method="GET", target="/", headers=[("Host", HOST)], body=b"", peer="10.0.0.7", port="9001",
                url_id="abcdefghijabcdefghijabcdefghij12", domain=HOST.partition(":")[0], account_id="000000000000",
                request_id="rid", now=1583348638.390)
    args.update(kw)
    return build_event(**args)


def test_the_event_has_the_documented_shape() -> None:
    e = event(target="/a%2Fb?x=1&x=2&e=&y=%20z", headers=[("Host", HOST), ("X-A", "1"), ("x-a", "2"),
                                                           ("Cookie", "c1=v1; c2=v2"), ("User-Agent", "ua")])
    assert e["version"] == "2.0" and e["routeKey"] == "$default" and e["rawPath"] == "/a%2Fb"
    assert e["rawQueryString"] == "x=1&x=2&e=&y=%20z"
    assert e["queryStringParameters"] == {"x": "1,2", "e": "", "y": " z"}
    assert e["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in e["headers"]
    assert e["headers"]["x-a"] == "1,2" and e["headers"]["x-forwarded-for"] == "10.0.0.7"
    ctx = e["requestContext"]
    assert ctx["time"] == "04/Mar/2020:19:03:58 +0000" and ctx["timeEpoch"] == 1583348638390
    assert ctx["accountId"] == "anonymous" and "authorizer" not in ctx
    assert ctx["http"] == {"method": "GET", "path": "/a%2Fb", "protocol": "HTTP/1.1", "sourceIp": "10.0.0.7",
                           "userAgent": "ua"}
    assert "body" not in e and e["isBase64Encoded"] is False and "queryStringParameters" not in event()
    signed = event(iam={"accessKey": "AKIA"})
    assert signed["requestContext"]["accountId"] == "000000000000"
    assert signed["requestContext"]["authorizer"] == {"iam": {"accessKey": "AKIA"}}
    assert event(headers=[("Host", HOST), ("X-Forwarded-For", "1.2.3.4")])["headers"]["x-forwarded-for"] == "1.2.3.4"


@pytest.mark.parametrize("content_type, body, text", [
    ("application/json", b'{"a": 1}', True), ("text/plain; charset=utf-8", b"hi", True),
    ("application/vnd.api+json", b"{}", True), ("image/png", b"\x89PNG", False), ("", b"data", False),
    ("text/plain", b"\xff\xfe", False),  # not UTF-8: base64 whatever the type says
])
def test_bodies_are_text_or_base64(content_type, body, text) -> None:
    e = event(method="POST", headers=[("Host", HOST), ("Content-Type", content_type)], body=body)
    assert e["isBase64Encoded"] is (not text)
    assert (e["body"] if text else base64.b64decode(e["body"])) == (body.decode() if text else body)
    assert is_text(content_type) is (text or content_type == "text/plain")


def test_answers_become_responses() -> None:
    assert interpret_answer(b'"hello"') == (200, [("Content-Type", "application/json")], b"hello")
    assert interpret_answer(b'{"hello": "world"}')[2] == b'{"hello":"world"}'
    assert interpret_answer(b"3.1")[2] == b"3.1" and interpret_answer(b"true")[2] == b"true"
    status, headers, body = interpret_answer(
        b'{"statusCode": "418", "headers": {"X-A": "b"}, "cookies": ["a=1", "b=2"], "body": "teapot"}')
    assert (status, body) == (418, b"teapot")
    assert headers == [("X-A", "b"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Type", "application/json")]
    raw = base64.b64encode(b"\x00\x01").decode()
    assert interpret_answer(f'{{"statusCode": 200, "body": "{raw}", "isBase64Encoded": true}}'.encode())[2] == b"\x00\x01"
    for bad in (b"not json", b'{"statusCode": 99}', b'{"statusCode": true}', b'{"statusCode": 200, "headers": ["x"]}',
                b'{"statusCode": 200, "body": "!!", "isBase64Encoded": true}'):
        with pytest.raises(BadAnswer):
            interpret_answer(bad)


def test_cors() -> None:
    config = {"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-t"],
              "ExposeHeaders": ["x-e"], "MaxAge": 60, "AllowCredentials": True}
    asked = {"origin": "https://A.example", "access-control-request-method": "post"}
    assert cors.is_preflight("OPTIONS", asked) and not cors.is_preflight("GET", asked)
    assert dict(cors.preflight_headers(config, asked)) == {
        "Vary": "Origin", "Access-Control-Allow-Origin": "https://A.example", "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "x-t", "Access-Control-Allow-Credentials": "true", "Access-Control-Max-Age": "60"}
    assert cors.preflight_headers(config, {**asked, "origin": "https://b.example"}) == [("Vary", "Origin")]
    given = [("Content-Type", "text/plain"), ("Access-Control-Allow-Origin", "*")]
    assert cors.response_headers(config, "https://a.example", given) == [
        ("Content-Type", "text/plain"), ("Access-Control-Allow-Origin", "https://a.example"),
        ("Access-Control-Expose-Headers", "x-e"), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
    assert cors.response_headers(config, None, given) == [("Content-Type", "text/plain")]  # the platform's, not the function's
    assert dict(cors.response_headers({"AllowOrigins": ["*"]}, "https://x", []))["Access-Control-Allow-Origin"] == "*"
