"""A function's deployment package as the console's editor shows it, and the package an edit makes.

The editor shows the text files of a zip (UTF-8, each up to ``MAX_FILE`` bytes) when the whole package unzips to at
most ``MAX_EDITABLE`` bytes, as Lambda's console does (3 MB); other files are listed, kept as they are on save,
not shown. A save rewrites the zip from the one the editor was opened on: the edited files replaced, new ones
added, removed ones left out, every other entry copied byte for byte with its permissions.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["MAX_EDITABLE", "TEMPLATES", "Template", "edited_zip", "files_of", "template_of", "template_zip"]

MAX_EDITABLE = 3 * 1024 * 1024
MAX_FILE = 1024 * 1024


@dataclass(frozen=True)
class Template:
    handler: str
    path: str
    text: str


TEMPLATES = {
    "python": Template("lambda_function.lambda_handler", "lambda_function.py", '''import json


def lambda_handler(event, context):
    print("event:", json.dumps(event))
    return {
        "statusCode": 200,
        "body": json.dumps("Hello from lambdad!"),
    }
'''),
    "nodejs": Template("index.handler", "index.mjs", '''export const handler = async (event, context) => {
  console.log("event:", JSON.stringify(event));
  return {
    statusCode: 200,
    body: JSON.stringify("Hello from lambdad!"),
  };
};
'''),
}


def template_of(runtime: str) -> Template | None:
    """The blank function of a runtime's family (python3.12 -> python), if it has one."""
    for family, template in TEMPLATES.items():
        if runtime.startswith(family):
            return template
    return None


def template_zip(template: Template) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        _write_text(zf, template.path, template.text)
    return out.getvalue()


def files_of(package: bytes) -> dict[str, Any]:
    """The editor's view of a zip: ``{"editable": bool, "reason": str, "files": [{"path", "size", "text"?}]}``;
    ``text`` only for the files the editor shows."""
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        entries = [i for i in zf.infolist() if not i.is_dir()]
        total = sum(i.file_size for i in entries)
        editable = total <= MAX_EDITABLE
        files: list[dict[str, Any]] = []
        for info in entries:
            item: dict[str, Any] = {"path": info.filename, "size": info.file_size}
            if editable and info.file_size <= MAX_FILE:
                try:
                    item["text"] = zf.read(info).decode("utf-8")
                except UnicodeDecodeError:
                    pass
            files.append(item)
    reason = "" if editable else (f"The deployment package is {total / 1048576:.1f} MB unzipped; the console edits "
                                  f"packages up to {MAX_EDITABLE // 1048576} MB.")
    return {"editable": editable, "reason": reason, "files": files}


def edited_zip(package: bytes, changed: Mapping[str, str], removed: Sequence[str]) -> bytes:
    """``package`` with the files in ``changed`` (path -> text) written and those in ``removed`` left out.
    Raises ValueError for a path a zip may not hold safely."""
    for path in (*changed, *removed):
        _check_path(path)
    out = io.BytesIO()
    gone = set(removed) | set(changed)
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in source.infolist():
            if info.filename not in gone:
                zf.writestr(info, source.read(info))
        for path, text in changed.items():
            _write_text(zf, path, text)
    return out.getvalue()


def _write_text(zf: zipfile.ZipFile, path: str, text: str) -> None:
    info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, text.encode("utf-8"))


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts) \
            or len(path) > 1024 or any(ord(c) < 32 for c in path):
        raise ValueError(f"Not a file path a deployment package may hold: {path!r}")
