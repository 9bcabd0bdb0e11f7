"""Code packages: checking an uploaded zip and unpacking it, once per code hash, into a read-only tree.

A zip is hostile until checked. ``check_zip`` (blocking: run it in a thread) refuses, each with Lambda's error:
1. more than 50 MB zipped (RequestTooLargeException);
2. an unreadable archive, or one that lies: every entry is decompressed (and thrown away) to verify its CRC and
   its real size, bounded by the limit below, so sizes in the headers count for nothing (InvalidParameterValue);
3. more than 250 MB unzipped, counted as the disk will take it: a file costs its size rounded up to 4 KiB blocks
   (at least one block: an empty file still costs an inode), a directory or a link one block, and so does every
   directory a path implies without an entry of its own; so 100,000 tiny files are 400 MB, not 100 kB;
   more than 100,000 entries (counted in the central directory before the archive is parsed), an entry name
   longer than 4,096 bytes or a part of it longer than 255 (what Linux can create);
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
MAX_PATH = 4096  # an entry's name, in bytes (PATH_MAX)
MAX_NAME = 255  # one part of it (NAME_MAX)
MAX_ENTRIES = 100_000  # entries of one archive, counted before it is parsed
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
    parts = tuple(p for p in path.parts if p not in ("", "."))
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH or any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME for p in parts):
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: an entry's name is longer than Linux allows ({MAX_PATH} bytes, "
            f"{MAX_NAME} per part).")
    return parts


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


class _Node:
    """A path of the tree an archive builds: a directory (with children), a file, or a link (with its target)."""

    __slots__ = ("kind", "children", "target")

    def __init__(self, kind: str, target: str | None = None) -> None:
        self.kind = kind  # "dir" | "file" | "link"
        self.children: dict[str, _Node] = {}
        self.target = target


class _Layout:
    """The tree an archive will build, entry by entry: what each path is, and where each link points. A tree of
    nodes, so that an entry costs time in proportion to its path's length (a table keyed by whole paths made a
    deep path quadratic: every prefix copied and hashed)."""

    def __init__(self) -> None:
        self.root = _Node("dir")
        self.links: list[tuple[tuple[str, ...], str]] = []  # (where, target), every link of the archive

    def resolve(self, parts: tuple[str, ...] | list[str], hops: int = 0) -> tuple[str, ...] | None:
        """The path ``parts`` (relative to the root) leads to, following the links of the layout, or None when
        it leaves the root (or follows too many links). Parts that do not exist (yet) are taken as they are."""
        names: list[str] = []
        nodes: list[_Node | None] = []  # the node of each name; None past what exists
        for part in parts:
            if part in ("", "."):
                continue
            if part == "..":
                if not names:
                    return None
                names.pop()
                nodes.pop()
                continue
            parent = nodes[-1] if nodes else self.root
            node = parent.children.get(part) if parent is not None else None
            if node is not None and node.kind == "link":
                target = node.target or ""
                if hops >= _MAX_LINK_HOPS or target.startswith("/"):
                    return None
                resolved = self.resolve(names + target.split("/"), hops + 1)
                if resolved is None:
                    return None
                names = list(resolved)
                nodes = self._nodes(names)
                continue
            names.append(part)
            nodes.append(node)
        return tuple(names)

    def _nodes(self, names: list[str]) -> list[_Node | None]:
        nodes: list[_Node | None] = []
        node: _Node | None = self.root
        for name in names:
            node = node.children.get(name) if node is not None else None
            nodes.append(node)
        return nodes

    def add(self, name: str, parts: tuple[str, ...], kind: str, target: str | None = None) -> int:
        """Record an entry; returns how many directories it implies that no entry made before (each takes a
        block on disk too)."""
        parent_path = self.resolve(parts[:-1])
        if parent_path is None:
            raise _outside(name)
        implied = 0
        node = self.root
        for part in parent_path:  # the directories it implies
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node("dir")
                implied += 1
            elif child.kind != "dir":
                raise InvalidParameterValueException(_BAD_ZIP)
            node = child
        existing = node.children.get(parts[-1])
        if existing is not None and not (existing.kind == kind == "file" or existing.kind == kind == "dir"):
            raise InvalidParameterValueException(_BAD_ZIP)  # a file where a directory is, and so on
        if existing is None:
            node.children[parts[-1]] = _Node(kind, target)
        if target is not None:
            path = parent_path + parts[-1:]
            self.links.append((path, target))
            if target.startswith("/") or self.resolve(list(parent_path) + target.split("/")) is None:
                raise _outside(name, "link")
        return implied

    def check_links(self) -> None:
        """Every link again, against the whole tree: a later entry cannot have turned one outwards."""
        for path, target in self.links:
            if self.resolve(list(path[:-1]) + target.split("/")) is None:
                raise _outside("/".join(path), "link")


def _entry_count(data: bytes) -> int:
    """How many entries the archive's central directory holds, walked header by header before ``zipfile``
    builds an object per entry (600,000 one-byte files in 50 MB made it hold 316 MB for 3 s). Past
    MAX_ENTRIES it stops and says so. Raises InvalidParameterValue when the directory is not where the end
    record says."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if end < 0 or len(data) < end + 22:
        raise InvalidParameterValueException(_BAD_ZIP)
    size = int.from_bytes(data[end + 12:end + 16], "little")
    record = end
    if data[end - 20:end - 16] == b"PK\x06\x07":  # Zip64: its end record sits before the locator
        record = end - 20 - 56
        if record < 0 or data[record:record + 4] != b"PK\x06\x06":
            raise InvalidParameterValueException(_BAD_ZIP)
        size = int.from_bytes(data[record + 40:record + 48], "little")
    position, stop, count = record - size, record, 0
    if position < 0:
        raise InvalidParameterValueException(_BAD_ZIP)
    while position < stop:
        if data[position:position + 4] != b"PK\x01\x02" or position + 46 > stop:
            raise InvalidParameterValueException(_BAD_ZIP)
        count += 1
        if count > MAX_ENTRIES:
            raise InvalidParameterValueException(
                f"Could not unzip uploaded file: the archive has more than {MAX_ENTRIES} entries.")
        name, extra, comment = (int.from_bytes(data[position + i:position + i + 2], "little") for i in (28, 30, 32))
        if name > MAX_PATH:
            raise InvalidParameterValueException(
                f"Could not unzip uploaded file: an entry's name is longer than {MAX_PATH} bytes.")
        position += 46 + name + extra + comment
    return count


def check_zip(data: bytes, operation: str) -> int:
    """Validate a code zip (blocking: call from a thread); return what it takes unzipped, counted in blocks (see
    the module's docstring). Raises Lambda's errors."""
    if len(data) > MAX_ZIPPED_BYTES:
        raise RequestTooLargeException(f"Request must be smaller than 69905067 bytes for the {operation} operation")
    try:
        _entry_count(data)
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
            total += _BLOCK * (1 + layout.add(info.filename, parts, "dir"))
        elif _is_symlink(info):
            total += _BLOCK * (1 + layout.add(info.filename, parts, "link", _read_link_target(archive, info)))
        else:
            total += _BLOCK * layout.add(info.filename, parts, "file")
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

    def _build(self, key: str, sources: list[bytes] | list[Path]) -> Path:
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
