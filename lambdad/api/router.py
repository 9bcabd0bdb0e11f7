"""Routing a request line of the Lambda API to its botocore operation (step 1 of ``api/protocol.py``).

Each operation's ``http.requestUri`` is compiled into a segment trie at construction. The raw path is split on
``/`` *before* percent-decoding, so an ARN label (``arn%3Aaws%3A...``) or an encoded ``/`` stays inside its
label. Literal segments win over labels; a greedy label ``{X+}`` takes one or more segments. Two requestUris
carry a literal query (``GET /2018-10-31/layers?find=LayerVersion`` is GetLayerVersionByArn, ``GET
.../provisioned-concurrency?List=ALL`` is ListProvisionedConcurrencyConfigs): they share path and method with
ListLayers and GetProvisionedConcurrencyConfig, so ``match`` takes the query too, and a route with literal query
parameters wins when they are all present. A path that matches no template, or matches one but not with this
method, is an ``UnknownOperationException`` (404).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel

from lambdad.errors import UnknownOperationException

__all__ = ["Router"]

_LABEL = re.compile(r"^\{([^{}+]+)(\+?)\}$")


@dataclass(frozen=True, slots=True)
class _Route:
    operation: OperationModel
    labels: tuple[str, ...]
    query: tuple[tuple[str, str], ...]  # literal query parameters of the requestUri, e.g. (("find", "LayerVersion"),)

    def accepts(self, query: Mapping[str, Sequence[str]] | None) -> bool:
        for key, value in self.query:
            if query is None or key not in query:
                return False
            if value and value not in query[key]:
                return False
        return True


class _Node:
    __slots__ = ("literals", "label", "greedy", "routes")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.label: _Node | None = None
        self.greedy: _Node | None = None
        self.routes: dict[str, list[_Route]] = {}


class Router:
    """Finds the operation for a request line; built once from the service model."""

    def __init__(self, service_model: ServiceModel) -> None:
        self._root = _Node()
        for name in service_model.operation_names:
            self._add(service_model.operation_model(name))
        # A route with literal query parameters is more specific than its bare twin: try it first.
        self._sort(self._root)

    def _add(self, op: OperationModel) -> None:
        path, _, literal_query = op.http["requestUri"].partition("?")
        node = self._root
        labels: list[str] = []
        for segment in path.split("/")[1:]:
            label = _LABEL.match(segment)
            if label is None:
                node = node.literals.setdefault(segment, _Node())
            elif label.group(2):
                node.greedy = node.greedy or _Node()
                node, labels = node.greedy, [*labels, label.group(1)]
            else:
                node.label = node.label or _Node()
                node, labels = node.label, [*labels, label.group(1)]
        route = _Route(op, tuple(labels), tuple(parse_qsl(literal_query, keep_blank_values=True)))
        node.routes.setdefault(op.http["method"].upper(), []).append(route)

    def _sort(self, node: _Node) -> None:
        for routes in node.routes.values():
            routes.sort(key=lambda route: -len(route.query))
        for child in (*node.literals.values(), node.label, node.greedy):
            if child is not None:
                self._sort(child)

    def match(
        self, method: str, raw_path: str, query: Mapping[str, Sequence[str]] | None = None
    ) -> tuple[OperationModel, dict[str, str]]:
        """The operation for ``method raw_path`` and its percent-decoded uri labels.

        ``raw_path`` is the path as received (percent-encoded, without the query string); ``query`` the parsed
        query string, needed only to tell apart the routes whose requestUri has a literal query part.
        """
        if raw_path.startswith("/"):
            segments = raw_path.split("/")
            captured: list[str] = []
            route = self._walk(self._root, segments, 1, method.upper(), query, captured)
            if route is not None:
                return route.operation, {
                    name: _percent_decode(raw) if "%" in raw else raw for name, raw in zip(route.labels, captured)
                }
        raise UnknownOperationException(f"Unknown operation: {method} {raw_path}")

    def _walk(
        self,
        node: _Node,
        segments: list[str],
        index: int,
        method: str,
        query: Mapping[str, Sequence[str]] | None,
        captured: list[str],
    ) -> _Route | None:
        if index == len(segments):
            for route in node.routes.get(method, ()):
                if not route.query or route.accepts(query):
                    return route
            return None
        segment = segments[index]
        literal = node.literals.get(segment)
        if literal is None and node.literals and "%" in segment:
            literal = node.literals.get(_percent_decode(segment))
        if literal is not None:
            found = self._walk(literal, segments, index + 1, method, query, captured)
            if found is not None:
                return found
        if node.label is not None:
            captured.append(segment)
            found = self._walk(node.label, segments, index + 1, method, query, captured)
            if found is not None:
                return found
            captured.pop()
        if node.greedy is not None:
            for end in range(index + 1, len(segments) + 1):  # shortest first: a literal suffix wins
                captured.append("/".join(segments[index:end]))
                found = self._walk(node.greedy, segments, end, method, query, captured)
                if found is not None:
                    return found
                captured.pop()
        return None


_HEX_DIGITS = "0123456789abcdefABCDEF"
_ESCAPES = {f"{hi}{lo}": bytes((int(hi + lo, 16),)) for hi in _HEX_DIGITS for lo in _HEX_DIGITS}


def _percent_decode(raw: str) -> str:
    """``urllib.parse.unquote``, twice as fast: it runs on every ARN-addressed invoke."""
    parts = raw.split("%")
    out = [parts[0].encode()]
    for part in parts[1:]:
        byte = _ESCAPES.get(part[:2])
        if byte is None:  # not an escape: kept as it is, like unquote
            out.append(b"%")
            out.append(part.encode())
        else:
            out.append(byte)
            out.append(part[2:].encode())
    return b"".join(out).decode("utf-8", "replace")
