"""Code packages: checking an uploaded zip and unpacking it, once per code hash, into a read-only tree.

A zip is hostile until checked. ``check_zip`` (blocking: run it in a thread) refuses, each with Lambda's error:
1. more than 50 MB zipped (RequestTooLargeException);
2. an unreadable archive, or one that lies: every entry is decompressed (and thrown away) to verify its CRC and
   its real size, bounded by the limit below, so sizes in the headers count for nothing (InvalidParameterValue);
3. more than 250 MB unzipped, counted as the disk will take it: a file costs its size rounded up to 4 KiB blocks
   (at least one block: an empty file still costs an inode), a directory or a link one block; so 100,000 tiny
   files are 400 MB, not 100 kB;
4. an entry whose path is absolute or climbs out with ``..``; a link whose target is longer than 4,096 bytes
   (PATH_MAX), is not UTF-8 or holds a NUL; a link that resolves outside the code root, resolved against the
   tree the archive builds (links to links, in any order: every link is resolved again once the whole tree is
   known, so a later entry cannot turn an earlier link outwards), at most 40 links deep, as the kernel allows;
5. an entry that contradicts an earlier one: a file where a directory or link is, a directory where a file or
   link is (unpacking one would have to throw the other away).
Unpacking (``CodeTrees``) writes to a temp dir, counts again what it really writes, makes the tree read-only
and renames it into place, so a tree that exists is complete; anything that still fails there is the same
InvalidParameterValueException, and the temp dir is gone. ``ensure_merged`` unpacks a function's layers one over
the other (a later layer's entry replaces an earlier one's, a file or a whole directory).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from lambdad.errors import InvalidParameterValueException, RequestTooLargeException

__all__ = ["check_zip", "unzipped_size", "CodeTrees", "MAX_ZIPPED_BYTES", "MAX_UNZIPPED_BYTES", "MAX_LINK_TARGET"]

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
MAX_LINK_TARGET = 4096  # PATH_MAX
_BLOCK = 4096
_MAX_LINK_HOPS = 40  # as the kernel's path walk (ELOOP past it)
_BAD_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
# what a malformed archive raises while it is read: all of it is the caller's fault, never a 500
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, ValueError,
               OSError, UnicodeDecodeError, RuntimeError)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _outside(name: str, what: str = "entry") -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Could not unzip uploaded file: the {what} '{name}' points outside the code root.")


def _too_big() -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")


def _safe_parts(name: str) -> tuple[str, ...]:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part == ".." for part in path.parts):
        raise _outside(name)
    return tuple(p for p in path.parts if p not in ("", "."))


def _blocks(size: int) -> int:
    """What ``size`` bytes of a file take on disk, at least one block."""
    return max(_BLOCK, -(-size // _BLOCK) * _BLOCK)


def _read_link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A link entry's target, read no further than PATH_MAX; strictly UTF-8, no NUL."""
    with archive.open(info) as src:
        raw = src.read(MAX_LINK_TARGET + 1)
    if len(raw) > MAX_LINK_TARGET or not raw or b"\0" in raw:
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: the link '{info.filename}' has an invalid target.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: the link '{info.filename}' has an invalid target.") from exc


class _Layout:
    """The tree an archive will build, entry by entry: what each path is, and where each link points."""

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, ...], str] = {(): "dir"}  # "dir" | "file" | "link"
        self.links: dict[tuple[str, ...], str] = {}

    def resolve(self, parts: tuple[str, ...], hops: int = 0) -> tuple[str, ...] | None:
        """The path ``parts`` (relative to the root) leads to, following the links of the layout, or None when
        it leaves the root (or follows too many links)."""
        out: list[str] = []
        for part in parts:
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    return None
                out.pop()
                continue
            out.append(part)
            target = self.links.get(tuple(out))
            if target is not None:
                if hops >= _MAX_LINK_HOPS or target.startswith("/"):
                    return None
                resolved = self.resolve(tuple(out[:-1]) + tuple(target.split("/")), hops + 1)
                if resolved is None:
                    return None
                out = list(resolved)
        return tuple(out)

    def add(self, name: str, parts: tuple[str, ...], kind: str, target: str | None = None) -> None:
        parent = self.resolve(parts[:-1])
        if parent is None:
            raise _outside(name)
        for i in range(1, len(parent) + 1):  # the directories it implies
            if self.kinds.setdefault(parent[:i], "dir") == "file":
                raise InvalidParameterValueException(_BAD_ZIP)
        path = parent + parts[-1:]
        existing = self.kinds.get(path)
        if existing is not None and not (existing == kind == "file" or existing == kind == "dir"):
            raise InvalidParameterValueException(_BAD_ZIP)  # a file where a directory is, and so on
        self.kinds[path] = kind
        if target is not None:
            self.links[path] = target
            if target.startswith("/") or self.resolve(parent + tuple(target.split("/"))) is None:
                raise _outside(name, "link")

    def check_links(self) -> None:
        """Every link again, against the whole tree: a later entry cannot have turned one outwards."""
        for path, target in self.links.items():
            if self.resolve(path[:-1] + tuple(target.split("/"))) is None:
                raise _outside("/".join(path), "link")


