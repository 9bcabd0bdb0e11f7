"""Stream event sources (docs/event-sources.md, "Kinesis and DynamoDB Streams"), end to end: Kinesis streams and
DynamoDB Streams on a moto_server (reached through AWS_ENDPOINT_URL) polled by a real server that invokes real
functions; what they saw is read from their logs (``lambdad logs``)."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from tests.server import Server, create_python_function, wait_until, logged
from tests.services import MOTO_ENV

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
PRINTING = ("import json\ndef handler(event, context):\n"
            "    for r in event['Records']:\n        print('RECORD ' + json.dumps(r))\n"
            "    print('BATCH ' + str(len(event['Records'])))\n")
# fails any batch holding a record whose data is "bad"
FAILING = ("import json, base64\ndef handler(event, context):\n"
           "    datas = [base64.b64decode(r['kinesis']['data']).decode() for r in event['Records']]\n"
           "    print('BATCH ' + json.dumps(datas))\n"
           "    if 'bad' in datas:\n        raise Exception('bad record')\n"
           "    for r in event['Records']:\n        print('RECORD ' + json.dumps(r))\n")
# reports the records whose data is "bad" (once each: a marker file in /tmp remembers)
PARTIAL = ("import json, base64, os\ndef handler(event, context):\n"
           "    failures = []\n"
           "    for r in event['Records']:\n"
           "        data = base64.b64decode(r['kinesis']['data']).decode()\n"
           "        mark = '/tmp/' + context.function_name + '-' + data\n"
           "        if data == 'bad' and not os.path.exists(mark):\n"
           "            open(mark, 'w').close()\n"
           "            failures.append({'itemIdentifier': r['kinesis']['sequenceNumber']})\n"
           "            break\n"
           "        print('RECORD ' + json.dumps(r))\n"
           "    return {'batchItemFailures': failures}\n")


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("streams"), env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto}).start()
    yield srv
    srv.stop()


def records(server, name: str) -> list[dict]:
    return [json.loads(text) for text in logged(server, name, "RECORD ")]


def datas(server, name: str) -> list[str]:
    return [base64.b64decode(r["kinesis"]["data"]).decode() for r in records(server, name)]


def make_stream(kinesis, name: str, shards: int = 1) -> str:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def put(kinesis, name: str, items: list[str], key: str = "k") -> list[str]:
    return [kinesis.put_record(StreamName=name, Data=item.encode(), PartitionKey=key)["SequenceNumber"]
            for item in items]


def settled(lam, uuid: str) -> dict:
    found: dict = {}
    assert wait_until(lambda: found.update(lam.get_event_source_mapping(UUID=uuid))
                      or found["State"] in ("Enabled", "Disabled"), timeout=10)
    return found


def test_validation(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, PRINTING)

    def refused(**kw) -> ClientError:
        with pytest.raises(ClientError) as err:
            lam.create_event_source_mapping(**{"EventSourceArn": stream, "FunctionName": fname, **kw})
        return err.value

    assert refused().response["Error"]["Code"] == "InvalidParameterValueException"  # no StartingPosition
    assert refused(StartingPosition="AT_TIMESTAMP").response["Error"]["Code"] == "InvalidParameterValueException"
    for bad in ({"MaximumRecordAgeInSeconds": 30}, {"Queues": ["q"]}, {"ScalingConfig": {"MaximumConcurrency": 2}},
                {"DestinationConfig": {"OnFailure": {"Destination": f"{ARN}:{fname}"}}}):
        assert refused(StartingPosition="LATEST", **bad).response["Error"]["Code"] == "InvalidParameterValueException"
    for bad in ({"BatchSize": 10001}, {"ParallelizationFactor": 11}, {"MaximumRetryAttempts": 10001}):
        assert refused(StartingPosition="LATEST", **bad).response["Error"]["Code"] in (
            "ValidationException", "InvalidParameterValueException")
    err = refused(StartingPosition="LATEST", EventSourceArn=stream + "-none")
    assert err.response["Error"]["Code"] == "InvalidParameterValueException"
    made = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           Enabled=False)
    assert made["BatchSize"] == 100 and made["StartingPosition"] == "TRIM_HORIZON"
    assert made["MaximumRetryAttempts"] == -1 and made["MaximumRecordAgeInSeconds"] == -1
    assert made["ParallelizationFactor"] == 1 and made["BisectBatchOnFunctionError"] is False
    assert made["MaximumBatchingWindowInSeconds"] == 0
    assert refused(StartingPosition="LATEST").response["Error"]["Code"] == "ResourceConflictException"
    lam.delete_event_source_mapping(UUID=made["UUID"])


def test_every_record_once_in_order_per_shard(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname, shards=2)
    create_python_function(lam, fname, PRINTING)
    sent = {key: put(kinesis, fname, [f"{key}{i}" for i in range(15)], key=key) for key in ("a", "b", "c")}
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=10, MaximumBatchingWindowInSeconds=1)["UUID"]
    assert wait_until(lambda: len(records(server, fname)) >= 45, timeout=30)
    time.sleep(1)
    seen = records(server, fname)
    assert len(seen) == 45
    for key, sequences in sent.items():
        assert [r["kinesis"]["sequenceNumber"] for r in seen if r["kinesis"]["partitionKey"] == key] == sequences
    assert max(int(b) for b in logged(server, fname, "BATCH ")) <= 10
    record = seen[0]
    assert set(record) == {"kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn",
                           "awsRegion", "eventSourceARN"}
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert record["eventVersion"] == "1.0" and record["eventSourceARN"] == stream
    assert record["awsRegion"] == "us-east-1" and record["invokeIdentityArn"] == f"{ARN}:{fname}"
    shard, sequence = record["eventID"].split(":")
    assert re.fullmatch(r"shardId-\d{12}", shard) and sequence == record["kinesis"]["sequenceNumber"]
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert settled(lam, uuid)["LastProcessingResult"] == "OK"
    lam.delete_event_source_mapping(UUID=uuid)


def test_latest_and_disable_enable(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, PRINTING)
    put(kinesis, fname, ["old1", "old2"])
    time.sleep(0.1)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="LATEST",
                                           BatchSize=5)["UUID"]
    put(kinesis, fname, ["new1", "new2"])
    assert wait_until(lambda: len(datas(server, fname)) >= 2, timeout=15)
    assert datas(server, fname) == ["new1", "new2"]
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    settled(lam, uuid)
    time.sleep(1)
    put(kinesis, fname, ["while-off1", "while-off2"])
    time.sleep(1.5)
    assert datas(server, fname) == ["new1", "new2"]
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)  # resumes after its checkpoint
    assert wait_until(lambda: len(datas(server, fname)) >= 4, timeout=15)
    time.sleep(1)
    assert datas(server, fname) == ["new1", "new2", "while-off1", "while-off2"]
    lam.delete_event_source_mapping(UUID=uuid)


def test_error_retried_then_on_failure_record(server, lam, aws, fname) -> None:
    kinesis, sqs = aws("kinesis"), aws("sqs")
    stream = make_stream(kinesis, fname)
    url = sqs.create_queue(QueueName=f"{fname}-dlq"[:70])["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_python_function(lam, fname, FAILING)
    sequences = put(kinesis, fname, ["ok1", "bad", "ok2"])
    put(kinesis, fname, ["after"])
    uuid = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON", BatchSize=3,
        MaximumRetryAttempts=2, DestinationConfig={"OnFailure": {"Destination": queue}})["UUID"]
    assert wait_until(lambda: "after" in datas(server, fname), timeout=20)
    assert datas(server, fname) == ["after"]  # the failed batch was skipped as a whole
    batches = [json.loads(b) for b in logged(server, fname, "BATCH ")]
    assert batches[:3] == [["ok1", "bad", "ok2"]] * 3  # the first try and 2 retries
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    failure = json.loads(got[0]["Body"])
    assert set(failure) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["functionArn"] == f"{ARN}:{fname}"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                          "functionError": "Unhandled"}
    info = failure["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == stream and info["batchSize"] == 3
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequences[0], sequences[2])
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    lam.delete_event_source_mapping(UUID=uuid)


def test_bisect_isolates_the_bad_record(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, FAILING)
    put(kinesis, fname, ["a", "b", "bad", "c"])
    uuid = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON", BatchSize=4,
        MaximumRetryAttempts=0, BisectBatchOnFunctionError=True)["UUID"]
    assert wait_until(lambda: "c" in datas(server, fname), timeout=20)
    assert datas(server, fname) == ["a", "b", "c"]
    batches = [json.loads(b) for b in logged(server, fname, "BATCH ")]
    assert batches == [["a", "b", "bad", "c"], ["a", "b"], ["bad", "c"], ["bad"], ["c"]]
    lam.delete_event_source_mapping(UUID=uuid)


def test_report_batch_item_failures(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, PARTIAL)
    put(kinesis, fname, ["a", "b", "bad", "c"])
    uuid = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON", BatchSize=4,
        FunctionResponseTypes=["ReportBatchItemFailures"])["UUID"]
    assert wait_until(lambda: "c" in datas(server, fname), timeout=20)
    time.sleep(0.5)
    assert datas(server, fname) == ["a", "b", "bad", "c"]  # retried from the failed record, not before it
    lam.delete_event_source_mapping(UUID=uuid)


def test_filter_criteria_on_kinesis_data(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, PRINTING)
    put(kinesis, fname, [json.dumps({"kind": "keep", "n": 1}), json.dumps({"kind": "drop"}), "not json",
                         json.dumps({"kind": "keep", "n": 2})])
    uuid = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})}]})["UUID"]
    assert wait_until(lambda: len(datas(server, fname)) >= 2, timeout=15)
    time.sleep(1)
    assert [json.loads(d)["n"] for d in datas(server, fname)] == [1, 2]
    lam.delete_event_source_mapping(UUID=uuid)


def test_dynamodb_stream_shapes(server, lam, aws, fname) -> None:
    ddb = aws("dynamodb")
    table = ddb.create_table(TableName=fname, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST",
                             StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    stream = table["TableDescription"]["LatestStreamArn"]
    create_python_function(lam, fname, PRINTING)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname,
                                           StartingPosition="TRIM_HORIZON", BatchSize=10)["UUID"]
    ddb.put_item(TableName=fname, Item={"id": {"S": "1"}, "v": {"N": "1"}})
    ddb.put_item(TableName=fname, Item={"id": {"S": "1"}, "v": {"N": "2"}})
    ddb.delete_item(TableName=fname, Key={"id": {"S": "1"}})
    assert wait_until(lambda: len(records(server, fname)) >= 3, timeout=20)
    seen = records(server, fname)
    assert [r["eventName"] for r in seen] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = seen
    for r in seen:
        assert r["eventSource"] == "aws:dynamodb" and r["eventSourceARN"] == stream
        assert r["awsRegion"] == "us-east-1" and r["eventID"] and r["eventVersion"]
        assert r["dynamodb"]["Keys"] == {"id": {"S": "1"}}
        assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(r["dynamodb"]["ApproximateCreationDateTime"], (int, float))
        assert r["dynamodb"]["SequenceNumber"] and r["dynamodb"]["SizeBytes"] > 0
    assert insert["dynamodb"]["NewImage"] == {"id": {"S": "1"}, "v": {"N": "1"}}
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["v"] == {"N": "1"} and modify["dynamodb"]["NewImage"]["v"] == {"N": "2"}
    assert remove["dynamodb"]["OldImage"]["v"] == {"N": "2"} and "NewImage" not in remove["dynamodb"]
    with pytest.raises(ClientError) as err:
        lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="AT_TIMESTAMP",
                                        StartingPositionTimestamp=time.time())
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.delete_event_source_mapping(UUID=uuid)


def test_split_children_after_their_parent(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, PRINTING)
    keys = [f"key{i}" for i in range(6)]
    for key in keys:
        put(kinesis, fname, [f"{key}-before"], key=key)
    kinesis.split_shard(StreamName=fname, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    for key in keys:
        put(kinesis, fname, [f"{key}-after"], key=key)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=2)["UUID"]
    assert wait_until(lambda: len(datas(server, fname)) >= 12, timeout=20)
    seen = datas(server, fname)
    assert sorted(seen) == sorted([f"{k}-before" for k in keys] + [f"{k}-after" for k in keys])
    assert seen[:6] == [f"{k}-before" for k in keys]  # the parent first, to its end
    lam.delete_event_source_mapping(UUID=uuid)


# ParallelizationFactor: the function's own record of each batch (when it ran, which records), to measure overlap
SPANNING = ("import json, time\ndef handler(event, context):\n"
            "    start = time.time()\n    time.sleep(SLEEP)\n"
            "    keys = [r['kinesis']['partitionKey'] if 'kinesis' in r else r['dynamodb']['Keys']['id']['S']"
            " for r in event['Records']]\n"
            "    marks = [r['kinesis']['sequenceNumber'] if 'kinesis' in r else r['dynamodb']['NewImage']['v']['N']"
            " for r in event['Records']]\n"
            "    print('SPAN ' + json.dumps({'start': start, 'end': time.time(), 'records': list(zip(keys, marks))}))\n")


def spans(server, name: str) -> list[dict]:
    return sorted((json.loads(text) for text in logged(server, name, "SPAN ")), key=lambda s: s["start"])


def most_at_once(seen: list[dict]) -> int:
    """The most batches that ran at the same moment (by the function's own clock)."""
    return max((sum(1 for o in seen if o["start"] <= s["start"] < o["end"]) for s in seen), default=0)


def first_seen(seen: list[dict]) -> dict[str, list[str]]:
    """Per key, its records in the order they were first handled."""
    out: dict[str, list[str]] = {}
    for span in seen:
        for key, mark in span["records"]:
            if mark not in out.setdefault(key, []):
                out[key].append(mark)
    return out


def keys_over_lanes(lanes: int, per_lane: int, item: bool = False) -> list[str]:
    """Keys that spread evenly over the lanes (as the poller routes them)."""
    from lambdad.esm.lanes import lane_of

    chosen: dict[int, list[str]] = {lane: [] for lane in range(lanes)}
    for i in range(1000):
        key = f"key{i}"
        record = {"dynamodb": {"Keys": {"id": {"S": key}}}} if item else {"PartitionKey": key}
        lane = lane_of(record, lanes)
        if len(chosen[lane]) < per_lane:
            chosen[lane].append(key)
    return [key for i in range(per_lane) for lane in range(lanes) for key in chosen[lane][i:i + 1]]


def put_interleaved(kinesis, name: str, keys: list[str], each: int) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {key: [] for key in keys}
    for i in range(each):
        for key in keys:
            sent[key] += put(kinesis, name, [f"{key}-{i}"], key=key)
    return sent


def test_parallelization_factor_runs_batches_of_a_shard_at_once(server, lam, aws, fname) -> None:
    """Factor 3: up to three batches of the one shard at once (never more), each partition key's records in order."""
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, SPANNING.replace("SLEEP", "1.0"))
    keys = keys_over_lanes(3, 2)
    sent = put_interleaved(kinesis, fname, keys, 4)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=2, ParallelizationFactor=3)["UUID"]
    assert lam.get_event_source_mapping(UUID=uuid)["ParallelizationFactor"] == 3
    assert wait_until(lambda: sum(len(s["records"]) for s in spans(server, fname)) >= 24, timeout=40)
    time.sleep(0.5)
    seen = spans(server, fname)
    assert sorted(mark for s in seen for _, mark in s["records"]) == sorted(q for qs in sent.values() for q in qs)
    assert first_seen(seen) == sent  # each key's records in order, none twice
    assert 2 <= most_at_once(seen) <= 3
    assert max(len(s["records"]) for s in seen) <= 2
    lam.delete_event_source_mapping(UUID=uuid)


