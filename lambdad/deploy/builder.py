"""Building a function's directory the way ``sam build`` builds it, cached by content.

A directory with a ``requirements.txt`` (Python runtimes) or a ``package.json`` (Node.js runtimes) is built with
aws-lambda-builders, the library SAM CLI uses: the Python ``pip`` workflow installs the requirements (for the
function's runtime and architecture) beside the code; the Node.js ``npm`` workflow runs ``npm install
--production`` on a copy. Other directories are used as they are.

The result is kept under ``~/.cache/lambdad/build/<key>`` (``LAMBDAD_BUILD_CACHE`` moves it), the key being the
SHA-256 of the runtime, the architecture and every file's path and content: the same sources are built once,
and an edit builds anew. Builds run with whatever registries pip and npm are configured for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["BuildError", "build_dir", "cache_root"]

_MANIFESTS = {"python": "requirements.txt", "nodejs": "package.json"}
_SKIPPED = {".aws-sam", "__pycache__", ".git", "node_modules"}


class BuildError(Exception):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("LAMBDAD_BUILD_CACHE") or Path.home() / ".cache" / "lambdad" / "build")


def build_dir(source: Path, runtime: str | None, architecture: str | None) -> Path:
    """The directory to zip for ``source``: itself when there is nothing to build, else its build (cached)."""
    family = "nodejs" if (runtime or "").startswith("nodejs") else "python" if (runtime or "").startswith(
        "python") else None
    if family is None or not (source / _MANIFESTS[family]).is_file():
        return source
    assert runtime is not None
    arch = architecture or "x86_64"
    key = _content_key(source, runtime, arch)
    built = cache_root() / key
    if (built / ".lambdad-built").exists():
        return built
    from aws_lambda_builders.builder import LambdaBuilder
    from aws_lambda_builders.exceptions import LambdaBuilderError

    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix="tmp-") as scratch:
        artifacts = Path(scratch) / "artifacts"
        artifacts.mkdir()
        manager = "pip" if family == "python" else "npm"
        try:
            LambdaBuilder(language=family, dependency_manager=manager, application_framework=None).build(
                str(source), str(artifacts), str(Path(scratch) / "scratch"), str(source / _MANIFESTS[family]),
                runtime=runtime, architecture=arch)
        except LambdaBuilderError as exc:
            raise BuildError(f"building {source} for {runtime}: {exc}") from None
        except Exception as exc:  # the workflows raise their own types (pip or npm failed): say which
            raise BuildError(f"building {source} for {runtime}: {type(exc).__name__}: {exc}") from None
        (artifacts / ".lambdad-built").write_text(key)
        try:
            os.replace(artifacts, built)
        except OSError:  # another build of the same sources got there first
            shutil.rmtree(artifacts, ignore_errors=True)
    return built


def _content_key(source: Path, runtime: str, architecture: str) -> str:
    digest = hashlib.sha256(f"{runtime}\0{architecture}\0".encode())
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        for name in sorted(files):
            path = Path(folder) / name
            digest.update(path.relative_to(source).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()
