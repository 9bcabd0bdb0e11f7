"""The stream event sources: Kinesis data streams and DynamoDB Streams, read shard by shard, in order, as Lambda does.

The stream is reached through botocore with the server's own AWS SDK configuration (``AWS_ENDPOINT_URL_KINESIS``,
``AWS_ENDPOINT_URL_DYNAMODBSTREAMS`` or ``AWS_ENDPOINT_URL``; the standard credential chain). Every botocore call
runs in a thread, off the event loop.

One poller per mapping lists the stream's shards (again every ``LIST_SECONDS``) and runs one reader per shard
whose parent shards are finished (a split's or a merge's children start once their parents were read to their
end), so records are handed over in order per shard, one batch in flight per shard (ParallelizationFactor 1). A
reader starts after the shard's checkpoint (the last sequence number handled, stored in the store:
``stream_checkpoints``), else at the mapping's StartingPosition (LATEST: the records added after the mapping was
created, through AT_TIMESTAMP of its creation for Kinesis; DynamoDB Streams' LATEST as it is). It gathers up to
BatchSize records for at most MaximumBatchingWindowInSeconds (0: what one GetRecords gives), drops (and
checkpoints) those the FilterCriteria do not match, and invokes the function:

- success: the batch's last sequence number is checkpointed;
- ReportBatchItemFailures: the records before the first reported ``itemIdentifier`` (a sequence number) are
  checkpointed and the rest retried; an invalid response fails the whole batch;
- a function error: the batch is retried (split in two first when BisectBatchOnFunctionError, which does not count
  as a retry) until MaximumRetryAttempts retries failed or a record is older than MaximumRecordAgeInSeconds; then
  Lambda's failure record (``KinesisBatchInfo`` / ``DDBStreamBatchInfo``) goes to DestinationConfig.OnFailure (an
  SQS queue or SNS topic) and the batch is checkpointed (skipped);
- throttled, or the function cannot run: retried with a backoff, without counting (as Lambda does).

TumblingWindowInSeconds: a batch holds the records of one window (by arrival time); the event carries the window,
the state the window's previous invocation returned, and ``isFinalInvokeForWindow``; a response without ``state``
failed. The window's end (or a record of a later one) brings a final invocation with no records; only after it
succeeded is the window's progress checkpointed, so a restart reads the window again and rebuilds its state.

A checkpoint is written only after the function handled the records, so a restart (or another node taking the
mapping's lease) resumes after it: at least once, never a skip.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import threading
import time
import uuid as uuids
from dataclasses import dataclass
from typing import Any, Mapping as MappingType

from lambdad.errors import InvalidParameterValueException, LambdaError, TooManyRequestsException
from lambdad.esm.mappings import Mapping
from lambdad.esm.pollers import Poller, Target
from lambdad.esm.sqs import batch_failures
from lambdad.store.interfaces import EventSourceMappingStore

__all__ = ["StreamSource", "kinesis_record", "dynamodb_record"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # an empty shard's next GetRecords
LIST_SECONDS = 10.0  # the shards are listed again (new ones from splits and merges)
BACKOFF_MAX = 30.0
MAX_EVENT_BYTES = 6 * 1024 * 1024 - 64 * 1024
_UNSUPPORTED = ("Queues", "Topics", "SourceAccessConfigurations", "SelfManagedEventSource",
                "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
                "DocumentDBEventSourceConfig", "ScalingConfig")
_DEFAULTS: dict[str, Any] = {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
                             "MaximumRecordAgeInSeconds": -1, "BisectBatchOnFunctionError": False,
                             "MaximumRetryAttempts": -1}


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value or 0)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _after_or_at(sequence: str, ending: str) -> bool:
    try:
        return int(sequence) >= int(ending)
    except ValueError:
        return sequence == ending


def _plain(value: Any) -> Any:
    """An attribute value as the event's JSON shows it: binary as base64."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def kinesis_record(record: MappingType[str, Any], shard_id: str, arn: str, region: str,
                   function_arn: str) -> dict[str, Any]:
    """A record of GetRecords as a record of Lambda's Kinesis event."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": _epoch(record.get("ApproximateArrivalTimestamp")),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": function_arn,
        "awsRegion": region,
        "eventSourceARN": arn,
    }


def dynamodb_record(record: MappingType[str, Any], arn: str, region: str) -> dict[str, Any]:
    """A record of DynamoDB Streams' GetRecords as a record of Lambda's DynamoDB event."""
    data = record.get("dynamodb") or {}
    shown: dict[str, Any] = {"ApproximateCreationDateTime": int(_epoch(data.get("ApproximateCreationDateTime")))}
    for key in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in data:
            shown[key] = _plain(data[key])
    return {"eventID": record.get("eventID", ""), "eventName": record.get("eventName", ""),
            "eventVersion": record.get("eventVersion", "1.1"), "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion") or region, "dynamodb": shown, "eventSourceARN": arn}


@dataclass
class _Window:
    start: float
    end: float
    state: Any


def _state(payload: bytes) -> Any:
    """The ``state`` of a tumbling window's response; None when it has none (a failed invocation)."""
    try:
        response = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(response, dict) or "state" not in response or response["state"] is None:
        return None
    return response["state"]


