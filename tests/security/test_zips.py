"""Hostile code zips (issue 10 item 5), uploaded through a real server: each is refused with Lambda's
InvalidParameterValueException (400), quickly, without growing the server, and leaves no blob or tree behind."""

from __future__ import annotations

import io
import json
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.server import ROLE, make_zip


def link(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, target


def entry(name: str, data: bytes = b"", mode: int = 0o644) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = ((stat.S_IFDIR | 0o755) if name.endswith("/") else (stat.S_IFREG | mode)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info, data


def build(*entries: tuple[zipfile.ZipInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return buf.getvalue()


APP = entry("app.py", b"def handler(e, c):\n    return 1\n")


def lying_sizes() -> bytes:
    """A zip whose headers declare 10 bytes for a file that inflates to 5 MB (a zip bomb in a costume)."""
    data = bytearray(build(APP, entry("big.bin", b"\0" * (5 << 20))))
    central = bytes(data).rindex(b"PK\x01\x02")  # the last entry's central directory header
    local = bytes(data).rindex(b"PK\x03\x04")  # and its local header
    assert data[central + 46: central + 53] == data[local + 30: local + 37] == b"big.bin"
    struct.pack_into("<I", data, central + 24, 10)  # uncompressed size
    struct.pack_into("<I", data, local + 22, 10)
    return bytes(data)


HOSTILE = {
    # d/l2 -> ../l1/.. reads as harmless text, but l1 -> "." makes it the root's parent
    "link_chain": build(APP, link("l1", b"."), entry("d/"), link("d/l2", b"../l1/..")),
    # a later link turns an earlier, harmless one outwards: a -> b/.. is the root until b -> "."
    "link_turned_later": build(APP, link("a", b"b/.."), link("b", b".")),
    "link_absolute": build(APP, link("x", b"/etc/passwd")),
    "file_then_directory": build(APP, entry("x", b"1"), entry("x/", b"")),
    "directory_then_file": build(APP, entry("x/", b""), entry("x", b"1")),
    "link_target_not_utf8": build(APP, link("x", b"\xff\xfe")),
    "link_target_with_nul": build(APP, link("x", b"a\0b")),
    "lying_sizes": lying_sizes(),
}


def stored(data_dir: Path) -> int:
    return sum(1 for d in ("code", "tasks") for _ in (data_dir / d).iterdir())


def refused(lam, name: str, code: bytes) -> str:
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": code})
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidParameterValueException", 400)
    return err["Error"]["Message"]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_zip_is_refused_and_leaves_nothing(server, lam, fname, kind):
    before = stored(server.data_dir)
    refused(lam, fname, HOSTILE[kind])
    with pytest.raises(ClientError) as e:
        lam.publish_layer_version(LayerName=fname[:60], Content={"ZipFile": HOSTILE[kind]})
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert stored(server.data_dir) == before


def test_huge_link_target_is_not_read_whole(server, lam, fname):
    """A 1 GB link target deflates from ~1 MB: the old check read it whole on the event loop."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(*APP)
        info, _ = link("x", b"")
        with z.open(info, "w", force_zip64=True) as out:
            chunk = b"a" * (16 << 20)
            for _ in range(64):
                out.write(chunk)
    t0 = time.monotonic()
    refused(lam, fname, buf.getvalue())
    assert time.monotonic() - t0 < 5
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    assert rss_kb < 600 * 1024, f"server peak RSS {rss_kb // 1024} MB"


def test_many_tiny_files_count_as_blocks(server, lam, fname):
    """70,000 one-byte files are 70 kB of bytes but 280 MB of disk: over the 250 MB limit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(*APP)
        for i in range(70_000):
            z.writestr(f"f/{i}", b"x")
    t0 = time.monotonic()
    message = refused(lam, fname, buf.getvalue())
    assert message == "Unzipped size must be smaller than 262144000 bytes"
    assert time.monotonic() - t0 < 15


def test_too_many_entries_are_refused_before_parsing(server, lam, fname):
    """150,000 empty entries in ~14 MB: refused from the central directory's count, before an object is built
    per entry (600,000 of them held the server at 316 MB for 3 s)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(*APP)
        for i in range(150_000):
            z.writestr(zipfile.ZipInfo(f"{i:x}"), b"")
    t0 = time.monotonic()
    message = refused(lam, fname, buf.getvalue())
    assert message == "Could not unzip uploaded file: the archive has more than 100000 entries."
    assert time.monotonic() - t0 < 5


def test_deep_paths_cost_time_in_their_length(server, lam, fname):
    """3,000 entries each 2,041 directories deep (4 KB names): every directory a path implies takes a block, so
    the archive is over the size limit after a few dozen entries, answered at once. Before, each entry cost time
    in the square of its depth (every prefix of its path copied and hashed) and the implied directories cost
    nothing: minutes of a server thread for a 25 MB upload."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(*APP)
        for i in range(3000):
            z.writestr(f"{i:x}/" + "a/" * 2040 + "f", b"")
    t0 = time.monotonic()
    message = refused(lam, fname, buf.getvalue())
    assert message == "Unzipped size must be smaller than 262144000 bytes"
    assert time.monotonic() - t0 < 10


def test_names_longer_than_linux_allows_are_refused(server, lam, fname):
    for name in ("d/" + "n" * 256, "a/" * 2100 + "f"):
        message = refused(lam, fname, build(APP, entry(name, b"x")))
        assert "longer than" in message, message


def test_links_inside_the_tree_still_work(lam, fname):
    code = build(entry("lib/real.py", b"VALUE = 7\n"), entry("app.py", b"import os\nfrom alias import real\n"
                 b"def handler(e, c):\n    return [real.VALUE, os.readlink('alias')]\n"), link("alias", b"lib"),
                 entry("d/"), link("d/up", b"../lib"))
    lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": code})
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == [7, "lib"]


def test_layers_merge_a_directory_over_a_file(lam, fname):
    first = lam.publish_layer_version(LayerName=fname[:50] + "-1", Content={"ZipFile": make_zip({"python/x": "f"})})
    second = lam.publish_layer_version(LayerName=fname[:50] + "-2",
                                       Content={"ZipFile": make_zip({"python/x/y.py": "V = 2"})})
    lam.create_function(FunctionName=fname, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": "from x import y\ndef handler(e, c):\n    return y.V\n"})},
                        Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == 2
