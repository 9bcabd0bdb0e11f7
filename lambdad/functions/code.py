"""Code packages: checking an uploaded zip and unpacking it, once per code hash, into a read-only tree.

Checks, in order, each with Lambda's error:
1. at most 50 MB zipped (RequestTooLargeException), 2. a readable zip (InvalidParameterValueException),
3. at most 250 MB unzipped by the sizes the archive declares, 4. no entry escapes the code root (absolute paths,
``..`` parts, or links that point outside) — such a zip is refused, nothing is written outside the root.
Extraction writes to a temp dir, counts the bytes it really writes (a lying archive cannot exceed the limit),
makes the tree read-only, and renames it into place, so a tree that exists is complete. ``ensure_merged`` does
the same for a function's layers: several zips unpacked one over the other (a later file replaces an earlier one).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from lambdad.errors import InvalidParameterValueException, RequestTooLargeException

__all__ = ["check_zip", "unzipped_size", "CodeTrees", "MAX_ZIPPED_BYTES", "MAX_UNZIPPED_BYTES"]

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
_BAD_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _safe_parts(name: str) -> tuple[str, ...]:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part == ".." for part in path.parts):
        raise InvalidParameterValueException(
            f"Could not unzip uploaded file: the entry '{name}' points outside the code root."
        )
    return tuple(p for p in path.parts if p not in ("", "."))


def check_zip(data: bytes, operation: str) -> int:
    """Validate a code zip; return its declared unzipped size. Raises Lambda's errors."""
    if len(data) > MAX_ZIPPED_BYTES:
        raise RequestTooLargeException(f"Request must be smaller than 69905067 bytes for the {operation} operation")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidParameterValueException(_BAD_ZIP) from exc
    total = 0
    for info in infos:
        parts = _safe_parts(info.filename)
        total += info.file_size
        if _is_symlink(info):
            target = archive.read(info).decode("utf-8", "replace")
            joined = PurePosixPath(*parts[:-1], target) if parts else PurePosixPath(target)
            if PurePosixPath(target).is_absolute() or _escapes(joined):
                raise InvalidParameterValueException(
                    f"Could not unzip uploaded file: the link '{info.filename}' points outside the code root."
                )
    if total > MAX_UNZIPPED_BYTES:
        raise InvalidParameterValueException(
            f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
        )
    return total


def unzipped_size(path: Path) -> int:
    """The unzipped size a stored (already checked) zip declares (blocking: call from a thread)."""
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


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
                _extract(source, tmp)
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
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()  # merging layers: a later layer's file replaces an earlier one's
            if _is_symlink(info):
                os.symlink(archive.read(info).decode("utf-8"), dest)
                continue
            mode = (info.external_attr >> 16) & 0o777
            with archive.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_UNZIPPED_BYTES:
                        raise InvalidParameterValueException(
                            f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"
                        )
                    out.write(chunk)
            # keep the executable bits a bootstrap needs; everything is world-readable, nothing writable
            os.chmod(dest, 0o555 if mode & 0o111 else 0o444)


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
