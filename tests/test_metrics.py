"""Lambda's CloudWatch metrics (docs/observability.md, "Metrics") against a real server: counts equal to the
invocations made, read through boto3's CloudWatch client (JSON 1.0), the RPC v2 CBOR and query protocols and the
aws CLI; GET /metrics parsed by prometheus_client; embedded metric format lines; the token; CloudWatch's errors.

The module's server flushes every 0.5 s and sends destination records to a closed port (so that delivery failures
are counted). Statistics are read over one hour-long period around now: every test's data is in one datapoint."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, wait_until

OK = "def handler(event, context):\n    if event.get('fail'):\n        raise ValueError('asked to')\n    return 1\n"
EMF = """import json, time
def handler(event, context):
    print(json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
        "Namespace": "Shop", "Dimensions": [["Service"], ["Service", "Region"]],
        "Metrics": [{"Name": "Orders", "Unit": "Count"}, {"Name": "Latency", "Unit": "Milliseconds"}]}]},
        "Service": "cart", "Region": "eu", "Orders": 2, "Latency": [10, 20, 30]}))
    print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "note": "no Timestamp: not a metric"}))
    return 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("metrics"), env={
        "LAMBDAD_METRICS_FLUSH_SECONDS": "0.5", "LAMBDAD_ASYNC_RETRY_DELAYS": "0.2,0.2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}).start()
    yield srv
    srv.stop()


@pytest.fixture
def cw(server):
    return server.client("cloudwatch")


def window() -> dict[str, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return {"StartTime": now - dt.timedelta(minutes=30), "EndTime": now + dt.timedelta(minutes=30)}


def point(cw, metric: str, dimensions: dict[str, str], namespace: str = "AWS/Lambda", **kw) -> dict:
    """The one datapoint of ``metric`` over the hour around now (empty when there is none)."""
    if "ExtendedStatistics" not in kw:
        kw.setdefault("Statistics", ["Sum", "SampleCount", "Minimum", "Maximum", "Average"])
    out = cw.get_metric_statistics(Namespace=namespace, MetricName=metric, Period=3600,
                                   Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                                   **window(), **kw)
    assert len(out["Datapoints"]) <= 1 and out["Label"] == metric
    return out["Datapoints"][0] if out["Datapoints"] else {}


def scrape(server, token: str | None = None) -> dict[str, dict]:
    request = urllib.request.Request(server.endpoint + "/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict, family: str, suffix: str = "_total", **labels: str) -> float:
    for s in families[family].samples:
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def test_invocations_errors_and_duration_are_counted(server, cw, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK)
    for _ in range(5):
        assert "FunctionError" not in lam.invoke(FunctionName=fname, Payload=b"{}")
    for _ in range(2):
        assert lam.invoke(FunctionName=fname, Payload=b'{"fail": true}')["FunctionError"] == "Unhandled"
    by_name = {"FunctionName": fname}
    invocations = point(cw, "Invocations", by_name)
    assert invocations["Sum"] == 7 and invocations["SampleCount"] == 7 and invocations["Unit"] == "Count"
    errors = point(cw, "Errors", by_name)
    assert errors["Sum"] == 2 and errors["SampleCount"] == 7 and errors["Minimum"] == 0 and errors["Maximum"] == 1
    duration = point(cw, "Duration", by_name)
    assert duration["SampleCount"] == 7 and duration["Unit"] == "Milliseconds"
    assert 0 < duration["Minimum"] <= duration["Average"] <= duration["Maximum"] < 30000
    assert duration["Sum"] == pytest.approx(duration["Average"] * 7)
    extended = point(cw, "Duration", by_name, ExtendedStatistics=["p50", "p99", "p100"])
    pct = extended["ExtendedStatistics"]
    assert duration["Minimum"] <= pct["p50"] <= pct["p99"] <= pct["p100"] == duration["Maximum"]
    # the account's totals (no dimension) count them too; unqualified calls have no Resource dimension
    assert point(cw, "Invocations", {})["Sum"] >= 7
    assert point(cw, "Invocations", {"FunctionName": fname, "Resource": fname}) == {}
    concurrency = point(cw, "ConcurrentExecutions", by_name, Statistics=["Maximum"])
    assert concurrency["Maximum"] == 1  # one at a time
    listed = cw.list_metrics(Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": fname}])
    assert {m["MetricName"] for m in listed["Metrics"]} >= {"Invocations", "Errors", "Duration",
                                                            "ConcurrentExecutions"}
    assert all(m["Dimensions"] == [{"Name": "FunctionName", "Value": fname}] for m in listed["Metrics"])


def test_an_alias_has_resource_and_executed_version_dimensions(server, cw, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    for _ in range(3):
        lam.invoke(FunctionName=fname, Qualifier="live", Payload=b"{}")
    lam.invoke(FunctionName=f"{fname}:1", Payload=b"{}")
    assert point(cw, "Invocations", {"FunctionName": fname})["Sum"] == 4
    assert point(cw, "Invocations", {"FunctionName": fname, "Resource": f"{fname}:live"})["Sum"] == 3
    assert point(cw, "Invocations", {"FunctionName": fname, "Resource": f"{fname}:live",
                                     "ExecutedVersion": "1"})["Sum"] == 3
    assert point(cw, "Invocations", {"FunctionName": fname, "Resource": f"{fname}:1"})["Sum"] == 1
    families = scrape(server)
    assert sample(families, "lambdad_invocations", function_name=fname, resource=f"{fname}:live") == 3
    assert sample(families, "lambdad_invocations", function_name=fname, resource=f"{fname}:1") == 1


def test_throttles_with_reserved_concurrency_zero(server, cw, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    for _ in range(3):
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=fname, Payload=b"{}")
        assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert point(cw, "Throttles", {"FunctionName": fname})["Sum"] == 3
    assert point(cw, "Invocations", {"FunctionName": fname}) == {}  # a throttled request is no invocation
    assert sample(scrape(server), "lambdad_throttles", function_name=fname, resource=fname) == 3


def test_the_aws_cli_reads_the_statistics(server, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK)
    for _ in range(4):
        lam.invoke(FunctionName=fname, Payload=b"{}")
    w = window()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    out = subprocess.run(
        ["aws", "cloudwatch", "get-metric-statistics", "--endpoint-url", server.endpoint, "--namespace",
         "AWS/Lambda", "--metric-name", "Invocations", "--dimensions", f"Name=FunctionName,Value={fname}",
         "--start-time", w["StartTime"].isoformat(), "--end-time", w["EndTime"].isoformat(), "--period", "3600",
         "--statistics", "Sum", "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert [p["Sum"] for p in answer["Datapoints"]] == [4.0] and answer["Label"] == "Invocations"
    bad = subprocess.run(
        ["aws", "cloudwatch", "get-metric-statistics", "--endpoint-url", server.endpoint, "--namespace",
         "AWS/Lambda", "--metric-name", "Invocations", "--start-time", w["StartTime"].isoformat(), "--end-time",
         w["EndTime"].isoformat(), "--period", "90", "--statistics", "Sum"], env=env, capture_output=True,
        text=True, timeout=60)
    assert bad.returncode != 0 and "InvalidParameterValue" in bad.stderr and "multiple of 60" in bad.stderr


def _raw_call(server, protocol: str, operation: str, params: dict) -> tuple[int, dict]:
    """One CloudWatch call on ``protocol`` ("smithy-rpc-v2-cbor" or "query"), made and read by botocore's own
    serializer and parser for it."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.parsers import create_parser
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("cloudwatch")
    op = model.operation_model(operation)
    req = create_serializer(protocol).serialize_to_request(params, op)
    url = server.endpoint + req["url_path"]
    body = req["body"]
    if isinstance(body, dict):
        from urllib.parse import urlencode
        body = urlencode(body).encode()
        req["headers"]["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    aws = AWSRequest(method=req["method"], url=url, data=body, headers=req["headers"])
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "monitoring", "us-east-1").add_auth(aws)
    http = urllib.request.Request(url, data=body, headers=dict(aws.headers.items()), method=req["method"])
    try:
        with urllib.request.urlopen(http, timeout=10) as r:
            status, headers, data = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, data = e.code, e.headers, e.read()
        e.close()
    parsed = create_parser(protocol).parse(
        {"status_code": status, "headers": {k.lower(): v for k, v in headers.items()}, "body": data},
        op.output_shape)
    return status, parsed


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "query"])
def test_the_cbor_and_query_protocols(server, protocol, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK)
    for _ in range(2):
        lam.invoke(FunctionName=fname, Payload=b"{}")
    status, out = _raw_call(server, protocol, "GetMetricStatistics", {
        "Namespace": "AWS/Lambda", "MetricName": "Invocations", "Period": 3600, "Statistics": ["Sum"],
        "Dimensions": [{"Name": "FunctionName", "Value": fname}], **window()})
    assert status == 200 and [p["Sum"] for p in out["Datapoints"]] == [2.0]
    assert isinstance(out["Datapoints"][0]["Timestamp"], dt.datetime)
    status, out = _raw_call(server, protocol, "ListMetrics", {"Dimensions": [{"Name": "FunctionName", "Value": fname}]})
    assert status == 200 and "Invocations" in {m["MetricName"] for m in out["Metrics"]}
    status, out = _raw_call(server, protocol, "PutMetricData", {"Namespace": "AWS/Mine", "MetricData": [
        {"MetricName": "m", "Value": 1.0}]})
    assert status == 400 and out["Error"]["Code"] == "InvalidParameterValue"


def test_put_metric_data_and_get_metric_data(cw, fname) -> None:
    dims = [{"Name": "Test", "Value": fname}]
    cw.put_metric_data(Namespace="Custom/Tests", MetricData=[
        {"MetricName": "Size", "Dimensions": dims, "Value": 10, "Unit": "Bytes"},
        {"MetricName": "Size", "Dimensions": dims, "Values": [1, 2, 3], "Counts": [1, 1, 2], "Unit": "Bytes"},
        {"MetricName": "Size", "Dimensions": dims, "StatisticValues": {"SampleCount": 2, "Sum": 8, "Minimum": 4,
                                                                        "Maximum": 4}, "Unit": "Bytes"}])
    got = point(cw, "Size", {"Test": fname}, namespace="Custom/Tests")
    assert got["SampleCount"] == 7 and got["Sum"] == 10 + 1 + 2 + 6 + 8
    assert got["Minimum"] == 1 and got["Maximum"] == 10 and got["Unit"] == "Bytes"
    out = cw.get_metric_data(MetricDataQueries=[
        {"Id": "total", "MetricStat": {"Metric": {"Namespace": "Custom/Tests", "MetricName": "Size",
                                                  "Dimensions": dims}, "Period": 3600, "Stat": "Sum"}},
        {"Id": "top", "MetricStat": {"Metric": {"Namespace": "Custom/Tests", "MetricName": "Size",
                                                "Dimensions": dims}, "Period": 3600, "Stat": "p100"}},
        {"Id": "hidden", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "Custom/Tests",
                                                                        "MetricName": "Size"},
                                                             "Period": 60, "Stat": "Sum"}}], **window())
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert set(results) == {"total", "top"}
    assert results["total"]["Values"] == [27.0] and results["total"]["StatusCode"] == "Complete"
    assert results["top"]["Values"] == [10.0] and results["total"]["Label"] == "Size"
    listed = cw.list_metrics(Namespace="Custom/Tests", MetricName="Size")["Metrics"]
    assert {"Namespace": "Custom/Tests", "MetricName": "Size", "Dimensions": dims} in listed


def test_embedded_metric_format_lines_become_metrics(server, cw, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, EMF)
    for _ in range(2):
        lam.invoke(FunctionName=fname, Payload=b"{}")
    assert wait_until(lambda: point(cw, "Orders", {"Service": "cart"}, namespace="Shop").get("Sum", 0) >= 4,
                      timeout=10)
    orders = point(cw, "Orders", {"Service": "cart"}, namespace="Shop")
    assert orders["Sum"] == 4 and orders["SampleCount"] == 2 and orders["Unit"] == "Count"
    latency = point(cw, "Latency", {"Service": "cart", "Region": "eu"}, namespace="Shop")
    assert latency["SampleCount"] == 6 and latency["Sum"] == 120 and latency["Maximum"] == 30
    names = {(m["MetricName"], len(m["Dimensions"])) for m in cw.list_metrics(Namespace="Shop")["Metrics"]}
    assert names == {("Orders", 1), ("Orders", 2), ("Latency", 1), ("Latency", 2)}


def test_async_events_and_failed_destinations_are_counted(server, cw, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK, DeadLetterConfig={
        "TargetArn": "arn:aws:sqs:us-east-1:000000000000:dead-letters"})
    lam.put_function_event_invoke_config(
        FunctionName=fname, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:nowhere"}})
    lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"fail": true}')
    lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")
    by_name = {"FunctionName": fname}
    assert wait_until(lambda: point(cw, "DestinationDeliveryFailures", by_name).get("Sum", 0) >= 1, timeout=15)
    assert wait_until(lambda: point(cw, "DeadLetterErrors", by_name).get("Sum", 0) >= 1, timeout=15)
    assert point(cw, "AsyncEventsReceived", by_name)["Sum"] == 2
    assert point(cw, "AsyncEventsDropped", by_name)["Sum"] == 1  # the failing one, its one attempt made
    age = point(cw, "AsyncEventAge", by_name)
    assert age["SampleCount"] == 2 and age["Unit"] == "Milliseconds" and age["Minimum"] >= 0
    assert point(cw, "Invocations", by_name)["Sum"] == 2
    families = scrape(server)
    assert sample(families, "lambdad_async_events_received", function_name=fname, resource=fname) == 2
    assert sample(families, "lambdad_destination_delivery_failures", function_name=fname, resource=fname) >= 1
    assert sample(families, "lambdad_dead_letter_errors", function_name=fname, resource=fname) >= 1


def test_prometheus_exposition(server, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, OK)
    for _ in range(3):
        lam.invoke(FunctionName=fname, Payload=b"{}")
    lam.invoke(FunctionName=fname, Payload=b'{"fail": true}')
    families = scrape(server)
    assert families["lambdad_invocations"].type == "counter"
    assert sample(families, "lambdad_invocations", function_name=fname, resource=fname) == 4
    assert sample(families, "lambdad_errors", function_name=fname, resource=fname) == 1
    assert families["lambdad_duration_milliseconds"].type == "histogram"
    count = sample(families, "lambdad_duration_milliseconds", "_count", function_name=fname)
    inf = sample(families, "lambdad_duration_milliseconds", "_bucket", function_name=fname, le="+Inf")
    assert count == inf == 4
    assert sample(families, "lambdad_duration_milliseconds", "_sum", function_name=fname) > 0
    assert families["lambdad_concurrent_executions"].type == "gauge"
    assert families["lambdad_environments"].samples[0].value >= 1


def test_bad_input_answers_cloudwatchs_errors(cw) -> None:
    w = window()

    def code(call, **kw) -> tuple[str, int, str]:
        with pytest.raises(ClientError) as e:
            call(**kw)
        err = e.value.response
        return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]

    base = {"Namespace": "AWS/Lambda", "MetricName": "Invocations", **w}
    assert code(cw.get_metric_statistics, Period=30, Statistics=["Sum"], **base)[:2] == ("InvalidParameterValue", 400)
    assert code(cw.get_metric_statistics, Period=60, **base)[:2] == ("MissingParameter", 400)
    assert code(cw.get_metric_statistics, Period=60, Statistics=["Sum"], ExtendedStatistics=["p90"],
                **base)[:2] == ("InvalidParameterCombination", 400)
    assert code(cw.get_metric_statistics, Period=60, ExtendedStatistics=["p900"], **base)[:2] == \
        ("InvalidParameterValue", 400)
    assert code(cw.get_metric_statistics, Namespace="AWS/Lambda", MetricName="Invocations", Period=60,
                Statistics=["Sum"], StartTime=w["EndTime"], EndTime=w["StartTime"]) == (
        "InvalidParameterValue", 400, "The parameter StartTime must be less than the parameter EndTime.")
    too_many = code(cw.get_metric_statistics, Namespace="AWS/Lambda", MetricName="Invocations", Period=60,
                    Statistics=["Sum"], StartTime=w["StartTime"] - dt.timedelta(days=2), EndTime=w["EndTime"])
    assert too_many[:2] == ("InvalidParameterCombination", 400) and "1,440" in too_many[2]
    assert code(cw.put_metric_data, Namespace="AWS/Lambda", MetricData=[{"MetricName": "m", "Value": 1}])[:2] == \
        ("InvalidParameterValue", 400)
    assert code(cw.put_metric_data, Namespace="Mine", MetricData=[
        {"MetricName": "m", "Value": 1, "Values": [1]}])[:2] == ("InvalidParameterCombination", 400)
    assert code(cw.put_metric_data, Namespace="Mine", MetricData=[
        {"MetricName": "m", "Values": [1, 2], "Counts": [1]}])[:2] == ("InvalidParameterValue", 400)
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=15)
    assert code(cw.put_metric_data, Namespace="Mine", MetricData=[
        {"MetricName": "m", "Value": 1, "Timestamp": old}])[:2] == ("InvalidParameterValue", 400)
    expression = code(cw.get_metric_data, MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS())"}], **w)
    assert expression[:2] == ("InvalidParameterValue", 400) and "not supported" in expression[2]
    assert code(cw.get_metric_data, MetricDataQueries=[{"Id": "Bad", "MetricStat": {
        "Metric": {"Namespace": "N", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}}], **w)[:2] == \
        ("InvalidParameterValue", 400)
    assert code(cw.list_metrics, NextToken="garbage")[:2] == ("InvalidNextToken", 400)
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.get_metric_statistics(Period=61, Statistics=["Sum"], **base)
    assert code(cw.describe_alarms)[:2] == ("NotImplemented", 501)


def test_a_user_needs_cloudwatch_permissions(server) -> None:
    iam = server.client("iam")
    iam.create_user(UserName="metrics-reader")
    key = iam.create_access_key(UserName="metrics-reader")["AccessKey"]
    reader = server.client("cloudwatch", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        reader.list_metrics()
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "cloudwatch:ListMetrics" in e.value.response["Error"]["Message"]
    iam.put_user_policy(UserName="metrics-reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cloudwatch:ListMetrics",
                                                "Resource": "*"}]}))
    assert wait_until(lambda: _can_list(reader), timeout=5)
    with pytest.raises(ClientError) as e:
        reader.put_metric_data(Namespace="Mine", MetricData=[{"MetricName": "m", "Value": 1}])
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def _can_list(client) -> bool:
    try:
        client.list_metrics()
        return True
    except ClientError:
        return False


def test_the_token_guards_metrics_and_off_turns_them_off(fresh_server) -> None:
    guarded = fresh_server(env={"LAMBDAD_METRICS_TOKEN": "s3cret"})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(guarded.endpoint + "/metrics", headers=headers),
                                   timeout=10)
        assert e.value.code == 401
        e.value.close()
    assert "lambdad_invocations" in scrape(guarded, token="s3cret")
    off = fresh_server(env={"LAMBDAD_METRICS": "off"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(off.endpoint + "/metrics", timeout=10)
    assert e.value.code == 403  # not served: an unsigned request to the API
    e.value.close()
    with pytest.raises(ClientError):
        off.client("cloudwatch").list_metrics()


def test_metrics_survive_a_restart(fresh_server, tmp_path, fname) -> None:
    srv = fresh_server(data_dir=tmp_path / "kept")
    lam = srv.client()
    create_python_function(lam, fname, OK)
    for _ in range(3):
        lam.invoke(FunctionName=fname, Payload=b"{}")
    srv.stop()  # the last flush happens at shutdown
    again = fresh_server(data_dir=tmp_path / "kept")
    assert point(again.client("cloudwatch"), "Invocations", {"FunctionName": fname})["Sum"] == 3



def test_a_cluster_sums_what_its_nodes_recorded(cluster, fname) -> None:
    """Each node adds its own partial aggregates of a minute to the shared rows: invocations run on two nodes (each
    function version runs at its home node) and PutMetricData sent to both are read back summed from either."""
    nodes = cluster(2, env={"LAMBDAD_METRICS_FLUSH_SECONDS": "0.5"}).nodes
    clients = [n.client() for n in nodes]
    ran: dict[int, float] = {}
    made = []
    for i in range(12):  # until both nodes have run some (a version's home is drawn by rendezvous hashing)
        name = f"{fname}-{i}"
        create_python_function(clients[0], name, OK)
        made.append(name)
        assert wait_until(lambda: _known(clients[1], name), timeout=5)
        for _ in range(3):
            clients[i % 2].invoke(FunctionName=name, Payload=b"{}")
        ran = {k: sum(sample(scrape(n), "lambdad_invocations", function_name=f) for f in made)
               for k, n in enumerate(nodes)}
        if all(ran.values()):
            break
    assert all(ran.values()) and sum(ran.values()) == 3 * len(made), ran
    watchers = [n.client("cloudwatch") for n in nodes]
    for cw in watchers:
        cw.put_metric_data(Namespace="Cluster/Tests", MetricData=[{"MetricName": fname, "Value": 5}])

    def summed(cw) -> bool:
        total = sum(point(cw, "Invocations", {"FunctionName": f}).get("Sum", 0) for f in made)
        return total == 3 * len(made) and point(cw, fname, {}, namespace="Cluster/Tests").get("Sum") == 10
    assert all(wait_until(lambda: summed(cw), timeout=10) for cw in watchers)
    assert point(watchers[0], fname, {}, namespace="Cluster/Tests")["SampleCount"] == 2


def _known(client, name: str) -> bool:
    try:
        client.get_function(FunctionName=name)
        return True
    except ClientError:
        return False


def test_provisioned_concurrency_invocations_and_spillover(server, cw, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, "import time\ndef handler(event, context):\n"
                                       "    time.sleep(event.get('sleep', 0))\n    return 1\n", Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName=fname, Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert wait_until(lambda: lam.get_provisioned_concurrency_config(FunctionName=fname, Qualifier="live")[
        "Status"] == "READY", timeout=30)
    for _ in range(3):
        lam.invoke(FunctionName=fname, Qualifier="live", Payload=b"{}")
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(3) as pool:  # three at once: the third spills over to on-demand
        list(pool.map(lambda _: server.client().invoke(FunctionName=fname, Qualifier="live",
                                                       Payload=b'{"sleep": 1.5}'), range(3)))
    resource = {"FunctionName": fname, "Resource": f"{fname}:live"}
    assert point(cw, "Invocations", resource)["Sum"] == 6
    assert point(cw, "ProvisionedConcurrencyInvocations", resource)["Sum"] == 5
    assert point(cw, "ProvisionedConcurrencySpilloverInvocations", resource)["Sum"] == 1
    utilization = point(cw, "ProvisionedConcurrencyUtilization", resource, Statistics=["Maximum", "Minimum"])
    assert utilization["Maximum"] == 1.0 and utilization["Minimum"] == 0.5 and utilization["Unit"] == "None"
    assert point(cw, "ProvisionedConcurrentExecutions", resource, Statistics=["Maximum"])["Maximum"] == 2
    assert point(cw, "ConcurrentExecutions", resource, Statistics=["Maximum"])["Maximum"] == 3
