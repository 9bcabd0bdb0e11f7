"""The stream event sources: Kinesis data streams and DynamoDB Streams, read shard by shard, in order, as Lambda does.

The stream is reached through botocore with the server's own AWS SDK configuration (``AWS_ENDPOINT_URL_KINESIS``,
``AWS_ENDPOINT_URL_DYNAMODBSTREAMS`` or ``AWS_ENDPOINT_URL``; the standard credential chain). Every botocore call
runs in a thread, off the event loop. The parameters' rules and the records' shapes are in ``stream_shapes.py``.

One poller per mapping lists the stream's shards (again every ``LIST_SECONDS``) and runs one reader per shard
whose parent shards are finished (a split's or a merge's children start once their parents were read to their
end). A reader starts after the shard's checkpoint (stored in the store: ``stream_checkpoints``), else at the
mapping's StartingPosition (LATEST: the records added after the mapping was created, through AT_TIMESTAMP of its
creation for Kinesis; DynamoDB Streams' LATEST as it is). It reads ahead (at most ``BatchSize`` × (lanes + 1)
records waiting for a batch, and with several lanes at least ``READ_AHEAD``) and hands each record to one of ParallelizationFactor *lanes* by its partition key or item keys
(``lanes.py``): each lane has at most one batch in flight, so one key's records are handled in shard order while
the lanes of a shard run side by side (factor 1: one lane, one batch in flight per shard). A lane gathers up to
BatchSize records for at most MaximumBatchingWindowInSeconds (0: what it has when it is free), drops those the
FilterCriteria do not match (consumed), and invokes the function:

- success: the batch's records are consumed;
- ReportBatchItemFailures: the records before the first reported ``itemIdentifier`` (a sequence number) are
  consumed and the rest retried; an invalid response fails the whole batch;
- a function error: the batch is retried (split in two first when BisectBatchOnFunctionError, which does not count
  as a retry) until MaximumRetryAttempts retries failed or a record is older than MaximumRecordAgeInSeconds; then
  Lambda's failure record (``KinesisBatchInfo`` / ``DDBStreamBatchInfo``) goes to DestinationConfig.OnFailure (an
  SQS queue or SNS topic) and the batch is consumed (skipped);
- throttled, or the function cannot run: retried with a backoff, without counting (as Lambda does).

TumblingWindowInSeconds: each lane keeps its own window (by arrival time); a batch holds the records of one window;
the event carries the window, the state the lane's previous invocation in it returned, and
``isFinalInvokeForWindow``; a response without ``state`` failed. The window's end (or a record of a later one)
brings a final invocation with no records; only after it succeeded are the window's records consumed, so a restart
reads the window again and rebuilds its state.

Checkpoints: a consumed record is done in the shard's ``ShardProgress``; the shard's checkpoint is stored when it
moves, and it only moves to a sequence number below which every record read was consumed (the lowest unfinished
record bounds it). So a restart (or another node taking the mapping's lease, or an update that changes the factor)
resumes after it: at least once, never a skip.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
import uuid as uuids
from dataclasses import dataclass, field
from typing import Any, Coroutine, Mapping as MappingType

from lambdad.errors import InvalidParameterValueException, LambdaError, TooManyRequestsException
from lambdad.esm.lanes import ShardProgress, lane_of
from lambdad.esm.mappings import Mapping
from lambdad.esm.pollers import Poller, Target
from lambdad.esm.sqs import batch_failures
from lambdad.esm.stream_shapes import (arrival_of, dynamodb_record, failure_record, iso, kinesis_record,
                                       sequence_of, stream_fields, window_state)
from lambdad.store.interfaces import EventSourceMappingStore

__all__ = ["StreamSource", "kinesis_record", "dynamodb_record"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # an empty shard's next GetRecords
READ_SECONDS = 0.2  # the next GetRecords of a shard that gave records (Kinesis allows 5 a second per shard)
LIST_SECONDS = 10.0  # the shards are listed again (new ones from splits and merges)
BACKOFF_MAX = 30.0
READ_AHEAD = 1000  # with ParallelizationFactor > 1, the records a shard's reader may hold for its lanes, at least
MAX_EVENT_BYTES = 6 * 1024 * 1024 - 64 * 1024


def _after_or_at(sequence: str, ending: str) -> bool:
    try:
        return int(sequence) >= int(ending)
    except ValueError:
        return sequence == ending


@dataclass
class _Window:
    start: float
    end: float
    state: Any
    consumed: list[str] = field(default_factory=list)  # done in the shard's progress once the window closed


@dataclass
class _Lane:
    """A share of a shard's records (those whose key hashes to it), handled one batch at a time."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0  # when its first pending record came (monotonic): the batching window's start
    window: _Window | None = None
    task: asyncio.Task[None] | None = None  # the batch (or window close) in flight

    @property
    def idle(self) -> bool:
        return self.task is None