class StreamSource:
    """``kind``: "kinesis" or "dynamodb" (DynamoDB Streams)."""

    def __init__(self, kind: str, region: str, store: EventSourceMappingStore) -> None:
        self.kind = kind
        self._region = region
        self.store = store
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        import boto3

        with self._lock:
            key = f"{service}:{region}"
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = boto3.session.Session().client(service, region_name=region)
            return client

    @property
    def service(self) -> str:
        return "kinesis" if self.kind == "kinesis" else "dynamodbstreams"

    def validate(self, event_source_arn: str, params: MappingType[str, Any],
                 current: MappingType[str, Any] | None) -> dict[str, Any]:
        for name in _UNSUPPORTED:
            if params.get(name) is not None:
                raise InvalidParameterValueException(
                    f"Unsupported {name} parameter for given event source mapping type.")
        if self.kind == "dynamodb" and "/stream/" not in event_source_arn:
            raise InvalidParameterValueException("Unrecognized event source, must be kinesis, dynamodb stream or sqs.")
        if current is not None:
            for name in ("StartingPosition", "StartingPositionTimestamp"):
                if params.get(name) is not None:
                    raise InvalidParameterValueException(
                        f"Unsupported {name} parameter for updating an event source mapping.")
            fields = {k: current.get(k, v) for k, v in _DEFAULTS.items()}
            for key in ("StartingPosition", "StartingPositionTimestamp", "_Created", "DestinationConfig"):
                if key in current:
                    fields[key] = current[key]
        else:
            position = params.get("StartingPosition")
            allowed = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP") if self.kind == "kinesis" else \
                ("TRIM_HORIZON", "LATEST")
            if not position:
                raise InvalidParameterValueException("StartingPosition is required for the event source.")
            if position not in allowed:
                raise InvalidParameterValueException(
                    f"Unsupported starting position {position} for given event source mapping type.")
            fields = dict(_DEFAULTS, StartingPosition=position, _Created=time.time())
            stamp = params.get("StartingPositionTimestamp")
            if position == "AT_TIMESTAMP":
                if stamp is None:
                    raise InvalidParameterValueException("Need to specify a timestamp when using AT_TIMESTAMP.")
                fields["StartingPositionTimestamp"] = _epoch(stamp)
            elif stamp is not None:
                raise InvalidParameterValueException(
                    "StartingPositionTimestamp is only valid with the AT_TIMESTAMP starting position.")
        for key in _DEFAULTS:
            if params.get(key) is not None:
                fields[key] = bool(params[key]) if key == "BisectBatchOnFunctionError" else int(params[key])
        most = 10000 if self.kind == "kinesis" else 1000
        if not 1 <= fields["BatchSize"] <= most:
            raise InvalidParameterValueException(f"BatchSize must be between 1 and {most}.")
        if not 0 <= fields["MaximumBatchingWindowInSeconds"] <= 300:
            raise InvalidParameterValueException("MaximumBatchingWindowInSeconds must be between 0 and 300.")
        if not 1 <= fields["ParallelizationFactor"] <= 10:
            raise InvalidParameterValueException("ParallelizationFactor must be between 1 and 10.")
        if not -1 <= fields["MaximumRetryAttempts"] <= 10000:
            raise InvalidParameterValueException("MaximumRetryAttempts must be between -1 and 10000.")
        age = fields["MaximumRecordAgeInSeconds"]
        if age != -1 and not 60 <= age <= 604800:
            raise InvalidParameterValueException(
                "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800.")
        if params.get("TumblingWindowInSeconds") is not None:
            fields["TumblingWindowInSeconds"] = int(params["TumblingWindowInSeconds"])
        elif current is not None and "TumblingWindowInSeconds" in current:
            fields["TumblingWindowInSeconds"] = current["TumblingWindowInSeconds"]
        if not 0 <= int(fields.get("TumblingWindowInSeconds", 0)) <= 900:
            raise InvalidParameterValueException("TumblingWindowInSeconds must be between 0 and 900.")
        if params.get("DestinationConfig") is not None:
            config = params["DestinationConfig"] or {}
            if config.get("OnSuccess", {}).get("Destination"):
                raise InvalidParameterValueException(
                    "Unsupported OnSuccess destination for given event source mapping type.")
            target = str((config.get("OnFailure") or {}).get("Destination") or "")
            if target and (target.split(":")[2:3] not in (["sqs"], ["sns"]) or target.count(":") < 5):
                raise InvalidParameterValueException(
                    "Unsupported OnFailure destination: lambdad sends a stream's failure records to an SQS queue "
                    "or an SNS topic.")
            fields["DestinationConfig"] = {"OnFailure": {"Destination": target}} if target else {"OnFailure": {}}
        if current is None:
            self._check(event_source_arn)
        return fields

    def _check(self, arn: str) -> None:
        region = arn.split(":")[3] or self._region
        try:
            if self.kind == "kinesis":
                name = arn.split(":", 5)[5].split("/", 1)[1] if arn.count(":") >= 5 and "/" in arn else ""
                self.client("kinesis", region).describe_stream_summary(StreamName=name)
            else:
                self.client("dynamodbstreams", region).describe_stream(StreamArn=arn, Limit=1)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise InvalidParameterValueException(
                f"Stream not found: {arn} ({code})") from exc

    def poller(self, mapping: Mapping, target: Target) -> Poller:
        return StreamPoller(self, mapping, target)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


