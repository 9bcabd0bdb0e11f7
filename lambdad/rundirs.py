"""A server's run dir (``<tmp>/lambdad-<server id>-*``: sockets, scratch, environments' files) and the process
limits a server raises at start: kept apart from the wiring in app.py."""

from __future__ import annotations

import fcntl
import logging
import os
import resource
import shutil
import time
from pathlib import Path

__all__ = ["hold_alive", "raise_descriptor_limit", "sweep_run_dirs"]

log = logging.getLogger(__name__)

RUN_DIR_GRACE_SECONDS = 60.0  # a run dir without its lock file is a server's only this long after it was made


def hold_alive(run_dir: Path) -> int:
    """Lock ``<run dir>/alive`` for as long as this process lives (the kernel drops an flock with its holder): how
    a later start tells a live server's run dir from one a kill -9 left."""
    fd = os.open(run_dir / "alive", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sweep_run_dirs(parent: Path, own: Path) -> int:
    """Remove the run dirs (``<tmp>/lambdad-<server id>-*``) of servers that are gone: their ``alive`` lock is free
    (or, for one made before it had one, it is over a minute old). Runs in the background at start: a big tree
    left by a crash does not hold up the listener. Returns how many it removed."""
    removed = 0
    for path in parent.glob("lambdad-*-*"):
        if path == own or not path.is_dir() or path.is_symlink():
            continue
        try:
            fd = os.open(path / "alive", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                if time.time() - path.stat().st_mtime < RUN_DIR_GRACE_SECONDS:
                    continue  # a server that is starting, between mkdtemp and its lock
            except OSError:
                continue
            fd = -1
        except OSError:
            continue
        try:
            if fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # alive
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        finally:
            if fd >= 0:
                os.close(fd)
    if removed:
        log.info("removed %d run dirs of servers that are gone", removed)
    return removed


def raise_descriptor_limit() -> None:
    """The server holds a descriptor per connection and several per environment: its soft limit goes up to its
    hard one, so that clients and environments run out of their own limits (API connections, 1,024 descriptors
    per function process) long before the server runs out of its."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the descriptor limit from %d: %s", soft, exc)
