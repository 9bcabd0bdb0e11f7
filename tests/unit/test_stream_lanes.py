"""ParallelizationFactor's pure parts (lambdad/esm/lanes.py): the checkpoint rule when batches finish out of order,
and the routing of records to lanes by their key."""

from __future__ import annotations

from collections import Counter

from lambdad.esm.lanes import ShardProgress, lane_of


def test_checkpoint_waits_for_the_lowest_unfinished_record() -> None:
    progress = ShardProgress("100")
    for sequence in ("101", "102", "103", "104", "105", "106"):
        progress.read(sequence)
    # lane B finished 103-104 and lane C 106 first: 101 is unfinished, so nothing moves
    assert progress.done("103") is False and progress.done("104") is False and progress.done("106") is False
    assert progress.checkpoint == "100" and progress.unfinished == 6
    assert progress.done("101") is True
    assert progress.checkpoint == "101"  # 102 is still in flight
    assert progress.done("102") is True
    assert progress.checkpoint == "104"  # 103 and 104 were done already; 105 bounds it now
    assert progress.done("105") is True
    assert progress.checkpoint == "106" and progress.unfinished == 0


def test_checkpoint_starts_unset_and_never_moves_back() -> None:
    progress = ShardProgress()
    assert progress.checkpoint is None
    progress.read("1")
    progress.read("2")
    progress.done("2")
    assert progress.checkpoint is None  # "1" is unfinished: a restart must read it again
    progress.done("1")
    assert progress.checkpoint == "2"
    progress.done("2")  # done twice (handled again): harmless
    progress.read("3")
    assert progress.checkpoint == "2"


def test_a_key_always_goes_to_the_same_lane() -> None:
    records = [{"PartitionKey": f"key-{i}", "SequenceNumber": str(i)} for i in range(300)]
    lanes = [lane_of(r, 3) for r in records]
    assert lanes == [lane_of({"PartitionKey": f"key-{i}"}, 3) for i in range(300)]  # by the key only
    counts = Counter(lanes)
    assert set(counts) == {0, 1, 2} and min(counts.values()) > 60  # spread over the lanes
    assert all(lane_of(r, 1) == 0 for r in records)
    # a fixed function of the key (MD5), the same in every process and after every restart
    assert lane_of({"PartitionKey": "a"}, 10) == int("0cc175b9c0f1b6a831c399e269772661", 16) % 10


def test_a_dynamodb_item_goes_by_its_keys_whatever_their_order() -> None:
    one = {"dynamodb": {"Keys": {"pk": {"S": "x"}, "sk": {"N": "1"}}, "SequenceNumber": "1"}}
    same = {"dynamodb": {"Keys": {"sk": {"N": "1"}, "pk": {"S": "x"}}, "SequenceNumber": "9"}, "eventName": "MODIFY"}
    assert lane_of(one, 7) == lane_of(same, 7)
    binary = {"dynamodb": {"Keys": {"pk": {"B": b"\x00\x01"}}}}
    assert 0 <= lane_of(binary, 7) < 7
    items = Counter(lane_of({"dynamodb": {"Keys": {"id": {"S": str(i)}}}}, 4) for i in range(200))
    assert set(items) == {0, 1, 2, 3}


def test_records_older_than_the_maximum_age_are_the_expired_prefix() -> None:
    """MaximumRecordAgeInSeconds: the records at a batch's start that arrived before now - age are never sent to
    the function (StreamPoller._expired); -1 keeps every record."""
    import time
    from types import SimpleNamespace

    from lambdad.esm.streams import StreamPoller

    now = time.time()
    batch = [({"ApproximateArrivalTimestamp": now - age}, {}) for age in (300, 120, 30, 5)]
    assert StreamPoller._expired(SimpleNamespace(_max_age=60), batch) == 2  # type: ignore[arg-type]
    assert StreamPoller._expired(SimpleNamespace(_max_age=600), batch) == 0  # type: ignore[arg-type]
    assert StreamPoller._expired(SimpleNamespace(_max_age=-1), batch) == 0  # type: ignore[arg-type]
    dynamodb = [({"dynamodb": {"ApproximateCreationDateTime": now - 90}}, {})]
    assert StreamPoller._expired(SimpleNamespace(_max_age=60), dynamodb) == 1  # type: ignore[arg-type]