class StreamPoller:
    def __init__(self, source: StreamSource, mapping: Mapping, target: Target) -> None:
        self._source = source
        self._mapping = mapping
        self._arn = mapping.event_source_arn
        self._region = self._arn.split(":")[3] or source._region
        self._kinesis = source.kind == "kinesis"
        config = mapping.config
        self._batch_size = int(config.get("BatchSize", 100))
        self._window = float(config.get("MaximumBatchingWindowInSeconds", 0))
        self._retries = int(config.get("MaximumRetryAttempts", -1))
        self._max_age = int(config.get("MaximumRecordAgeInSeconds", -1))
        self._bisect = bool(config.get("BisectBatchOnFunctionError", False))
        self._report = "ReportBatchItemFailures" in (config.get("FunctionResponseTypes") or [])
        self._on_failure = str(((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                               or "")
        self._target = target
        self._checkpoints: dict[str, str] = {}  # as stored
        self._progress: dict[str, str] = {}  # the last sequence number handled (stored at once but in windows)
        self._tumbling = int(config.get("TumblingWindowInSeconds") or 0)
        self._windows: dict[str, _Window] = {}
        self._finished: set[str] = set()
        self._readers: dict[str, asyncio.Task[None]] = {}

    @property
    def _client(self) -> Any:
        return self._source.client(self._source.service, self._region)

    # -- shards -----------------------------------------------------------------------------------------------

    def _stream_name(self) -> dict[str, str]:
        """How the stream is named in a call: a Kinesis stream by its name (every Kinesis emulator takes that, not
        all of them the StreamARN), a DynamoDB stream by its ARN."""
        if self._kinesis:
            return {"StreamName": self._arn.split(":", 5)[5].split("/", 1)[1]}
        return {"StreamArn": self._arn}

    def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        if self._kinesis:
            out = self._client.list_shards(**self._stream_name())
            shards.extend(out.get("Shards") or [])
            while out.get("NextToken"):
                out = self._client.list_shards(NextToken=out["NextToken"])
                shards.extend(out.get("Shards") or [])
            return shards
        start: str | None = None
        while True:
            extra = {"ExclusiveStartShardId": start} if start else {}
            description = self._client.describe_stream(StreamArn=self._arn, **extra)["StreamDescription"]
            shards.extend(description.get("Shards") or [])
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    async def run(self) -> None:
        self._checkpoints = await self._source.store.load_stream_checkpoints(self._mapping.uuid)
        try:
            while True:
                try:
                    shards = await asyncio.to_thread(self._list_shards)
                except Exception as exc:
                    log.warning("event source %s: the shards could not be listed (%s); trying again", self._arn, exc)
                    self._target.processed(f"PROBLEM: the stream's shards could not be listed: {exc}")
                    await asyncio.sleep(5.0)
                    continue
                known = {s["ShardId"] for s in shards}
                for shard in shards:
                    shard_id = shard["ShardId"]
                    if shard_id in self._readers or shard_id in self._finished:
                        continue
                    parents = [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId"))
                               if p and p in known]
                    if all(p in self._finished for p in parents):
                        ending = str((shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber") or "")
                        self._readers[shard_id] = asyncio.get_running_loop().create_task(
                            self._read(shard_id, ending))
                for shard_id, task in list(self._readers.items()):
                    if task.done():
                        del self._readers[shard_id]
                        if not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                        self._finished.add(shard_id)
                waiting = list(self._readers.values())
                if waiting:
                    await asyncio.wait(waiting, timeout=LIST_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(LIST_SECONDS)
        finally:
            await self.aclose()

    def _iterator(self, shard_id: str) -> tuple[str, float]:
        """A shard iterator, and the time before which the records it gives are not wanted (AT_TIMESTAMP: not every
        Kinesis emulator starts exactly there)."""
        checkpoint = self._checkpoints.get(shard_id)
        name = self._stream_name()
        if checkpoint:
            args: dict[str, Any] = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
        else:
            position = str(self._mapping.config.get("StartingPosition", "LATEST"))
            if self._kinesis and position == "LATEST" and self._mapping.config.get("_Created"):
                # the records added since the mapping was created, even when its poller starts later
                args = {"ShardIteratorType": "AT_TIMESTAMP",
                        "Timestamp": dt.datetime.fromtimestamp(float(self._mapping.config["_Created"]),
                                                               dt.timezone.utc)}
            elif position == "AT_TIMESTAMP":
                args = {"ShardIteratorType": "AT_TIMESTAMP",
                        "Timestamp": dt.datetime.fromtimestamp(float(self._mapping.config["StartingPositionTimestamp"]),
                                                               dt.timezone.utc)}
            else:
                args = {"ShardIteratorType": position}
        iterator = str(self._client.get_shard_iterator(ShardId=shard_id, **name, **args)["ShardIterator"])
        return iterator, (args["Timestamp"].timestamp() if args["ShardIteratorType"] == "AT_TIMESTAMP" else 0.0)

    async def _read(self, shard_id: str, ending: str) -> None:
        """Read one shard until it is closed and read to its end: GetRecords gave no next iterator, or (a closed
        shard, ``ending`` its last sequence number, which not every emulator closes) nothing is left after it."""
        iterator: str | None = None
        last_read = self._checkpoints.get(shard_id)
        pending: list[dict[str, Any]] = []
        closed = False
        started, not_before = 0.0, 0.0
        while True:
            try:
                if iterator is None and not closed:
                    iterator, not_before = await asyncio.to_thread(self._iterator, shard_id)
                if iterator is not None:
                    out = await asyncio.to_thread(self._client.get_records, ShardIterator=iterator,
                                                  Limit=min(10000, max(1, self._batch_size - len(pending))))
                    iterator = out.get("NextShardIterator")
                    records = list(out.get("Records") or [])
                    if records:
                        last_read = self._sequence(records[-1])
                    if not_before:
                        records = [r for r in records if self._arrival(r) >= not_before]
                    if records and not pending:
                        started = time.monotonic()
                    pending.extend(records)
                    closed = iterator is None or (not out.get("Records") and bool(ending) and last_read is not None
                                                  and _after_or_at(last_read, ending))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event source %s: reading %s failed (%s); trying again", self._arn, shard_id, exc)
                self._target.processed(f"PROBLEM: GetRecords failed: {exc}")
                iterator = None
                pending = []  # read again after the checkpoint
                self._windows.pop(shard_id, None)  # and the window's state built again from there
                if shard_id in self._checkpoints:
                    self._progress[shard_id] = self._checkpoints[shard_id]
                else:
                    self._progress.pop(shard_id, None)
                last_read = self._checkpoints.get(shard_id)
                await asyncio.sleep(2.0)
                continue
            size = self._batch_size
            if self._tumbling:
                window = self._windows.get(shard_id)
                if window is not None and ((pending and self._window_of(pending[0]) != window.start)
                                           or (not pending and (closed or time.time() >= window.end))):
                    await self._close_window(shard_id)
                    continue
                if pending:  # a batch never crosses a window's end
                    start = self._window_of(pending[0])
                    same = next((i for i, r in enumerate(pending) if self._window_of(r) != start), len(pending))
                    if same < len(pending):
                        size = min(size, same)
                        started = -1e18  # the rest of the window is there: due now
            due = pending and (len(pending) >= size or closed
                               or time.monotonic() - started >= self._window)
            if due:
                batch, pending = pending[:size], pending[size:]
                await self._handle(shard_id, batch)
                if pending:
                    started = time.monotonic()
                continue
            if closed:
                return  # the shard was read to its end: its children may start
            if not pending or self._window > 0:
                await asyncio.sleep(POLL_SECONDS if not pending else min(POLL_SECONDS, self._window))

    # -- a batch ----------------------------------------------------------------------------------------------

    def _event_record(self, shard_id: str, record: dict[str, Any]) -> dict[str, Any]:
        if self._kinesis:
            return kinesis_record(record, shard_id, self._arn, self._region, self._target.function_arn)
        return dynamodb_record(record, self._arn, self._region)

    @staticmethod
    def _sequence(record: dict[str, Any]) -> str:
        return str(record["SequenceNumber"] if "SequenceNumber" in record else record["dynamodb"]["SequenceNumber"])

    @staticmethod
    def _arrival(record: dict[str, Any]) -> float:
        if "ApproximateArrivalTimestamp" in record:
            return _epoch(record["ApproximateArrivalTimestamp"])
        return _epoch((record.get("dynamodb") or {}).get("ApproximateCreationDateTime"))

    async def _checkpoint(self, shard_id: str, record: dict[str, Any]) -> None:
        sequence = self._sequence(record)
        self._progress[shard_id] = sequence
        if self._tumbling:
            return  # stored when the window closes: a restart reads the window again and builds its state afresh
        await self._source.store.put_stream_checkpoint(self._mapping.uuid, self._mapping.function_name, shard_id,
                                                       sequence)
        self._checkpoints[shard_id] = sequence

    async def _handle(self, shard_id: str, raw: list[dict[str, Any]]) -> None:
        if self._tumbling and shard_id not in self._windows:
            start = self._window_of(raw[0])
            self._windows[shard_id] = _Window(start, start + self._tumbling, {})
        events = [(r, self._event_record(shard_id, r)) for r in raw]
        matched = [pair for pair in events if self._target.matches(pair[1])]
        if not matched:  # filtered out: consumed, as Lambda consumes them
            await self._checkpoint(shard_id, raw[-1])
            return
        # the records before each matched one that were filtered out are consumed with it
        queue: list[list[tuple[dict[str, Any], dict[str, Any]]]] = [matched]
        retries, invokes, backoff = 0, 0, 0.0
        while queue:
            batch = queue[0]
            payload = json.dumps(self._event(shard_id, [e for _, e in batch])).encode()
            try:
                delivery = await self._target.invoke(payload)
            except (TooManyRequestsException, LambdaError) as exc:
                backoff = min(BACKOFF_MAX, max(1.0, backoff * 2))
                self._target.processed("PROBLEM: Function call throttled" if isinstance(exc, TooManyRequestsException)
                                       else f"PROBLEM: {exc.message}")
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            invokes += 1
            failed_at: int | None = None
            state = _state(delivery.payload) if self._tumbling and delivery.ok else None
            if self._tumbling and delivery.ok and state is None:
                failed_at = 0  # a tumbling window's response must hold its state
            elif delivery.ok and self._report:
                failures = batch_failures(delivery.payload, [self._sequence(r) for r, _ in batch])
                if failures is None:
                    failed_at = 0
                elif failures:
                    failed_at = min(i for i, (r, _) in enumerate(batch) if self._sequence(r) in failures)
            elif not delivery.ok:
                failed_at = 0
            if state is not None and (failed_at is None or failed_at > 0):
                self._windows[shard_id].state = state
            if failed_at is None:
                await self._checkpoint(shard_id, batch[-1][0])
                self._target.processed("OK")
                queue.pop(0)
                retries, invokes = 0, 0
                continue
            if failed_at > 0:
                await self._checkpoint(shard_id, batch[failed_at - 1][0])
                batch = queue[0] = batch[failed_at:]
            self._target.processed("PROBLEM: Function call failed")
            condition = ""
            if self._max_age >= 0 and time.time() - self._arrival(batch[0][0]) > self._max_age:
                condition = "RecordAgeExceeded"
            elif self._bisect and len(batch) > 1:  # split in two, without counting a retry
                half = len(batch) // 2
                queue[0:1] = [batch[:half], batch[half:]]
                continue
            elif self._retries >= 0 and retries >= self._retries:
                condition = "RetryAttemptsExhausted"
            if condition:
                await self._discard(shard_id, batch, delivery, condition, invokes)
                await self._checkpoint(shard_id, batch[-1][0])
                queue.pop(0)
                retries, invokes = 0, 0
                continue
            retries += 1
            await asyncio.sleep(min(BACKOFF_MAX, 0.1 * 2 ** min(retries, 9)))
        if self._progress.get(shard_id) != self._sequence(raw[-1]):  # filtered-out records at the batch's end
            await self._checkpoint(shard_id, raw[-1])

    def _window_of(self, record: dict[str, Any]) -> float:
        """The start of the tumbling window a record belongs to (by its arrival time)."""
        arrival = self._arrival(record)
        return arrival - arrival % self._tumbling

    def _event(self, shard_id: str, records: list[dict[str, Any]], final: bool = False) -> dict[str, Any]:
        event: dict[str, Any] = {"Records": records}
        window = self._windows.get(shard_id)
        if self._tumbling and window is not None:
            event.update({"window": {"start": _iso(window.start)[:-5] + "Z", "end": _iso(window.end)[:-5] + "Z"},
                          "state": window.state, "shardId": shard_id, "eventSourceARN": self._arn,
                          "isFinalInvokeForWindow": final, "isWindowTerminatedEarly": False})
        return event

    async def _close_window(self, shard_id: str) -> None:
        """The window's final invocation (no records, its state, ``isFinalInvokeForWindow``), repeated until it
        succeeds; then the window's progress is stored and its state dropped."""
        backoff = 0.0
        while True:
            try:
                delivery = await self._target.invoke(json.dumps(self._event(shard_id, [], final=True)).encode())
                if delivery.ok:
                    break
                self._target.processed("PROBLEM: Function call failed")
            except (TooManyRequestsException, LambdaError) as exc:
                self._target.processed(f"PROBLEM: {exc.message}")
            backoff = min(BACKOFF_MAX, max(0.2, backoff * 2))
            await asyncio.sleep(backoff)
        self._windows.pop(shard_id, None)
        sequence = self._progress.get(shard_id)
        if sequence and sequence != self._checkpoints.get(shard_id):
            await self._source.store.put_stream_checkpoint(self._mapping.uuid, self._mapping.function_name,
                                                           shard_id, sequence)
            self._checkpoints[shard_id] = sequence
        self._target.processed("OK")

    async def _discard(self, shard_id: str, batch: list[tuple[dict[str, Any], dict[str, Any]]], delivery: Any,
                       condition: str, invokes: int) -> None:
        """Lambda's failure record of a batch it gives up, to the OnFailure destination (if any)."""
        first, last = batch[0][0], batch[-1][0]
        info = {"shardId": shard_id, "startSequenceNumber": self._sequence(first),
                "endSequenceNumber": self._sequence(last),
                "approximateArrivalOfFirstRecord": _iso(self._arrival(first)),
                "approximateArrivalOfLastRecord": _iso(self._arrival(last)),
                "batchSize": len(batch), "streamArn": self._arn}
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": delivery.executed_version}
        if delivery.function_error:
            response["functionError"] = delivery.function_error
        record = {
            "requestContext": {"requestId": delivery.request_id or str(uuids.uuid4()),
                               "functionArn": self._target.function_arn, "condition": condition,
                               "approximateInvokeCount": invokes},
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "KinesisBatchInfo" if self._kinesis else "DDBStreamBatchInfo": info,
        }
        log.warning("event source %s: %d records of %s discarded (%s)", self._arn, len(batch), shard_id, condition)
        if not self._on_failure:
            return
        body = json.dumps(record)
        try:
            await asyncio.to_thread(self._send, self._on_failure, body)
        except Exception as exc:
            log.warning("event source %s: the failure record could not be sent to %s: %s", self._arn,
                        self._on_failure, exc)

    def _send(self, arn: str, body: str) -> None:
        region = arn.split(":")[3] or self._region
        if arn.split(":")[2] == "sqs":
            sqs = self._source.client("sqs", region)
            url = sqs.get_queue_url(QueueName=arn.split(":")[5], QueueOwnerAWSAccountId=arn.split(":")[4])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body)
        else:
            self._source.client("sns", region).publish(TopicArn=arn, Message=body)

    async def aclose(self) -> None:
        for task in list(self._readers.values()):
            task.cancel()
        if self._readers:
            await asyncio.gather(*self._readers.values(), return_exceptions=True)
        self._readers.clear()
