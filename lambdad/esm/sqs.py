"""The SQS event source: a queue's messages, in batches, to a function — as Lambda does it.

The queue ARN is resolved to its URL through botocore (``GetQueueUrl``) with the AWS SDK's own configuration of
the server process (``AWS_ENDPOINT_URL_SQS`` / ``AWS_ENDPOINT_URL``, the standard credential chain), so the same
lambdad works with SQS, ElasticMQ, LocalStack or moto. Every botocore call runs in a thread, off the event loop.

A batch: long polls of ``WAIT_SECONDS`` (2 s, not SQS's 20: a stop or a disable never waits longer than that for a
poll in flight), up to ``BatchSize`` messages gathered for at most ``MaximumBatchingWindowInSeconds`` after the
first one arrived (0: what one receive returns, up to 10), and never more than 6 MB of event. The event is
Lambda's (``Records``: messageId, receiptHandle, body, attributes, messageAttributes, md5OfBody, eventSource
``aws:sqs``, eventSourceARN, awsRegion). What happens to it:

- the function succeeds: the batch is deleted;
- it fails (a function error, a timeout): nothing is deleted; the messages come back after the queue's visibility
  timeout, so the queue's redrive policy moves a poison message to its dead-letter queue;
- ``FunctionResponseTypes: ["ReportBatchItemFailures"]``: all but the reported ``batchItemFailures`` are deleted;
  an empty or null list (or response) is a success; a response that is not that shape (not JSON, an
  ``itemIdentifier`` missing, empty or not in the batch) fails the whole batch, as Lambda does. In a FIFO queue the
  messages after a failed one of the same group are kept too;
- the invoke is throttled (or the function cannot run): the batch goes back to the queue with a visibility timeout
  of the backoff (1 s, doubling to 30 s) and the poller waits as long: never lost;
- messages that do not match the FilterCriteria are deleted without an invocation.

Concurrency: a mapping starts with one batch in flight; each full batch starts one more, up to
``ScalingConfig.MaximumConcurrency`` (default ``DEFAULT_CONCURRENCY``) and the function's reserved concurrency;
an extra worker that finds the queue empty stops. A FIFO queue is handled one batch at a time, so each message
group's order is kept (a group's next batch only after the previous one finished).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from typing import Any, Mapping as MappingType

from lambdad.errors import InvalidParameterValueException, LambdaError, TooManyRequestsException
from lambdad.esm.mappings import Mapping
from lambdad.esm.pollers import Poller, Target

__all__ = ["SqsSource", "sqs_record", "WAIT_SECONDS", "DEFAULT_CONCURRENCY"]

log = logging.getLogger(__name__)

WAIT_SECONDS = 2
DEFAULT_CONCURRENCY = 5
MAX_EVENT_BYTES = 6 * 1024 * 1024 - 64 * 1024  # a synchronous invocation's payload limit, less room for the wrapper
BACKOFF_MAX = 30.0
_RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
                      "SequenceNumber", "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader",
                      "DeadLetterQueueSourceArn")
# the parameters of other source types, refused for a queue
_UNSUPPORTED = ("StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor", "DestinationConfig",
                "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
                "TumblingWindowInSeconds", "Topics", "Queues", "SourceAccessConfigurations", "SelfManagedEventSource",
                "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
                "DocumentDBEventSourceConfig")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sqs_record(message: MappingType[str, Any], arn: str, region: str) -> dict[str, Any]:
    """One message of ReceiveMessage as a record of Lambda's SQS event."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: attributes[k] for k in _RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    for name, value in (message.get("MessageAttributes") or {}).items():
        shown: dict[str, Any] = {}
        if "StringValue" in value:
            shown["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            shown["binaryValue"] = _b64(value["BinaryValue"])
        shown["stringListValues"] = list(value.get("StringListValues") or [])
        shown["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
        shown["dataType"] = value.get("DataType", "String")
        record["messageAttributes"][name] = shown
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": region})
    return record


def batch_failures(payload: bytes, ids: list[str]) -> set[str] | None:
    """The message ids a ReportBatchItemFailures response names; None when the response is not valid (the whole
    batch failed)."""
    if not payload.strip():
        return set()
    try:
        response = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    known, out = set(ids), set()
    for item in failures:
        if not isinstance(item, dict):
            return None
        identifier = item.get("itemIdentifier")
        if not isinstance(identifier, str) or not identifier or identifier not in known:
            return None
        out.add(identifier)
    return out


class SqsSource:
    def __init__(self, region: str) -> None:
        self._region = region
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, region: str) -> Any:
        """An SQS client of ``region`` (botocore clients are thread-safe; one per region)."""
        import boto3

        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = self._clients[region] = boto3.session.Session().client("sqs", region_name=region)
            return client

    def queue_url(self, arn: str) -> str:
        parts = arn.split(":")
        client = self.client(parts[3] or self._region)
        return str(client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])

    def validate(self, event_source_arn: str, params: MappingType[str, Any],
                 current: MappingType[str, Any] | None) -> dict[str, Any]:
        """SQS's rules (runs in a thread: a new mapping's queue must exist)."""
        for name in _UNSUPPORTED:
            if params.get(name) is not None:
                raise InvalidParameterValueException(
                    f"Unsupported {name} parameter for given event source mapping type.")
        fifo = event_source_arn.endswith(".fifo")
        fields = {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0}
        if current is not None:
            fields = {k: current.get(k, v) for k, v in fields.items()}
        for key in fields:
            if params.get(key) is not None:
                fields[key] = int(params[key])
        if fields["BatchSize"] > 10 and fields["MaximumBatchingWindowInSeconds"] < 1:
            raise InvalidParameterValueException(
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
        if fifo and fields["BatchSize"] > 10:
            raise InvalidParameterValueException("Batch size must not exceed 10 for FIFO queues")
        if fifo and fields["MaximumBatchingWindowInSeconds"] > 0:
            raise InvalidParameterValueException("Batching window is not supported for FIFO queues")
        if current is None:
            try:
                self.queue_url(event_source_arn)
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
                raise InvalidParameterValueException(
                    f"Error occurred while ReceiveMessage. SQS Error Code: {code}. SQS Error Message: {exc}") from exc
        return fields

    def poller(self, mapping: Mapping, target: Target) -> Poller:
        return SqsPoller(self, mapping, target)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


class SqsPoller:
    def __init__(self, source: SqsSource, mapping: Mapping, target: Target) -> None:
        self._source = source
        self._arn = mapping.event_source_arn
        self._region = self._arn.split(":")[3] or source._region
        self._batch_size = int(mapping.config.get("BatchSize", 10))
        self._window = float(mapping.config.get("MaximumBatchingWindowInSeconds", 0))
        self._report = "ReportBatchItemFailures" in (mapping.config.get("FunctionResponseTypes") or [])
        self._fifo = self._arn.endswith(".fifo")
        self._target = target
        self._url = ""
        self._workers: set[asyncio.Task[None]] = set()
        self._backoff = 0.0

    @property
    def _client(self) -> Any:
        return self._source.client(self._region)

    async def run(self) -> None:
        while not self._url:
            try:
                self._url = await asyncio.to_thread(self._source.queue_url, self._arn)
            except Exception as exc:
                self._target.processed(f"PROBLEM: the queue could not be found: {exc}")
                log.warning("event source %s: the queue could not be found (%s); trying again", self._arn, exc)
                await asyncio.sleep(5.0)
        try:
            self._spawn(first=True)
            while self._workers:
                await asyncio.wait(list(self._workers), return_when=asyncio.FIRST_COMPLETED)
                for task in [t for t in self._workers if t.done()]:
                    self._workers.discard(task)
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            for task in list(self._workers):
                task.cancel()
            if self._workers:
                await asyncio.gather(*self._workers, return_exceptions=True)

    def _spawn(self, first: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._work(first))
        self._workers.add(task)

    async def _work(self, first: bool) -> None:
        while True:
            batch = await self._gather()
            if not batch:
                if not first:
                    return  # the queue is empty: scale down
                continue
            cap = 1 if self._fifo else self._target.concurrency_cap(DEFAULT_CONCURRENCY)
            if len(batch) >= min(self._batch_size, 10) and len(self._workers) < cap:
                self._spawn()  # a backlog: one more batch in flight
            await self._handle(batch)
            if self._backoff:
                await asyncio.sleep(self._backoff)

    async def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        out = await asyncio.to_thread(
            self._client.receive_message, QueueUrl=self._url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
            AttributeNames=["All"], MessageAttributeNames=["All"])
        return list(out.get("Messages") or [])

    async def _gather(self) -> list[dict[str, Any]]:
        try:
            messages = await self._receive(min(10, self._batch_size), WAIT_SECONDS)
            if not messages or self._window <= 0:
                return messages
            deadline = time.monotonic() + self._window
            size = sum(len(m.get("Body", "")) for m in messages)
            while len(messages) < self._batch_size and size < MAX_EVENT_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                more = await self._receive(min(10, self._batch_size - len(messages)),
                                           max(1, min(WAIT_SECONDS, int(left))))
                messages.extend(more)
                size += sum(len(m.get("Body", "")) for m in more)
            return messages
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("event source %s: ReceiveMessage failed (%s); trying again", self._arn, exc)
            self._target.processed(f"PROBLEM: ReceiveMessage failed: {exc}")
            await asyncio.sleep(2.0)
            return []

    async def _handle(self, messages: list[dict[str, Any]]) -> None:
        records = [sqs_record(m, self._arn, self._region) for m in messages]
        batch: list[dict[str, Any]] = []
        size, extra = 0, []  # type: tuple[int, list[dict[str, Any]]]
        for record in records:
            size += len(record["body"]) + 1024
            (batch if size <= MAX_EVENT_BYTES or not batch else extra).append(record)
        if extra:  # over a payload's limit: those go back to the queue for the next batch
            await self._release(extra, 0)
        matched = [r for r in batch if self._target.matches(r)]
        skipped = [r for r in batch if r not in matched]
        if skipped:  # filtered out: consumed, as Lambda consumes them
            await self._delete(skipped)
        if not matched:
            return
        try:
            delivery = await self._target.invoke(json.dumps({"Records": matched}).encode())
        except TooManyRequestsException:
            self._backoff = min(BACKOFF_MAX, max(1.0, self._backoff * 2))
            self._target.processed("PROBLEM: Function call throttled")
            await self._release(matched, int(self._backoff))
            return
        except LambdaError as exc:
            self._backoff = min(BACKOFF_MAX, max(1.0, self._backoff * 2))
            self._target.processed(f"PROBLEM: {exc.message}")
            await self._release(matched, int(self._backoff))
            return
        self._backoff = 0.0
        if not delivery.ok:
            self._target.processed("PROBLEM: Function call failed")
            return  # the messages come back after the visibility timeout
        done = matched
        if self._report:
            failed = batch_failures(delivery.payload, [r["messageId"] for r in matched])
            if failed is None:
                self._target.processed("PROBLEM: the function's batchItemFailures response is not valid")
                return
            if self._fifo and failed:  # the rest of a failed message's group stays too, in order
                groups: set[str] = set()
                for record in matched:
                    group = record["attributes"].get("MessageGroupId", "")
                    if record["messageId"] in failed or group in groups:
                        failed.add(record["messageId"])
                        groups.add(group)
            done = [r for r in matched if r["messageId"] not in failed]
        await self._delete(done)
        self._target.processed("OK")

    async def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start:start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
            try:
                out = await asyncio.to_thread(self._client.delete_message_batch, QueueUrl=self._url, Entries=entries)
                if out.get("Failed"):
                    log.warning("event source %s: %d messages could not be deleted: %s", self._arn,
                                len(out["Failed"]), out["Failed"][:3])
            except Exception as exc:  # they come back and are handled again (at-least-once)
                log.warning("event source %s: DeleteMessageBatch failed: %s", self._arn, exc)

    async def _release(self, records: list[dict[str, Any]], delay: int) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start:start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": delay}
                       for i, r in enumerate(chunk)]
            try:
                await asyncio.to_thread(self._client.change_message_visibility_batch, QueueUrl=self._url,
                                        Entries=entries)
            except Exception as exc:  # they come back after the visibility timeout anyway
                log.warning("event source %s: ChangeMessageVisibilityBatch failed: %s", self._arn, exc)

    async def aclose(self) -> None:
        for task in list(self._workers):
            task.cancel()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
