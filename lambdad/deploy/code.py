"""Code packages: a function's or layer's local code (a directory or a .zip) as the zip the API is given.

A directory is zipped deterministically (files in sorted order, a fixed timestamp, modes kept), so the same files
give the same bytes and the same CodeSha256: a re-deploy compares it with the function's CodeSha256 and uploads
nothing when they match, and the watch loop pushes only what changed. A .zip is sent as it is.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Package", "inline_package", "package_path", "MAX_ZIP"]

MAX_ZIP = 50 * 1024 * 1024  # Lambda's limit of a direct zip upload
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIPPED = {".aws-sam", "__pycache__", ".git", ".pytest_cache", ".mypy_cache"}


class PackageError(Exception):
    pass


@dataclass(frozen=True)
class Package:
    data: bytes
    source: str  # what it was made from, for messages

    @property
    def sha256(self) -> str:
        """CodeSha256 as Lambda reports it: the zip's SHA-256, base64."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()

    @property
    def hexdigest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def package_path(path: Path) -> Package:
    """The zip of a directory or a .zip file."""
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise PackageError(f"{path}: neither a directory nor a .zip file")
        return _checked(Package(path.read_bytes(), str(path)))
    if not path.is_dir():
        raise PackageError(f"{path}: no such directory or .zip file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in _files(path):
            info = zipfile.ZipInfo(file.relative_to(path).as_posix(), _EPOCH)
            mode = file.stat().st_mode
            info.external_attr = ((0o755 if mode & stat.S_IXUSR else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return _checked(Package(buf.getvalue(), str(path)))


def inline_package(source: str, runtime: str) -> Package:
    """CloudFormation's ZipFile: the source as index.py (Python) or index.js (Node.js), in a zip."""
    name = "index.js" if runtime.startswith("nodejs") else "index.py"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, _EPOCH)
        info.external_attr = (0o644 | stat.S_IFREG) << 16
        archive.writestr(info, source)
    return Package(buf.getvalue(), "InlineCode")


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        found.extend(Path(folder) / f for f in sorted(files) if not f.endswith(".pyc"))
    return found


def _checked(package: Package) -> Package:
    if len(package.data) > MAX_ZIP:
        raise PackageError(f"{package.source}: its zip is {len(package.data)} bytes, over Lambda's "
                           f"{MAX_ZIP}-byte limit of a direct upload")
    return package
