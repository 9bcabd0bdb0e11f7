"""Disk-backed /tmp for jailed environments: one small ext4 file system per environment, on a loop device.

Lambda's /tmp is disk, sized by EphemeralStorage: a 128 MB function may write 300 MB to a 512 MB /tmp. A tmpfs
/tmp would be memory, charged to the function's memory cgroup (it would be OOM-killed instead). So each
environment gets a ``Scratch``: a sparse file of EphemeralStorage MB in the server's run dir, formatted ext4 (no
journal, no reserved blocks, its root owned by the sandbox user), attached to a loop device that the jail mounts
at /tmp (nosuid, nodev). Writes past its size fail with ENOSPC; what is written is page cache the kernel can
write back and reclaim, not memory the function holds.

Lifecycle, with nothing left behind whatever happens:
- the file is unlinked as soon as it is attached (the loop device keeps it), and the device is set to clear
  itself (LO_FLAGS_AUTOCLEAR) on its last close: the server holds one descriptor until the environment is gone,
  the environment's mount holds the other. When both are gone — the environment ended and ``release`` ran, or
  the server and the environment were killed — the device detaches and the disk space is freed;
- formatting costs ~6 ms, so a few are made ahead, in a thread, per size (``spare``), and refilled after each
  ``take``; a cold start takes a ready one.

Needs root, /dev/loop-control and mkfs.ext4 (``ScratchPool.available``); without them /tmp stays a tmpfs (jailed)
or a private directory (not jailed), as docs/security.md says.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass

__all__ = ["Scratch", "ScratchPool"]

log = logging.getLogger(__name__)

_LOOP_CTL_GET_FREE = 0x4C82
_LOOP_SET_FD = 0x4C00
_LOOP_CLR_FD = 0x4C01
_LOOP_GET_STATUS64 = 0x4C05
_LOOP_SET_STATUS64 = 0x4C04
_LO_FLAGS_AUTOCLEAR = 4
_STATUS64 = struct.Struct("=QQQQQIIII64s64s32s2Q")  # struct loop_info64
_FLAGS_FIELD = 8  # lo_flags' index in _STATUS64
_REFILL_DELAY = 0.2  # seconds after a take


@dataclass
class Scratch:
    """One environment's /tmp: a formatted loop device the server holds open until ``ScratchPool.release``."""

    device: str  # /dev/loopN, for the jail to mount
    fd: int  # the server's descriptor on it
    size_mb: int


class ScratchPool:
    def __init__(self, directory: str, owner: tuple[int, int], spare: int = 2) -> None:
        self._dir = directory
        self._owner = owner
        self._spare = spare
        self._ready: dict[int, list[Scratch]] = {}
        self._filling: set[asyncio.Task[None]] = set()
        self._closed = False
        os.makedirs(directory, mode=0o700, exist_ok=True)

    @staticmethod
    def available() -> str | None:
        """None when disk-backed /tmp can be made here, else why not."""
        if os.geteuid() != 0:
            return "not root"
        if not os.path.exists("/dev/loop-control"):
            return "no /dev/loop-control (no loop devices)"
        if shutil.which("mkfs.ext4") is None or shutil.which("debugfs") is None:
            return "no mkfs.ext4 or debugfs (e2fsprogs)"
        return None

    async def take(self, size_mb: int) -> Scratch:
        ready = self._ready.get(size_mb)
        scratch = ready.pop() if ready else None
        if scratch is None:
            scratch = await asyncio.to_thread(self._make, size_mb)
        # refilled a moment later: not while the cold start that took this one is still using both cores
        asyncio.get_running_loop().call_later(_REFILL_DELAY, self._refill, size_mb)
        return scratch

    def release(self, scratch: Scratch) -> None:
        """The environment is gone: drop the server's hold (the device clears itself once its mount is gone)."""
        if scratch.fd >= 0:
            os.close(scratch.fd)
            scratch.fd = -1

    def _refill(self, size_mb: int) -> None:
        if self._closed or any(t.get_name() == f"scratch-{size_mb}" for t in self._filling):
            return
        task = asyncio.get_running_loop().create_task(self._fill(size_mb), name=f"scratch-{size_mb}")
        self._filling.add(task)
        task.add_done_callback(self._filling.discard)

    async def _fill(self, size_mb: int) -> None:
        ready = self._ready.setdefault(size_mb, [])
        while not self._closed and len(ready) < self._spare:
            try:
                scratch = await asyncio.to_thread(self._make, size_mb)
            except Exception as exc:  # the next take makes one itself, and says why if it fails again
                log.warning("could not make a %d MB /tmp ahead: %s", size_mb, exc)
                return
            if self._closed:
                self.release(scratch)
                return
            ready.append(scratch)

    def _make(self, size_mb: int) -> Scratch:
        """Blocking: a sparse file, formatted, attached to a free loop device set to clear itself, unlinked."""
        path = os.path.join(self._dir, uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        try:
            uid, gid = self._owner
            subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0",
                            "-E", f"nodiscard,lazy_itable_init=1,root_owner={uid}:{gid}", path],
                           check=True, capture_output=True, timeout=30)
            # an empty /tmp, as on Lambda: mkfs's lost+found goes now, not in the jail at every cold start
            subprocess.run(["debugfs", "-w", "-R", "rmdir lost+found", path], check=True, capture_output=True,
                           timeout=30)
            backing = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                return _attach(backing, size_mb)
            finally:
                os.close(backing)
        finally:
            os.unlink(path)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._filling):
            task.cancel()
        await asyncio.gather(*self._filling, return_exceptions=True)
        for ready in self._ready.values():
            for scratch in ready:
                self.release(scratch)
        self._ready.clear()


def _attach(backing: int, size_mb: int) -> Scratch:
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(8):  # another process may take the free device first
            number = fcntl.ioctl(control, _LOOP_CTL_GET_FREE)
            device = f"/dev/loop{number}"
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, _LOOP_SET_FD, backing)
            except OSError:
                os.close(fd)
                continue
            try:
                status = list(_STATUS64.unpack(fcntl.ioctl(fd, _LOOP_GET_STATUS64, bytes(_STATUS64.size))))
                status[_FLAGS_FIELD] |= _LO_FLAGS_AUTOCLEAR
                fcntl.ioctl(fd, _LOOP_SET_STATUS64, _STATUS64.pack(*status))
            except BaseException:
                fcntl.ioctl(fd, _LOOP_CLR_FD)
                os.close(fd)
                raise
            return Scratch(device=device, fd=fd, size_mb=size_mb)
    finally:
        os.close(control)
    raise OSError("no free loop device")
