"""Which node runs an invocation: here when a warm environment waits here, else its function version's home node,
unless the home is saturated.

Every node accepts Invoke. The live nodes (membership) are ranked for each function version by rendezvous
hashing (highest ``sha1(node id, function, version)`` first): the first is the version's *home*, where its warm
environments gather, and every node computes the same home without asking anyone. A node forwards an invocation
whose home is another node to it over NATS request-reply (subject ``<cluster>.invoke.<node id>``): the request
carries the function, version and revision, the caller's request id, client context and invoked ARN, and the
payload; the reply carries the result, or the Lambda error raised there, which is answered as if raised here.
When nodes come or go only the versions whose home changes move (rendezvous hashing's property).

Provisioned concurrency comes before the home: an invocation runs where it arrived when an idle warm environment
of the version (provisioned or on-demand) waits there (no hop, no cold start); else, when the version has
provisioned environments on other nodes (their heartbeats say how many each has initialised,
``cluster/placement.py`` spreads them), it goes to the first of them in the version's ranking (the home first)
that has more of them than this node has invocations of the version running there: so a burst arriving at one
node uses the environments provisioned on the others before any cold start. This node counts only its own
invocations there; one that finds them all busy with other nodes' invocations spills over to an on-demand
environment there, as it would at the home.

Then three exceptions spread a busy function over the cluster: the idle warm environment here above; when this
node already has ``FORWARD_AT_ONCE`` invocations of the version running at the home (the function runs
concurrently here: a cold start here instead, and the next invocations find it warm here, so each node serves its
own share of a busy function, and the home's one event loop is not the ceiling); and when the home's last
heartbeat showed it saturated (``SATURATED`` busy environments per core) while this node is not. Sequential
invocations from every node all run at the home, on one warm environment.

What is not forwarded, and runs where it arrived: a payload too big for one NATS message; an invocation whose home
does not answer at once (NATS tells "no responders" when no node listens: the node is gone and membership has not
noticed yet) — nothing ran there, so running it here is safe. A home that took the invocation and then left the
cluster (its heartbeats stopped: kill -9, a crash) or went silent past the function's timeout is answered with
``ServiceException`` (it may have run: it is not run again).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Sequence

from lambdad.arn import FunctionRef
from lambdad.cluster.link import Link
from lambdad.cluster.membership import NodeInfo
from lambdad.errors import (LambdaError, ResourceConflictException, ResourceNotFoundException, ServiceException,
                            rebuild)
from lambdad.functions.model import FunctionConfig
from lambdad.invoke.service import InvokeOutcome, InvokeService
from lambdad.sandbox.spec import InvocationResult
from lambdad.sandbox.response_stream import ResponseStream

__all__ = ["InvokeRouter", "home_of", "ranking"]

log = logging.getLogger(__name__)

_ENVELOPE = 16 * 1024  # headers and framing of a forwarded invocation, at most
_ANSWER_MARGIN = 10.0
_WATCH = 1.0  # seconds between looks at whether the home of a forwarded invocation is still alive
_HEADER = "Lambdad-Invoke"
FORWARD_AT_ONCE = 1  # invocations of one version this node runs at its home at once; more run here
SATURATED = 2  # busy environments per core (at least 4 in all) beyond which a home takes no more forwarded work  # the request's and the answer's fields, as one JSON object  # seconds past the function's timeout a forwarding node waits for the home's answer


def _saturated(node: NodeInfo) -> bool:
    return node.busy >= max(4, SATURATED * node.cores)


def _weight(node: str, name: str, version: str) -> bytes:
    return hashlib.sha1(f"{node}\0{name}\0{version}".encode()).digest()


def home_of(nodes: Sequence[str], name: str, version: str) -> str:
    """The node (of ``nodes``) that is home to ``name``'s ``version``: the highest rendezvous hash."""
    return max(nodes, key=lambda node: _weight(node, name, version))


def ranking(nodes: Sequence[str], name: str, version: str) -> list[str]:
    """``nodes`` by their rendezvous hash for ``name``'s ``version``, the home first."""
    return sorted(nodes, key=lambda node: _weight(node, name, version), reverse=True)


