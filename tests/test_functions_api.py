"""The functions API end to end through boto3: shapes, waiters, revisions, and every bad input."""

from __future__ import annotations

import base64
import hashlib
import io
import urllib.request
import zipfile

import pytest
from botocore.exceptions import ClientError

from tests.server import ROLE, create_python_function, make_zip

CODE = "def handler(event, context):\n    return event\n"


def strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_create_get_list_delete(lam, fname):
    zipped = make_zip({"app.py": CODE})
    created = lam.create_function(
        FunctionName=fname, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": zipped},
        Description="d", MemorySize=256, Timeout=10, Environment={"Variables": {"AA": "1"}},
        EphemeralStorage={"Size": 1024}, Tags={"team": "x"},
    )
    assert created["FunctionName"] == fname
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fname}"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zipped).digest()).decode()
    assert created["CodeSize"] == len(zipped)
    assert created["Version"] == "$LATEST"
    assert created["MemorySize"] == 256 and created["Timeout"] == 10
    assert created["Environment"] == {"Variables": {"AA": "1"}}
    assert created["EphemeralStorage"] == {"Size": 1024}
    assert created["PackageType"] == "Zip" and created["Architectures"] == ["x86_64"]
    assert created["LoggingConfig"]["LogGroup"] == f"/aws/lambda/{fname}"
    assert created["RevisionId"]
    lam.get_waiter("function_active_v2").wait(FunctionName=fname)

    got = lam.get_function(FunctionName=fname)
    assert got["Configuration"] == strip(lam.get_function_configuration(FunctionName=fname))
    assert got["Tags"] == {"team": "x"}
    with urllib.request.urlopen(got["Code"]["Location"]) as resp:
        assert resp.read() == zipped
    # by ARN, partial ARN and $LATEST qualifier
    assert lam.get_function_configuration(FunctionName=created["FunctionArn"])["FunctionName"] == fname
    assert lam.get_function_configuration(FunctionName=f"000000000000:function:{fname}")["FunctionName"] == fname
    assert lam.get_function(FunctionName=fname, Qualifier="$LATEST")["Configuration"]["Version"] == "$LATEST"

    names = [f["FunctionName"] for f in lam.get_paginator("list_functions").paginate().build_full_result()["Functions"]]
    assert fname in names

    lam.delete_function(FunctionName=fname)
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=fname)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_code_location_is_signed_and_expires(lam, fname):
    create_python_function(lam, fname, CODE)
    url = lam.get_function(FunctionName=fname)["Code"]["Location"]
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    for bad in (tampered, url.split("?")[0]):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad)
        e.value.close()
        assert e.value.code == 403


def test_list_functions_pagination(lam, fname):
    for i in range(5):
        create_python_function(lam, f"{fname}-p{i}", CODE)
    seen: list[str] = []
    marker = None
    while True:
        kwargs = {"MaxItems": 2}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [n for n in seen if n.startswith(f"{fname}-p")] == [f"{fname}-p{i}" for i in range(5)]
    assert len(seen) == len(set(seen))


def test_update_code_and_configuration(lam, fname):
    created = create_python_function(lam, fname, CODE)
    new_zip = make_zip({"app.py": "def handler(e, c):\n    return 'v2'\n"})
    updated = lam.update_function_code(FunctionName=fname, ZipFile=new_zip)
    assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    assert updated["RevisionId"] != created["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)

    cfg = lam.update_function_configuration(
        FunctionName=fname, Description="new", Handler="app.handler", Runtime="python3.12", MemorySize=512,
        Timeout=30, Environment={"Variables": {"BB": "2"}}, EphemeralStorage={"Size": 2048},
        Role="arn:aws:iam::000000000000:role/other",
    )
    assert (cfg["Description"], cfg["Runtime"], cfg["MemorySize"], cfg["Timeout"]) == ("new", "python3.12", 512, 30)
    assert cfg["Environment"] == {"Variables": {"BB": "2"}} and cfg["EphemeralStorage"] == {"Size": 2048}
    assert cfg["Role"].endswith("role/other")
    assert cfg["CodeSha256"] == updated["CodeSha256"]
    assert strip(lam.get_function_configuration(FunctionName=fname)) == strip(cfg)


def test_revision_id_is_honoured(lam, fname):
    created = create_python_function(lam, fname, CODE)
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=fname, Description="x", RevisionId="not-the-revision")
    assert error_of(e)[:2] == ("PreconditionFailedException", 412)
    with pytest.raises(ClientError) as e:
        lam.update_function_code(FunctionName=fname, ZipFile=make_zip({"app.py": CODE}), RevisionId="stale")
    assert error_of(e)[:2] == ("PreconditionFailedException", 412)
    ok = lam.update_function_configuration(FunctionName=fname, Description="y", RevisionId=created["RevisionId"])
    assert ok["Description"] == "y"


