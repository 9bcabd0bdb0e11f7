"""Usage metering end to end (docs/observability.md, "Usage and cost"): a real server runs functions of different
memory and ephemeral storage sizes; `lambdad usage --json`, run on the server's data dir after the flush, says
what their REPORT lines (read back with `lambdad logs`) said; provisioned concurrency is counted; a clean stop
and a restart keep every figure; the cost estimate is the arithmetic of the price file."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.server import Server, create_python_function, wait_until

SLEEPY = "import time\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return 'ok'\n"
BILLED = re.compile(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: (\d+) ms\tMemory Size: (\d+) MB")


def lambdad(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdad", *args], capture_output=True, text=True, timeout=60)


def usage(data_dir: Path, *args: str) -> dict:
    out = lambdad("usage", "--json", "--data-dir", str(data_dir), *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def reports(data_dir: Path, name: str) -> list[tuple[int, int]]:
    """(billed ms, memory MB) of every REPORT line of ``name``'s stored log."""
    out = lambdad("logs", name, "--data-dir", str(data_dir))
    return [(int(m.group(1)), int(m.group(2))) for m in map(BILLED.match, out.stdout.splitlines()) if m]


def totals(data_dir: Path, name: str) -> dict:
    return usage(data_dir, "--function", name)["totals"]


def settled(data_dir: Path, name: str, requests: int) -> tuple[dict, list[tuple[int, int]]]:
    """The usage and REPORT lines of ``name`` once both count ``requests`` invocations (log sink and usage meter
    write every few seconds)."""
    assert wait_until(lambda: len(reports(data_dir, name)) == requests
                      and totals(data_dir, name)["requests"] == requests, timeout=20)
    return totals(data_dir, name), reports(data_dir, name)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("usage"), env={"LAMBDAD_USAGE_FLUSH_SECONDS": "0.5"}).start()
    yield srv
    srv.stop()


def test_usage_is_what_the_report_lines_say(server, fname) -> None:
    lam = server.client()
    sizes = {f"{fname}-small": (128, 512), f"{fname}-big": (1024, 512), f"{fname}-disk": (256, 2048)}
    for name, (memory, storage) in sizes.items():
        create_python_function(lam, name, SLEEPY, MemorySize=memory, EphemeralStorage={"Size": storage})
        for seconds in (0, 0.05, 0.2):
            assert lam.invoke(FunctionName=name, Payload=json.dumps({"s": seconds}))["StatusCode"] == 200
    for name, (memory, storage) in sizes.items():
        got, lines = settled(server.data_dir, name, 3)
        billed = sum(b for b, _ in lines)
        assert {m for _, m in lines} == {memory}
        assert got["billed_ms"] == billed
        assert got["gb_seconds"] == pytest.approx(billed / 1000 * memory / 1024)
        assert got["ephemeral_gb_seconds"] == pytest.approx(billed / 1000 * (storage - 512) / 1024)
        assert got["provisioned_gb_seconds"] == 0 and got["provisioned_duration_gb_seconds"] == 0
        assert billed >= 250  # the sleeps: 0, 50 and 200 ms
    rows = usage(server.data_dir)["rows"]
    mine = [r for r in rows if r["function"] in sizes]
    assert {r["version"] for r in mine} == {"$LATEST"}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:00Z", r["hour"]) for r in mine)


def test_versions_are_kept_apart_and_the_tail_agrees(server, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, SLEEPY, MemorySize=512)
    lam.publish_version(FunctionName=fname)
    billed = {}
    for qualifier in ("$LATEST", "1", "1"):
        out = lam.invoke(FunctionName=fname, Qualifier=qualifier, LogType="Tail", Payload=b'{"s": 0.01}')
        tail = base64.b64decode(out["LogResult"]).decode()
        match = next(filter(None, map(BILLED.match, tail.splitlines())))
        billed[qualifier] = billed.get(qualifier, 0) + int(match.group(1))
    settled(server.data_dir, fname, 3)
    rows = {r["version"]: r for r in usage(server.data_dir, "--function", fname)["rows"]}
    assert rows["$LATEST"]["requests"] == 1 and rows["1"]["requests"] == 2
    assert rows["$LATEST"]["billed_ms"] == billed["$LATEST"] and rows["1"]["billed_ms"] == billed["1"]
    assert rows["1"]["gb_seconds"] == pytest.approx(billed["1"] / 1000 * 0.5)