def test_parallelization_factor_failures_stay_in_their_lane(server, lam, aws, fname) -> None:
    """Factor 2: a failing record is retried, given up and reported to OnFailure within its lane, while the other
    lane's keys go on; every other record handled, in order per key."""
    kinesis, sqs = aws("kinesis"), aws("sqs")
    stream = make_stream(kinesis, fname)
    url = sqs.create_queue(QueueName=f"{fname}-dlq"[:70])["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_python_function(lam, fname, FAILING)
    first, second = keys_over_lanes(2, 1)
    sent_first = put(kinesis, fname, ["a0", "bad", "a1"], key=first)
    put(kinesis, fname, ["b0", "b1", "b2"], key=second)
    uuid = lam.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON", BatchSize=1,
        ParallelizationFactor=2, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue}})["UUID"]
    assert wait_until(lambda: {"a1", "b2"} <= set(datas(server, fname)), timeout=30)
    time.sleep(0.5)
    seen = datas(server, fname)
    assert sorted(seen) == ["a0", "a1", "b0", "b1", "b2"]
    assert [d for d in seen if d.startswith("a")] == ["a0", "a1"] and [d for d in seen if d.startswith("b")] == [
        "b0", "b1", "b2"]
    failure = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"])
    info = failure["KinesisBatchInfo"]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == sent_first[1] and info["batchSize"] == 1
    lam.delete_event_source_mapping(UUID=uuid)

