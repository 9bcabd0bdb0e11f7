"""The Telemetry API (2022-07-01, event schema 2022-12-13): an extension subscribes with
``PUT /2022-07-01/telemetry``, and its environment's telemetry is batched and POSTed to it as JSON arrays.

Each subscription owns a buffer and a background task that flushes it when it holds ``maxItems`` events or
``maxBytes`` bytes, or ``timeoutMs`` after its first event. Posting never touches the invoke path: the
environment's invocation log (``invocation_log.py``) only appends to the buffer; a destination that fails or is
slow (more than ``POST_TIMEOUT_SECONDS``) costs that batch, with a log line. The invocation log owns the hub, and
so the aiohttp session its subscriptions post with, and closes it (``TelemetryHub.aclose``); the environment's
extensions (``extensions.py``) take the subscription requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
from yarl import URL

from lambdad.runtime_api.server import RuntimeApiError
from lambdad.sandbox.network import Namespace

__all__ = ["TelemetryHub", "Subscription", "parse_subscription", "iso_time"]

log = logging.getLogger(__name__)

SCHEMA_VERSIONS = ("2022-12-13",)
TYPES = ("platform", "function", "extension")
# AWS's documented ranges and defaults for "buffering"
BUFFERING_RANGES = {"maxItems": (25, 10000, 1000), "maxBytes": (262144, 1048576, 262144),
                    "timeoutMs": (25, 30000, 1000)}
POST_TIMEOUT_SECONDS = 5.0
SANDBOX_HOST = "sandbox.localdomain"


def iso_time(epoch: float | None = None) -> str:
    now = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _invalid(message: str) -> RuntimeApiError:
    return RuntimeApiError(400, "ValidationError", message)


def parse_subscription(body: bytes) -> tuple[URL, frozenset[str], dict[str, int]]:
    """Validate a subscription request: (destination, types, buffering), or RuntimeApiError 400 as AWS words it."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _invalid("The request body must be a JSON object")
    if data.get("schemaVersion") not in SCHEMA_VERSIONS:
        raise _invalid(f"schemaVersion must be one of {list(SCHEMA_VERSIONS)}")
    destination = data.get("destination")
    if not isinstance(destination, dict) or destination.get("protocol") != "HTTP":
        raise _invalid("destination.protocol must be HTTP (TCP is not supported)")
    uri = destination.get("URI")
    try:
        url = URL(uri) if isinstance(uri, str) else None
    except ValueError:
        url = None
    if url is None or url.scheme != "http" or not url.host:
        raise _invalid("destination.URI must be an http:// URI")
    types = data.get("types")
    if not isinstance(types, list) or not types or any(t not in TYPES for t in types):
        raise _invalid(f"types must be a non-empty subset of {list(TYPES)}")
    buffering = data.get("buffering") or {}
    if not isinstance(buffering, dict):
        raise _invalid("buffering must be an object")
    limits = {}
    for key, (low, high, default) in BUFFERING_RANGES.items():
        value = buffering.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _invalid(f"buffering.{key} must be an integer between {low} and {high}")
        limits[key] = value
    return url, frozenset(types), limits


class Subscription:
    """One extension's subscription: a buffer and the task that flushes it."""

    def __init__(self, hub: "TelemetryHub", name: str, url: URL, types: frozenset[str],
                 limits: dict[str, int]) -> None:
        self._hub = hub
        self.name = name
        self.types = types
        self._host_header = None
        if url.host == SANDBOX_HOST:  # where extensions listen: the environment's loopback (shared network)
            self._host_header = url.raw_authority
            url = url.with_host("127.0.0.1")
        self._url = url
        self._max_items = limits["maxItems"]
        self._max_bytes = limits["maxBytes"]
        self._timeout = limits["timeoutMs"] / 1000.0
        self._buffer: list[bytes] = []
        self._size = 0
        self._dropped = 0  # events refused while a full buffer waited for a post in flight
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, event: bytes) -> None:
        if len(self._buffer) >= self._max_items or self._size >= self._max_bytes:
            self._dropped += 1  # full, and the destination has not taken the last batch yet
            return
        self._buffer.append(event)
        self._size += len(event) + 1
        if len(self._buffer) == 1:
            self._wake.set()
        if len(self._buffer) >= self._max_items or self._size >= self._max_bytes:
            self._full.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            try:
                await asyncio.wait_for(self._full.wait(), self._timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            self._full.clear()
            batch, self._buffer, self._size = self._buffer, [], 0
            if batch:
                await self._post(b"[" + b",".join(batch) + b"]")
            if self._dropped:
                log.warning("telemetry: %s: %d events dropped (buffer full while a batch was in flight)",
                            self.name, self._dropped)
                self._dropped = 0
            if self._buffer:
                self._wake.set()

    async def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        if self._host_header:
            headers["Host"] = self._host_header
        try:
            session = self._hub.session()
            async with session.post(self._url, data=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_SECONDS)) as resp:
                await resp.read()
                if resp.status >= 400:
                    log.warning("telemetry: %s answered %d: batch dropped", self.name, resp.status)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("telemetry: could not deliver a batch to %s (%s): dropped", self.name,
                        exc.__class__.__name__)

    async def aclose(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass


class TelemetryHub:
    """An environment's subscriptions, and the HTTP session they post with (created at the first one)."""

    def __init__(self, network: Namespace | None = None) -> None:
        self.subscriptions: dict[str, Subscription] = {}  # extension id -> its subscription
        self._session: aiohttp.ClientSession | None = None
        self._network = network  # the environment's own network namespace: its loopback is reached from inside

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = None
            if self._network is not None:
                network = self._network
                connector = aiohttp.TCPConnector(
                    socket_factory=lambda info: network.socket_inside(info[0], info[1]))
            self._session = aiohttp.ClientSession(trust_env=False, connector=connector)
        return self._session

    def subscribe(self, extension_id: str, name: str, body: bytes) -> None:
        url, types, limits = parse_subscription(body)
        old = self.subscriptions.pop(extension_id, None)
        if old is not None:
            asyncio.get_running_loop().create_task(old.aclose())
        self.subscriptions[extension_id] = Subscription(self, name, url, types, limits)

    def publish(self, category: str, event_type: str, record: Any) -> None:
        """One event of ``category`` (platform, function, extension) to every subscription that asked for it."""
        data = None
        for sub in self.subscriptions.values():
            if category in sub.types:
                if data is None:
                    data = json.dumps({"time": iso_time(), "type": event_type, "record": record}).encode()
                sub.add(data)

    async def aclose(self) -> None:
        subs = list(self.subscriptions.values())
        self.subscriptions.clear()
        for sub in subs:
            await sub.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None