@dataclass
class _Shard:
    shard_id: str
    progress: ShardProgress
    lanes: list[_Lane]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # the checkpoint's writes, in order

    @property
    def buffered(self) -> int:
        return sum(len(lane.pending) for lane in self.lanes)


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
        fields = stream_fields(self.kind, event_source_arn, params, current)
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


_Batch = list[tuple[dict[str, Any], dict[str, Any]]]  # (the record as read, as the event shows it)


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
        self._lanes = max(1, int(config.get("ParallelizationFactor") or 1))
        # records read but not yet in a batch: a batch more than the lanes take; with several lanes at least
        # READ_AHEAD, so the lanes of other keys go on while one is slow or retries
        self._read_ahead = self._batch_size * (self._lanes + 1)
        if self._lanes > 1:
            self._read_ahead = max(self._read_ahead, READ_AHEAD)
        self._most = 10000 if self._kinesis else 1000  # GetRecords' Limit at most
        self._retries = int(config.get("MaximumRetryAttempts", -1))
        self._max_age = int(config.get("MaximumRecordAgeInSeconds", -1))
        self._bisect = bool(config.get("BisectBatchOnFunctionError", False))
        self._report = "ReportBatchItemFailures" in (config.get("FunctionResponseTypes") or [])
        self._on_failure = str(((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                               or "")
        self._target = target
        self._checkpoints: dict[str, str] = {}  # as stored
        self._tumbling = int(config.get("TumblingWindowInSeconds") or 0)
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

    def _iterator(self, shard_id: str, after: str | None) -> tuple[str, float]:
        """A shard iterator after the sequence number ``after`` (else at the starting position), and the time before
        which the records it gives are not wanted (AT_TIMESTAMP: not every Kinesis emulator starts exactly there)."""
        name = self._stream_name()
        if after:
            args: dict[str, Any] = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
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
        """Read one shard until it is closed and read to its end (GetRecords gave no next iterator, or, a closed
        shard with ``ending`` its last sequence number, which not every emulator closes, nothing is left after it)
        and every lane handled what it was given. Records go to their lanes as they are read; a free lane with a
        batch due starts it at once."""
        shard = _Shard(shard_id, ShardProgress(self._checkpoints.get(shard_id)), [_Lane() for _ in range(self._lanes)])
        iterator: str | None = None
        last_read = self._checkpoints.get(shard_id)
        closed = False
        not_before = 0.0
        next_read = 0.0  # monotonic: GetRecords no more often than READ_SECONDS, POLL_SECONDS while empty
        try:
            while True:
                if not closed and shard.buffered < self._read_ahead and time.monotonic() >= next_read:
                    try:
                        if iterator is None:
                            iterator, not_before = await asyncio.to_thread(self._iterator, shard_id, last_read)
                        room = self._read_ahead - shard.buffered
                        out = await asyncio.to_thread(self._client.get_records, ShardIterator=iterator,
                                                      Limit=min(self._most, max(1, room)))
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        # what was read stays in the lanes; the next iterator starts after it
                        log.warning("event source %s: reading %s failed (%s); trying again", self._arn, shard_id, exc)
                        self._target.processed(f"PROBLEM: GetRecords failed: {exc}")
                        iterator = None
                        next_read = time.monotonic() + 2.0
                    else:
                        iterator = out.get("NextShardIterator")
                        records = list(out.get("Records") or [])
                        next_read = time.monotonic() + (READ_SECONDS if records else POLL_SECONDS)
                        if records:
                            last_read = sequence_of(records[-1])
                        for record in records:
                            if not_before and arrival_of(record) < not_before:
                                continue
                            lane = shard.lanes[lane_of(record, self._lanes)]
                            if not lane.pending:
                                lane.started = time.monotonic()
                            lane.pending.append(record)
                            shard.progress.read(sequence_of(record))
                        closed = iterator is None or (not records and bool(ending) and last_read is not None
                                                      and _after_or_at(last_read, ending))
                if closed:
                    delay = POLL_SECONDS
                elif shard.buffered < self._read_ahead:
                    delay = max(0.0, next_read - time.monotonic())
                else:
                    delay = BACKOFF_MAX  # read far enough ahead: a lane's end wakes the reader
                for lane in shard.lanes:
                    if lane.task is not None and lane.task.done():
                        task, lane.task = lane.task, None
                        task.result()  # a failure of our own (the store) ends the reader: the poller starts again
                    if lane.idle:
                        work, wait = self._next(shard, lane, closed)
                        if work is not None:
                            lane.task = asyncio.get_running_loop().create_task(work)
                        delay = min(delay, wait)
                busy = [lane.task for lane in shard.lanes if lane.task is not None]
                if closed and not busy and not shard.buffered and all(lane.window is None for lane in shard.lanes):
                    return  # the shard was read to its end and handled: its children may start
                if busy:
                    await asyncio.wait(busy, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(delay)
        finally:
            running = [lane.task for lane in shard.lanes if lane.task is not None]
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _next(self, shard: _Shard, lane: _Lane, closed: bool) -> tuple[Coroutine[Any, Any, None] | None, float]:
        """A free lane's next work (a batch, or its tumbling window's close), or None and how long until it may
        have some without a new record."""
        pending = lane.pending
        if self._tumbling and lane.window is not None:
            window = lane.window
            if pending and self._window_of(pending[0]) != window.start:
                return self._close_window(shard, lane), 0.0
            if not pending:
                if closed or time.time() >= window.end:
                    return self._close_window(shard, lane), 0.0
                return None, max(0.0, window.end - time.time())
        if not pending:
            return None, POLL_SECONDS
        size = self._batch_size
        due = closed or time.monotonic() - lane.started >= self._window
        if self._tumbling:  # a batch never crosses a window's end: the rest of the window is there, due now
            start = self._window_of(pending[0])
            same = next((i for i, r in enumerate(pending) if self._window_of(r) != start), len(pending))
            if same < len(pending):
                size, due = min(size, same), True
        if not (due or len(pending) >= size):
            return None, max(0.0, lane.started + self._window - time.monotonic())
        batch, lane.pending = pending[:size], pending[size:]
        lane.started = time.monotonic()
        return self._handle(shard, lane, batch), 0.0

    # -- a batch ----------------------------------------------------------------------------------------------

    def _event_record(self, shard_id: str, record: dict[str, Any]) -> dict[str, Any]:
        if self._kinesis:
            return kinesis_record(record, shard_id, self._arn, self._region, self._target.function_arn)
        return dynamodb_record(record, self._arn, self._region)

    async def _consume(self, shard: _Shard, lane: _Lane, records: list[dict[str, Any]]) -> None:
        """Records handled (invoked, filtered out or given up): done in the shard's progress, and the checkpoint
        stored if it moved; in a tumbling window, once the window closed."""
        sequences = [sequence_of(r) for r in records]
        if self._tumbling and lane.window is not None:
            lane.window.consumed.extend(sequences)
            return
        for sequence in sequences:
            shard.progress.done(sequence)
        await self._store(shard)

    async def _store(self, shard: _Shard) -> None:
        async with shard.lock:
            sequence = shard.progress.checkpoint
            if sequence and sequence != self._checkpoints.get(shard.shard_id):
                await self._source.store.put_stream_checkpoint(self._mapping.uuid, self._mapping.function_name,
                                                               shard.shard_id, sequence)
                self._checkpoints[shard.shard_id] = sequence

    async def _handle(self, shard: _Shard, lane: _Lane, raw: list[dict[str, Any]]) -> None:
        shard_id = shard.shard_id
        if self._tumbling and lane.window is None:
            start = self._window_of(raw[0])
            lane.window = _Window(start, start + self._tumbling, {})
        index = {sequence_of(r): i for i, r in enumerate(raw)}
        consumed = 0

        async def through(record: dict[str, Any]) -> None:
            """The raw records up to this one are consumed (with the filtered-out ones between)."""
            nonlocal consumed
            end = index[sequence_of(record)] + 1
            if end > consumed:
                await self._consume(shard, lane, raw[consumed:end])
                consumed = end

        events = [(r, self._event_record(shard_id, r)) for r in raw]
        matched = [pair for pair in events if self._target.matches(pair[1])]
        # the records before each matched one that were filtered out are consumed with it
        queue: list[_Batch] = [matched] if matched else []
        retries, invokes, backoff = 0, 0, 0.0
        while queue:
            batch = queue[0]
            expired = self._expired(batch)
            if expired:  # older than MaximumRecordAgeInSeconds: never sent to the function (nor retried further)
                await self._discard(shard_id, batch[:expired], None, "RecordAgeExceeded", invokes)
                await through(batch[expired - 1][0])
                if expired == len(batch):
                    queue.pop(0)
                    retries, invokes = 0, 0
                    continue
                batch = queue[0] = batch[expired:]
            payload = json.dumps(self._event(shard_id, lane, [e for _, e in batch])).encode()
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
            state = window_state(delivery.payload) if self._tumbling and delivery.ok else None
            if self._tumbling and delivery.ok and state is None:
                failed_at = 0  # a tumbling window's response must hold its state
            elif delivery.ok and self._report:
                failures = batch_failures(delivery.payload, [sequence_of(r) for r, _ in batch])
                if failures is None:
                    failed_at = 0
                elif failures:
                    failed_at = min(i for i, (r, _) in enumerate(batch) if sequence_of(r) in failures)
            elif not delivery.ok:
                failed_at = 0
            if state is not None and (failed_at is None or failed_at > 0) and lane.window is not None:
                lane.window.state = state
            if failed_at is None:
                await through(batch[-1][0])
                self._target.processed("OK")
                queue.pop(0)
                retries, invokes = 0, 0
                continue
            if failed_at > 0:
                await through(batch[failed_at - 1][0])
                batch = queue[0] = batch[failed_at:]
            self._target.processed("PROBLEM: Function call failed")
            condition = ""
            if self._expired(batch):
                condition = "RecordAgeExceeded"
            elif self._bisect and len(batch) > 1:  # split in two, without counting a retry
                half = len(batch) // 2
                queue[0:1] = [batch[:half], batch[half:]]
                continue
            elif self._retries >= 0 and retries >= self._retries:
                condition = "RetryAttemptsExhausted"
            if condition:
                await self._discard(shard_id, batch, delivery, condition, invokes)
                await through(batch[-1][0])
                queue.pop(0)
                retries, invokes = 0, 0
                continue
            retries += 1
            await asyncio.sleep(min(BACKOFF_MAX, 0.1 * 2 ** min(retries, 9)))
        await through(raw[-1])  # filtered-out records at the batch's end (or all of them)

    def _window_of(self, record: dict[str, Any]) -> float:
        """The start of the tumbling window a record belongs to (by its arrival time)."""
        arrival = arrival_of(record)
        return arrival - arrival % self._tumbling

    def _event(self, shard_id: str, lane: _Lane, records: list[dict[str, Any]], final: bool = False) -> dict[str, Any]:
        event: dict[str, Any] = {"Records": records}
        window = lane.window
        if self._tumbling and window is not None:
            event.update({"window": {"start": iso(window.start)[:-5] + "Z", "end": iso(window.end)[:-5] + "Z"},
                          "state": window.state, "shardId": shard_id, "eventSourceARN": self._arn,
                          "isFinalInvokeForWindow": final, "isWindowTerminatedEarly": False})
        return event

    async def _close_window(self, shard: _Shard, lane: _Lane) -> None:
        """The lane's window's final invocation (no records, its state, ``isFinalInvokeForWindow``), repeated until
        it succeeds; then the window's records are consumed and its state dropped."""
        backoff = 0.0
        while True:
            try:
                delivery = await self._target.invoke(
                    json.dumps(self._event(shard.shard_id, lane, [], final=True)).encode())
                if delivery.ok:
                    break
                self._target.processed("PROBLEM: Function call failed")
            except (TooManyRequestsException, LambdaError) as exc:
                self._target.processed(f"PROBLEM: {exc.message}")
            backoff = min(BACKOFF_MAX, max(0.2, backoff * 2))
            await asyncio.sleep(backoff)
        window, lane.window = lane.window, None
        for sequence in window.consumed if window is not None else []:
            shard.progress.done(sequence)
        await self._store(shard)
        self._target.processed("OK")

    def _expired(self, batch: _Batch) -> int:
        """How many records at the batch's start are older than MaximumRecordAgeInSeconds (a lane's records are in
        arrival order): Lambda does not send them to the function, throttled or not."""
        if self._max_age < 0:
            return 0
        oldest = time.time() - self._max_age
        count = 0
        while count < len(batch) and arrival_of(batch[count][0]) < oldest:
            count += 1
        return count

    async def _discard(self, shard_id: str, batch: _Batch, delivery: Any, condition: str, invokes: int) -> None:
        """Lambda's failure record of a batch it gives up, to the OnFailure destination (if any). ``delivery``:
        the last invocation's outcome, None when the records expired before one."""
        arn = self._target.function_arn
        qualifier = arn.split(":")[7] if arn.count(":") == 7 else "$LATEST"
        record = failure_record(kinesis=self._kinesis, shard_id=shard_id, arn=self._arn, first=batch[0][0],
                                last=batch[-1][0], size=len(batch),
                                request_id=(delivery.request_id if delivery else "") or str(uuids.uuid4()),
                                function_arn=arn, condition=condition, invokes=invokes,
                                executed_version=delivery.executed_version if delivery else qualifier,
                                function_error=delivery.function_error if delivery else None)
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