def test_parallelization_factor_update_keeps_the_position(server, lam, aws, fname) -> None:
    """From 1 to 3 mid-stream: the new poller resumes after the checkpoint (nothing skipped, keys in order) and
    then runs batches side by side."""
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, SPANNING.replace("SLEEP", "0.3"))
    keys = keys_over_lanes(3, 2)
    sent = put_interleaved(kinesis, fname, keys, 8)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=2)["UUID"]
    assert wait_until(lambda: len(spans(server, fname)) >= 3, timeout=20)
    assert most_at_once(spans(server, fname)) == 1
    changed = time.time()
    lam.update_event_source_mapping(UUID=uuid, ParallelizationFactor=3)
    assert settled(lam, uuid)["ParallelizationFactor"] == 3
    assert wait_until(lambda: len(first_seen(spans(server, fname)).get(keys[-1], [])) == 8, timeout=40)
    assert wait_until(lambda: first_seen(spans(server, fname)) == sent, timeout=10)
    later = [s for s in spans(server, fname) if s["start"] > changed + 0.5]
    assert most_at_once(later) >= 2
    lam.delete_event_source_mapping(UUID=uuid)


def test_parallelization_factor_on_dynamodb_keeps_each_item_in_order(server, lam, aws, fname) -> None:
    ddb = aws("dynamodb")
    table = ddb.create_table(TableName=fname, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST",
                             StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    stream = table["TableDescription"]["LatestStreamArn"]
    create_python_function(lam, fname, SPANNING.replace("SLEEP", "0.5"))
    items = keys_over_lanes(3, 2, item=True)
    for v in range(1, 5):
        for item in items:
            ddb.put_item(TableName=fname, Item={"id": {"S": item}, "v": {"N": str(v)}})
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=2, ParallelizationFactor=3)["UUID"]
    assert wait_until(lambda: sum(len(s["records"]) for s in spans(server, fname)) >= 24, timeout=40)
    seen = spans(server, fname)
    assert first_seen(seen) == {item: ["1", "2", "3", "4"] for item in items}
    assert 2 <= most_at_once(seen) <= 3
    lam.delete_event_source_mapping(UUID=uuid)


