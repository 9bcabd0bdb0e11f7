"""The AWS SDK inside Python functions is shown at /var/runtime, never at the server's own paths (issue 10 item
2): a server whose boto3 is installed under /tmp (a virtualenv there, say) used to hand functions an SDK hidden
by their own /tmp (botocore's ``DataNotFoundError: endpoints``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lambdad.runtimes.sdk import SDK_PACKAGES
from tests.server import create_python_function

PROBE = """
import boto3, botocore
def handler(event, context):
    try:
        boto3.client("lambda").list_functions()
        outcome = "listed"
    except botocore.exceptions.ClientError as e:
        outcome = e.response["Error"]["Code"]
    except Exception as e:
        outcome = type(e).__name__ + ": " + str(e)
    return {"outcome": outcome, "boto3": boto3.__file__, "botocore": botocore.__file__}
"""


@pytest.fixture
def sdk_under_tmp():
    site = Path(tempfile.mkdtemp(prefix="venv-site-", dir="/tmp"))
    for name in SDK_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin)
        if spec.submodule_search_locations:
            shutil.copytree(source.parent, site / source.parent.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, site / source.name)
    yield site
    shutil.rmtree(site, ignore_errors=True)


def test_sdk_installed_under_tmp_works_in_functions(fresh_server, sdk_under_tmp):
    srv = fresh_server(env={"PYTHONPATH": str(sdk_under_tmp)})
    if not any("isolation: on  private root" in line for line in srv.output):
        pytest.skip("the jail is not active here: functions see the server's own paths")
    lam = srv.client()
    create_python_function(lam, "sdk", PROBE, Timeout=30)
    out = json.loads(lam.invoke(FunctionName="sdk")["Payload"].read())
    assert out["outcome"] == "AccessDeniedException", out  # botocore found its data and made a signed call
    assert out["boto3"].startswith("/var/runtime/boto3/") and out["botocore"].startswith("/var/runtime/botocore/")
    assert not os.path.exists("/var/runtime/boto3")  # the host keeps at most an empty mount point
