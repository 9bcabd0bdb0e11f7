"""Every event source through the aws CLI, as docs/event-sources.md and docs/event-sources-rabbitmq.md show it: the
queue or stream made with the aws CLI (on a moto_server; RabbitMQ on the machine's broker), the mapping made with
`aws lambda create-event-source-mapping`, a message put with the aws CLI, and the function's log showing it ran."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, logged, wait_until
from tests.services import MOTO_ENV, answers

PRINTING = ("import json\ndef handler(event, context):\n"
            "    print('EVENT ' + json.dumps(event))\n")


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("esm-cli"), env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto}).start()
    yield srv
    srv.stop()


def aws(*args: str, endpoint: str, lambdad: bool = False) -> dict:
    """The aws CLI as a user runs it: the server's keys for lambdad, moto's for the queues and streams."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY} if lambdad else MOTO_ENV)
    env.pop("AWS_PROFILE", None)
    out = subprocess.run(["aws", *args, "--endpoint-url", endpoint, "--output", "json"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else {}


def events(server: Server, name: str) -> list[dict]:
    return [json.loads(text) for text in logged(server, name, "EVENT ")]


def mapped(server: Server, fname: str, *args: str) -> str:
    create_python_function(server.client(), fname, PRINTING)
    made = aws("lambda", "create-event-source-mapping", "--function-name", fname, *args,
               endpoint=server.endpoint, lambdad=True)
    assert made["State"] == "Creating"
    uuid: str = made["UUID"]
    assert wait_until(lambda: aws("lambda", "get-event-source-mapping", "--uuid", uuid, endpoint=server.endpoint,
                                  lambdad=True)["State"] == "Enabled", timeout=15)
    return uuid


def test_an_sqs_queue_through_the_aws_cli(server, moto, fname) -> None:
    url = aws("sqs", "create-queue", "--queue-name", fname, endpoint=moto)["QueueUrl"]
    arn = aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn",
              endpoint=moto)["Attributes"]["QueueArn"]
    mapped(server, fname, "--event-source-arn", arn, "--batch-size", "10")
    aws("sqs", "send-message", "--queue-url", url, "--message-body", "hello from the CLI", endpoint=moto)
    assert wait_until(lambda: events(server, fname), timeout=20)
    record = events(server, fname)[0]["Records"][0]
    assert (record["body"], record["eventSource"], record["eventSourceARN"]) == ("hello from the CLI", "aws:sqs", arn)


def test_a_kinesis_stream_through_the_aws_cli(server, moto, fname) -> None:
    aws("kinesis", "create-stream", "--stream-name", fname, "--shard-count", "1", endpoint=moto)
    arn = aws("kinesis", "describe-stream-summary", "--stream-name", fname,
              endpoint=moto)["StreamDescriptionSummary"]["StreamARN"]
    mapped(server, fname, "--event-source-arn", arn, "--starting-position", "TRIM_HORIZON", "--batch-size", "100")
    aws("kinesis", "put-record", "--stream-name", fname, "--partition-key", "k1", "--data", "hello",
        endpoint=moto)  # aws CLI v1 base64-encodes a blob given as text
    assert wait_until(lambda: events(server, fname), timeout=20)
    record = events(server, fname)[0]["Records"][0]
    assert (record["eventSource"], record["eventSourceARN"]) == ("aws:kinesis", arn)
    assert (record["kinesis"]["partitionKey"], record["kinesis"]["data"]) == ("k1", "aGVsbG8=")


def test_a_dynamodb_stream_through_the_aws_cli(server, moto, fname) -> None:
    table = aws("dynamodb", "create-table", "--table-name", fname, "--attribute-definitions",
                "AttributeName=id,AttributeType=S", "--key-schema", "AttributeName=id,KeyType=HASH",
                "--billing-mode", "PAY_PER_REQUEST", "--stream-specification",
                "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES", endpoint=moto)
    arn = table["TableDescription"]["LatestStreamArn"]
    mapped(server, fname, "--event-source-arn", arn, "--starting-position", "LATEST")
    aws("dynamodb", "put-item", "--table-name", fname, "--item", '{"id": {"S": "a1"}, "n": {"N": "7"}}',
        endpoint=moto)
    assert wait_until(lambda: events(server, fname), timeout=20)
    record = events(server, fname)[0]["Records"][0]
    assert (record["eventName"], record["eventSource"], record["eventSourceARN"]) == ("INSERT", "aws:dynamodb", arn)
    assert record["dynamodb"]["Keys"] == {"id": {"S": "a1"}}
    assert record["dynamodb"]["NewImage"] == {"id": {"S": "a1"}, "n": {"N": "7"}}


def test_a_rabbitmq_queue_through_the_aws_cli(server, fname, tmp_path) -> None:
    if not answers("127.0.0.1", 5672):
        pytest.skip("needs RabbitMQ on 127.0.0.1:5672 with guest/guest (CI has it)")
    aiormq = pytest.importorskip("aiormq")
    broker = f"arn:aws:mq:us-east-1:123456789012:broker:cli:b-{secrets.token_hex(4)}-8a2d-4b4e-9d43-2c5d9f0e1a11"
    secret = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:cli-{secrets.token_hex(3)}"
    queue = f"cli-{secrets.token_hex(4)}"

    def lambdad(*args: str, stdin: str | None = None) -> None:
        out = subprocess.run([sys.executable, "-m", "lambdad", "brokers", *args, "--data-dir", str(server.data_dir)],
                             capture_output=True, text=True, timeout=30, input=stdin)
        assert out.returncode == 0, out.stderr

    lambdad("add", broker, "--url", "amqp://127.0.0.1:5672")
    lambdad("add-secret", secret, "--username", "guest", "--password-file", "-", stdin="guest\n")

    async def declare_then(publish: bool) -> None:
        connection = await aiormq.connect("amqp://guest:guest@127.0.0.1:5672/")
        try:
            channel = await connection.channel()
            if publish:
                await channel.basic_publish(b'{"order": 42}', routing_key=queue)
            else:
                await channel.queue_declare(queue, auto_delete=False)
        finally:
            await connection.close()

    asyncio.run(declare_then(publish=False))
    try:
        mapped(server, fname, "--event-source-arn", broker, "--queues", queue,
               "--source-access-configurations", f"Type=BASIC_AUTH,URI={secret}", "Type=VIRTUAL_HOST,URI=/",
               "--batch-size", "100", "--maximum-batching-window-in-seconds", "1")
        asyncio.run(declare_then(publish=True))
        assert wait_until(lambda: events(server, fname), timeout=20)
        event = events(server, fname)[0]
        assert event["eventSource"] == "aws:rmq" and event["eventSourceArn"] == broker
        (message,) = event["rmqMessagesByQueue"][f"{queue}::/"]
        assert message["data"] == "eyJvcmRlciI6IDQyfQ=="  # base64 of the body
    finally:
        async def delete() -> None:
            connection = await aiormq.connect("amqp://guest:guest@127.0.0.1:5672/")
            try:
                await (await connection.channel()).queue_delete(queue)
            finally:
                await connection.close()
        asyncio.run(delete())
