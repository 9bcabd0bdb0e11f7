"""The CloudWatch Logs API on lambdad's endpoint (``lambdad/logs/api.py``), driven by boto3's ``logs`` client, the
aws CLI and ``lambdad logs``: functions' groups and streams, paging both ways, filters across streams, programs
writing their own events, retention that deletes, and errors as CloudWatch Logs words them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, wait_until

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("logs")).start()
    yield srv
    srv.stop()


@pytest.fixture
def logs(server):
    return server.client("logs")


def now_ms() -> int:
    return int(time.time() * 1000)


def error_of(call, **params) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def put(logs, group: str, stream: str, messages: list[str], start: int | None = None) -> None:
    base = start if start is not None else now_ms() - len(messages)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": base + i, "message": m} for i, m in enumerate(messages)])


def events_of(logs, group: str) -> list[dict]:
    """The group's events; none while the group is not there yet (the log sink writes every 0.2 s)."""
    try:
        return logs.filter_log_events(logGroupName=group)["events"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return []


def test_a_functions_log_is_its_group_and_stream(server, logs, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, "def handler(e, c):\n    print('hello', e['n'])\n    return 1\n")
    for n in range(3):
        lam.invoke(FunctionName=fname, Payload=json.dumps({"n": n}).encode())
    group = f"/aws/lambda/{fname}"
    assert wait_until(lambda: sum(e["message"].startswith("REPORT") for e in events_of(logs, group)) == 3)
    [described] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described["logGroupName"] == group
    assert described["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"
    assert described["storedBytes"] > 0 and "retentionInDays" not in described
    assert wait_until(lambda: sum(e["message"].startswith("REPORT") for e in events_of(logs, group)) == 3)
    [stream] = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]
    assert stream["logStreamName"].endswith(tuple("0123456789abcdef")) and "[$LATEST]" in stream["logStreamName"]
    assert stream["firstEventTimestamp"] <= stream["lastEventTimestamp"] <= stream["lastIngestionTime"]
    got = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
    messages = [e["message"] for e in got["events"]]
    assert messages[0].startswith("INIT_START")
    assert [m for m in messages if m.startswith("hello")] == ["hello 0", "hello 1", "hello 2"]
    assert sum(m.startswith("REPORT RequestId") for m in messages) == 3


def test_get_log_events_pages_forward_and_backward_as_the_sdk_does(logs, fname) -> None:
    group, stream = f"/test/{fname}", "s1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    put(logs, group, stream, [f"m{i:02d}" for i in range(25)])
    first = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=10)
    assert [e["message"] for e in first["events"]] == [f"m{i:02d}" for i in range(10)]
    assert first["nextForwardToken"].startswith("f/") and first["nextBackwardToken"].startswith("b/")
    second = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=first["nextForwardToken"],
                                 limit=10, startFromHead=True)
    third = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=second["nextForwardToken"],
                                limit=10, startFromHead=True)
    assert [e["message"] for e in second["events"] + third["events"]] == [f"m{i:02d}" for i in range(10, 25)]
    end = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=third["nextForwardToken"],
                              startFromHead=True)
    assert end["events"] == [] and end["nextForwardToken"] == third["nextForwardToken"]  # the end: same token
    # without a token: the newest events, oldest of them first; then backward
    newest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10)
    assert [e["message"] for e in newest["events"]] == [f"m{i:02d}" for i in range(15, 25)]
    before = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=newest["nextBackwardToken"],
                                 limit=10)
    assert [e["message"] for e in before["events"]] == [f"m{i:02d}" for i in range(5, 15)]
    # a time range: startTime inclusive, endTime exclusive
    stamps = [e["timestamp"] for e in first["events"]]
    ranged = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=stamps[2], endTime=stamps[5],
                                 startFromHead=True)
    assert [e["message"] for e in ranged["events"]] == ["m02", "m03", "m04"]
    assert error_of(logs.get_log_events, logGroupName=group, logStreamName=stream, nextToken="f/x") == (
        "InvalidParameterException", "The specified nextToken is invalid.")


