"""Layers end to end through boto3: publishing, reading, listing and deleting layer versions and their
permissions; functions that use layers (Python, Node.js and a custom runtime's bootstrap from /opt), the merge
order, Lambda's errors for every bad input, deleted versions that keep working, and a restart."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import urllib.request
import zipfile

import pytest
from botocore.exceptions import ClientError

from tests.server import ROLE, create_python_function, make_zip

ACCOUNT = "000000000000"
LAYER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def publish(lam, name: str, files: dict, modes: dict | None = None, **kwargs) -> dict:
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip(files, modes)}, **kwargs)


def call(lam, name: str, **kwargs):
    resp = lam.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    assert "FunctionError" not in resp, resp["Payload"].read()
    return json.loads(resp["Payload"].read())


PY_USES_GREET = (
    "import greet\n"
    "def handler(event, context):\n"
    "    return {'who': greet.WHO, 'file': greet.__file__}\n"
)


def test_publish_get_list_and_download(lam, fname):
    data = make_zip({"python/greet.py": "WHO = 'one'\n"})
    v1 = lam.publish_layer_version(LayerName=fname, Content={"ZipFile": data}, Description="first",
                                   CompatibleRuntimes=["python3.11", "python3.12"],
                                   CompatibleArchitectures=["x86_64"], LicenseInfo="MIT")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["LayerArn"], v1["LayerVersionArn"], v1["Version"]) == (f"{LAYER}:{fname}", f"{LAYER}:{fname}:1", 1)
    assert v1["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert v1["Content"]["CodeSize"] == len(data)
    assert (v1["Description"], v1["LicenseInfo"], v1["CompatibleRuntimes"], v1["CompatibleArchitectures"]) == (
        "first", "MIT", ["python3.11", "python3.12"], ["x86_64"])
    # Content.Location downloads the zip without credentials
    with urllib.request.urlopen(v1["Content"]["Location"]) as resp:
        assert resp.read() == data

    v2 = publish(lam, fname, {"python/greet.py": "WHO = 'two'\n"}, CompatibleRuntimes=["nodejs20.x"])
    assert v2["Version"] == 2
    got = lam.get_layer_version(LayerName=fname, VersionNumber=1)
    assert {k: got[k] for k in ("LayerVersionArn", "Description", "CreatedDate", "LicenseInfo")} == {
        k: v1[k] for k in ("LayerVersionArn", "Description", "CreatedDate", "LicenseInfo")}
    assert lam.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])["Version"] == 2
    # the layer name may be given as the layer's ARN
    assert lam.get_layer_version(LayerName=f"{LAYER}:{fname}", VersionNumber=2)["Version"] == 2

    # ListLayerVersions: newest first, filtered by runtime and architecture
    listed = lam.list_layer_versions(LayerName=fname)["LayerVersions"]
    assert [v["Version"] for v in listed] == [2, 1]
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=fname, CompatibleRuntime="python3.12")["LayerVersions"]] == [1]
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=fname, CompatibleArchitecture="x86_64")["LayerVersions"]] == [1]
    page = lam.list_layer_versions(LayerName=fname, MaxItems=1)
    assert [v["Version"] for v in page["LayerVersions"]] == [2]
    rest = lam.list_layer_versions(LayerName=fname, MaxItems=1, Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["LayerVersions"]] == [1] and "NextMarker" not in rest
    assert lam.list_layer_versions(LayerName=f"{fname}-none")["LayerVersions"] == []

    # ListLayers: each layer's newest matching version
    def latest(**kwargs) -> dict:
        layers = lam.get_paginator("list_layers").paginate(**kwargs).build_full_result()["Layers"]
        return {item["LayerName"]: item["LatestMatchingVersion"]["Version"] for item in layers}

    assert latest()[fname] == 2
    assert latest(CompatibleRuntime="python3.11")[fname] == 1
    assert fname not in latest(CompatibleRuntime="java21")
    item = next(i for i in lam.list_layers()["Layers"] if i["LayerName"] == fname)
    assert item["LayerArn"] == f"{LAYER}:{fname}"
    page = lam.list_layers(MaxItems=1)
    assert len(page["Layers"]) == 1

    # versions are never reused: delete both, publish again
    lam.delete_layer_version(LayerName=fname, VersionNumber=1)
    lam.delete_layer_version(LayerName=fname, VersionNumber=2)
    lam.delete_layer_version(LayerName=fname, VersionNumber=2)  # deleting again is not an error
    assert lam.list_layer_versions(LayerName=fname)["LayerVersions"] == []
    assert fname not in latest()
    assert publish(lam, fname, {"python/greet.py": "WHO = 'three'\n"})["Version"] == 3


def test_python_layers_merge_in_order(lam, fname):
    first = publish(lam, f"{fname}-a", {"python/greet.py": "WHO = 'a'\n", "python/only_a.py": "A = 1\n",
                                        "python/lib/python3.11/site-packages/sitepkg.py": "S = 'site'\n"})
    second = publish(lam, f"{fname}-b", {"python/greet.py": "WHO = 'b'\n"})
    code = (
        "import greet, only_a, sitepkg, os\n"
        "def handler(event, context):\n"
        "    return {'who': greet.WHO, 'file': greet.__file__, 'a': only_a.A, 's': sitepkg.S,\n"
        "            'opt': sorted(os.listdir('/opt/python')), 'writable': os.access('/opt/python', os.W_OK)}\n"
    )
    created = create_python_function(lam, fname, code, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    assert created["Layers"] == [{"Arn": first["LayerVersionArn"], "CodeSize": first["Content"]["CodeSize"]},
                                 {"Arn": second["LayerVersionArn"], "CodeSize": second["Content"]["CodeSize"]}]
    assert lam.get_function_configuration(FunctionName=fname)["Layers"] == created["Layers"]
    out = call(lam, fname)
    assert out == {"who": "b", "file": "/opt/python/greet.py", "a": 1, "s": "site",
                   "opt": ["greet.py", "lib", "only_a.py"], "writable": False}

    # the other order: the first layer wins now
    lam.update_function_configuration(FunctionName=fname,
                                      Layers=[second["LayerVersionArn"], first["LayerVersionArn"]])
    assert call(lam, fname)["who"] == "a"
    # no layers: no /opt/python
    lam.update_function_configuration(FunctionName=fname, Layers=[])
    assert "Layers" not in lam.get_function_configuration(FunctionName=fname)
    resp = lam.invoke(FunctionName=fname, Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")
def test_node_layer(lam, fname):
    layer = publish(lam, fname, {"nodejs/node_modules/greet/index.js": "module.exports = { who: 'node layer' };\n"},
                    CompatibleRuntimes=["nodejs20.x"])
    lam.create_function(FunctionName=fname, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Layers=[layer["LayerVersionArn"]],
                        Code={"ZipFile": make_zip({"index.js": "const g = require('greet');\n"
                                                   "exports.handler = async () => ({who: g.who});\n"})})
    assert call(lam, fname) == {"who": "node layer"}


@pytest.mark.skipif(not os.access("/usr/bin/curl", os.X_OK), reason="needs /usr/bin/curl")
def test_custom_runtime_bootstrap_from_a_layer(lam, fname):
    from tests.test_custom_runtime import SHELL_BOOTSTRAP

    layer = publish(lam, fname, {"bootstrap": SHELL_BOOTSTRAP}, {"bootstrap": 0o755})
    lam.create_function(FunctionName=fname, Runtime="provided.al2023", Role=ROLE, Handler="function.handler",
                        MemorySize=1769, Layers=[layer["LayerVersionArn"]],
                        Code={"ZipFile": make_zip({"function.sh": "# only data: the runtime comes from the layer\n"})})
    out = call(lam, fname)
    assert out["handler"] == "function.handler" and out["count"] == 1


def test_deleted_layer_version_keeps_working(lam, fname):
    layer = publish(lam, fname, {"python/greet.py": "WHO = 'kept'\n"})
    arn = layer["LayerVersionArn"]
    create_python_function(lam, fname, PY_USES_GREET, Layers=[arn])
    lam.delete_layer_version(LayerName=fname, VersionNumber=1)
    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName=fname, VersionNumber=1)
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")
    # the function still has it, runs with it, and a new environment (after a config change) still gets it
    assert lam.get_function_configuration(FunctionName=fname)["Layers"][0]["Arn"] == arn
    assert call(lam, fname)["who"] == "kept"
    lam.update_function_configuration(FunctionName=fname, MemorySize=256)
    assert call(lam, fname)["who"] == "kept"
    lam.publish_version(FunctionName=fname)
    assert call(lam, fname, Qualifier="1")["who"] == "kept"
    # but no function can start using it
    with pytest.raises(ClientError) as e:
        create_python_function(lam, f"{fname}-new", PY_USES_GREET, Layers=[arn])
    assert error_of(e) == ("InvalidParameterValueException", 400, f"Layer version {arn} does not exist.")


def test_layer_permissions(lam, fname):
    publish(lam, fname, {"python/x.py": ""})
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_policy(LayerName=fname, VersionNumber=1)
    assert error_of(e) == ("ResourceNotFoundException", 404, "No policy is associated with the given resource.")

    added = lam.add_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="xaccount",
                                             Action="lambda:GetLayerVersion", Principal="223456789012")
    assert json.loads(added["Statement"]) == {
        "Sid": "xaccount", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::223456789012:root"},
        "Action": "lambda:GetLayerVersion", "Resource": f"{LAYER}:{fname}:1"}
    org = lam.add_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="org",
                                           Action="lambda:GetLayerVersion", Principal="*",
                                           OrganizationId="o-abcdefghij", RevisionId=added["RevisionId"])
    assert json.loads(org["Statement"])["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    got = lam.get_layer_version_policy(LayerName=fname, VersionNumber=1)
    assert got["RevisionId"] == org["RevisionId"] != added["RevisionId"]
    assert [s["Sid"] for s in json.loads(got["Policy"])["Statement"]] == ["xaccount", "org"]

    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="org",
                                         Action="lambda:GetLayerVersion", Principal="*")
    assert error_of(e) == ("ResourceConflictException", 409,
                           "The statement id (org) provided already exists. Please provide a new statement id, or "
                           "remove the existing statement.")
    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="new",
                                         Action="lambda:GetLayerVersion", Principal="*", RevisionId="stale")
    assert error_of(e)[:2] == ("PreconditionFailedException", 412)
    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="bad",
                                         Action="lambda:InvokeFunction", Principal="*")
    assert error_of(e) == ("ValidationException", 400,
                           "1 validation error detected: Value 'lambda:InvokeFunction' at 'action' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: lambda:GetLayerVersion")
    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName=fname, VersionNumber=9, StatementId="s",
                                         Action="lambda:GetLayerVersion", Principal="*")
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")

    lam.remove_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="xaccount")
    with pytest.raises(ClientError) as e:
        lam.remove_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="xaccount")
    assert error_of(e) == ("ResourceNotFoundException", 404, "Statement xaccount is not found in resource policy.")
    lam.remove_layer_version_permission(LayerName=fname, VersionNumber=1, StatementId="org")
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_policy(LayerName=fname, VersionNumber=1)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_bad_layer_requests(lam, fname):
    def refused(**kwargs) -> tuple[str, int, str]:
        kwargs.setdefault("LayerName", fname)
        kwargs.setdefault("Content", {"ZipFile": make_zip({"python/x.py": ""})})
        with pytest.raises(ClientError) as e:
            lam.publish_layer_version(**kwargs)
        return error_of(e)

    assert refused(Content={"S3Bucket": "bucket", "S3Key": "layer.zip"}) == (
        "InvalidParameterValueException", 400,
        "lambdad cannot fetch layer content from S3 yet; upload the .zip file directly with ZipFile.")
    assert refused(Content={"ZipFile": b"not a zip"}) == (
        "InvalidParameterValueException", 400,
        "Could not unzip uploaded file. Please check your file, then try to upload again.")
    assert refused(LayerName="bad name!") == (
        "ValidationException", 400,
        "1 validation error detected: Value 'bad name!' at 'layerName' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)"
        "|[a-zA-Z0-9-_]+")
    code, status, message = refused(CompatibleRuntimes=["python2.0"])
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value '[python2.0]' at 'compatibleRuntimes' failed to "
                              "satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [")
    code, status, message = refused(CompatibleArchitectures=["mips"])
    assert (code, status) == ("ValidationException", 400)
    assert "'[mips]' at 'compatibleArchitectures'" in message and "[x86_64, arm64]" in message
    # nothing was published by the refused requests
    assert lam.list_layer_versions(LayerName=fname)["LayerVersions"] == []

    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName=fname, VersionNumber=1)
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_by_arn(Arn=f"arn:aws:lambda:us-east-1:123456789012:layer:{fname}:1")
    assert error_of(e) == ("ResourceNotFoundException", 404, "The resource you requested does not exist.")
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_by_arn(Arn=f"{LAYER}:{fname}")
    assert error_of(e) == (
        "ValidationException", 400,
        f"1 validation error detected: Value '{LAYER}:{fname}' at 'arn' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
    with pytest.raises(ClientError) as e:
        lam.list_layers(CompatibleRuntime="cobol")
    assert error_of(e)[:2] == ("ValidationException", 400)
    assert "Value 'cobol' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set" in error_of(e)[2]


def test_bad_function_layers(lam, fname):
    arns = [publish(lam, f"{fname}-{i}", {f"python/m{i}.py": ""})["LayerVersionArn"] for i in range(6)]
    other = publish(lam, f"{fname}-0", {"python/m0.py": "# v2"})["LayerVersionArn"]

    def refused(layers: list[str], update: bool = False) -> tuple[str, int, str]:
        with pytest.raises(ClientError) as e:
            if update:
                lam.update_function_configuration(FunctionName=fname, Layers=layers)
            else:
                create_python_function(lam, fname, "def handler(e, c): pass\n", Layers=layers)
        return error_of(e)

    missing = f"{LAYER}:{fname}-0:7"
    assert refused([missing]) == ("InvalidParameterValueException", 400, f"Layer version {missing} does not exist.")
    elsewhere = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:{fname}-0:1"
    assert refused([elsewhere]) == ("InvalidParameterValueException", 400, f"Layer version {elsewhere} does not exist.")
    assert refused(arns) == ("InvalidParameterValueException", 400, "Cannot reference more than 5 layers.")
    assert refused([arns[0], other]) == (
        "InvalidParameterValueException", 400,
        "Two different versions of the same layer are not allowed to be referenced in the same function.")
    code, status, message = refused([f"{LAYER}:{fname}-0"])
    assert (code, status) == ("ValidationException", 400) and "at 'layers' failed to satisfy constraint" in message
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=fname)  # nothing was created

    create_python_function(lam, fname, "def handler(e, c): pass\n", Layers=arns[:5])
    assert len(lam.get_function_configuration(FunctionName=fname)["Layers"]) == 5
    assert refused([missing], update=True)[2] == f"Layer version {missing} does not exist."
    assert len(lam.get_function_configuration(FunctionName=fname)["Layers"]) == 5


def _zeros_zip(name: str, size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(name, "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
    return buf.getvalue()


def test_code_and_layers_together_at_most_250_mb(lam, fname):
    big = lam.publish_layer_version(LayerName=fname, Content={"ZipFile": _zeros_zip("big.bin", 130 << 20)})
    other = lam.publish_layer_version(LayerName=f"{fname}-2", Content={"ZipFile": _zeros_zip("other.bin", 125 << 20)})
    assert big["Content"]["CodeSize"] < 1 << 20  # zeros compress well: only the unzipped size is too big

    def total(*layer_mb: int, code: int) -> int:
        return sum(layer_mb) + code

    code = make_zip({"app.py": "def handler(e, c): return 1\n"})
    code_size = 4096  # counted as the disk takes it: one block for the small file (lambdad/functions/code.py)
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": code}, Layers=[big["LayerVersionArn"], other["LayerVersionArn"]])
    assert error_of(e) == (
        "InvalidParameterValueException", 400,
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. "
        f"The actual size is {total(130 << 20, 125 << 20, code=code_size)} bytes.")

    lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": code}, Layers=[big["LayerVersionArn"]])
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=fname,
                                          Layers=[big["LayerVersionArn"], other["LayerVersionArn"]])
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)
    assert error_of(e)[2].startswith("Function code combined with layers exceeds the maximum allowed size")
    # new code that fits alone but not with the layer
    with pytest.raises(ClientError) as e:
        lam.update_function_code(FunctionName=fname, ZipFile=_zeros_zip("data.bin", 125 << 20))
    assert error_of(e)[2] == ("Function code combined with layers exceeds the maximum allowed size of 262144000 "
                              f"bytes. The actual size is {(130 << 20) + (125 << 20)} bytes.")
    assert call(lam, fname) == 1


def test_layers_survive_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    publish(lam, "lib", {"python/greet.py": "WHO = 'one'\n"})
    v2 = publish(lam, "lib", {"python/greet.py": "WHO = 'two'\n"}, Description="second")
    lam.add_layer_version_permission(LayerName="lib", VersionNumber=2, StatementId="all",
                                     Action="lambda:GetLayerVersion", Principal="*")
    create_python_function(lam, "uses", PY_USES_GREET, Layers=[v2["LayerVersionArn"]])
    lam.delete_layer_version(LayerName="lib", VersionNumber=2)
    before = lam.list_layer_versions(LayerName="lib")["LayerVersions"]
    srv.stop()

    srv = fresh_server(data_dir=data)
    lam = srv.client()
    assert lam.list_layer_versions(LayerName="lib")["LayerVersions"] == before
    assert [v["Version"] for v in before] == [1]
    # the deleted version still runs for the function that uses it, and its number is not reused
    assert call(lam, "uses")["who"] == "two"
    assert publish(lam, "lib", {"python/greet.py": "WHO = 'three'\n"})["Version"] == 3
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_policy(LayerName="lib", VersionNumber=2)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_layers_without_the_jail(fresh_server):
    """LAMBDAD_ISOLATION=none: no private root to mount /opt in, so Lambda's layer paths point at the merged
    tree on the host instead (Python's sys.path, NODE_PATH, PATH, LD_LIBRARY_PATH, a custom runtime's bootstrap)."""
    lam = fresh_server(env={"LAMBDAD_ISOLATION": "none"}).client()
    a = publish(lam, "a", {"python/greet.py": "WHO = 'a'\n", "bin/tool": "#!/bin/sh\necho tool\n"}, {"bin/tool": 0o755})
    b = publish(lam, "b", {"python/greet.py": "WHO = 'b'\n"})
    create_python_function(lam, "py", PY_USES_GREET + (
        "import os, subprocess\n"
        "def tool(event, context):\n"
        "    return subprocess.run(['tool'], capture_output=True, text=True).stdout\n"
    ), Layers=[a["LayerVersionArn"], b["LayerVersionArn"]])
    out = call(lam, "py")
    assert out["who"] == "b" and out["file"].endswith("/python/greet.py") and not out["file"].startswith("/opt/")
    lam.update_function_configuration(FunctionName="py", Handler="app.tool")
    assert call(lam, "py") == "tool\n"
    if shutil.which("node") is not None:
        layer = publish(lam, "n", {"nodejs/node_modules/greet/index.js": "module.exports = { who: 'n' };\n"})
        lam.create_function(FunctionName="node", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                            Layers=[layer["LayerVersionArn"]],
                            Code={"ZipFile": make_zip({"index.js": "const g = require('greet');\n"
                                                       "exports.handler = async () => ({who: g.who});\n"})})
        assert call(lam, "node") == {"who": "n"}
    if os.access("/usr/bin/curl", os.X_OK):
        from tests.test_custom_runtime import SHELL_BOOTSTRAP

        layer = publish(lam, "rt", {"bootstrap": SHELL_BOOTSTRAP}, {"bootstrap": 0o755})
        lam.create_function(FunctionName="custom", Runtime="provided.al2023", Role=ROLE, Handler="function.handler",
                            MemorySize=1769, Layers=[layer["LayerVersionArn"]],
                            Code={"ZipFile": make_zip({"function.sh": "#\n"})})
        assert call(lam, "custom")["count"] == 1
