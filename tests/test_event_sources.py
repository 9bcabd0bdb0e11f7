"""Event source mappings (docs/event-sources.md), end to end: the API through boto3 and the aws CLI, and SQS queues
on a moto_server (reached through the AWS SDK's own configuration, AWS_ENDPOINT_URL) polled by a real server that
invokes real functions. Records the functions saw are read from their logs (``lambdad logs``)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, wait_until, logged
from tests.services import MOTO_ENV

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
PRINTING = ("import json\ndef handler(event, context):\n"
            "    for r in event['Records']:\n        print('RECORD ' + json.dumps(r))\n"
            "    print('BATCH ' + str(len(event['Records'])))\n")


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("esm"), env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto}).start()
    yield srv
    srv.stop()


def records(server, name: str) -> list[dict]:
    return [json.loads(text) for text in logged(server, name, "RECORD ")]


def batches(server, name: str) -> list[int]:
    return [int(text) for text in logged(server, name, "BATCH ")]


def make_queue(sqs, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name[:70], Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def send(sqs, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b}
                                                      for i, b in enumerate(bodies[start:start + 10])])


def visible(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def settled(lam, uuid: str) -> dict:
    found: dict = {}
    assert wait_until(lambda: found.update(lam.get_event_source_mapping(UUID=uuid))
                      or found["State"] in ("Enabled", "Disabled"), timeout=10)
    return found


def test_api_create_get_update_list_delete(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    _url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    made = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, Enabled=False)
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert made["State"] == "Creating" and made["StateTransitionReason"] == "USER_INITIATED"
    assert made["BatchSize"] == 10 and made["MaximumBatchingWindowInSeconds"] == 0
    assert made["EventSourceArn"] == queue and made["FunctionArn"] == f"{ARN}:{fname}"
    assert made["FunctionResponseTypes"] == []
    assert made["EventSourceMappingArn"].endswith(f":event-source-mapping:{made['UUID']}")
    uuid = made["UUID"]
    assert settled(lam, uuid)["State"] == "Disabled"

    changed = lam.update_event_source_mapping(UUID=uuid, BatchSize=50, MaximumBatchingWindowInSeconds=2,
                                              FunctionResponseTypes=["ReportBatchItemFailures"],
                                              ScalingConfig={"MaximumConcurrency": 2})
    assert changed["State"] == "Updating" and changed["BatchSize"] == 50
    got = settled(lam, uuid)
    assert got["State"] == "Disabled" and got["MaximumBatchingWindowInSeconds"] == 2
    assert got["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert got["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    assert settled(lam, uuid)["State"] == "Enabled"
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    assert settled(lam, uuid)["State"] == "Disabled"

    listed = lam.list_event_source_mappings(FunctionName=fname)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"]] == [uuid]
    assert lam.list_event_source_mappings(FunctionName=f"{ARN}:{fname}")["EventSourceMappings"]

    # the aws CLI sees the same
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    out = subprocess.run(["aws", "lambda", "get-event-source-mapping", "--uuid", uuid, "--endpoint-url",
                          server.endpoint, "--output", "json"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["BatchSize"] == 50
    out = subprocess.run(["aws", "lambda", "list-event-source-mappings", "--function-name", fname, "--endpoint-url",
                          server.endpoint, "--output", "json"], capture_output=True, text=True, timeout=60, env=env)
    assert [m["UUID"] for m in json.loads(out.stdout)["EventSourceMappings"]] == [uuid]

    gone = lam.delete_event_source_mapping(UUID=uuid)
    assert gone["State"] == "Deleting" and gone["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as err:
        lam.get_event_source_mapping(UUID=uuid)
    assert err.value.response["Error"]["Message"] == "The resource you requested does not exist."


def test_api_validation_errors(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    _url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)

    def refused(**kw) -> ClientError:
        with pytest.raises(ClientError) as err:
            lam.create_event_source_mapping(**{"EventSourceArn": queue, "FunctionName": fname, **kw})
        return err.value

    err = refused(BatchSize=11)
    assert err.response["Error"]["Code"] == "InvalidParameterValueException"
    assert err.response["Error"]["Message"] == ("Maximum batch window in seconds must be greater than 0 if maximum "
                                                "batch size is greater than 10")
    assert refused(BatchSize=10001).response["Error"]["Code"] == "ValidationException"
    assert refused(MaximumBatchingWindowInSeconds=301).response["Error"]["Code"] == "ValidationException"
    assert refused(ScalingConfig={"MaximumConcurrency": 1001}).response["Error"]["Code"] == "ValidationException"
    err = refused(StartingPosition="LATEST")
    assert err.response["Error"]["Code"] == "InvalidParameterValueException"
    err = refused(FunctionName=f"{fname}-none")
    assert (err.response["Error"]["Code"], err.response["Error"]["Message"]) == (
        "InvalidParameterValueException", "Function does not exist")
    err = refused(EventSourceArn="arn:aws:sqs:us-east-1:000000000000:no-such-queue")
    assert err.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused(FunctionName=f"{fname}:nope").response["Error"]["Code"] == "ResourceNotFoundException"
    made = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, Enabled=False)
    err = refused()
    assert err.response["Error"]["Code"] == "ResourceConflictException"
    assert made["UUID"] in err.response["Error"]["Message"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.update_event_source_mapping(UUID="8a1f5b0e-0000-4000-8000-000000000000", BatchSize=5)
    lam.delete_event_source_mapping(UUID=made["UUID"])


def test_every_message_once_in_batches(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    sqs.send_message(QueueUrl=url, MessageBody="first", MessageAttributes={
        "color": {"DataType": "String", "StringValue": "blue"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    send(sqs, url, [f"m{i}" for i in range(1, 60)])
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=25,
                                           MaximumBatchingWindowInSeconds=1)["UUID"]
    assert wait_until(lambda: len(records(server, fname)) >= 60, timeout=60)
    time.sleep(2)
    seen = records(server, fname)
    assert sorted(r["body"] for r in seen) == sorted(["first"] + [f"m{i}" for i in range(1, 60)])
    assert max(batches(server, fname)) > 10  # the window gathered more than one receive's worth
    assert all(n <= 25 for n in batches(server, fname))
    first = next(r for r in seen if r["body"] == "first")
    assert first["eventSource"] == "aws:sqs" and first["eventSourceARN"] == queue
    assert first["awsRegion"] == "us-east-1"
    assert set(first["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                        "ApproximateFirstReceiveTimestamp"}
    assert first["messageAttributes"]["color"] == {"stringValue": "blue", "stringListValues": [],
                                                   "binaryListValues": [], "dataType": "String"}
    assert first["messageAttributes"]["raw"]["binaryValue"] == "AAE="
    assert first["md5OfBody"] == "8b04d5e3775d298e78455efc5ca404d5"  # md5("first")
    assert wait_until(lambda: visible(sqs, url) == 0, timeout=10)
    assert lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK"
    lam.delete_event_source_mapping(UUID=uuid)


FAILING = ("import json\ndef handler(event, context):\n"
           "    for r in event['Records']:\n        print('RECORD ' + json.dumps(r))\n"
           "    raise ValueError('no')\n")
REPORTING = ("import json\ndef handler(event, context):\n"
             "    for r in event['Records']:\n        print('RECORD ' + json.dumps(r))\n"
             "    return {'batchItemFailures': [{'itemIdentifier': r['messageId']} for r in event['Records']\n"
             "                                  if r['body'].startswith('bad')]}\n")
INVALID = ("import json\ndef handler(event, context):\n"
           "    for r in event['Records']:\n        print('RECORD ' + json.dumps(r))\n"
           "    return {'batchItemFailures': [{'itemIdentifier': 'not-in-the-batch'}]}\n")


def with_dead_letters(sqs, name: str) -> tuple[str, str, str]:
    dlq_url, dlq_arn = make_queue(sqs, f"{name}-dlq")
    url, arn = make_queue(sqs, f"{name}-q", VisibilityTimeout="1", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    return url, arn, dlq_url


def drain(sqs, url: str) -> list[str]:
    out: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return out
        out.extend(m["Body"] for m in got)


def test_function_error_leaves_the_batch_for_the_queues_redrive(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue, dlq = with_dead_letters(sqs, fname)
    create_python_function(lam, fname, FAILING)
    send(sqs, url, ["a", "b", "c"])
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=10)["UUID"]
    moved: list[str] = []
    assert wait_until(lambda: moved.extend(drain(sqs, dlq)) or len(moved) >= 3, timeout=40)
    assert sorted(moved) == ["a", "b", "c"]
    seen = [r["body"] for r in records(server, fname)]
    assert all(seen.count(b) == 2 for b in "abc"), seen  # maxReceiveCount 2: received twice, then redriven
    got = lam.get_event_source_mapping(UUID=uuid)
    assert got["LastProcessingResult"] == "PROBLEM: Function call failed"
    lam.delete_event_source_mapping(UUID=uuid)


def test_report_batch_item_failures_keeps_only_the_failed(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue, dlq = with_dead_letters(sqs, fname)
    create_python_function(lam, fname, REPORTING)
    send(sqs, url, ["good1", "bad1", "good2", "bad2", "good3"])
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=10,
                                           FunctionResponseTypes=["ReportBatchItemFailures"])["UUID"]
    moved: list[str] = []
    assert wait_until(lambda: moved.extend(drain(sqs, dlq)) or len(moved) >= 2, timeout=40)
    assert sorted(moved) == ["bad1", "bad2"]
    seen = [r["body"] for r in records(server, fname)]
    assert all(seen.count(b) == 1 for b in ("good1", "good2", "good3")), seen
    lam.delete_event_source_mapping(UUID=uuid)


def test_an_invalid_batch_response_fails_the_whole_batch(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue, dlq = with_dead_letters(sqs, fname)
    create_python_function(lam, fname, INVALID)
    send(sqs, url, ["x", "y"])
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname,
                                           FunctionResponseTypes=["ReportBatchItemFailures"])["UUID"]
    moved: list[str] = []
    assert wait_until(lambda: moved.extend(drain(sqs, dlq)) or len(moved) >= 2, timeout=40)
    assert sorted(moved) == ["x", "y"]
    lam.delete_event_source_mapping(UUID=uuid)


def test_disabled_stops_polling_and_enabled_resumes(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, Enabled=False)["UUID"]
    send(sqs, url, [f"d{i}" for i in range(5)])
    time.sleep(4)
    assert records(server, fname) == [] and visible(sqs, url) == 5
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert wait_until(lambda: len(records(server, fname)) >= 5, timeout=30)
    send(sqs, url, ["after"])
    assert wait_until(lambda: len(records(server, fname)) >= 6, timeout=30)
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert settled(lam, uuid)["State"] == "Disabled"
    time.sleep(3)  # a poll in flight when it was disabled ends within WAIT_SECONDS
    send(sqs, url, ["while-disabled"])
    time.sleep(4)
    assert sorted(r["body"] for r in records(server, fname)) == sorted([f"d{i}" for i in range(5)] + ["after"])
    assert visible(sqs, url) == 1
    lam.delete_event_source_mapping(UUID=uuid)


def test_a_throttled_function_loses_nothing(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=2)["UUID"]
    bodies = [f"t{i}" for i in range(7)]
    send(sqs, url, bodies)
    time.sleep(5)
    assert records(server, fname) == [] and visible(sqs, url) == 7
    assert "throttled" in lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"]
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=3)
    assert wait_until(lambda: len(records(server, fname)) >= 7, timeout=60)
    time.sleep(2)
    assert sorted(r["body"] for r in records(server, fname)) == sorted(bodies)
    assert wait_until(lambda: visible(sqs, url) == 0, timeout=10)
    lam.delete_event_source_mapping(UUID=uuid)


def test_deleting_the_function_deletes_its_mappings(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    _url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    lam.publish_version(FunctionName=fname)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    one = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname)["UUID"]
    two = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=f"{ARN}:{fname}:live")
    assert two["FunctionArn"] == f"{ARN}:{fname}:live"
    lam.delete_function(FunctionName=fname)
    for uuid in (one, two["UUID"]):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.get_event_source_mapping(UUID=uuid)
    assert lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"] == []


def test_a_restart_mid_stream_loses_nothing(moto, aws, tmp_path, fname) -> None:
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q", VisibilityTimeout="2")
    slow = PRINTING.replace("def handler(event, context):\n", "def handler(event, context):\n"
                            "    import time; time.sleep(0.5)\n")
    env = {**MOTO_ENV, "AWS_ENDPOINT_URL": moto}
    srv = Server(tmp_path / "data", env=env).start()
    try:
        lam = srv.client()
        create_python_function(lam, fname, slow)
        lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=1,
                                        ScalingConfig={"MaximumConcurrency": 2})
        bodies = [f"r{i}" for i in range(40)]
        send(sqs, url, bodies)
        assert wait_until(lambda: len(records(srv, fname)) >= 3, timeout=30)
    finally:
        srv.stop()
    assert len(records(srv, fname)) < 40  # stopped mid-stream
    srv = Server(tmp_path / "data", env=env).start()
    try:
        assert wait_until(lambda: set(bodies) <= {r["body"] for r in records(srv, fname)}, timeout=60)
        assert wait_until(lambda: visible(sqs, url) == 0, timeout=20)
    finally:
        srv.stop()


def cluster_records(node, name: str) -> list[dict]:
    logs = node.client("logs")
    out, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        try:
            page = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", **kw)
        except ClientError:
            return []
        out += [json.loads(e["message"].split("RECORD ", 1)[1]) for e in page["events"] if "RECORD " in e["message"]]
        token = page.get("nextToken")
        if not token:
            return out


def polling(node, uuid: str) -> bool:
    text = "".join(node.output)
    return f"{uuid}: polling arn:" in text and text.rfind(f"{uuid}: polling arn:") > text.rfind(
        f"{uuid}: polling stopped")


def test_cluster_polls_a_mapping_once_and_moves_it_when_its_node_stops(cluster, moto, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q", VisibilityTimeout="5")
    nodes = cluster(2, env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto}).nodes
    lam = nodes[0].client()
    create_python_function(lam, fname, PRINTING)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname)["UUID"]
    assert nodes[1].client().get_event_source_mapping(UUID=uuid)["UUID"] == uuid  # the other node knows it
    first = [f"c{i}" for i in range(20)]
    send(sqs, url, first)
    assert wait_until(lambda: len(cluster_records(nodes[1], fname)) >= 20, timeout=60)
    time.sleep(3)
    assert sorted(r["body"] for r in cluster_records(nodes[1], fname)) == sorted(first)  # each once
    holders = [n for n in nodes if polling(n, uuid)]
    assert len(holders) == 1
    holder = holders[0]
    other = nodes[1] if holder is nodes[0] else nodes[0]
    holder.stop()
    second = [f"d{i}" for i in range(10)]
    send(sqs, url, second)
    assert wait_until(lambda: polling(other, uuid), timeout=30)
    assert wait_until(lambda: {r["body"] for r in cluster_records(other, fname)} >= set(first + second),
                      timeout=60)


def test_fifo_keeps_each_groups_order(server, lam, aws, fname) -> None:
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname[:50]}.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    create_python_function(lam, fname, PRINTING)
    with pytest.raises(ClientError) as err:
        lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=5,
                                        MaximumBatchingWindowInSeconds=1)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    for i in range(12):
        for group in ("g1", "g2"):
            sqs.send_message(QueueUrl=url, MessageBody=f"{group}-{i}", MessageGroupId=group)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, BatchSize=3)["UUID"]
    assert wait_until(lambda: len(records(server, fname)) >= 24, timeout=60)
    seen = records(server, fname)
    for group in ("g1", "g2"):
        bodies = [r["body"] for r in seen if r["attributes"]["MessageGroupId"] == group]
        assert bodies == [f"{group}-{i}" for i in range(12)]
    # moto gives no SequenceNumber; what SQS gives is passed on
    assert all({"MessageGroupId", "MessageDeduplicationId"} <= set(r["attributes"]) for r in seen)
    lam.delete_event_source_mapping(UUID=uuid)


def test_a_user_needs_the_mapping_actions(server, lam, aws, fname) -> None:
    from botocore.config import Config

    sqs = aws("sqs")
    _url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    iam = server.client("iam")
    user = f"{fname[:40]}-u"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="esm", PolicyDocument=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["lambda:CreateEventSourceMapping",
                                                     "lambda:GetEventSourceMapping"], "Resource": "*",
                       "Condition": {"StringEquals": {"lambda:FunctionArn": f"{ARN}:{fname}"}}}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    client = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                          config=Config(retries={"max_attempts": 0}))
    server._clients.append(client)
    uuid = client.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, Enabled=False)["UUID"]
    assert client.get_event_source_mapping(UUID=uuid)["UUID"] == uuid
    with pytest.raises(ClientError) as err:
        client.delete_event_source_mapping(UUID=uuid)
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"event-source-mapping:{uuid}" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        client.create_event_source_mapping(EventSourceArn=queue, FunctionName=f"{fname}-other")
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    lam.delete_event_source_mapping(UUID=uuid)


def test_cluster_moves_a_mapping_when_its_node_dies(cluster, moto, aws, fname) -> None:
    import signal

    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q", VisibilityTimeout="5")
    nodes = cluster(2, env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto}).nodes
    lam = nodes[1].client()
    create_python_function(lam, fname, PRINTING)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname)["UUID"]
    assert wait_until(lambda: any(polling(n, uuid) for n in nodes), timeout=20)
    holder = next(n for n in nodes if polling(n, uuid))
    other = nodes[1] if holder is nodes[0] else nodes[0]
    holder.stop(sig=signal.SIGKILL)  # no clean hand-over: the lease lapses
    bodies = [f"k{i}" for i in range(10)]
    send(sqs, url, bodies)
    assert wait_until(lambda: polling(other, uuid), timeout=30)
    assert wait_until(lambda: {r["body"] for r in cluster_records(other, fname)} >= set(bodies), timeout=60)


def test_filter_criteria_pass_matching_messages_and_consume_the_rest(server, lam, aws, fname) -> None:
    """FilterCriteria on an SQS mapping: JSON bodies matched field by field, plain bodies by a plain-string rule;
    what matches no filter is deleted without an invocation, as Lambda consumes it."""
    sqs = aws("sqs")
    url, queue = make_queue(sqs, f"{fname}-q")
    create_python_function(lam, fname, PRINTING)
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="Invalid filter pattern definition"):
        lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname,
                                        FilterCriteria={"Filters": [{"Pattern": '{"body": {"level": "ERROR"}}'}]})
    filters = {"Filters": [{"Pattern": json.dumps({"body": {"level": ["ERROR"], "ms": [{"numeric": [">", 100]}]}})},
                           {"Pattern": json.dumps({"body": [{"prefix": "urgent:"}]})}]}
    uuid = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fname, FilterCriteria=filters)["UUID"]
    assert lam.get_event_source_mapping(UUID=uuid)["FilterCriteria"] == filters
    send(sqs, url, [json.dumps({"level": "ERROR", "ms": 250}), json.dumps({"level": "ERROR", "ms": 5}),
                    json.dumps({"level": "INFO", "ms": 900}), "urgent: disk full", "routine: all fine"])
    assert wait_until(lambda: visible(sqs, url) == 0, timeout=30)  # every message consumed, passed or not
    time.sleep(1.5)
    assert sorted(r["body"] for r in records(server, fname)) == sorted(
        [json.dumps({"level": "ERROR", "ms": 250}), "urgent: disk full"])
    lam.delete_event_source_mapping(UUID=uuid)
