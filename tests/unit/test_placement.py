"""The pure parts of provisioned concurrency in a cluster: the shares (cluster/placement.py), what a node whose
share shrank keeps, and where the router finds provisioned environments (cluster/routing.py)."""

from __future__ import annotations

from typing import Any

from lambdad.cluster.membership import NodeInfo
from lambdad.cluster.placement import SpreadPlacement, share_of
from lambdad.cluster.routing import _provisioned_by_version, ranking


def _node(node: str, provisioned: dict[str, list[Any]] | None = None) -> NodeInfo:
    return NodeInfo(node, f"http://{node}", 0.0, "0", 1, 0, 0, provisioned or {})


def test_the_shares_sum_to_the_request_and_the_home_has_the_most() -> None:
    for k in range(1, 6):
        nodes = [f"n{i}" for i in range(k)]
        for requested in range(0, 12):
            shares = {n: share_of(nodes, n, "f", "1", requested) for n in nodes}
            assert sum(shares.values()) == requested
            home = ranking(nodes, "f", "1")[0]
            assert shares[home] == max(shares.values())
            assert max(shares.values()) - min(shares.values()) <= 1
    assert share_of(["a", "b"], "c", "f", "1", 4) == 0


def test_a_node_whose_share_shrank_keeps_it_until_the_newcomer_is_ready() -> None:
    """4 on two nodes (2, 2); a third joins and the shares become 2, 1, 1: the node giving one up keeps 2 until
    the newcomer's heartbeat shows its one initialised."""
    nodes = ["a", "b", "c"]
    shares = {n: share_of(nodes, n, "f", "1", 4) for n in nodes}
    keeper = next(n for n in nodes if shares[n] == 2)
    giver, newcomer = [n for n in nodes if n != keeper]

    def keep(newcomer_ready: int, ready_here: int) -> int:
        live = sorted([_node(giver), _node(keeper, {"f:1": [2, None, "1"]}),
                       _node(newcomer, {"f:1": [newcomer_ready, None, "1"]})], key=lambda n: n.node)
        return SpreadPlacement(giver, lambda: live).keep("f", "1", "f:1", 4, ready_here)

    assert keep(newcomer_ready=0, ready_here=2) == 2  # the newcomer's is not initialised yet: keep both
    assert keep(newcomer_ready=1, ready_here=2) == 1  # it is: back to the share
    assert keep(newcomer_ready=0, ready_here=0) == 1  # nothing initialised here: the share, nothing more
    assert keep(newcomer_ready=0, ready_here=1) == 1


def test_the_router_finds_provisioned_environments_by_version_home_first() -> None:
    nodes = [_node("a", {"f:live": [1, None, "3"], "g:1": [2, None, "1"]}),
             _node("b", {"f:3": [2, None, "3"], "f:live": [0, None, "3"]}),
             _node("c", {"f:live": [1, None]})]  # an older node's heartbeat names no version: not counted
    found = _provisioned_by_version(nodes)
    assert dict(found[("f", "3")]) == {"a": 1, "b": 2}
    assert [n for n, _ in found[("f", "3")]] == [n for n in ranking(["a", "b"], "f", "3")]
    assert found[("g", "1")] == [("a", 2)]
