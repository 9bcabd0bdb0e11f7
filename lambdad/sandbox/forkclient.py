"""The server's side of a fork server (see ``forkserver.py``): start it, ask it to fork environments, hear exits.

Contract: ``spawn`` returns the new environment's pid, or raises ``SpawnError``; ``attach`` mounts a pre-started
slot's function into it, or raises ``SpawnError``. Every pid ever returned gets
exactly one exit notification through ``on_exit(pid, status)`` — from the fork server when it reaps the child; or,
when the fork server itself dies, from a pidfd watch of the child when it exits (status -9: the real status went
with its parent). A dead fork server is restarted on the next spawn; the environments it had forked keep serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable

from lambdad.errors import LambdadError

__all__ = ["ForkServerClient", "SpawnError", "FORKSERVER"]

log = logging.getLogger(__name__)

FORKSERVER = Path(__file__).resolve().parent / "forkserver.py"
_MAX_MESSAGE = 1 << 20


class SpawnError(LambdadError):
    pass


class ForkServerClient:
    def __init__(self, interpreter: str, mode: str, on_exit: Callable[[int, int], None],
                 args: tuple[str, ...] = ()) -> None:
        self.interpreter = interpreter
        self.mode = mode
        self._args = args
        self._on_exit = on_exit
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._pending: dict[str, asyncio.Future[int]] = {}
        self._children: set[int] = set()
        self._ready: asyncio.Future[None] | None = None
        self._start_lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(16)
        self._seq = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if self._sock is not None:
                return
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._proc = subprocess.Popen(
                    [self.interpreter, "-I", "-S", str(FORKSERVER), str(theirs.fileno()), self.mode, *self._args],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
                    close_fds=True,
                )
            finally:
                theirs.close()
            ours.setblocking(False)
            self._sock = ours
            loop = asyncio.get_running_loop()
            self._ready = loop.create_future()
            loop.add_reader(ours.fileno(), self._on_readable)
            try:
                await asyncio.wait_for(asyncio.shield(self._ready), 60)
            except BaseException:
                self._lost("did not start")
                raise
            log.info("fork server for %s (%s) started, pid %d", self.interpreter, self.mode, self._proc.pid)

    async def spawn(self, request: dict[str, Any], fds: list[int]) -> int:
        return await self._ask(dict(request, op="spawn"), fds)

    async def attach(self, pid: int, mounts: list[tuple[str, str]], hostname: str,
                     cgroup_procs: list[str] | None = None) -> None:
        """Mount each (host tree, path inside) read-only into the slot ``pid`` (a child of this fork server) and
        set its hostname (``jail.attach``). ``cgroup_procs``: where its cgroups are now (renamed after its
        environment), for the fork server to find them if it has to kill it."""
        await self._ask({"op": "attach", "pid": pid, "mounts": mounts, "hostname": hostname,
                         "cgroup_procs": cgroup_procs or []}, [])

    async def _ask(self, request: dict[str, Any], fds: list[int]) -> int:
        # The fork server forks one environment at a time; a bounded number of requests in flight keeps the socket's
        # buffer from filling up when hundreds of cold starts arrive at once.
        async with self._in_flight:
            await self._ensure_started()
            assert self._sock is not None
            self._seq += 1
            request_id = str(self._seq)
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = future
            message = json.dumps(dict(request, id=request_id)).encode()
            while True:
                try:
                    socket.send_fds(self._sock, [message], fds)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                except OSError as exc:
                    self._pending.pop(request_id, None)
                    self._lost(f"send failed: {exc}")
                    raise SpawnError(f"the fork server is gone: {exc}") from exc
                if self._sock is None:
                    raise SpawnError("the fork server is gone")
            return await future

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(_MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(str(exc))
                return
            if not data:
                self._lost("exited")
                return
            self._handle(json.loads(data))

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif op == "spawned":
            self._children.add(message["pid"])
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message["pid"])
        elif op == "attached":
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(0)
        elif op == "failed":
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_exception(SpawnError(message.get("message", "spawn failed")))
        elif op == "exit":
            pid = message["pid"]
            if pid in self._children:
                self._children.discard(pid)
                self._on_exit(pid, message["status"])

    def _lost(self, why: str) -> None:
        """The fork server is gone (or unusable): fail what waits, report its children dead, restart on next use."""
        if self._sock is not None:
            log.warning("fork server for %s %s", self.interpreter, why)
            self._close_socket()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(SpawnError(f"the fork server {why}"))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SpawnError(f"the fork server {why}"))
        self._pending.clear()
        children, self._children = self._children, set()
        for pid in children:
            self._watch_orphan(pid)
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(1)
            except subprocess.TimeoutExpired:
                pass

    def _watch_orphan(self, pid: int) -> None:
        """An environment outlives its fork server: watch the process itself (a pidfd) to report its exit. Its exit
        status is lost with the fork server that was its parent, so it is reported as killed (-9)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._on_exit(pid, -9)
            return
        loop = asyncio.get_running_loop()

        def exited() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self._on_exit(pid, -9)

        loop.add_reader(pidfd, exited)

    def _close_socket(self) -> None:
        if self._sock is None:
            return
        try:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        except (RuntimeError, ValueError):
            pass
        self._sock.close()
        self._sock = None

    async def aclose(self) -> None:
        proc = self._proc
        self._children.clear()
        self._close_socket()
        self._proc = None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            for _ in range(100):
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.01)
            else:
                proc.kill()
                await asyncio.to_thread(proc.wait)