def test_provisioned_concurrency_is_counted(server, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, SLEEPY, MemorySize=256)
    lam.publish_version(FunctionName=fname)
    put_at = time.time()
    lam.put_provisioned_concurrency_config(FunctionName=fname, Qualifier="1", ProvisionedConcurrentExecutions=2)
    assert wait_until(lambda: lam.get_provisioned_concurrency_config(
        FunctionName=fname, Qualifier="1")["Status"] == "READY", timeout=30)
    lam.invoke(FunctionName=fname, Qualifier="1", Payload=b'{"s": 0.02}')
    got, lines = settled(server.data_dir, fname, 1)
    # the invocation ran in a provisioned environment: its duration is provisioned duration
    assert got["provisioned_duration_gb_seconds"] == pytest.approx(lines[0][0] / 1000 * 0.25)
    assert got["gb_seconds"] == got["provisioned_duration_gb_seconds"]
    # two environments of 256 MB held since they were ready: 0.5 GB-s a second, never more than since the put
    assert wait_until(lambda: totals(server.data_dir, fname)["provisioned_gb_seconds"] >= 0.5, timeout=10)
    time.sleep(1.0)
    lam.delete_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")
    deleted_at = time.time()
    time.sleep(1.5)  # a flush after the delete: the time up to it is counted, nothing after
    held = totals(server.data_dir, fname)["provisioned_gb_seconds"]
    assert held <= (deleted_at - put_at + 1.0) * 0.5  # + a flush interval (and a margin) for the last sample
    assert held >= 0.5
    time.sleep(1.5)
    assert totals(server.data_dir, fname)["provisioned_gb_seconds"] == held  # nothing is provisioned any more
    row = usage(server.data_dir, "--function", fname)["rows"][0]
    assert row["version"] == "1"


def test_filters(server, fname) -> None:
    lam = server.client()
    create_python_function(lam, fname, SLEEPY)
    lam.invoke(FunctionName=fname, Payload=b"{}")
    settled(server.data_dir, fname, 1)
    assert usage(server.data_dir, "--function", fname, "--since", "1h")["totals"]["requests"] == 1
    assert usage(server.data_dir, "--function", fname, "--until", "2000-01-01")["rows"] == []
    assert usage(server.data_dir, "--function", fname, "--since", "2999-01-01T00")["rows"] == []
    assert usage(server.data_dir, "--function", f"{fname}-none")["totals"]["requests"] == 0
    hour = usage(server.data_dir, "--function", fname)["rows"][0]["hour"]
    assert usage(server.data_dir, "--function", fname, "--since", hour, "--until", hour)["rows"] == []
    assert len(usage(server.data_dir, "--function", fname, "--since", hour[:13])["rows"]) == 1
    out = lambdad("usage", "--data-dir", str(server.data_dir), "--since", "yesterday")
    assert out.returncode == 2 and "is not an ISO time" in out.stderr
    table = lambdad("usage", "--data-dir", str(server.data_dir), "--function", fname)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["FUNCTION", "VERSION", "HOUR", "REQUESTS"]
    assert lines[1].split()[:4] == [fname, "$LATEST", hour, "1"]
    assert lines[-1].split()[:2] == ["TOTAL", "1"]