def test_filter_log_events_interleaves_streams_and_pages(logs, fname) -> None:
    group = f"/test/{fname}"
    logs.create_log_group(logGroupName=group)
    for stream in ("a", "b"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    base = now_ms() - 1000
    logs.put_log_events(logGroupName=group, logStreamName="a", logEvents=[
        {"timestamp": base + i * 2, "message": f"ERROR a{i}" if i % 2 else f"INFO a{i}"} for i in range(10)])
    logs.put_log_events(logGroupName=group, logStreamName="b", logEvents=[
        {"timestamp": base + i * 2 + 1, "message": f"ERROR b{i}"} for i in range(10)])
    events = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
    assert [e["message"] for e in events][:4] == ["ERROR b0", "ERROR a1", "ERROR b1", "ERROR b2"]
    assert len(events) == 15 and [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert {e["logStreamName"] for e in events} == {"a", "b"} and all(e["eventId"] for e in events)
    only_a = logs.filter_log_events(logGroupName=group, logStreamNames=["a"], filterPattern="ERROR")["events"]
    assert [e["message"] for e in only_a] == [f"ERROR a{i}" for i in (1, 3, 5, 7, 9)]
    ranged = logs.filter_log_events(logGroupName=group, startTime=base + 4, endTime=base + 8)["events"]
    assert [e["message"] for e in ranged] == ["INFO a2", "ERROR b2", "ERROR a3", "ERROR b3"]
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=group, PaginationConfig={
        "PageSize": 4}))
    assert len(pages) >= 5 and [e["message"] for p in pages for e in p["events"]] == [
        e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert error_of(logs.filter_log_events, logGroupName=f"/test/{fname}-none")[0] == "ResourceNotFoundException"
    # the store's LIKE prefilter neither takes % and _ for wildcards nor lets case decide
    logs.create_log_stream(logGroupName=group, logStreamName="c")
    put(logs, group, "c", ["took 100% cpu", "took 1000 cpu", "error lower", "user_1 in", "userX1 in"])
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group, logStreamNames=["c"],
                                                         filterPattern='"100%"')["events"]] == ["took 100% cpu"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group, logStreamNames=["c"],
                                                         filterPattern="user_1")["events"]] == ["user_1 in"]
    assert logs.filter_log_events(logGroupName=group, logStreamNames=["c"], filterPattern="ERROR")["events"] == []


def test_put_log_events_checks_as_cloudwatch_does(logs, fname) -> None:
    group = f"/test/{fname}"
    assert error_of(logs.create_log_stream, logGroupName=group, logStreamName="s") == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    logs.create_log_group(logGroupName=group)
    assert error_of(logs.create_log_group, logGroupName=group) == (
        "ResourceAlreadyExistsException", "The specified log group already exists")
    assert error_of(logs.put_log_events, logGroupName=group, logStreamName="s",
                    logEvents=[{"timestamp": now_ms(), "message": "x"}]) == (
        "ResourceNotFoundException", "The specified log stream does not exist.")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    assert error_of(logs.create_log_stream, logGroupName=group, logStreamName="s")[0] == \
        "ResourceAlreadyExistsException"
    t = now_ms()
    assert error_of(logs.put_log_events, logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t, "message": "late"}, {"timestamp": t - 5, "message": "early"}]) == (
        "InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
    out = logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t - 14 * DAY_MS - 7_200_000, "message": "ancient"}, {"timestamp": t - 14 * DAY_MS - 60_000,
                                                               "message": "old"},
        {"timestamp": t - 14 * DAY_MS + 60_000, "message": "now"}])
    assert "span more than 24 hours" in error_of(logs.put_log_events, logGroupName=group, logStreamName="s",
                                                 logEvents=[{"timestamp": t - 2 * DAY_MS, "message": "a"},
                                                            {"timestamp": t, "message": "b"}])[1]
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    out = logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": t, "message": "kept"}, {"timestamp": t + 3 * 3_600_000, "message": "future"}])
    assert out["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    got = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["now", "kept"]
    assert logs.get_log_events(logGroupName=group, logStreamName="s", limit=1)["events"][0]["message"] == "kept"
    big = [{"timestamp": t, "message": "x" * 10_000}] * 100  # 1,002,600 bytes as PutLogEvents counts them
    assert "rejectedLogEventsInfo" not in logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=big)
    code, message = error_of(logs.put_log_events, logGroupName=group, logStreamName="s", logEvents=big * 2)
    assert (code, message) == ("InvalidParameterException", "Upload too large: 2005200 bytes exceeds limit of 1048576")
    code, message = error_of(logs.create_log_group, logGroupName="bad name!")
    assert code == "InvalidParameterException" and "regular expression pattern" in message


