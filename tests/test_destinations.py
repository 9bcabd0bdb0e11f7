"""Destinations of asynchronous invocations (docs/async.md), end to end: a real server sends Lambda's invocation
record to another function, to SQS and to SNS — the latter two on a moto_server reached through the AWS SDK's own
configuration (AWS_ENDPOINT_URL) — and stops a recursive loop."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.server import Server, create_python_function, wait_until, logged
from tests.services import MOTO_ENV

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
FAILING = "def handler(event, context):\n    raise ValueError('always ' + str(event.get('n')))\n"
ECHO = "def handler(event, context):\n    return {'got': event}\n"
PRINTING = "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n"


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("dest"), env={
        **MOTO_ENV, "AWS_ENDPOINT_URL": moto, "LAMBDAD_ASYNC_RETRY_DELAYS": "0.3,0.3",
        "LAMBDAD_MAX_EVENT_AGE_SECONDS": "3"}).start()
    yield srv
    srv.stop()


def records(server, name: str) -> list[dict]:
    return [json.loads(text) for text in logged(server, name, "RECORD ")]


def starts(server, name: str) -> int:
    out = subprocess.run([sys.executable, "-m", "lambdad", "logs", name, "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.count("START RequestId")


def test_on_failure_to_a_function_gets_lambdas_record(server, lam, fname) -> None:
    create_python_function(lam, fname, FAILING)
    create_python_function(lam, f"{fname}-dest", PRINTING)
    lam.put_function_event_invoke_config(FunctionName=fname, DestinationConfig={
        "OnFailure": {"Destination": f"{ARN}:{fname}-dest"}})
    sent = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"n": 7}')
    request_id = sent["ResponseMetadata"]["RequestId"]
    assert wait_until(lambda: records(server, f"{fname}-dest"), timeout=20)
    (record,) = records(server, f"{fname}-dest")
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"] == {"requestId": request_id, "functionArn": f"{ARN}:{fname}:$LATEST",
                                        "condition": "RetriesExhausted", "approximateInvokeCount": 3}
    assert record["requestPayload"] == {"n": 7}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "always 7"


def test_on_success_to_sqs_and_no_retries_to_sns(server, aws, lam, fname) -> None:
    sqs, sns = aws("sqs"), aws("sns")
    queue = sqs.create_queue(QueueName=f"{fname[:60]}-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_python_function(lam, f"{fname}-ok", ECHO)
    lam.put_function_event_invoke_config(FunctionName=f"{fname}-ok", DestinationConfig={
        "OnSuccess": {"Destination": queue_arn}})
    lam.invoke(FunctionName=f"{fname}-ok", InvocationType="Event", Payload=b'{"hello": "sqs"}')

    def received() -> list:
        return sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])

    messages: list = []
    assert wait_until(lambda: messages.extend(received()) or messages, timeout=20)
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"] == {"got": {"hello": "sqs"}}
    assert "functionError" not in record["responseContext"]

    # OnFailure to an SNS topic (delivered here to a queue subscribed to it), after a single attempt
    topic = sns.create_topic(Name=f"{fname[:60]}-t")["TopicArn"]
    sub_queue = sqs.create_queue(QueueName=f"{fname[:60]}-s")["QueueUrl"]
    sub_arn = sqs.get_queue_attributes(QueueUrl=sub_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sub_arn, Attributes={"RawMessageDelivery": "true"})
    create_python_function(lam, f"{fname}-bad", FAILING)
    lam.put_function_event_invoke_config(FunctionName=f"{fname}-bad", MaximumRetryAttempts=0, DestinationConfig={
        "OnFailure": {"Destination": topic}})
    lam.invoke(FunctionName=f"{fname}-bad", InvocationType="Event", Payload=b'{"n": 1}')
    got: list = []
    assert wait_until(lambda: got.extend(sqs.receive_message(QueueUrl=sub_queue, WaitTimeSeconds=1)
                                         .get("Messages", [])) or got, timeout=20)
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    sqs.close()
    sns.close()


def test_an_event_too_old_goes_to_on_failure_with_event_age_exceeded(server, lam, fname) -> None:
    """A throttled function (reserved concurrency 0) never runs the event; past its maximum age (3 s on this
    server) it is dropped to its OnFailure destination."""
    create_python_function(lam, fname, ECHO)
    create_python_function(lam, f"{fname}-dest", PRINTING)
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(FunctionName=fname, DestinationConfig={
        "OnFailure": {"Destination": f"{ARN}:{fname}-dest"}})
    lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"late": true}')
    assert wait_until(lambda: records(server, f"{fname}-dest"), timeout=30)
    (record,) = records(server, f"{fname}-dest")
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"late": True} and "responseContext" not in record
    assert starts(server, fname) == 0


def test_a_recursive_loop_is_stopped_after_16_invocations(server, lam, fname) -> None:
    create_python_function(lam, fname, "def handler(event, context):\n    return 'again'\n")
    lam.put_function_event_invoke_config(FunctionName=fname, DestinationConfig={
        "OnSuccess": {"Destination": f"{ARN}:{fname}"}})  # its own destination: a loop
    lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"loop": 0}')
    assert wait_until(lambda: starts(server, fname) >= 16, timeout=60)
    time.sleep(2)
    assert starts(server, fname) == 16
    assert any("recursive loop detected" in line for line in server.output)


def test_a_dead_letter_queue_gets_the_failed_event(server, aws, lam, fname) -> None:
    """DeadLetterConfig.TargetArn (SQS): the original event as the message, with RequestID, ErrorCode and
    ErrorMessage attributes, as Lambda sends it; a target that is not SQS or SNS is refused."""
    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=f"{fname[:60]}-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with pytest.raises(Exception) as refused:
        create_python_function(lam, fname, FAILING, DeadLetterConfig={"TargetArn": "arn:aws:s3:::bucket"})
    assert "InvalidParameterValueException" in str(refused.value)
    config = create_python_function(lam, fname, FAILING, DeadLetterConfig={"TargetArn": queue_arn})
    assert config["DeadLetterConfig"] == {"TargetArn": queue_arn}
    lam.put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1)
    sent = lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"n": 42}')
    got: list = []
    assert wait_until(lambda: got.extend(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1,
                                                             MessageAttributeNames=["All"]).get("Messages", []))
                      or got, timeout=20)
    message = got[0]
    assert json.loads(message["Body"]) == {"n": 42}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {"RequestID": sent["ResponseMetadata"]["RequestId"], "ErrorCode": "200",
                          "ErrorMessage": "always 42"}
    assert starts(server, fname) == 2  # one retry, then the dead-letter queue
    lam.update_function_configuration(FunctionName=fname, DeadLetterConfig={"TargetArn": ""})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName=fname)
    sqs.close()


def test_a_kill_during_retries_loses_nothing(moto, aws, tmp_path, fname) -> None:
    """kill -9 between the attempts of a failing event: the restarted server goes on with its retries, and its
    OnFailure record arrives, once, counting every attempt."""
    import signal

    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=f"{fname[:60]}-k")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    srv = Server(tmp_path / "data", env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto,
                                         "LAMBDAD_ASYNC_RETRY_DELAYS": "2,2"}).start()
    try:
        lam = srv.client()
        create_python_function(lam, fname, FAILING)
        lam.put_function_event_invoke_config(FunctionName=fname, DestinationConfig={
            "OnFailure": {"Destination": queue_arn}})
        lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"n": 9}')
        assert wait_until(lambda: starts(srv, fname) >= 1, timeout=15)
        srv.stop(signal.SIGKILL)
        srv.start()
        got: list = []
        assert wait_until(lambda: got.extend(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
                                             .get("Messages", [])) or got, timeout=30)
        record = json.loads(got[0]["Body"])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestPayload"] == {"n": 9}
        assert record["requestContext"]["approximateInvokeCount"] >= 3  # the attempt cut short may run again
        time.sleep(1)
        assert not sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages")  # sent once
    finally:
        srv.stop()
        sqs.close()