def test_cost_is_the_arithmetic_of_the_price_file(server, fname, tmp_path) -> None:
    lam = server.client()
    create_python_function(lam, fname, SLEEPY, MemorySize=2048, EphemeralStorage={"Size": 1536})
    for _ in range(4):
        lam.invoke(FunctionName=fname, Payload=b'{"s": 0.01}')
    got, lines = settled(server.data_dir, fname, 4)
    prices = {"request_per_million": 1000.0, "duration_gb_second": 0.5, "ephemeral_gb_second": 0.25}
    (tmp_path / "prices.json").write_text(json.dumps(prices))
    billed = sum(b for b, _ in lines)
    expected = 4 / 1e6 * 1000 + billed / 1000 * 2 * 0.5 + billed / 1000 * 1 * 0.25
    out = usage(server.data_dir, "--function", fname, "--prices", str(tmp_path / "prices.json"))
    assert out["totals"]["estimated_cost_usd"] == pytest.approx(expected)
    assert out["prices"]["duration_gb_second"] == 0.5 and out["prices"]["provisioned_concurrency_gb_second"] == 0
    assert "estimate" in out["note"] and "no free tier" in out["note"]
    # LAMBDAD_PRICES names the file too; --aws-prices are AWS's, a file's keys over them
    env_out = subprocess.run([sys.executable, "-m", "lambdad", "usage", "--json", "--data-dir", str(server.data_dir),
                              "--function", fname], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "LAMBDAD_PRICES": str(tmp_path / "prices.json")})
    assert json.loads(env_out.stdout)["totals"]["estimated_cost_usd"] == pytest.approx(expected)
    aws = usage(server.data_dir, "--function", fname, "--aws-prices")["totals"]["estimated_cost_usd"]
    assert aws == pytest.approx(4 / 1e6 * 0.20 + billed / 1000 * 2 * 0.0000166667 + billed / 1000 * 0.0000000309)
    (tmp_path / "req.json").write_text('{"request_per_million": 1000000}')
    both = usage(server.data_dir, "--function", fname, "--aws-prices", "--prices", str(tmp_path / "req.json"))
    assert both["totals"]["estimated_cost_usd"] == pytest.approx(aws - 4 / 1e6 * 0.20 + 4)
    assert "estimated_cost_usd" not in usage(server.data_dir, "--function", fname)["totals"]
    (tmp_path / "bad.json").write_text('{"per_request": 1}')
    bad = lambdad("usage", "--data-dir", str(server.data_dir), "--prices", str(tmp_path / "bad.json"))
    assert bad.returncode == 2 and "unknown price per_request" in bad.stderr


def test_a_clean_stop_and_a_restart_keep_the_figures(tmp_path, fname) -> None:
    """The flush interval is an hour: only the flush at stop can have written the figures."""
    srv = Server(tmp_path, env={"LAMBDAD_USAGE_FLUSH_SECONDS": "3600"}).start()
    try:
        lam = srv.client()
        create_python_function(lam, fname, SLEEPY, MemorySize=384)
        for _ in range(3):
            lam.invoke(FunctionName=fname, Payload=b'{"s": 0.01}')
    finally:
        assert srv.stop() == 0
    first = totals(tmp_path, fname)
    lines = reports(tmp_path, fname)
    assert first["requests"] == 3 == len(lines)
    assert first["billed_ms"] == sum(b for b, _ in lines)
    srv.start()
    try:
        assert totals(tmp_path, fname) == first  # kept across the restart
        lam = srv.client()
        lam.invoke(FunctionName=fname, Payload=b"{}")
    finally:
        assert srv.stop() == 0
    after = totals(tmp_path, fname)
    lines = reports(tmp_path, fname)
    assert after["requests"] == 4 == len(lines)
    assert after["billed_ms"] == sum(b for b, _ in lines)
    assert after["gb_seconds"] == pytest.approx(after["billed_ms"] / 1000 * 384 / 1024)