def test_requests_the_model_refuses_are_answered_as_logs_answers_them(server, logs) -> None:
    """Below the SDK's own checks (parameter validation off): a missing member, a wrong type, an unknown
    operation, a body that is not JSON."""
    raw = server.client("logs", parameter_validation=False)
    code, message = error_of(raw.describe_log_streams)
    assert code == "InvalidParameterException"
    code, message = error_of(raw.create_log_group)
    assert (code, message) == ("InvalidParameterException", "1 validation error detected: Value null at "
                               "'logGroupName' failed to satisfy constraint: Member must not be null")
    code, message = error_of(raw.get_log_events, logGroupName="/x", logStreamName="s", limit="ten")
    assert code == "InvalidParameterException" and "limit" in message
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    for target, body in (("Logs_20140328.Nope", b"{}"), ("Logs_20140328.DescribeLogGroups", b"{not json")):
        request = AWSRequest("POST", server.endpoint + "/", data=body, headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "logs", "us-east-1").add_auth(request)
        sent = urllib.request.Request(request.url, data=body, headers=dict(request.headers), method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(sent, timeout=10)
        assert caught.value.code == 400
        answer = json.loads(caught.value.read())
        caught.value.close()
        assert answer["__type"] in ("UnknownOperationException", "SerializationException")


def test_retention_deletes_old_events_and_groups_go_whole(logs, fname) -> None:
    group = f"/test/{fname}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    t = now_ms()
    put(logs, group, "s", ["three days old"], start=t - 3 * DAY_MS)
    put(logs, group, "s", ["fresh"], start=t)
    assert error_of(logs.put_retention_policy, logGroupName=group, retentionInDays=2)[0] == \
        "InvalidParameterException"
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 1
    assert wait_until(lambda: [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
                      == ["fresh"], timeout=15)
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    logs.delete_log_stream(logGroupName=group, logStreamName="s")
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 0
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    assert error_of(logs.delete_log_group, logGroupName=group)[0] == "ResourceNotFoundException"


def test_describe_pages_and_orders(logs, fname) -> None:
    group = f"/test/{fname}"
    logs.create_log_group(logGroupName=group)
    for i in range(7):
        logs.create_log_stream(logGroupName=group, logStreamName=f"s{i}")
    put(logs, group, "s3", ["newest"], start=now_ms())
    put(logs, group, "s5", ["older"], start=now_ms() - 10_000)
    names = [s["logStreamName"] for p in logs.get_paginator("describe_log_streams").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 3}) for s in p["logStreams"]]
    assert names == [f"s{i}" for i in range(7)]
    by_time = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=2)
    assert [s["logStreamName"] for s in by_time["logStreams"]] == ["s3", "s5"]
    assert error_of(logs.describe_log_streams, logGroupName=group, orderBy="LastEventTime",
                    logStreamNamePrefix="s") == ("InvalidParameterException",
                                                 "Cannot order by LastEventTime with a logStreamNamePrefix.")
    for i in range(3):
        logs.create_log_group(logGroupName=f"{group}/{i}")
    groups = [g["logGroupName"] for p in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=f"{group}/", PaginationConfig={"PageSize": 2}) for g in p["logGroups"]]
    assert groups == [f"{group}/{i}" for i in range(3)]


def test_a_user_reads_only_the_groups_its_policy_names(server, fname) -> None:
    iam = server.client("iam")
    iam.create_user(UserName=fname)
    allowed = f"/test/{fname}-mine"
    iam.put_user_policy(UserName=fname, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:FilterLogEvents"],
                                                 "Resource": f"arn:aws:logs:*:*:log-group:{allowed}*"}]}))
    key = iam.create_access_key(UserName=fname)["AccessKey"]
    root = server.client("logs")
    root.create_log_group(logGroupName=allowed)
    root.create_log_group(logGroupName=f"/test/{fname}-theirs")
    user = server.client("logs", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    assert user.filter_log_events(logGroupName=allowed)["events"] == []
    code, message = error_of(user.filter_log_events, logGroupName=f"/test/{fname}-theirs")
    assert code == "AccessDeniedException" and "logs:FilterLogEvents" in message
    assert error_of(user.create_log_group, logGroupName=f"/test/{fname}-new")[0] == "AccessDeniedException"


def test_the_aws_cli_finds_why_a_function_failed(server, fname, tmp_path) -> None:
    """The issue's goal: `aws logs filter-log-events --filter-pattern ERROR` finds the failure; `aws logs
    get-log-events` reads a stream; `lambdad logs NAME` reads through the API with the SDK's credentials, and
    --follow prints what comes later."""
    lam = server.client()
    create_python_function(lam, fname, "import logging\ndef handler(e, c):\n"
                                       "    if e.get('fail'):\n        print('ERROR the order', e['id'], 'is lost')\n"
                                       "        raise ValueError('lost')\n    print('INFO fine')\n")
    lam.invoke(FunctionName=fname, Payload=b'{"fail": false}')
    lam.invoke(FunctionName=fname, Payload=b'{"fail": true, "id": 42}')
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.endpoint, "HOME": str(tmp_path)}
    group = f"/aws/lambda/{fname}"

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", "logs", *args, "--output", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert wait_until(lambda: any("REPORT" in e["message"] and "Status" not in e["message"] for e in
                                  events_of(server.client("logs"), group)))
    found = aws("filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR")["events"]
    assert [e["message"] for e in found if "order" in e["message"]] == ["ERROR the order 42 is lost"]
    stream = found[0]["logStreamName"]
    read = aws("get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head")
    assert any(e["message"] == "INFO fine" for e in read["events"])
    out = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--filter-pattern", "ERROR"], env=env,
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ERROR the order 42 is lost" in out.stdout and "INFO fine" not in out.stdout
    follower = subprocess.Popen([sys.executable, "-m", "lambdad", "logs", fname, "--follow", "--since", "1h"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        time.sleep(2)
        lam.invoke(FunctionName=fname, Payload=b'{"fail": true, "id": 7}')
        lines: list[str] = []
        assert follower.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "ERROR the order 7 is lost" not in lines:
            lines.append(follower.stdout.readline().rstrip("\n"))
        assert "ERROR the order 42 is lost" in lines and "ERROR the order 7 is lost" in lines
        assert len([x for x in lines if x == "ERROR the order 42 is lost"]) == 1  # printed once, not per poll
    finally:
        follower.terminate()
        follower.communicate(timeout=10)
    missing = subprocess.run([sys.executable, "-m", "lambdad", "logs", f"{fname}-none"], env=env,
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert missing.returncode == 1 and "no log group" in missing.stderr