WINDOWED = ("import json\ndef handler(event, context):\n"
            "    state = dict(event['state'])\n"
            "    if event['isFinalInvokeForWindow']:\n"
            "        print('FINAL ' + json.dumps({'state': state, 'window': event['window'],"
            " 'n': len(event['Records']),"
            " 'shardId': event['shardId'], 'arn': event['eventSourceARN']}))\n"
            "        return {}\n"
            "    print('WINDOWED ' + json.dumps(state))\n"
            "    state['count'] = state.get('count', 0) + len(event['Records'])\n"
            "    return {'state': state}\n")


def test_tumbling_window_carries_state(server, lam, aws, fname) -> None:
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, WINDOWED)
    put(kinesis, fname, [f"r{i}" for i in range(6)])
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=2, TumblingWindowInSeconds=2)["UUID"]
    assert lam.get_event_source_mapping(UUID=uuid)["TumblingWindowInSeconds"] == 2

    def finals() -> list[dict]:
        return [json.loads(text) for text in logged(server, fname, "FINAL ")]

    assert wait_until(lambda: sum(f["state"].get("count", 0) for f in finals()) >= 6, timeout=20)
    assert sum(f["state"]["count"] for f in finals()) == 6  # every record counted once, across the windows
    for final in finals():
        assert final["n"] == 0 and final["shardId"] == "shardId-000000000000" and final["arn"] == stream
        assert final["window"]["start"].endswith("Z") and final["window"]["end"].endswith("Z")
    states = [json.loads(text) for text in logged(server, fname, "WINDOWED ")]
    assert any(state.get("count") for state in states)  # the state was carried to the window's next batch
    lam.delete_event_source_mapping(UUID=uuid)


