"""SQS → function through an event source mapping, against a plain boto3 consumer loop on the same moto queue.

    python3 benchmarks/sqs_bench.py [--n 3000] [--json]

Both sides drain a queue of ``n`` messages on one moto_server: the floor is a boto3 loop in this process
(ReceiveMessage of 10 with a 1 s long poll, DeleteMessageBatch of what it got, until it has consumed ``n``); the
mapping (BatchSize 10, no window, default scaling) invokes a Python function that returns at once, then deletes
each batch. The mapping's time runs from CreateEventSourceMapping until the queue reports no message visible or
in flight (polled every 0.1 s), so it includes the poller's start (a reconcile, at most 1 s) and the function's
cold start. Printed: messages per second of each and their ratio. The script starts its own moto_server and
``lambdad serve`` (port 0, temp data dir), and stops both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402

from benchmarks.harness import say  # noqa: E402
from tests.server import Server, create_python_function  # noqa: E402
from tests.services import MOTO_ENV, moto_server  # noqa: E402

CODE = "def handler(event, context):\n    return None\n"
FUNCTION = "sqs-bench"


def fill(sqs, name: str, n: int) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for start in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps({"n": start + i})}
                                                      for i in range(min(10, n - start))])
    return url, arn


def left(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def plain_loop(sqs, url: str, n: int) -> float:
    done, started = 0, time.perf_counter()
    while done < n:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if got:
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                            for i, m in enumerate(got)])
            done += len(got)
    return time.perf_counter() - started


def measure(n: int) -> dict[str, float]:
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="sqs-bench-") as tmp:
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        server = Server(Path(tmp) / "data", env={**MOTO_ENV, "AWS_ENDPOINT_URL": endpoint}).start()
        try:
            lam = server.client()
            create_python_function(lam, FUNCTION, CODE)
            url, _ = fill(sqs, "bench-plain", n)
            say(f"plain boto3 loop: draining {n} messages")
            plain = plain_loop(sqs, url, n)
            url, arn = fill(sqs, "bench-mapping", n)
            say(f"event source mapping: draining {n} messages")
            started = time.perf_counter()
            lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=FUNCTION, BatchSize=10)
            while left(sqs, url):
                time.sleep(0.1)
            mapping = time.perf_counter() - started
        finally:
            server.stop()
            sqs.close()
    return {"messages": n, "plain_per_second": n / plain, "mapping_per_second": n / mapping,
            "ratio": (n / mapping) / (n / plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = measure(args.n)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['messages']} messages: plain boto3 loop {out['plain_per_second']:.0f}/s, "
          f"event source mapping {out['mapping_per_second']:.0f}/s — ratio {out['ratio']:.2f}")


if __name__ == "__main__":
    main()