def test_every_node_of_a_cluster_adds_to_the_same_function_hour(cluster, fname) -> None:
    """Two nodes, a provisioned environment on each, invocations on both: one row per function version and hour
    in the cluster's database, whose figures are every node's REPORT lines and provisioned time together."""
    nodes = cluster(2, {"LAMBDAD_USAGE_FLUSH_SECONDS": "0.5"}).nodes
    url = nodes[0].extra_env["LAMBDAD_DATABASE_URL"]
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, SLEEPY, MemorySize=256)
    clients[0].publish_version(FunctionName=fname)

    def knows(client) -> bool:
        try:
            return client.get_function(FunctionName=fname, Qualifier="1") is not None
        except Exception:
            return False

    assert wait_until(lambda: all(knows(c) for c in clients), timeout=10)
    put_at = time.time()
    clients[1].put_provisioned_concurrency_config(FunctionName=fname, Qualifier="1", ProvisionedConcurrentExecutions=2)
    assert wait_until(lambda: all(c.get_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")["Status"]
                                  == "READY" for c in clients), timeout=30)
    ready_at = time.time()
    for client in clients * 2:  # each node runs them on its own provisioned environment
        assert client.invoke(FunctionName=fname, Qualifier="1", Payload=b'{"s": 0.01}')["StatusCode"] == 200
    time.sleep(max(0.0, 3.0 - (time.time() - ready_at)))
    clients[0].delete_provisioned_concurrency_config(FunctionName=fname, Qualifier="1")
    deleted_at = time.time()
    for node in nodes:
        assert node.stop() == 0  # each flushes what it counted
    out = lambdad("usage", "--json", "--database-url", url, "--function", fname)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    logs = lambdad("logs", fname, "--database-url", url)
    lines = [int(m.group(1)) for m in map(BILLED.match, logs.stdout.splitlines()) if m]
    assert len(lines) == 4
    assert {r["version"] for r in rows} == {"1"}
    assert sum(r["requests"] for r in rows) == 4
    assert sum(r["billed_ms"] for r in rows) == sum(lines)
    assert sum(r["provisioned_duration_gb_seconds"] for r in rows) == pytest.approx(sum(lines) / 1000 * 0.25)
    held = sum(r["provisioned_gb_seconds"] for r in rows)
    # two environments of 256 MB: from READY (less a flush interval) to the delete, never more than from the put
    assert 0.5 * (deleted_at - ready_at - 1.0) <= held <= 0.5 * (deleted_at - put_at + 1.0)


def test_a_kill_loses_at_most_the_last_flush_interval(tmp_path, fname) -> None:
    """kill -9: what was counted up to the last flush is in the store; nothing counted is added twice."""
    srv = Server(tmp_path, env={"LAMBDAD_USAGE_FLUSH_SECONDS": "0.5"}).start()
    try:
        lam = srv.client()
        create_python_function(lam, fname, SLEEPY)
        for _ in range(2):
            lam.invoke(FunctionName=fname, Payload=b"{}")
        time.sleep(1.5)  # flushes since the invocations
    finally:
        srv.stop(signal.SIGKILL)
    got = totals(tmp_path, fname)
    assert got["requests"] == 2
    assert got["billed_ms"] == sum(b for b, _ in reports(tmp_path, fname))


def test_a_json_format_function_is_metered_as_its_platform_report_says(server, fname) -> None:
    """LoggingConfig LogFormat JSON writes platform.report records instead of REPORT lines: the meter counts
    their billedDurationMs all the same."""
    lam = server.client()
    create_python_function(lam, fname, SLEEPY, MemorySize=256, LoggingConfig={"LogFormat": "JSON"})
    for seconds in (0, 0.02):
        lam.invoke(FunctionName=fname, Payload=json.dumps({"s": seconds}))

    def billed() -> list[int]:
        out = lambdad("logs", fname, "--data-dir", str(server.data_dir))
        return [json.loads(line)["record"]["metrics"]["billedDurationMs"] for line in out.stdout.splitlines()
                if line.startswith("{") and '"platform.report"' in line]

    assert wait_until(lambda: len(billed()) == 2 and totals(server.data_dir, fname)["requests"] == 2, timeout=20)
    assert totals(server.data_dir, fname)["billed_ms"] == sum(billed())