def test_tumbling_windows_per_lane(server, lam, aws, fname) -> None:
    """Factor 3 with a tumbling window: each lane carries its own window state (the keys of one lane only), and
    every record is counted once across the lanes' final invocations."""
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, WINDOWED.replace(
        "state['count'] = state.get('count', 0) + len(event['Records'])",
        "state['count'] = state.get('count', 0) + len(event['Records'])\n"
        "    state['keys'] = sorted(set(state.get('keys', [])) | {r['kinesis']['partitionKey'] for r in event['Records']})"))
    keys = keys_over_lanes(3, 2)
    put_interleaved(kinesis, fname, keys, 3)
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=2, TumblingWindowInSeconds=2, ParallelizationFactor=3)["UUID"]

    def finals() -> list[dict]:
        return [json.loads(text) for text in logged(server, fname, "FINAL ")]

    assert wait_until(lambda: sum(f["state"].get("count", 0) for f in finals()) >= 18, timeout=30)
    time.sleep(0.5)
    assert sum(f["state"]["count"] for f in finals()) == 18
    lanes = {frozenset(keys[i::3]) for i in range(3)}
    for final in finals():
        assert final["n"] == 0 and final["shardId"] == "shardId-000000000000"
        assert any(set(final["state"]["keys"]) <= lane for lane in lanes)  # one lane's keys: its own state
    lam.delete_event_source_mapping(UUID=uuid)

