"""An environment's endpoint: the listeners through which its processes reach the platform, and who may use them.

The Runtime API server (``runtime_api/server.py``, which calls the environment) listens in one of three ways:

- on 127.0.0.1 and a port of its own (``start``), when the environment shares the host's network: any process on
  the machine can connect, so a connection is served only when its peer is one of the environment's own
  processes (``accepts_peer``: the socket's owner is in the environment's cgroup);
- inside the environment's own network namespace (``serve``: the listeners the server opened there, with this
  server's API and the relays to allow-listed host services beside it; or ``receive_listener``: the listener
  the environment opened itself, with a private network, and sent over a channel), where only the environment's
  own processes live;
- on the socketpair the launcher made for the runtime (``serve``: the Python runtime's), trusted as it is.

The endpoint owns these listeners and servers and closes them (``stop_listening``, ``aclose``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING

from lambdad.runtime_api.server import RuntimeApiServer, RuntimeApiTarget
from lambdad.sandbox.network import serve_relays
from lambdad.sandbox.peers import owned_by, socket_inode

if TYPE_CHECKING:
    from lambdad.sandbox.launcher import LaunchedProcess
    from lambdad.sandbox.spec import PlatformAccess

__all__ = ["Endpoint"]

log = logging.getLogger(__name__)


class Endpoint:
    """The endpoint of the environment ``env_id``, serving ``target``."""

    def __init__(self, target: RuntimeApiTarget, env_id: str, platform: PlatformAccess | None) -> None:
        self._api = RuntimeApiServer(target)
        self._env_id = env_id
        self._platform = platform
        self._proc: LaunchedProcess | None = None
        self._peers_checked = True  # False once it serves only inside the environment's network namespace
        self._listener_task: asyncio.Task[None] | None = None
        self._servers: list[asyncio.AbstractServer] = []  # on listeners in its network namespace (not the Runtime API)

    async def start(self) -> str:
        """Listen on 127.0.0.1; returns the address, host:port."""
        return await self._api.start()

    async def serve(self, proc: LaunchedProcess) -> None:
        """The environment's process is launched: serve the listeners made with it."""
        self._proc = proc
        if proc.network is not None:
            # its own network namespace: the Runtime API, this server's API, the relays to allow-listed services
            ns = proc.network
            self._peers_checked = False  # only the environment's own processes live in its network namespace
            await self._api.serve_listener(ns.runtime_api)
            if self._platform is not None and self._platform.serve is not None:
                self._servers.append(await self._platform.serve(ns.platform_api))
            self._servers.extend(await serve_relays(ns))
        if proc.runtime_api_socket is not None:
            await self._api.adopt(proc.runtime_api_socket)

    def receive_listener(self, channel: socket.socket) -> None:
        """Own private network namespace: the environment opens its Runtime API listener inside it and sends it
        over ``channel``; it is served once it comes."""
        self._listener_task = asyncio.get_running_loop().create_task(self._receive_listener(channel))

    async def _receive_listener(self, channel: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        channel.setblocking(False)
        received: asyncio.Future[int] = loop.create_future()

        def readable() -> None:
            try:
                _, fds, _, _ = socket.recv_fds(channel, 64, 1)
            except BlockingIOError:
                return
            except OSError as exc:
                fds = []
                log.warning("environment %s: no Runtime API listener: %s", self._env_id, exc)
            if not received.done():
                received.set_result(fds[0] if fds else -1)

        loop.add_reader(channel.fileno(), readable)
        try:
            fd = await received
        finally:
            loop.remove_reader(channel.fileno())
            channel.close()
        if fd >= 0:
            self._peers_checked = False  # only the environment's own processes live in its network namespace
            await self._api.serve_listener(socket.socket(fileno=fd))

    def accepts_peer(self, host: str, port: int) -> bool:
        """May the process at ``host:port`` use the Runtime API? (See the module's docstring.)"""
        proc = self._proc
        if not self._peers_checked:
            return True
        if proc is None or proc.cgroup is None:
            return True  # without cgroups there is no reliable membership to check (reported as degraded)
        inode = socket_inode(host, port, "127.0.0.1", self._api.port)
        return inode is not None and owned_by(inode, proc.cgroup.pids())

    def stop_listening(self) -> None:
        """Stop waiting for a listener the environment has not sent yet (it is being shut down)."""
        if self._listener_task is not None and not self._listener_task.done():
            self._listener_task.cancel()

    async def aclose(self) -> None:
        """Close the servers in its network namespace and the Runtime API server."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        await self._api.aclose()
