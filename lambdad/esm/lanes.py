"""ParallelizationFactor: how one shard's records are spread over concurrent batches, and where its checkpoint may
stand while they finish out of order.

Lambda processes up to ParallelizationFactor batches of one shard at once and still keeps the order of the records
of one partition key (Kinesis) or of one item (DynamoDB Streams: its ``Keys``). lambdad does it with *lanes*: a
shard's reader hands each record to lane ``lane_of(record)`` (a stable hash of its key modulo the factor; the same
key always in the same lane, on every node and after every restart), and each lane has at most one batch in flight,
so a key's records are handled one batch after the other, in shard order. Lanes of one shard run side by side.

Because lanes finish out of order, a shard's checkpoint cannot be "the last record of the batch that just
finished". ``ShardProgress`` keeps the records read but not yet handled, in shard order, and the checkpoint is the
sequence number of the last record before the lowest unfinished one: every record up to it was handled, so a
restart (or another node taking the lease) that resumes after it skips nothing. Records handled beyond it are
handled again after a restart: at least once, as Lambda promises.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any, Mapping as MappingType

from lambdad.esm.stream_shapes import plain

__all__ = ["lane_of", "ShardProgress"]


def _key(record: MappingType[str, Any]) -> bytes:
    """What orders a record: a Kinesis record's partition key, a DynamoDB stream record's item keys."""
    if "PartitionKey" in record:
        return str(record["PartitionKey"]).encode()
    keys = plain((record.get("dynamodb") or {}).get("Keys") or {})
    return json.dumps(keys, sort_keys=True, separators=(",", ":")).encode()


def lane_of(record: MappingType[str, Any], lanes: int) -> int:
    """The lane (0 … lanes-1) of a record: the MD5 of its key (as Kinesis hashes a partition key to a shard) modulo
    the number of lanes. Stable across processes, unlike ``hash()``."""
    if lanes <= 1:
        return 0
    digest = hashlib.md5(_key(record), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big") % lanes


class ShardProgress:
    """The checkpoint rule of one shard: ``read`` each record's sequence number in shard order, ``done`` it once it
    is handled (in any order); ``checkpoint`` is the last sequence number below which every record read is done
    (the one given at the start while none is)."""

    def __init__(self, checkpoint: str | None = None) -> None:
        self.checkpoint = checkpoint
        self._open: deque[str] = deque()  # read, in shard order, from the lowest unfinished one
        self._done: set[str] = set()  # done, but behind an unfinished one

    def read(self, sequence: str) -> None:
        self._open.append(sequence)

    def done(self, sequence: str) -> bool:
        """Mark a record handled; True when the checkpoint moved."""
        if sequence not in self._done:
            self._done.add(sequence)
        moved = False
        while self._open and self._open[0] in self._done:
            self.checkpoint = self._open.popleft()
            self._done.discard(self.checkpoint)
            moved = True
        return moved

    @property
    def unfinished(self) -> int:
        """How many records read are not behind the checkpoint yet."""
        return len(self._open)
