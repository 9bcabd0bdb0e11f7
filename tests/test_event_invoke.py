"""Asynchronous invocation settings (docs/async.md): Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s) through
boto3 against a real server, and the async queue applying them — MaximumRetryAttempts decides how many times a
failing event runs. The shared server retries after 0.5 s (LAMBDAD_ASYNC_RETRY_DELAYS=0.5,0.5)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function, wait_until

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
FAILING = "def handler(event, context):\n    raise ValueError('always')\n"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_configs_are_put_updated_read_listed_and_deleted(lam, fname) -> None:
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n", Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        lam.get_function_event_invoke_config(FunctionName=fname)
    assert error_of(e) == ("ResourceNotFoundException", 404,
                           f"The function {ARN}:{fname}:$LATEST doesn't have an EventInvokeConfig")
    put = lam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=0)
    assert put["FunctionArn"] == f"{ARN}:{fname}:$LATEST"
    assert put["MaximumRetryAttempts"] == 0 and put["MaximumEventAgeInSeconds"] == 21600
    updated = lam.update_function_event_invoke_config(FunctionName=fname, MaximumEventAgeInSeconds=120)
    assert updated["MaximumRetryAttempts"] == 0 and updated["MaximumEventAgeInSeconds"] == 120  # merged
    replaced = lam.put_function_event_invoke_config(FunctionName=fname, MaximumEventAgeInSeconds=300)
    assert replaced["MaximumRetryAttempts"] == 2 and replaced["MaximumEventAgeInSeconds"] == 300  # replaced
    lam.put_function_event_invoke_config(FunctionName=fname, Qualifier="live", MaximumRetryAttempts=1)
    lam.put_function_event_invoke_config(FunctionName=f"{fname}:1", MaximumRetryAttempts=2)
    assert lam.get_function_event_invoke_config(FunctionName=fname, Qualifier="live")["FunctionArn"] == \
        f"{ARN}:{fname}:live"
    listed = lam.list_function_event_invoke_configs(FunctionName=fname)["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == [f"{ARN}:{fname}:$LATEST", f"{ARN}:{fname}:1",
                                                         f"{ARN}:{fname}:live"]
    first = lam.list_function_event_invoke_configs(FunctionName=fname, MaxItems=2)
    assert len(first["FunctionEventInvokeConfigs"]) == 2 and "NextMarker" in first
    rest = lam.list_function_event_invoke_configs(FunctionName=fname, Marker=first["NextMarker"])
    assert len(rest["FunctionEventInvokeConfigs"]) == 1
    lam.delete_alias(FunctionName=fname, Name="live")  # its config goes with it
    assert wait_until(lambda: len(lam.list_function_event_invoke_configs(FunctionName=fname)[
        "FunctionEventInvokeConfigs"]) == 2, timeout=5)
    lam.delete_function_event_invoke_config(FunctionName=fname)
    with pytest.raises(ClientError) as e:
        lam.delete_function_event_invoke_config(FunctionName=fname)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)


def test_bad_settings_are_refused_as_lambda_refuses_them(server, lam, fname) -> None:
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    with pytest.raises(ClientError) as e:
        lam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=3)
    assert error_of(e)[:2] == ("ValidationException", 400)
    assert "Member must have value less than or equal to 2" in error_of(e)[2]
    raw = server.client(parameter_validation=False)  # botocore checks minimums itself: the server must too
    with pytest.raises(ClientError) as e:
        raw.put_function_event_invoke_config(FunctionName=fname, MaximumEventAgeInSeconds=59)
    assert "Member must have value greater than or equal to 60" in error_of(e)[2]
    with pytest.raises(ClientError) as e:
        lam.put_function_event_invoke_config(FunctionName=fname, Qualifier="nope", MaximumRetryAttempts=1)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:
        lam.put_function_event_invoke_config(FunctionName=f"{fname}-missing", MaximumRetryAttempts=1)
    assert error_of(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as e:  # a destination of a kind lambdad cannot send to
        lam.put_function_event_invoke_config(FunctionName=fname, DestinationConfig={
            "OnFailure": {"Destination": "arn:aws:s3:::bucket"}})
    assert error_of(e)[:2] == ("InvalidParameterValueException", 400)


def _attempts(server, name: str) -> int:
    out = subprocess.run([sys.executable, "-m", "lambdad", "logs", name, "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.count("START RequestId")


@pytest.mark.parametrize(("retries", "runs"), [(0, 1), (1, 2), (None, 3)])
def test_maximum_retry_attempts_decides_how_many_times_a_failing_event_runs(server, lam, fname, retries,
                                                                             runs) -> None:
    create_python_function(lam, fname, FAILING)
    if retries is not None:
        lam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=retries)
    assert lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    assert wait_until(lambda: _attempts(server, fname) >= runs, timeout=15)
    time.sleep(1.5)  # the retries' delay is 0.5 s: a further attempt would have come by now
    assert _attempts(server, fname) == runs


def _queued(*args: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "lambdad", "queued", *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()[1:]]
    return {name: int(count) for name, count, _oldest in rows}


def test_lambdad_queued_shows_the_events_waiting_per_function(server, lam, fname) -> None:
    """Events of a throttled function (reserved concurrency 0) wait in the queue: `lambdad queued` counts them,
    with the oldest one's age; once the function may run, they run and the count goes."""
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    for _ in range(2):
        assert lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    assert _queued("--data-dir", str(server.data_dir)).get(fname) == 2
    lam.delete_function_concurrency(FunctionName=fname)
    assert wait_until(lambda: fname not in _queued("--data-dir", str(server.data_dir)), timeout=60)
    assert _attempts(server, fname) == 2


SELF_INVOKING = """
import os, boto3
def handler(event, context):
    boto3.client("lambda").invoke(FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"], InvocationType="Event",
                                  Payload=b"{}")
    return "again"
"""


def test_a_function_invoking_itself_asynchronously_is_stopped_after_16(server, lam, fname) -> None:
    """A function that invokes itself with the SDK (InvocationType Event) on every run: the chain's count travels
    in the trace header's Lineage field, which the SDK sends on, and the 17th invocation is not queued."""
    from tests.server import ROLE

    create_python_function(lam, fname, SELF_INVOKING, Timeout=30)
    lam.add_permission(FunctionName=fname, StatementId="self", Action="lambda:InvokeFunction", Principal=ROLE)
    lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")
    assert wait_until(lambda: _attempts(server, fname) >= 16, timeout=90)
    time.sleep(3)
    assert _attempts(server, fname) == 16
    assert any("recursive loop detected" in line and fname in line for line in server.output)


def test_the_aws_cli_puts_and_reads_a_config(server, fname, tmp_path) -> None:
    import json
    import os

    from tests.server import ACCESS_KEY, SECRET_KEY

    create_python_function(server.client(), fname, "def handler(e, c):\n    return 1\n")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.endpoint, "HOME": str(tmp_path)}

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", "lambda", *args, "--output", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    put = aws("put-function-event-invoke-config", "--function-name", fname, "--maximum-retry-attempts", "1",
              "--destination-config", json.dumps({"OnFailure": {"Destination": f"{ARN}:{fname}"}}))
    assert put["MaximumRetryAttempts"] == 1
    got = aws("get-function-event-invoke-config", "--function-name", fname)
    assert got["DestinationConfig"]["OnFailure"] == {"Destination": f"{ARN}:{fname}"}
    listed = aws("list-function-event-invoke-configs", "--function-name", fname)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{ARN}:{fname}:$LATEST"]