def test_duplicate_and_missing(lam, fname):
    create_python_function(lam, fname, CODE)
    with pytest.raises(ClientError) as e:
        create_python_function(lam, fname, CODE)
    code, status, message = error_of(e)
    assert (code, status) == ("ResourceConflictException", 409) and fname in message
    for call in (
        lambda: lam.get_function(FunctionName="no-such-function"),
        lambda: lam.update_function_configuration(FunctionName="no-such-function", Description="x"),
        lambda: lam.update_function_code(FunctionName="no-such-function", ZipFile=make_zip({"a": "b"})),
        lambda: lam.delete_function(FunctionName="no-such-function"),
        lambda: lam.invoke(FunctionName="no-such-function"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("ResourceNotFoundException", 404)
        assert "no-such-function" in message


@pytest.mark.parametrize(
    "kwargs, code, status, fragment",
    [
        ({"FunctionName": "bad name"}, "ValidationException", 400, "functionName"),
        ({"FunctionName": "x" * 65}, "ValidationException", 400, "64"),
        ({"MemorySize": 64}, "ValidationException", 400, "128"),
        ({"MemorySize": 10241}, "ValidationException", 400, "10240"),
        ({"Timeout": 0}, "ValidationException", 400, "1"),
        ({"Timeout": 901}, "InvalidParameterValueException", 400, "900"),
        ({"EphemeralStorage": {"Size": 511}}, "ValidationException", 400, "512"),
        ({"EphemeralStorage": {"Size": 10241}}, "ValidationException", 400, "10240"),
        ({"Runtime": "python2.8"}, "ValidationException", 400, "enum"),
        ({"Runtime": "java21"}, "InvalidParameterValueException", 400, "java21"),
        ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "InvalidParameterValueException", 400, "AWS_REGION"),
        ({"Environment": {"Variables": {"BIG": "x" * 5000}}}, "InvalidParameterValueException", 400, "4KB"),
        ({"Environment": {"Variables": {"1bad": "x"}}}, "ValidationException", 400, "environment"),
        ({"Role": "not-a-role"}, "ValidationException", 400, "role"),
        ({"Code": {"ZipFile": b"this is not a zip"}}, "InvalidParameterValueException", 400, "unzip"),
        ({"Code": {"S3Bucket": "my-bucket", "S3Key": "code.zip"}}, "InvalidParameterValueException", 400, "S3"),
        ({"Layers": ["not-an-arn"]}, "ValidationException", 400, "layers"),
        ({"Layers": ["arn:aws:lambda:us-east-1:000000000000:layer:l:1"]}, "InvalidParameterValueException", 400, "does not exist"),
        ({"Layers": [f"arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1" for i in range(6)]},
         "InvalidParameterValueException", 400, "5 layers"),
    ],
)
def test_create_function_bad_input(server, fname, kwargs, code, status, fragment):
    lam = server.client(parameter_validation=False)
    params = {"FunctionName": fname, "Runtime": "python3.11", "Role": ROLE, "Handler": "app.handler",
              "Code": {"ZipFile": make_zip({"app.py": CODE})}}
    params.update(kwargs)
    with pytest.raises(ClientError) as e:
        lam.create_function(**params)
    got_code, got_status, message = error_of(e)
    assert (got_code, got_status) == (code, status), message
    assert fragment in message
    # nothing was created
    names = [f["FunctionName"] for f in lam.list_functions(MaxItems=50)["Functions"]]
    assert params["FunctionName"] not in names


def test_missing_required_member_is_a_validation_error(server, lam, fname):
    # boto3 validates client-side; send the raw request so the server has to catch it
    import json

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.server import ACCESS_KEY, SECRET_KEY

    body = json.dumps({"FunctionName": fname, "Runtime": "python3.11", "Handler": "app.handler"}).encode()
    req = AWSRequest("POST", f"{server.endpoint}/2015-03-31/functions", data=body,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(http_req)
    assert e.value.code == 400
    assert e.value.headers["x-amzn-ErrorType"] == "ValidationException"
    message = json.loads(e.value.read())["Message"]
    e.value.close()
    assert "role" in message and "code" in message


def _zip_with(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return buf.getvalue()


@pytest.mark.parametrize("entry", ["../escape.py", "/abs/escape.py", "a/../../escape.py"])
def test_zip_entries_that_escape_are_refused(lam, fname, entry, server):
    data = _zip_with([(zipfile.ZipInfo("app.py"), CODE.encode()), (zipfile.ZipInfo(entry), b"x = 1\n")])
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": data})
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)
    assert not (server.data_dir / "escape.py").exists() and not (server.data_dir.parent / "escape.py").exists()


def test_zip_symlink_out_of_root_is_refused(lam, fname):
    link = zipfile.ZipInfo("evil")
    link.external_attr = (0o120777 << 16)
    data = _zip_with([(zipfile.ZipInfo("app.py"), CODE.encode()), (link, b"/etc"),
                      (zipfile.ZipInfo("evil/passwd"), b"pwned")])
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": data})
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)
    with open("/etc/passwd") as f:
        assert "pwned" not in f.read()


def test_zip_size_limits(lam, fname):
    # unzipped > 250 MB: zeros compress to almost nothing
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.py", CODE)
        with z.open("big.bin", "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(251):
                f.write(chunk)
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": buf.getvalue()})
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidParameterValueException", 400) and "262144000" in message

    # zipped > 50 MB: random bytes do not compress
    import os
    big = make_zip({"app.py": CODE, "blob.bin": os.urandom(51 * 1024 * 1024)})
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": big})
    assert error_of(e)[:2] == ("RequestTooLargeException", 413)


def test_update_configuration_bad_input_changes_nothing(server, fname):
    lam = server.client(parameter_validation=False)
    before = create_python_function(lam, fname, CODE, MemorySize=256)
    for kwargs in ({"MemorySize": 20000}, {"Timeout": 1000}, {"Environment": {"Variables": {"_HANDLER": "x"}}},
                   {"Runtime": "cobol"}):
        with pytest.raises(ClientError):
            lam.update_function_configuration(FunctionName=fname, **kwargs)
    after = lam.get_function_configuration(FunctionName=fname)
    assert after["RevisionId"] == before["RevisionId"] and after["MemorySize"] == 256
