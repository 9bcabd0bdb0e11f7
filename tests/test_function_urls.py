"""Function URLs (docs/function-urls.md): Create/Get/Update/Delete/ListFunctionUrlConfig(s) through boto3 and the
aws CLI, and requests to the URLs over HTTP — payload format 2.0 from an echo function, NONE and AWS_IAM access,
binary bodies, cookies, CORS and errors. ``*.localhost`` need not resolve here: requests go to 127.0.0.1 with the
URL's Host header."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, wait_until

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
FORBIDDEN = ("Forbidden. For troubleshooting Function URL authorization issues, see: "
             "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html")
ECHO = """
import base64, json
def handler(event, context):
    if event.get('rawPath') == '/raw':
        return {'statusCode': 200, 'headers': {'content-type': 'application/octet-stream'},
                'body': base64.b64encode(bytes(range(256))).decode(), 'isBase64Encoded': True}
    if event.get('rawPath') == '/cookies':
        return {'statusCode': 201, 'headers': {'X-Custom': 'yes'}, 'cookies': ['a=1; Max-Age=60', 'b=2'],
                'body': 'made'}
    if event.get('rawPath') == '/plain':
        return 'Hello, world!'
    if event.get('rawPath') == '/dict':
        return {'hello': 'world', 'n': [1, True]}
    if event.get('rawPath') == '/fail':
        raise ValueError('boom')
    return {'statusCode': 200, 'headers': {'content-type': 'application/json'}, 'body': json.dumps(event)}
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("urls")).start()
    yield server
    server.stop()