def _provisioned_by_version(nodes: Sequence[NodeInfo]) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """Where each version's provisioned environments are initialised, as the nodes' heartbeats said: (function,
    version) -> [(node, how many)], in the version's ranking (the home first)."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for info in nodes:
        for key, there in info.provisioned.items():
            if len(there) < 3 or not there[2] or not int(there[0]):
                continue  # [initialised, failure, version]; a heartbeat of an older node names no version
            at = counts.setdefault((key.split(":", 1)[0], str(there[2])), {})
            at[info.node] = at.get(info.node, 0) + int(there[0])
    return {(name, version): [(node, at[node]) for node in ranking(list(at), name, version)]
            for (name, version), at in counts.items()}


def _decrement(counts: dict[Any, int], key: Any) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


class InvokeRouter:
    """The invoke service as the API sees it in a cluster: ``invoke`` runs here or at the version's home."""

    def __init__(self, link: Link, invoker: InvokeService, live_nodes: Callable[[], Sequence[NodeInfo]],
                 reload: Callable[[str], Awaitable[None]], idle_here: Callable[[str, str, str], bool]) -> None:
        self._link = link
        self._reload = reload
        self._idle_here = idle_here
        self._invoker = invoker
        self._live_nodes = live_nodes
        self._subject = link.names.subject("invoke")
        self._subscription: Any = None
        self._homes_of: Sequence[NodeInfo] = ()
        self._homes: dict[tuple[str, str], str] = {}
        self._by_id: dict[str, NodeInfo] = {}
        self._at_home: dict[tuple[str, str], int] = {}  # invocations of each version forwarded, not answered yet
        self._sent: dict[tuple[str, str, str], int] = {}  # the same by (function, version, node they went to)
        # (function, version) -> [(node, provisioned environments initialised there)], the home first
        self._provisioned: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.forwarded = 0  # invocations sent to their home
        self.served = 0  # invocations run here for another node

    # the rest of the invoke service's face, unchanged
    def route(self, ref: FunctionRef) -> FunctionConfig:
        return self._invoker.route(ref)

    def invoked_arn(self, ref: FunctionRef) -> str:
        return self._invoker.invoked_arn(ref)

    async def start(self) -> None:
        if self._link.clustered:
            self._subscription = await self._link.nats.subscribe(f"{self._subject}.{self._link.node_id}",
                                                                 cb=self._serve)

    async def aclose(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def invoke(self, config: FunctionConfig, payload: bytes, *, request_id: str | None = None,
                     client_context: str | None = None, invoked_arn: str | None = None,
                     want_log: bool = False, lineage: int = 0, trace: str | None = None,
                     stream: ResponseStream | None = None) -> InvokeOutcome:
        # a streamed response runs here: the chunks are not carried between nodes (docs/streaming.md)
        home = self._home(config, payload) if stream is None else None
        if home is None:
            return await self._invoker.invoke(config, payload, request_id=request_id, client_context=client_context,
                                              invoked_arn=invoked_arn, want_log=want_log, lineage=lineage,
                                              trace=trace, stream=stream)
        from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

        request_id = request_id or str(uuid.uuid4())
        asked = {"name": config.name, "version": config.version, "revision": config.revision_id,
                 "request_id": request_id, "invoked_arn": invoked_arn, "want_log": want_log,
                 "client_context": client_context, "lineage": lineage, "trace": trace}
        key = (config.name, config.version)
        sent = (config.name, config.version, home)
        self._at_home[key] = self._at_home.get(key, 0) + 1
        self._sent[sent] = self._sent.get(sent, 0) + 1
        try:
            reply = await self._answer(home, payload, asked, config.timeout + _ANSWER_MARGIN)
        except NoRespondersError:
            log.info("cluster: node %s, home of %s:%s, is gone; running it here", home, config.name, config.version)
            return await self._invoker.invoke(config, payload, request_id=request_id, client_context=client_context,
                                              invoked_arn=invoked_arn, want_log=want_log, lineage=lineage,
                                              trace=trace)
        except NatsTimeout as exc:
            raise ServiceException(f"The node running the invocation ({home}) did not answer within "
                                   f"{config.timeout + _ANSWER_MARGIN:.0f} s.") from exc
        finally:
            _decrement(self._at_home, key)
            _decrement(self._sent, sent)
        self.forwarded += 1
        answer = json.loads((reply.headers or {})[_HEADER])
        if "error" in answer:
            raise rebuild(answer["error"], answer["message"], answer.get("reason"))
        result = InvocationResult(payload=reply.data, function_error=answer["function_error"],
                                  log_text=answer["log"], status=answer["status"])
        return InvokeOutcome(request_id=request_id, executed_version=answer["executed_version"], result=result)

    async def _answer(self, home: str, payload: bytes, asked: dict[str, Any], timeout: float) -> Any:
        """The home's reply to a forwarded invocation; ``ServiceException`` at once when the home leaves the
        cluster meanwhile (its heartbeats stopped: a kill -9, a crash), rather than after the whole timeout."""
        request = asyncio.ensure_future(self._link.nats.request(
            f"{self._subject}.{home}", payload, headers={_HEADER: json.dumps(asked)}, timeout=timeout))
        try:
            while True:
                done, _ = await asyncio.wait({request}, timeout=_WATCH)
                if done:
                    return request.result()
                if home not in {node.node for node in self._live_nodes()}:
                    raise ServiceException(f"The node running the invocation ({home}) left the cluster before it "
                                           "answered; the invocation may have run.")
        finally:
            request.cancel()

    def _home(self, config: FunctionConfig, payload: bytes) -> str | None:
        """The node to forward to, or None to run here."""
        if not self._link.clustered or len(payload) > self._link.nats.max_payload - _ENVELOPE:
            return None
        nodes = self._live_nodes()
        if len(nodes) < 2:
            return None
        if self._idle_here(config.name, config.version, config.revision_id):
            return None
        if nodes is not self._homes_of:  # membership changed (or was worked out again): homes afresh
            self._homes_of, self._homes = nodes, {}
            self._by_id = {node.node: node for node in nodes}
            self._provisioned = _provisioned_by_version(nodes)
        key = (config.name, config.version)
        me = self._link.node_id
        for node, ready in self._provisioned.get(key, ()):
            if node != me and ready > self._sent.get((config.name, config.version, node), 0):
                return node  # a provisioned environment there is free, as far as this node knows
        if self._at_home.get(key, 0) >= FORWARD_AT_ONCE:
            return None
        home = self._homes.get(key)
        if home is None:
            home = self._homes[key] = home_of(list(self._by_id), config.name, config.version)
        if home == me:
            return None
        if me in self._by_id and _saturated(self._by_id[home]) and not _saturated(self._by_id[me]):
            return None
        return home

    async def _serve(self, msg: Any) -> None:
        """Run an invocation another node forwarded here, and answer it."""
        answer: dict[str, Any]
        data = b""
        try:
            asked = json.loads((msg.headers or {})[_HEADER])
            config = await self._config(asked["name"], asked["version"], asked["revision"])
            outcome = await self._invoker.invoke(
                config, msg.data, request_id=asked["request_id"], client_context=asked["client_context"],
                invoked_arn=asked["invoked_arn"], want_log=asked["want_log"], lineage=int(asked.get("lineage", 0)),
                trace=asked.get("trace"))
            result = outcome.result
            answer = {"status": result.status, "executed_version": outcome.executed_version,
                      "function_error": result.function_error, "log": result.log_text if asked["want_log"] else ""}
            data = result.payload
            self.served += 1
        except LambdaError as exc:
            answer = {"error": exc.name, "message": exc.message, "reason": getattr(exc, "reason", None)}
        except Exception as exc:  # a fault here must still answer, or the caller waits out the timeout
            log.exception("cluster: a forwarded invocation failed")
            answer = {"error": ServiceException.name, "message": f"{type(exc).__name__}: {exc}"}
        await self._link.nats.publish(msg.reply, data, headers={_HEADER: json.dumps(answer)})

    async def _config(self, name: str, version: str, revision: str) -> FunctionConfig:
        """The version the forwarding node resolved, as this node knows it; read again when this node's copy is
        older or it has none yet (a change notice still on its way)."""
        try:
            config: FunctionConfig | None = self._invoker.route(FunctionRef(name, version))
        except ResourceNotFoundException:  # made a moment ago on the forwarding node: its notice is on its way
            config = None
        if config is None or config.revision_id != revision:
            await self._reload(name)
            config = self._invoker.route(FunctionRef(name, version))
            if config.revision_id != revision:
                raise ResourceConflictException(
                    f"The function {name}:{version} changed while the invocation was forwarded; retry it.")
        return config