def check_zip(data: bytes, operation: str) -> int:
    """Validate a code zip (blocking: call from a thread); return what it takes unzipped, counted in blocks (see
    the module's docstring). Raises Lambda's errors."""
    if len(data) > MAX_ZIPPED_BYTES:
        raise RequestTooLargeException(f"Request must be smaller than 69905067 bytes for the {operation} operation")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _check_entries(archive)
    except _ZIP_ERRORS as exc:
        if isinstance(exc, InvalidParameterValueException):
            raise
        raise InvalidParameterValueException(_BAD_ZIP) from exc


def _check_entries(archive: zipfile.ZipFile) -> int:
    layout = _Layout()
    total = 0
    for info in archive.infolist():
        parts = _safe_parts(info.filename)
        if not parts:
            continue
        if info.is_dir():
            total += _BLOCK
            layout.add(info.filename, parts, "dir")
        elif _is_symlink(info):
            total += _BLOCK
            layout.add(info.filename, parts, "link", _read_link_target(archive, info))
        else:
            layout.add(info.filename, parts, "file")
            size = 0
            with archive.open(info) as src:  # the CRC and the real size are checked as it is read
                while chunk := src.read(1 << 20):
                    size += len(chunk)
                    if total + size > MAX_UNZIPPED_BYTES:
                        raise _too_big()
            total += _blocks(size)
        if total > MAX_UNZIPPED_BYTES:
            raise _too_big()
    layout.check_links()
    return total


def unzipped_size(path: Path) -> int:
    """The unzipped size of a stored (already checked) zip, counted as ``check_zip`` counts it (blocking)."""
    with zipfile.ZipFile(path) as archive:
        return sum(_BLOCK if info.is_dir() or _is_symlink(info) else _blocks(info.file_size)
                   for info in archive.infolist())


class CodeTrees:
    """Unpacked code trees under ``<data-dir>/tasks/<code hash>``, one per distinct zip, shared read-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, code_hash: str) -> Path:
        return self.root / code_hash

    def ensure(self, code_hash: str, data: bytes) -> Path:
        """Unpack ``data`` for ``code_hash`` unless it already is (blocking: call from a thread)."""
        return self._build(code_hash, [data])

    def ensure_merged(self, key: str, archives: list[Path]) -> Path:
        """Unpack the zips ``archives`` one over the other (a later one's files replace an earlier one's) into
        one read-only tree named ``key``, unless it already exists (blocking: call from a thread). Layers."""
        return self._build(key, archives)

    def _build(self, key: str, sources: list) -> Path:
        """Unpack ``sources`` (zip bytes or paths), in order, into a temp dir, make it read-only and rename it to
        ``key``: a tree that exists is complete. Another thread that built the same tree first wins."""
        target = self.path(key)
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.root))
        try:
            for source in sources:
                try:
                    _extract(source, tmp)
                except InvalidParameterValueException:
                    raise
                except _ZIP_ERRORS as exc:
                    raise InvalidParameterValueException(_BAD_ZIP) from exc
            _make_read_only(tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
                _remove_tree(tmp)  # another thread unpacked the same tree first
        except BaseException:
            _remove_tree(tmp)
            raise
        return target

    def remove(self, code_hash: str) -> None:
        _remove_tree(self.path(code_hash))


def _extract(data: bytes | Path, root: Path) -> None:
    written = 0
    with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
        for info in archive.infolist():
            parts = _safe_parts(info.filename)
            if not parts:
                continue
            dest = root.joinpath(*parts)
            # a link extracted earlier must never carry a later entry outside the root
            parent = dest.parent.resolve()
            if parent != root.resolve() and root.resolve() not in parent.parents:
                raise InvalidParameterValueException(
                    f"Could not unzip uploaded file: the entry '{info.filename}' points outside the code root."
                )
            if info.is_dir():
                if dest.is_symlink() or dest.is_file():
                    dest.unlink()  # merging layers: a later layer's directory replaces an earlier one's file
                dest.mkdir(parents=True, exist_ok=True)
                continue
            _clear_way(root, parts[:-1])
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()  # merging layers: a later layer's file replaces an earlier one's
            elif dest.is_dir():
                _remove_tree(dest)  # ... or a whole directory of it
            if _is_symlink(info):
                os.symlink(_read_link_target(archive, info), dest)
                continue
            mode = (info.external_attr >> 16) & 0o777
            with archive.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNZIPPED_BYTES:
                        raise _too_big()
                    out.write(chunk)
            # keep the executable bits a bootstrap needs; everything is world-readable, nothing writable
            os.chmod(dest, 0o555 if mode & 0o111 else 0o444)


def _clear_way(root: Path, parts: tuple[str, ...]) -> None:
    """Merging layers: where an earlier layer left a file (or a link to no directory) on the way to a later
    layer's entry, the later layer wins: the file goes."""
    path = root
    for part in parts:
        path = path / part
        if (path.is_symlink() and not path.is_dir()) or (path.exists() and not path.is_dir()):
            path.unlink()
            return


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o555)
    os.chmod(root, 0o555)


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