def test_restart_resumes_after_the_checkpoint(server, lam, aws, fname) -> None:
    """The module's server is stopped and started again mid-stream (the tests after it run on the new one)."""
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    slow = PRINTING.replace("def handler(event, context):\n", "def handler(event, context):\n"
                            "    import time; time.sleep(0.3)\n")
    create_python_function(lam, fname, slow)
    sent = put(kinesis, fname, [f"r{i}" for i in range(40)])
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                    BatchSize=4)
    assert wait_until(lambda: len(records(server, fname)) >= 8, timeout=20)
    server.stop()
    before = len(records(server, fname))
    assert before < 40
    server.start()
    assert wait_until(lambda: len({r["kinesis"]["sequenceNumber"] for r in records(server, fname)}) >= 40,
                      timeout=30)
    seen = [r["kinesis"]["sequenceNumber"] for r in records(server, fname)]
    first_seen = list(dict.fromkeys(seen))
    assert first_seen == sent  # nothing skipped, in order
    assert len(seen) - len(sent) <= 4  # at most the batch in flight at the stop again


def test_restart_with_parallel_batches_skips_nothing(server, lam, aws, fname) -> None:
    """Factor 3, one lane slow (its keys' batches take 1 s, the others' 0.1 s), the server stopped mid-stream while
    the fast lanes are far ahead of it: the checkpoint stood before the slow lane's lowest unfinished record, so
    after the restart every record is handled, each key's first in order."""
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    keys = keys_over_lanes(3, 2)
    slow = keys[0::3]  # the keys of lane 0
    create_python_function(lam, fname, SPANNING.replace(
        "SLEEP", f"1.0 if event['Records'][0]['kinesis']['partitionKey'] in {slow!r} else 0.1"), Timeout=10)
    sent = put_interleaved(kinesis, fname, keys, 10)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                    BatchSize=3, ParallelizationFactor=3)

    def handled(among: list[str]) -> int:
        return sum(len(v) for k, v in first_seen(spans(server, fname)).items() if k in among)

    assert wait_until(lambda: handled(keys) - handled(slow) >= 30, timeout=30)
    assert handled(slow) <= 14  # the slow lane is behind: records below the fast lanes' are unfinished
    server.stop()
    server.start()
    assert wait_until(lambda: handled(keys) >= 60, timeout=60)
    assert first_seen(spans(server, fname)) == sent  # nothing skipped; each key's records first seen in order

def test_a_throttled_function_skips_nothing(server, lam, aws, fname) -> None:
    """Reserved concurrency 0: the shard's batch is retried (throttles are not retry attempts, and the batch is
    not sent to OnFailure); raised, every record arrives once, in order."""
    kinesis = aws("kinesis")
    stream = make_stream(kinesis, fname)
    create_python_function(lam, fname, PRINTING)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    sent = put(kinesis, fname, [f"t{i}" for i in range(6)])
    uuid = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=fname, StartingPosition="TRIM_HORIZON",
                                           BatchSize=4, MaximumRetryAttempts=0)["UUID"]
    time.sleep(4)
    assert records(server, fname) == []
    assert "throttled" in lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"].lower()
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=2)
    assert wait_until(lambda: len(records(server, fname)) >= 6, timeout=60)
    time.sleep(1)
    assert [r["kinesis"]["sequenceNumber"] for r in records(server, fname)] == sent
    lam.delete_event_source_mapping(UUID=uuid)
