"""Leases (cluster/leases.py) on a real NATS: one holder at a time, taken over when the holder stops renewing, and a
holder that cannot renew stops counting its lease as held before another node can have taken it."""

from __future__ import annotations

import asyncio
import time

import pytest

from lambdad.cluster import leases as leases_module
from lambdad.cluster.leases import Leases
from lambdad.cluster.link import Link
from tests.services import NATS, answers, nats_cluster_name

pytestmark = pytest.mark.skipif(not answers("127.0.0.1", 4222), reason="needs NATS with JetStream on 127.0.0.1:4222")


def test_one_holder_and_a_takeover() -> None:
    async def run(cluster: str) -> tuple[float, bool, bool]:
        a_link, b_link = await Link.open(NATS, cluster, "node-a"), await Link.open(NATS, cluster, "node-b")
        a, b = Leases(a_link), Leases(b_link)
        try:
            a_lease, b_lease = a.lease("job"), b.lease("job")
            await a.start()
            await b.start()
            assert a_lease.held() and not b_lease.held()  # the first to ask holds it
            await asyncio.sleep(leases_module.RENEW * 1.5)
            assert a_lease.held() and not b_lease.held()  # renewed, not taken
            assert a._task is not None
            a._task.cancel()  # node a stalls: no more renewals (it does not give the lease up)
            stalled = time.monotonic()
            while a_lease.held():
                await asyncio.sleep(0.05)
            a_stopped = time.monotonic() - stalled
            b_held_then = b_lease.held()
            while not b_lease.held():
                await asyncio.sleep(0.1)
                assert time.monotonic() - stalled < leases_module.TTL + 2 * leases_module.RENEW + 2
            taken = time.monotonic() - stalled
            return a_stopped, b_held_then, taken > a_stopped
        finally:
            await b.aclose()
            await a_link.aclose()
            await b_link.aclose()

    with nats_cluster_name() as cluster:
        a_stopped, b_held_when_a_stopped, later = asyncio.run(run(cluster))
    assert a_stopped <= leases_module.TTL - leases_module.MARGIN + 0.2
    assert not b_held_when_a_stopped and later  # never two holders


def test_a_clean_stop_hands_the_lease_over_at_once() -> None:
    async def run(cluster: str) -> float:
        a_link, b_link = await Link.open(NATS, cluster, "node-a"), await Link.open(NATS, cluster, "node-b")
        a, b = Leases(a_link), Leases(b_link)
        try:
            a.lease("job")
            b_lease = b.lease("job")
            await a.start()
            await b.start()
            await a.aclose()
            stopped = time.monotonic()
            while not b_lease.held():
                await asyncio.sleep(0.05)
            return time.monotonic() - stopped
        finally:
            await b.aclose()
            await a_link.aclose()
            await b_link.aclose()

    with nats_cluster_name() as cluster:
        assert asyncio.run(run(cluster)) <= leases_module.RENEW + 0.5
