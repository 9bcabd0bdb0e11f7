"""The README's commands, exactly as a newcomer types them: in a fresh copy of the project, with default flags and
relative paths — `pip install . && lambdad serve`, the `export` it prints, the boto3 example, the aws CLI invoke,
`lambdad logs hello`. Nothing here is adapted to the test: the commands are read out of README.md. They run in a
virtualenv of their own, as a newcomer's would, so that `pip install .` does not replace the lambdad the rest of
the suite runs meanwhile.

`lambdad serve` with no flags listens on 127.0.0.1:9001; the test fails, saying so, when that port is taken."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(heading: str) -> list[tuple[str, str]]:
    """The fenced code blocks (language, text) of the README section under ``## heading``."""
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _copy_project(dest: Path) -> None:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        ".git", "lambdad-data", "__pycache__", ".pytest_cache", "build", "*.egg-info", "out.json"))


@pytest.mark.slow
def test_readme_commands_as_written(tmp_path: Path) -> None:
    if _port_open(9001):
        pytest.fail("port 9001 is taken: the README's `lambdad serve` (default flags) needs it free")
    project = tmp_path / "lambdad"
    _copy_project(project)
    (run_block,) = [text.strip() for lang, text in _blocks("Run") if lang == "sh" and "lambdad serve" in text]
    (export_line,) = [text.strip() for lang, text in _blocks("Run") if lang == "sh" and text.startswith("export")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDAD_"))}
    # a newcomer's own virtualenv (seeing the machine's packages, so nothing is downloaded): `pip install .` then
    # installs there, not over the lambdad every other test of the suite runs at the same time
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    server = subprocess.Popen(["bash", "-c", run_block], cwd=project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180  # pip install . first
        while not _port_open(9001):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("`" + run_block + "` did not start a server:\n" + (server.stdout.read() if server.stdout else ""))
            time.sleep(0.2)
        assert (project / "lambdad-data" / "credentials").exists()

        def shell(script: str) -> str:
            out = subprocess.run(["bash", "-c", export_line + "\n" + script], cwd=project, env=env,
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, f"{script}\n{out.stdout}\n{out.stderr}"
            return out.stdout

        (python_example,) = [text for lang, text in _blocks("Use it") if lang == "python"]
        printed = shell("python3 - <<'EOF'\n" + python_example + "EOF\n")
        assert json.loads(ast.literal_eval(printed.strip())) == {"hello": "world"}  # it prints the payload's bytes
        (cli_example,) = [text for lang, text in _blocks("Use it") if lang == "sh" and "lambda invoke" in text]
        printed = shell(cli_example)
        assert json.loads((project / "out.json").read_text()) == {"hello": "cli"}
        assert '"StatusCode": 200' in printed and '"LogResult"' in printed
        (events_example,) = [text for lang, text in _blocks("Use it") if lang == "sh" and "events put-rule" in text]
        shell(events_example)  # a rate(1 minute) rule on hello: made as typed (its first fire is a minute off)
        rule = json.loads(shell("aws --endpoint-url http://127.0.0.1:9001 events describe-rule --name every-minute"))
        assert (rule["ScheduleExpression"], rule["State"]) == ("rate(1 minute)", "ENABLED")
        targets = json.loads(shell("aws --endpoint-url http://127.0.0.1:9001 events list-targets-by-rule "
                                   "--rule every-minute"))["Targets"]
        assert [t["Arn"].rsplit(":", 1)[1] for t in targets] == ["hello"]
        logs_command = re.search(r"A function's log: `([^`]+)`", README).group(1)
        log = shell(logs_command)
        assert "START RequestId:" in log and "REPORT RequestId:" in log
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
