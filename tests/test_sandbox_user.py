"""The sandbox user has an identity inside the jail (issue 10 item 9): a passwd entry with a home, so that
getpwuid, Node's os.homedir() and the AWS SDK for JavaScript v3 (which reads the home directory for its shared
config) work in a function."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.server import ROLE, create_python_function, make_zip


def test_python_function_knows_its_user(lam, fname):
    code = """
import os, pwd, grp
def handler(event, context):
    me = pwd.getpwuid(os.getuid())
    return {"name": me.pw_name, "home": me.pw_dir, "expanded": os.path.expanduser("~"),
            "group": grp.getgrgid(os.getgid()).gr_name, "HOME": os.environ.get("HOME")}
"""
    create_python_function(lam, fname, code)
    out = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    if out["name"] == "root" or out["home"] == "/root":
        pytest.skip("environments are not jailed here (no separate sandbox user)")
    assert out == {"name": "sbx_user1051", "home": "/tmp", "expanded": "/tmp", "group": "sbx_user1051",
                   "HOME": None}


def test_node_function_has_a_home(lam, fname):
    code = "const os = require('os');\nexports.handler = async () => ({home: os.homedir(), user: os.userInfo().username});\n"
    lam.create_function(FunctionName=fname, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.js": code})})
    out = json.loads(lam.invoke(FunctionName=fname)["Payload"].read())
    assert "errorMessage" not in out, out
    assert out["home"] in ("/tmp", os.path.expanduser("~")), out


SDK_CODE = """
const { LambdaClient, ListFunctionsCommand, GetFunctionConfigurationCommand } = require("@aws-sdk/client-lambda");
exports.handler = async (event) => {
  const client = new LambdaClient({});
  const out = {};
  try { await client.send(new ListFunctionsCommand({})); out.list = "ok"; } catch (e) { out.list = e.name; }
  const me = await client.send(new GetFunctionConfigurationCommand({FunctionName: event.name}));
  out.runtime = me.Runtime;
  return out;
};
"""


@pytest.mark.slow
def test_bundled_aws_sdk_for_javascript_v3_works(lam, fname, tmp_path: Path):
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot fetch @aws-sdk/client-lambda to bundle")
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "@aws-sdk/client-lambda@3"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"npm could not fetch @aws-sdk/client-lambda (no registry?): {done.stderr[-300:]}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("index.js", SDK_CODE)
        for path in (tmp_path / "node_modules").rglob("*"):
            if path.is_file() and not path.is_symlink():
                z.write(path, path.relative_to(tmp_path).as_posix())
    lam.create_function(FunctionName=fname, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": buf.getvalue()}, Timeout=60, MemorySize=512)
    lam.add_permission(FunctionName=fname, StatementId="self", Action="lambda:GetFunctionConfiguration",
                       Principal=ROLE)
    out = json.loads(lam.invoke(FunctionName=fname, Payload=json.dumps({"name": fname}))["Payload"].read())
    assert out == {"list": "AccessDeniedException", "runtime": "nodejs20.x"}, out
