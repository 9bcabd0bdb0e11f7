"""Reserved concurrency and account settings end to end through boto3: Put/Get/DeleteFunctionConcurrency, the
unreserved minimum, throttling under parallel load (reserved and unreserved pools), reservations across versions
and aliases, 0 as an off switch, queued async events surviving a throttle, persistence, GetAccountSettings."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.server import create_python_function, wait_until
from tests.test_server import _Recorder

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
SLEEPY = "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'done'\n"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def call(lam, name: str, sleep: float = 0.0, **kwargs):
    """The decoded payload, or the error response when the invocation was refused."""
    try:
        resp = lam.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}).encode(), **kwargs)
        return json.loads(resp["Payload"].read())
    except ClientError as e:
        return e.response


def run_parallel(calls) -> list:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda c: c(), calls))


def throttle_reasons(results: list) -> list[str]:
    reasons = []
    for r in results:
        if isinstance(r, dict):
            assert r["Error"]["Code"] == "TooManyRequestsException"
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert r["Error"]["Message"] == "Rate Exceeded."
            assert r["ResponseMetadata"]["HTTPHeaders"]["retry-after"]
            reasons.append(r["Reason"])
    return reasons


def test_put_get_delete_function_concurrency(lam, fname):
    create_python_function(lam, fname, SLEEPY)
    assert strip(lam.get_function_concurrency(FunctionName=fname)) == {}
    assert "Concurrency" not in lam.get_function(FunctionName=fname)

    resp = lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=3)
    assert strip(resp) == {"ReservedConcurrentExecutions": 3}
    assert strip(lam.get_function_concurrency(FunctionName=f"{ARN}:{fname}")) == {"ReservedConcurrentExecutions": 3}
    assert lam.get_function(FunctionName=fname)["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    assert lam.get_function(FunctionName=fname, Qualifier="$LATEST")["Concurrency"] == {"ReservedConcurrentExecutions": 3}
    assert call(lam, fname) == "done"

    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=5)
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 5

    resp = lam.delete_function_concurrency(FunctionName=fname)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert strip(lam.get_function_concurrency(FunctionName=fname)) == {}
    assert "Concurrency" not in lam.get_function(FunctionName=fname)
    lam.delete_function_concurrency(FunctionName=fname)  # nothing reserved: not an error


def test_function_concurrency_errors(lam, fname):
    missing = f"{fname}-missing"
    for op in (
        lambda: lam.put_function_concurrency(FunctionName=missing, ReservedConcurrentExecutions=1),
        lambda: lam.get_function_concurrency(FunctionName=missing),
        lambda: lam.delete_function_concurrency(FunctionName=missing),
    ):
        with pytest.raises(ClientError) as e:
            op()
        assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{missing}")


def test_reservations_must_leave_the_unreserved_minimum(fresh_server, fname):
    srv = fresh_server(env={"LAMBDAD_ACCOUNT_CONCURRENCY": "1000"})
    lam = srv.client()
    create_python_function(lam, "a", SLEEPY)
    create_python_function(lam, "b", SLEEPY)
    message = ("Specified ReservedConcurrentExecutions for function decreases account's "
               "UnreservedConcurrentExecution below its minimum value of [100].")
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName="a", ReservedConcurrentExecutions=901)
    assert error_of(e) == ("InvalidParameterValueException", 400, message)
    lam.put_function_concurrency(FunctionName="a", ReservedConcurrentExecutions=600)
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName="b", ReservedConcurrentExecutions=301)
    assert error_of(e) == ("InvalidParameterValueException", 400, message)
    lam.put_function_concurrency(FunctionName="b", ReservedConcurrentExecutions=300)
    # a function's own reservation does not count against its new one
    lam.put_function_concurrency(FunctionName="a", ReservedConcurrentExecutions=600)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    lam.delete_function_concurrency(FunctionName="b")
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 400
    lam.delete_function(FunctionName="a")  # a deleted function's reservation goes with it
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_small_account_limit_scales_the_minimum(fresh_server):
    srv = fresh_server(env={"LAMBDAD_ACCOUNT_CONCURRENCY": "50"})
    lam = srv.client()
    create_python_function(lam, "a", SLEEPY)
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName="a", ReservedConcurrentExecutions=46)
    assert error_of(e) == (
        "InvalidParameterValueException", 400,
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [5].",
    )
    lam.put_function_concurrency(FunctionName="a", ReservedConcurrentExecutions=45)


def test_reserved_and_unreserved_pools_throttle_under_load(fresh_server):
    # account 4, minimum unreserved 1: "r" reserves 2, so "u" (unreserved) shares the other 2
    srv = fresh_server(env={"LAMBDAD_ACCOUNT_CONCURRENCY": "4"})
    lam = srv.client()
    create_python_function(lam, "r", SLEEPY, Publish=True)
    create_python_function(lam, "u", SLEEPY)
    lam.create_alias(FunctionName="r", Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName="r", ReservedConcurrentExecutions=2)
    # the reservation covers every version and alias of the function together
    r_calls = [lambda: call(lam, "r", 1.0), lambda: call(lam, "r", 1.0, Qualifier="1"),
               lambda: call(lam, "r", 1.0, Qualifier="live")]
    u_calls = [lambda: call(lam, "u", 1.0) for _ in range(3)]
    results = run_parallel(r_calls + u_calls)
    r_results, u_results = results[:3], results[3:]
    assert r_results.count("done") == 2 and u_results.count("done") == 2
    assert throttle_reasons(r_results) == ["ReservedFunctionConcurrentInvocationLimitExceeded"]
    assert throttle_reasons(u_results) == ["ConcurrentInvocationLimitExceeded"]
    # once they have finished, both pools are free again
    assert call(lam, "r") == "done" and call(lam, "u") == "done"


def test_reservation_of_zero_throttles_every_invocation(lam, fname):
    create_python_function(lam, fname, SLEEPY, Publish=True)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    for kwargs in ({}, {"Qualifier": "1"}, {"Qualifier": "$LATEST"}):
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=fname, **kwargs)
        assert error_of(e) == ("TooManyRequestsException", 429, "Rate Exceeded.")
        assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName=fname)
    assert call(lam, fname) == "done"


def test_throttled_async_events_stay_queued(lam, fname):
    recorder = _Recorder()
    try:
        create_python_function(lam, fname, recorder.function_code(fail=False))
        lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
        assert lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"n": 1}')["StatusCode"] == 202
        assert not wait_until(lambda: recorder.events, timeout=0.7)
        lam.delete_function_concurrency(FunctionName=fname)
        assert wait_until(lambda: recorder.events, timeout=10)
        assert [e["n"] for e in recorder.events] == [1]
    finally:
        recorder.close()


def test_reservations_survive_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, "keep", SLEEPY)
    create_python_function(lam, "gone", SLEEPY)
    lam.put_function_concurrency(FunctionName="keep", ReservedConcurrentExecutions=0)
    lam.put_function_concurrency(FunctionName="gone", ReservedConcurrentExecutions=7)
    lam.delete_function(FunctionName="gone")
    srv.stop()

    srv = fresh_server(data_dir=data)
    lam = srv.client()
    assert lam.get_function_concurrency(FunctionName="keep")["ReservedConcurrentExecutions"] == 0
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="keep")
    assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    create_python_function(lam, "gone", SLEEPY)
    assert strip(lam.get_function_concurrency(FunctionName="gone")) == {}
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000


def test_get_account_settings(fresh_server):
    srv = fresh_server(env={"LAMBDAD_ACCOUNT_CONCURRENCY": "200"})
    lam = srv.client()
    settings = strip(lam.get_account_settings())
    assert settings == {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": 200,
            "UnreservedConcurrentExecutions": 200,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
    }
    a = create_python_function(lam, "a", SLEEPY, Publish=True)  # $LATEST and version 1: the zip counts twice
    b = create_python_function(lam, "b", SLEEPY + "# longer\n")
    lam.put_function_concurrency(FunctionName="b", ReservedConcurrentExecutions=30)
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 170
    assert settings["AccountUsage"] == {"TotalCodeSize": 2 * a["CodeSize"] + b["CodeSize"], "FunctionCount": 2}


# -- provisioned concurrency ----------------------------------------------------------------------------------

PROBE = (
    "import os, time, uuid\n"
    "INIT = os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"
    "ENV_ID = uuid.uuid4().hex\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    return {'init': INIT, 'env': ENV_ID}\n"
)


def wait_ready(lam, name: str, qualifier: str) -> dict:
    assert wait_until(
        lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)["Status"] == "READY",
        timeout=20,
    )
    return strip(lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier))


def invoke_tail(lam, name: str, sleep: float = 0.0, **kwargs) -> tuple[dict, str]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps({"sleep": sleep}).encode(), LogType="Tail", **kwargs)
    return json.loads(resp["Payload"].read()), base64.b64decode(resp["LogResult"]).decode()


def test_provisioned_concurrency_is_initialised_ahead(lam, fname):
    create_python_function(lam, fname, PROBE, Publish=True)
    put = strip(lam.put_provisioned_concurrency_config(FunctionName=fname, Qualifier="1",
                                                        ProvisionedConcurrentExecutions=2))
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    ready = wait_ready(lam, fname, "1")
    assert ready["Status"] == "READY"
    assert ready["AvailableProvisionedConcurrentExecutions"] == ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["LastModified"].endswith("+0000")

    body, log = invoke_tail(lam, fname, Qualifier="1")
    assert body["init"] == "provisioned-concurrency"
    assert "REPORT RequestId" in log and "Init Duration" not in log
    # $LATEST has no provisioned environments: an on-demand cold start
    body, log = invoke_tail(lam, fname)
    assert body["init"] == "on-demand" and "Init Duration" in log

    # beyond the two provisioned environments, invocations spill over to on-demand ones
    results = run_parallel([lambda: invoke_tail(lam, fname, 1.0, Qualifier="1") for _ in range(3)])
    inits = sorted(body["init"] for body, _ in results)
    assert inits == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"]
    assert len({body["env"] for body, _ in results}) == 3

    listing = lam.list_provisioned_concurrency_configs(FunctionName=fname)["ProvisionedConcurrencyConfigs"]
    assert listing == [{"FunctionArn": f"{ARN}:{fname}:1", **ready}]

    resp = lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")
    assert error_of(e) == ("ProvisionedConcurrencyConfigNotFoundException", 404,
                           "No Provisioned Concurrency Config found for this function")
    assert lam.list_provisioned_concurrency_configs(FunctionName=fname)["ProvisionedConcurrencyConfigs"] == []


def test_provisioned_concurrency_on_an_alias(lam, fname):
    create_python_function(lam, fname, PROBE, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName=f"{ARN}:{fname}", Qualifier="live",
                                           ProvisionedConcurrentExecutions=1)
    wait_ready(lam, fname, "live")
    body, log = invoke_tail(lam, fname, Qualifier="live")
    assert body["init"] == "provisioned-concurrency" and "Init Duration" not in log
    lam.delete_alias(FunctionName=fname, Name="live")  # the alias's config goes with it
    assert lam.list_provisioned_concurrency_configs(FunctionName=fname)["ProvisionedConcurrencyConfigs"] == []


def test_provisioned_concurrency_errors(lam, fname):
    create_python_function(lam, fname, PROBE, Publish=True)
    lam.create_alias(FunctionName=fname, Name="split", FunctionVersion="1")
    lam.publish_version(FunctionName=fname)  # unchanged: still version 1
    cases = [
        (dict(Qualifier="$LATEST"), ("InvalidParameterValueException", 400,
                                     "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")),
        (dict(Qualifier="7"), ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:7")),
        (dict(Qualifier="nope"), ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}:nope")),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(FunctionName=fname, ProvisionedConcurrentExecutions=1, **kwargs)
        assert error_of(e) == expected, kwargs
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=f"{fname}-missing", Qualifier="1",
                                               ProvisionedConcurrentExecutions=1)
    assert error_of(e) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:{fname}-missing")
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")
    assert error_of(e)[:2] == ("ProvisionedConcurrencyConfigNotFoundException", 404)
    lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")  # nothing there: not an error


def test_provisioned_concurrency_counts_against_concurrency(fresh_server):
    srv = fresh_server(env={"LAMBDAD_ACCOUNT_CONCURRENCY": "4"})
    lam = srv.client()
    create_python_function(lam, "p", PROBE, Publish=True)
    create_python_function(lam, "r", PROBE, Publish=True)
    # unreserved: the account's 4 less the minimum of 1 leaves 3 to provision
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName="p", Qualifier="1", ProvisionedConcurrentExecutions=4)
    assert error_of(e) == ("InvalidParameterValueException", 400,
                           "Specified ConcurrentExecutions for function decreases account's "
                           "UnreservedConcurrentExecution below its minimum value of [1].")
    # within a reservation: no more than it
    lam.put_function_concurrency(FunctionName="r", ReservedConcurrentExecutions=1)
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName="r", Qualifier="1", ProvisionedConcurrentExecutions=2)
    assert error_of(e) == ("InvalidParameterValueException", 400,
                           "Requested Provisioned Concurrency (2 for the function) exceeds the function's "
                           "ReservedConcurrentExecutions (1).")
    lam.delete_function_concurrency(FunctionName="r")
    # two provisioned for p leave 2 of the unreserved pool to everything else on demand
    lam.put_provisioned_concurrency_config(FunctionName="p", Qualifier="1", ProvisionedConcurrentExecutions=2)
    wait_ready(lam, "p", "1")
    results = run_parallel([lambda: call(lam, "r", 1.0) for _ in range(3)])
    assert sum(1 for r in results if r.get("init") == "on-demand") == 2
    assert throttle_reasons([r for r in results if "Error" in r]) == ["ConcurrentInvocationLimitExceeded"]


def test_provisioned_concurrency_survives_a_restart(fresh_server, tmp_path):
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    lam = srv.client()
    create_python_function(lam, "warm", PROBE, Publish=True)
    lam.put_provisioned_concurrency_config(FunctionName="warm", Qualifier="1", ProvisionedConcurrentExecutions=1)
    wait_ready(lam, "warm", "1")
    srv.stop()

    srv = fresh_server(data_dir=data)
    lam = srv.client()
    ready = wait_ready(lam, "warm", "1")
    assert ready["RequestedProvisionedConcurrentExecutions"] == 1
    body, log = invoke_tail(lam, "warm", Qualifier="1")
    assert body["init"] == "provisioned-concurrency" and "Init Duration" not in log
