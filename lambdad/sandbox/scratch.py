"""Disk-backed /tmp for jailed environments: one small ext4 file system per environment, on a loop device.

Lambda's /tmp is disk, sized by EphemeralStorage: a 128 MB function may write 300 MB to a 512 MB /tmp. A tmpfs
/tmp would be memory, charged to the function's memory cgroup (it would be OOM-killed instead). So each
environment gets a ``Scratch``: a sparse file of EphemeralStorage MB under ``<data dir>/scratch`` (on the data
dir's disk: the server's run dir may be in a tmpfs /tmp, which would make it memory after all; a data dir on a
tmpfs turns disk-backed /tmp off), formatted ext4 (no journal, no reserved blocks, its root owned by the sandbox
user), attached to a loop device that the jail mounts at /tmp (nosuid, nodev). Writes past its size fail with ENOSPC; what is written is page cache the kernel can
write back and reclaim, not memory the function holds.

Lifecycle, with nothing left behind whatever happens:
- the file is unlinked as soon as it is attached (the loop device keeps it), and the device is attached set to
  clear itself (LO_FLAGS_AUTOCLEAR, in the same LOOP_CONFIGURE call where Linux has it, 5.8+) on its last close: the server holds one descriptor until the environment is gone,
  the environment's mount holds the other. When both are gone — the environment ended and ``release`` ran, or
  the server and the environment were killed — the device detaches and the disk space is freed;
- formatting costs ~6 ms (20-40 ms on a busy machine), so it is done once per size, into a template that each
  new file copies (its data extents only: ~0.3 ms); a few are made ahead, in a thread, per size (``spare``), and
  refilled after each ``take``; a cold start takes a ready one, and one that finds none falls back to a tmpfs
  /tmp rather than fail when a scratch cannot be made;
- the directory is emptied when the server starts (a crash can leave a file not yet attached, and templates).

Needs root, /dev/loop-control and mkfs.ext4 (``ScratchPool.available``); without them /tmp stays a tmpfs (jailed)
or a private directory (not jailed), as docs/security.md says.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
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
_LOOP_CONFIGURE = 0x4C0A
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
        self._templates: dict[int, str] = {}  # size -> a formatted, empty file system to copy
        shutil.rmtree(directory, ignore_errors=True)  # what a crashed server left: ours alone (the data dir lock)
        os.makedirs(directory, mode=0o700, exist_ok=True)

    @staticmethod
    def available(directory: str | None = None) -> str | None:
        """None when disk-backed /tmp can be made here (in ``directory``), else why not."""
        if os.geteuid() != 0:
            return "not root"
        if directory is not None and _on_tmpfs(directory):
            return f"{directory} is on a tmpfs: a disk /tmp there would be memory"
        if not os.path.exists("/dev/loop-control"):
            return "no /dev/loop-control (no loop devices)"
        if shutil.which("mkfs.ext4") is None or shutil.which("debugfs") is None:
            return "no mkfs.ext4 or debugfs (e2fsprogs)"
        return None

    async def take(self, size_mb: int) -> Scratch | None:
        """A ready /tmp of ``size_mb``, or one made now; None (and a warning) when none can be made: the
        environment gets a tmpfs /tmp instead of failing to start."""
        ready = self._ready.get(size_mb)
        scratch = ready.pop() if ready else None
        if scratch is None:
            try:
                scratch = await asyncio.to_thread(self._make, size_mb)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("could not make a %d MB disk /tmp (%s): this environment's /tmp is a tmpfs", size_mb, exc)
                return None
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
        """Blocking: a copy of the size's template, attached to a free loop device set to clear itself, unlinked."""
        template = self._templates.get(size_mb) or self._format(size_mb)
        path = os.path.join(self._dir, uuid.uuid4().hex)
        try:
            _sparse_copy(template, path)
            backing = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                return _attach(backing, size_mb)
            finally:
                os.close(backing)
        finally:
            os.unlink(path)

    def _format(self, size_mb: int) -> str:
        """The template of a size: a sparse file formatted ext4, empty (kept until the server stops)."""
        path = os.path.join(self._dir, f"template-{size_mb}")
        tmp = f"{path}.{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        try:
            uid, gid = self._owner
            subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0",
                            "-E", f"nodiscard,lazy_itable_init=1,root_owner={uid}:{gid}", tmp],
                           check=True, capture_output=True, timeout=30)
            # an empty /tmp, as on Lambda: mkfs's lost+found goes now, not in the jail at every cold start
            subprocess.run(["debugfs", "-w", "-R", "rmdir lost+found", tmp], check=True, capture_output=True,
                           timeout=30)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        self._templates[size_mb] = path
        return path

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._filling):
            task.cancel()
        await asyncio.gather(*self._filling, return_exceptions=True)
        for ready in self._ready.values():
            for scratch in ready:
                self.release(scratch)
        self._ready.clear()
        for template in self._templates.values():
            with contextlib.suppress(OSError):
                os.unlink(template)
        self._templates.clear()


def _on_tmpfs(directory: str) -> bool:
    """Whether ``directory`` (or the nearest existing parent) is on a tmpfs (or ramfs): memory, not disk."""
    path = os.path.abspath(directory)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    best, kind = "", ""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                mount = fields[1].replace("\\040", " ")
                if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, kind = mount, fields[2]
    except OSError:
        return False
    return kind in ("tmpfs", "ramfs")


def _sparse_copy(source: str, target: str) -> None:
    """Copy ``source`` to a new file ``target`` of the same size, its data extents only (holes stay holes)."""
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(src).st_size
            os.ftruncate(dst, size)
            position = 0
            while position < size:
                try:
                    data = os.lseek(src, position, os.SEEK_DATA)
                except OSError:  # ENXIO: only a hole is left
                    break
                hole = os.lseek(src, data, os.SEEK_HOLE)
                offset = data
                while offset < hole:
                    copied = os.copy_file_range(src, dst, hole - offset, offset, offset)
                    if copied == 0:
                        raise OSError("copy_file_range copied nothing")
                    offset += copied
                position = hole
        finally:
            os.close(dst)
    finally:
        os.close(src)

def _attach(backing: int, size_mb: int) -> Scratch:
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(8):  # another process may take the free device first
            number = fcntl.ioctl(control, _LOOP_CTL_GET_FREE)
            device = f"/dev/loop{number}"
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
            info = list(_STATUS64.unpack(bytes(_STATUS64.size)))
            info[_FLAGS_FIELD] = _LO_FLAGS_AUTOCLEAR
            config = struct.pack("=II", backing, 0) + _STATUS64.pack(*info) + bytes(64)  # struct loop_config
            try:  # attached and set to clear itself in one call: no moment when a crash would leak the device
                fcntl.ioctl(fd, _LOOP_CONFIGURE, config)
                return Scratch(device=device, fd=fd, size_mb=size_mb)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTTY):  # busy: another process took it first
                    os.close(fd)
                    continue
            try:  # before Linux 5.8: attach, then set the flag
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
