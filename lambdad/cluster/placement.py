"""Where a provisioned concurrency config's environments run in a cluster: spread over the live nodes.

A config asking for ``n`` environments of a version gives each of the ``k`` live nodes ``n // k`` of them, and
one more to the first ``n % k`` nodes in the version's rendezvous ranking (``routing.ranking``), whose first is
the version's home: so the home, where invocations of the version are sent, always has the most of them, and a
node that receives an invocation runs it at once when a provisioned environment of the version is idle there.
Every node works the shares out from the same membership, asking no one; when nodes come or go the shares
change, ``ProvisionedConcurrency`` starts or closes environments to match, and the environments of a node that
died are started on the others once it is taken for dead (``membership.EXPIRY``).

Why shares worked out from the membership rather than assignments an allocator (one node under a lease) writes to
the store: every node already sees the same live nodes, rendezvous hashing already decides each version's home
from them, and the shares follow from those with no other state to keep, no writes, and no lease to fail over
(a lease's holder dying would stall every move for the lease's expiry on top of the node's). What the nodes may
see differently for a moment (one has noticed a join, another not yet) only makes a share start or close a
second early or late.

A node whose share shrinks (a node joined, or the config was lowered) makes before it breaks: it keeps the
initialised environments beyond its share while the other nodes' initialised environments *within their shares*
(read off their heartbeats) fall short of the request (``keep``). So a join moves environments without the
config dropping below its request, and the surplus closes a heartbeat after the newcomer's are initialised.

The other nodes' initialised environments are read off their heartbeats (``NodeInfo.provisioned``), so a config's
status is at most a heartbeat (``membership.BEAT``) behind on the nodes other than the one holding them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from lambdad.cluster.membership import NodeInfo
from lambdad.cluster.routing import ranking

__all__ = ["SpreadPlacement", "share_of"]


def share_of(nodes: Sequence[str], node: str, name: str, version: str, requested: int) -> int:
    """How many of a config's ``requested`` environments of ``name``'s ``version`` run on ``node``."""
    if node not in nodes:
        return 0
    position = ranking(nodes, name, version).index(node)
    return requested // len(nodes) + (1 if position < requested % len(nodes) else 0)


class SpreadPlacement:
    spread = True

    def __init__(self, node: str, live: Callable[[], Sequence[NodeInfo]]) -> None:
        self._node = node
        self._live = live

    def share(self, name: str, version: str, requested: int) -> int:
        return share_of([n.node for n in self._live()], self._node, name, version, requested)

    def keep(self, name: str, version: str, key: str, requested: int, ready_here: int) -> int:
        """How many environments to run here: the share, or more while this node holds initialised ones beyond it
        that the others' initialised ones within their shares do not yet make up for (a node joined: its share
        starts before this node closes what it gives up)."""
        live = self._live()
        nodes = [n.node for n in live]
        share = share_of(nodes, self._node, name, version, requested)
        if ready_here <= share:
            return share
        covered = 0
        for info in live:
            if info.node != self._node:
                there = info.provisioned.get(key)  # [initialised, failure, version] (older nodes: no version)
                ready = int(there[0]) if there and (len(there) < 3 or there[2] == version) else 0
                covered += min(ready, share_of(nodes, info.node, name, version, requested))
        return max(share, min(ready_here, requested - covered))

    def elsewhere(self, key: str) -> tuple[int, str | None]:
        ready, failure = 0, None
        for info in self._live():
            if info.node == self._node:
                continue
            there = info.provisioned.get(key)
            if there:
                ready += int(there[0])
                failure = failure or there[1]
        return ready, failure