@pytest.fixture
def lam(srv: Server):
    return srv.client()


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def call(port: int, url: str, method: str = "GET", path: str = "/", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """A request to a function URL, sent to 127.0.0.1:``port`` with the URL's Host."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Host": urlsplit(url).netloc, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name.lower()]


def public(lam, name: str, qualifier: str | None = None) -> None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    lam.add_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess",
                       Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE", **extra)


def test_configs_are_created_read_updated_listed_and_deleted(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=fname)
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")
    made = lam.create_function_url_config(FunctionName=fname, AuthType="NONE",
                                          Cors={"AllowOrigins": ["https://example.com"], "MaxAge": 300})
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert made["FunctionArn"] == f"{ARN}:{fname}" and made["AuthType"] == "NONE"
    assert "InvokeMode" not in made and "LastModifiedTime" not in made  # as Lambda's answer
    assert made["Cors"] == {"AllowOrigins": ["https://example.com"], "MaxAge": 300}
    url = made["FunctionUrl"]
    host = urlsplit(url).hostname or ""
    url_id, _, rest = host.partition(".")
    assert len(url_id) == 32 and url_id.isalnum() and url_id == url_id.lower()
    assert rest == "lambda-url.us-east-1.localhost" and urlsplit(url).port == srv.port and url.endswith("/")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fname, AuthType="NONE")
    assert error_of(e) == ("ResourceConflictException", 409,
                           f"Failed to create function url config for [functionArn = {ARN}:{fname}]. Error message:  "
                           "FunctionUrlConfig exists for this Lambda function")
    got = lam.get_function_url_config(FunctionName=fname)
    assert got["FunctionUrl"] == url and got["CreationTime"] == made["CreationTime"]
    assert got["InvokeMode"] == "BUFFERED" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",
                                                              got["LastModifiedTime"])
    assert "InvokeMode" not in lam.update_function_url_config(FunctionName=fname, AuthType="NONE")
    updated = lam.update_function_url_config(FunctionName=fname, AuthType="AWS_IAM", InvokeMode="RESPONSE_STREAM")
    assert updated["AuthType"] == "AWS_IAM" and updated["InvokeMode"] == "RESPONSE_STREAM"
    assert updated["Cors"] == made["Cors"] and updated["FunctionUrl"] == url  # unnamed fields kept, same URL
    aliased = lam.create_function_url_config(FunctionName=fname, Qualifier="live", AuthType="NONE")
    assert aliased["FunctionArn"] == f"{ARN}:{fname}:live" and aliased["FunctionUrl"] != url
    listed = lam.list_function_url_configs(FunctionName=fname)["FunctionUrlConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == [f"{ARN}:{fname}", f"{ARN}:{fname}:live"]
    page = lam.list_function_url_configs(FunctionName=fname, MaxItems=1)
    assert len(page["FunctionUrlConfigs"]) == 1 and "NextMarker" in page
    lam.delete_alias(FunctionName=fname, Name="live")  # its URL goes with it
    assert [c["FunctionArn"] for c in lam.list_function_url_configs(FunctionName=fname)["FunctionUrlConfigs"]] == \
        [f"{ARN}:{fname}"]
    lam.delete_function_url_config(FunctionName=fname)
    with pytest.raises(ClientError) as e:
        lam.delete_function_url_config(FunctionName=fname)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    status, headers, body = call(srv.port, url)  # a deleted URL serves nothing, as one that never was
    assert (status, body) == (403, b'{"Message":null}')
    assert header(headers, "x-amzn-ErrorType") == ["AccessDeniedException"]


def test_bad_requests_are_refused_as_lambda_refuses_them(lam, fname) -> None:
    create_python_function(lam, fname, ECHO, Publish=True)
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fname, Qualifier="1", AuthType="NONE")
    assert error_of(e) == ("ValidationException", 400,
                           "1 validation error detected: Value '1' at 'qualifier' failed to satisfy constraint: Member "
                           r"must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)")
    for bad in ("$LATEST", "2"):  # a version that does not exist, and $LATEST named, alike
        with pytest.raises(ClientError) as e:
            lam.get_function_url_config(FunctionName=fname, Qualifier=bad)
        assert error_of(e)[:2] == ("ValidationException", 400) and f"Value '{bad}' at 'qualifier'" in error_of(e)[2]
    with pytest.raises(ClientError) as e:  # validated before the function is looked for
        lam.delete_function_url_config(FunctionName=f"{fname}-missing", Qualifier="1")
    assert error_of(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=f"{fname}:1", AuthType="NONE")
    assert error_of(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=f"{fname}:live", Qualifier="other", AuthType="NONE")
    assert error_of(e) == ("InvalidParameterValueException", 400,
                           "The derived qualifier from the function name does not match the specified qualifier.")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fname, AuthType="OPEN")
    assert error_of(e) == ("ValidationException", 400,
                           "1 validation error detected: Value 'OPEN' at 'authType' failed to satisfy constraint: "
                           "Member must satisfy enum value set: [NONE, AWS_IAM]")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fname, AuthType="NONE", InvokeMode="UNKNOWN")
    assert error_of(e) == ("ValidationException", 400,
                           "1 validation error detected: Value 'UNKNOWN' at 'invokeMode' failed to satisfy constraint: "
                           "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fname, AuthType="NONE", Cors={"MaxAge": 86401})
    assert error_of(e)[:2] == ("ValidationException", 400)
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=fname, Qualifier="nope", AuthType="NONE")
    assert error_of(e) == ("ResourceNotFoundException", 404, "Function does not exist")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=f"{fname}-missing", AuthType="NONE")
    assert error_of(e) == ("ResourceNotFoundException", 404, "Function does not exist")
    with pytest.raises(ClientError) as e:
        lam.update_function_url_config(FunctionName=fname, AuthType="NONE")
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")


def test_none_needs_the_public_permission_and_the_event_is_payload_2(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO)
    url = lam.create_function_url_config(FunctionName=fname, AuthType="NONE")["FunctionUrl"]
    status, headers, body = call(srv.port, url)
    assert (status, json.loads(body)) == (403, {"Message": FORBIDDEN})
    assert header(headers, "x-amzn-ErrorType") == ["AccessDeniedException"]
    public(lam, fname)
    status, headers, body = call(srv.port, url, "POST", "/a/b%20c?x=1&x=2&y=&z=3",
                                 body=b'{"k": "v"}', headers={"Content-Type": "application/json",
                                                             "X-Multi": "one", "User-Agent": "tester/1",
                                                             "Cookie": "c1=v1; c2=v2"})
    assert status == 200, body
    event = json.loads(body)
    url_id = urlsplit(url).hostname.partition(".")[0]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/a/b%20c" and event["rawQueryString"] == "x=1&x=2&y=&z=3"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "", "z": "3"}
    assert event["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "one" and event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1" and event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == str(srv.port)
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    assert call(srv.port, url.upper(), path="/x")[0] == 200  # host names are case-insensitive
    ctx = event["requestContext"]
    assert ctx["accountId"] == "anonymous" and ctx["apiId"] == url_id and ctx["domainPrefix"] == url_id
    assert ctx["domainName"] == urlsplit(url).hostname
    assert ctx["http"] == {"method": "POST", "path": "/a/b%20c", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                           "userAgent": "tester/1"}
    assert ctx["routeKey"] == "$default" and ctx["stage"] == "$default" and "authorizer" not in ctx
    assert len(ctx["requestId"]) == 36 and header(headers, "x-amzn-RequestId") == [ctx["requestId"]]
    day, month, rest = ctx["time"].split("/")
    assert len(day) == 2 and month.isalpha() and rest.endswith(" +0000") and isinstance(ctx["timeEpoch"], int)
    lam.remove_permission(FunctionName=fname, StatementId="FunctionURLAllowPublicAccess")
    assert call(srv.port, url)[0] == 403  # the decision goes with the policy
    lam.add_permission(FunctionName=fname, StatementId="iam-only", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="AWS_IAM")
    assert call(srv.port, url)[0] == 403  # a grant for AWS_IAM URLs does not open a NONE one


def test_bodies_cookies_plain_answers_and_errors(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO)
    url = lam.create_function_url_config(FunctionName=fname, AuthType="NONE")["FunctionUrl"]
    public(lam, fname)
    raw = bytes(range(256)) * 4
    status, _, body = call(srv.port, url, "PUT", "/bin", body=raw, headers={"Content-Type": "image/png"})
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)  # HEAD: no body, the connection lives on
    try:
        for method in ("HEAD", "GET"):
            conn.request(method, "/plain", headers={"Host": urlsplit(url).netloc})
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"" if method == "HEAD" else b"Hello, world!")
    finally:
        conn.close()
    status, headers, body = call(srv.port, url, path="/raw")
    assert status == 200 and body == bytes(range(256))
    assert header(headers, "Content-Type") == ["application/octet-stream"]
    status, headers, body = call(srv.port, url, path="/cookies")
    assert status == 201 and body == b"made" and header(headers, "X-Custom") == ["yes"]
    assert header(headers, "Set-Cookie") == ["a=1; Max-Age=60", "b=2"]
    status, headers, body = call(srv.port, url, path="/plain")  # a string is the body itself
    assert (status, body) == (200, b"Hello, world!")
    assert header(headers, "Content-Type") == ["application/json"]
    status, headers, body = call(srv.port, url, path="/dict")  # other JSON: compact
    assert (status, body) == (200, b'{"hello":"world","n":[1,true]}')
    status, _, body = call(srv.port, url, path="/fail")
    assert (status, body) == (502, b"Internal Server Error")
    big = os.urandom(2 * 1024 * 1024)  # over the API's 1 MB control-body limit, under the URL's 6 MB
    status, _, body = call(srv.port, url, "POST", "/big", body=big, headers={"Content-Type": "application/zip"})
    assert status == 200 and base64.b64decode(json.loads(body)["body"]) == big
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:  # refused by its Content-Length
        sock.sendall(f"POST /big HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\nContent-Type: application/zip\r\n"
                     f"Content-Length: {6 * 1024 * 1024 + 1}\r\nExpect: 100-continue\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")


def test_aws_iam_needs_a_signature_and_the_permission(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO)
    url = lam.create_function_url_config(FunctionName=fname, AuthType="AWS_IAM")["FunctionUrl"]
    assert call(srv.port, url)[0] == 403  # unsigned

    def signed(key: str, secret: str) -> tuple[int, list[tuple[str, str]], bytes]:
        request = AWSRequest("POST", url + "signed?q=1", data=b"hi", headers={"Content-Type": "text/plain"})
        SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(request)
        return call(srv.port, url, "POST", "/signed?q=1", body=b"hi", headers=dict(request.headers.items()))

    status, _, body = signed(ACCESS_KEY, SECRET_KEY)
    assert status == 200, body
    event = json.loads(body)
    assert event["body"] == "hi" and event["requestContext"]["authorizer"]["iam"]["accessKey"] == ACCESS_KEY
    assert event["requestContext"]["authorizer"]["iam"]["userArn"] == "arn:aws:iam::000000000000:root"
    assert event["requestContext"]["accountId"] == "000000000000"
    assert signed(ACCESS_KEY, "wrong" + SECRET_KEY)[0] == 403
    iam = srv.client("iam")
    user = f"u-{fname}"[:60]
    iam.create_user(UserName=user)
    keys = iam.create_access_key(UserName=user)["AccessKey"]
    key, secret = keys["AccessKeyId"], keys["SecretAccessKey"]
    assert signed(key, secret)[0] == 403  # no policy allows it
    iam.put_user_policy(UserName=user, PolicyName="urls", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl",
                                                 "Resource": f"{ARN}:{fname}"}]}))
    assert wait_until(lambda: signed(key, secret)[0] == 200, timeout=10)
    event = json.loads(signed(key, secret)[2])
    assert event["requestContext"]["authorizer"]["iam"]["userArn"] == f"arn:aws:iam::000000000000:user/{user}"
    assert event["requestContext"]["authorizer"]["iam"]["userId"].startswith("AIDA")


def test_cors_preflight_and_response_headers(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO)
    url = lam.create_function_url_config(FunctionName=fname, AuthType="NONE", Cors={
        "AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-token"],
        "ExposeHeaders": ["x-custom"], "MaxAge": 600, "AllowCredentials": True})["FunctionUrl"]
    public(lam, fname)
    status, headers, body = call(srv.port, url, "OPTIONS", "/", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-token"})
    assert status == 200 and body == b""
    assert header(headers, "Access-Control-Allow-Origin") == ["https://app.example.com"]
    assert header(headers, "Access-Control-Allow-Methods") == ["GET, POST"]
    assert header(headers, "Access-Control-Allow-Headers") == ["x-token"]
    assert header(headers, "Access-Control-Max-Age") == ["600"]
    assert header(headers, "Access-Control-Allow-Credentials") == ["true"]
    status, headers, _ = call(srv.port, url, path="/cookies", headers={"Origin": "https://app.example.com"})
    assert status == 201 and header(headers, "Access-Control-Allow-Origin") == ["https://app.example.com"]
    assert header(headers, "Access-Control-Expose-Headers") == ["x-custom"] and header(headers, "Vary") == ["Origin"]
    status, headers, _ = call(srv.port, url, path="/cookies", headers={"Origin": "https://evil.example"})
    assert status == 201 and not header(headers, "Access-Control-Allow-Origin")


def test_the_aws_cli_and_a_restart(tmp_path: Path, fname) -> None:
    server = Server(tmp_path / "data", env={"LAMBDAD_URL_HOST": "lambda-url.example.test"}).start()
    try:
        lam = server.client()
        create_python_function(lam, fname, ECHO)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
               "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop("AWS_PROFILE", None)
        cli = [sys.executable, "-m", "awscli", "lambda", "--endpoint-url", server.endpoint]
        made = json.loads(subprocess.run([*cli, "create-function-url-config", "--function-name", fname,
                                          "--auth-type", "NONE", "--cors",
                                          "AllowOrigins=https://app.example.com,AllowMethods=GET,POST,MaxAge=300"],
                                         env=env, check=True, capture_output=True, text=True).stdout)
        assert made["Cors"] == {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"],
                                "MaxAge": 300}
        assert made["FunctionUrl"].startswith("http://") and made["FunctionUrl"].endswith(".lambda-url.example.test/")
        subprocess.run([*cli, "add-permission", "--function-name", fname, "--statement-id", "public",
                        "--action", "lambda:InvokeFunctionUrl", "--principal", "*",
                        "--function-url-auth-type", "NONE"], env=env, check=True, capture_output=True)
        status, _, body = call(server.port, made["FunctionUrl"], path="/x")
        assert status == 200 and json.loads(body)["requestContext"]["domainName"] == urlsplit(made["FunctionUrl"]).hostname
        server.stop()
        server.start()
        lam = server.client()
        assert lam.get_function_url_config(FunctionName=fname)["FunctionUrl"] == made["FunctionUrl"]
        assert call(server.port, made["FunctionUrl"], path="/x")[0] == 200
        lam.delete_function(FunctionName=fname)  # its URL goes with it
        assert call(server.port, made["FunctionUrl"], path="/x")[0] == 403
    finally:
        server.stop()


def test_a_url_made_on_one_node_is_served_by_another(cluster, fname) -> None:
    a, b = cluster(2).nodes
    la, lb = a.client(), b.client()
    create_python_function(la, fname, ECHO)
    url = la.create_function_url_config(FunctionName=fname, AuthType="NONE")["FunctionUrl"]
    public(la, fname)
    assert urlsplit(url).port == a.port
    assert wait_until(lambda: call(b.port, url, path="/x")[0] == 200, timeout=10)
    assert json.loads(call(b.port, url, path="/x")[2])["rawPath"] == "/x"
    shown = lb.get_function_url_config(FunctionName=fname)["FunctionUrl"]  # the same id, b's own port
    assert urlsplit(shown).hostname == urlsplit(url).hostname and urlsplit(shown).port == b.port
    la.update_function_url_config(FunctionName=fname, AuthType="AWS_IAM")
    assert wait_until(lambda: call(b.port, url, path="/x")[0] == 403, timeout=10)  # b heard of the change
    la.delete_function(FunctionName=fname)

    def gone() -> bool:
        try:
            lb.get_function_url_config(FunctionName=fname)
        except ClientError:
            return True
        return False

    assert wait_until(gone, timeout=10)


def test_timeouts_throttles_and_aliases(srv, lam, fname) -> None:
    code = ("import os, time\n"
            "def handler(event, context):\n"
            "    if event['rawPath'] == '/slow':\n"
            "        time.sleep(5)\n"
            "    return {'version': os.environ['AWS_LAMBDA_FUNCTION_VERSION'], 'arn': context.invoked_function_arn,\n"
            "            'id': context.aws_request_id}\n")
    create_python_function(lam, fname, code, Timeout=1, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    url = lam.create_function_url_config(FunctionName=fname, Qualifier="live", AuthType="NONE")["FunctionUrl"]
    with pytest.raises(ClientError):  # the alias's URL needs the alias's permission, not the function's
        public(lam, fname, "nope")
    public(lam, fname)
    assert call(srv.port, url)[0] == 403
    public(lam, fname, "live")
    status, headers, body = call(srv.port, url)
    answer = json.loads(body)
    assert status == 200 and answer["version"] == "1" and answer["arn"] == f"{ARN}:{fname}:live"
    assert header(headers, "x-amzn-RequestId") == [answer["id"]]  # the invocation's request id
    status, _, body = call(srv.port, url, path="/slow")  # a timeout is Lambda's 502
    assert (status, body) == (502, b"Internal Server Error")
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)  # throttled: 429
    try:
        assert call(srv.port, url)[0] == 429
    finally:
        lam.delete_function_concurrency(FunctionName=fname)
    assert call(srv.port, url)[0] == 200


def test_the_api_is_not_served_on_a_url_host_and_urls_not_on_the_api(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO)
    url = lam.create_function_url_config(FunctionName=fname, AuthType="AWS_IAM")["FunctionUrl"]
    # a signed Lambda API request sent to a URL's host is a request to the URL (the function sees it), not the API
    request = AWSRequest("GET", url + "2015-03-31/functions/", headers={})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(request)
    status, _, body = call(srv.port, url, "GET", "/2015-03-31/functions/", headers=dict(request.headers.items()))
    assert status == 200 and json.loads(body)["rawPath"] == "/2015-03-31/functions/"
    # and the API's own host names are untouched
    assert lam.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200
    status, _, _ = call(srv.port, f"http://127.0.0.1:{srv.port}/", "GET", "/")
    assert status != 200  # unsigned, to the API: refused as the API refuses it


def test_callers_other_than_root_need_the_url_actions(srv, lam, fname) -> None:
    create_python_function(lam, fname, ECHO)
    iam = srv.client("iam")
    user = f"c-{fname}"[:60]
    iam.create_user(UserName=user)
    keys = iam.create_access_key(UserName=user)["AccessKey"]
    theirs = srv.client(access_key=keys["AccessKeyId"], secret_key=keys["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        theirs.create_function_url_config(FunctionName=fname, AuthType="AWS_IAM")
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    assert "lambda:CreateFunctionUrlConfig" in error_of(e)[2]
    iam.put_user_policy(UserName=user, PolicyName="urls", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["lambda:CreateFunctionUrlConfig", "lambda:GetFunctionUrlConfig"],
             "Resource": f"{ARN}:*", "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}},
            {"Effect": "Allow", "Action": "lambda:ListFunctionUrlConfigs", "Resource": f"{ARN}:*"}]}))

    def made() -> bool:
        try:
            theirs.create_function_url_config(FunctionName=fname, AuthType="AWS_IAM")
        except ClientError as exc:
            assert error_of(exc)[0] == "AccessDeniedException"  # the policy not applied yet
            return False
        return True

    assert wait_until(made, timeout=10)
    with pytest.raises(ClientError) as e:  # only AWS_IAM URLs, by the condition (refused before the conflict)
        theirs.create_function_url_config(FunctionName=fname, AuthType="NONE")
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
    assert len(theirs.list_function_url_configs(FunctionName=fname)["FunctionUrlConfigs"]) == 1
    with pytest.raises(ClientError) as e:
        theirs.delete_function_url_config(FunctionName=fname)
    assert error_of(e)[:2] == ("AccessDeniedException", 403)
