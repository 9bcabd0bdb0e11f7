"""The console's view of a deployment package and the package a save makes (lambdad/console/code.py)."""

from __future__ import annotations

import io
import zipfile

import pytest

from lambdad.console.code import MAX_EDITABLE, TEMPLATES, edited_zip, files_of, template_of, template_zip


def _zip(entries: dict[str, bytes], mode: int = 0o644) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return out.getvalue()


def test_text_files_are_shown_and_binary_ones_listed() -> None:
    view = files_of(_zip({"app.py": b"x = 1\n", "lib.so": b"\x7fELF\xff\xfe", "dir/": b""}))
    assert view["editable"] and view["reason"] == ""
    assert view["files"] == [{"path": "app.py", "size": 6, "text": "x = 1\n"}, {"path": "lib.so", "size": 6}]


def test_a_package_over_the_limit_is_listed_not_shown() -> None:
    view = files_of(_zip({"app.py": b"x = 1\n", "big.bin": b"\0" * (MAX_EDITABLE + 1)}))
    assert not view["editable"] and "3 MB" in view["reason"]
    assert all("text" not in f for f in view["files"])


def test_a_save_replaces_adds_removes_and_keeps_the_rest_byte_for_byte() -> None:
    original = _zip({"app.py": b"old\n", "bootstrap": b"#!/bin/sh\n", "gone.py": b"", "data.bin": b"\x00\x01"}, 0o755)
    new = edited_zip(original, {"app.py": "new\n", "pkg/added.py": "y = 2\n"}, ["gone.py"])
    with zipfile.ZipFile(io.BytesIO(new)) as zf:
        assert sorted(zf.namelist()) == ["app.py", "bootstrap", "data.bin", "pkg/added.py"]
        assert zf.read("app.py") == b"new\n" and zf.read("data.bin") == b"\x00\x01"
        assert (zf.getinfo("bootstrap").external_attr >> 16) & 0o777 == 0o755  # kept as it was
        assert (zf.getinfo("app.py").external_attr >> 16) & 0o777 == 0o644


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../up", "a/../../b", "a//b", "a\\b", "./a", "a\nb"])
def test_paths_a_package_may_not_hold_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        edited_zip(_zip({"app.py": b""}), {path: "x"}, [])


def test_templates_by_runtime_family() -> None:
    assert template_of("python3.12") is TEMPLATES["python"]
    assert template_of("nodejs22.x") is TEMPLATES["nodejs"]
    assert template_of("provided.al2023") is None
    with zipfile.ZipFile(io.BytesIO(template_zip(TEMPLATES["python"]))) as zf:
        assert zf.namelist() == ["lambda_function.py"]
        assert "def lambda_handler(event, context):" in zf.read("lambda_function.py").decode()
