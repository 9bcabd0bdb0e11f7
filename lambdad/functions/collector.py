"""Garbage collection of code: blobs, unpacked code trees and merged /opt trees that nothing references any more.

What is kept (everything else under ``<data-dir>/code``, ``tasks`` and ``opt`` goes):
- the code blob and the code tree of every function version ($LATEST and each published one);
- the blob of every layer version not deleted, and of a deleted one that a function version still uses (a
  function that already uses a deleted layer version keeps it, as on Lambda);
- the merged /opt tree of every function version's list of layers;
- every tree a live environment runs from (an environment of a $LATEST that has since been updated or deleted
  keeps its tree until it is gone: never is a tree removed from under a running function);
- the code (blob, tree, /opt tree) of every invocation under way (``running``): one that began with a $LATEST an
  update then replaced may still be launching its environment, whose jail mounts that tree;
- anything being written: a round is skipped while a function or layer write is in progress (an upload stores
  its blob before the version that references it exists), and is tried again shortly; and no code is stored
  while a round deletes (``FileBlobStore.guard``): code uploaded again while its old copy is being removed is
  stored again afterwards, never found just before it goes.

A round runs at start (what a crash left behind, half-unpacked temp dirs included), shortly after anything
released code (``request``: a delete, an update, an environment's end), and every ``interval`` seconds. The file
system work runs in a thread; what is referenced is read on the event loop, where the services keep it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

from lambdad.functions.layers import LayerService, opt_key
from lambdad.functions.model import FunctionConfig
from lambdad.periodic import Periodic
from lambdad.functions.service import FunctionService

__all__ = ["CodeCollector"]

log = logging.getLogger(__name__)

_SETTLE_SECONDS = 0.5  # after a request, so that a burst of deletes is one round


class CodeCollector:
    def __init__(self, functions: FunctionService, layers: LayerService, *, blobs: Path, tasks: Path, opt: Path,
                 in_use: Callable[[], Iterable[str]], running: Callable[[], Iterable[FunctionConfig]] = tuple,
                 interval: float = 300.0, guard: asyncio.Lock | None = None) -> None:
        self._guard = guard or asyncio.Lock()  # FileBlobStore.guard: no code is stored while a round deletes
        self._functions = functions
        self._layers = layers
        self._blobs, self._tasks, self._opt = blobs, tasks, opt
        self._in_use = in_use  # the trees live environments run from (host paths)
        self._running = running  # the configs of the invocations under way
        self._job = Periodic("code-collector", self._round, interval, settle=_SETTLE_SECONDS)

    def start(self) -> None:
        self._job.start(at_once=True)  # what a crash left behind goes first

    def request(self) -> None:
        """Something may have released code: collect soon."""
        self._job.wake()

    def _referenced(self) -> tuple[set[str], set[str], set[str]] | None:
        """Blob keys, code tree names and /opt tree names to keep; None while a write is in progress."""
        if self._functions.busy() or self._layers.busy():
            return None
        configs = list(self._functions.all_configs()) + list(self._running())
        used_layers = {h for c in configs for h in c.layer_hashes}
        blobs = {c.code_hash for c in configs} | used_layers
        blobs |= {r.code_hash for r in self._layers.records() if not r.deleted}
        tasks = {c.code_hash for c in configs}
        opt = {opt_key(c.layer_hashes) for c in configs if c.layer_hashes}
        for path in self._in_use():
            parent, name = os.path.split(path)
            if parent == str(self._tasks):
                tasks.add(name)
            elif parent == str(self._opt):
                opt.add(name)
        return blobs, tasks, opt

    def referenced_blobs(self) -> set[str] | None:
        """The blob keys some function or layer version references; None while a write is in progress."""
        found = self._referenced()
        return found[0] if found is not None else None

    async def collect(self) -> int | None:
        """One round; returns how many blobs and trees it removed, or None when it had to wait for a write."""
        async with self._guard:
            keep = self._referenced()
            if keep is None:
                return None
            removed = await asyncio.to_thread(_remove_unreferenced, self._blobs, self._tasks, self._opt, *keep)
        if removed:
            log.info("code collector: %d unreferenced blobs and trees removed", removed)
        return removed

    async def _round(self) -> bool:
        """A round; True when a write in progress made it wait (so another follows soon)."""
        return await self.collect() is None

    async def aclose(self) -> None:
        """Stop; a round in progress finishes (its deletions run in a thread a cancellation would not stop)."""
        await self._job.aclose()


def _remove_unreferenced(blobs: Path, tasks: Path, opt: Path, keep_blobs: set[str], keep_tasks: set[str],
                         keep_opt: set[str]) -> int:
    removed = 0
    for entry in _entries(blobs):
        key = entry.name[:-4] if entry.name.endswith(".zip") else None
        if (key is not None and key not in keep_blobs) or ".tmp" in entry.name:  # a write a crash cut short
            Path(entry.path).unlink(missing_ok=True)
            removed += 1
    for root, keep in ((tasks, keep_tasks), (opt, keep_opt)):
        for entry in _entries(root):
            if entry.name not in keep:  # unreferenced, or a temp dir ("." + ...) an unpacking left behind
                _remove_tree(entry)
                removed += 1
    return removed


def _entries(root: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(root) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _remove_tree(entry: os.DirEntry[str]) -> None:
    """Trees are read-only (0555): made writable again to be removed."""
    if not entry.is_dir(follow_symlinks=False):
        os.unlink(entry.path)
        return
    for dirpath, _, _ in os.walk(entry.path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(entry.path, ignore_errors=True)
