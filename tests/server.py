"""A real ``lambdad serve`` process for tests: free port, temp data dir, boto3 clients, clean stop."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Mapping

import boto3
from botocore.config import Config

ACCESS_KEY = "LKIATESTTESTTESTTEST"
SECRET_KEY = "test-secret-key-for-lambdad-tests"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"

_BANNER = re.compile(r"listening on (http://[\d.]+:(\d+))")


class _Recordings:
    """One HTTP server on the host's loopback per test process, that functions report to (tests see async
    deliveries through it). Every server a test starts allow-lists its port (LAMBDAD_FUNCTION_HOST_SERVICES),
    so functions in their own network namespaces reach it at the same address. Each ``Recorder`` has a path."""

    _instance: "_Recordings | None" = None

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.by_path: dict[str, list] = {}
        by_path = self.by_path

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                import json

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                by_path.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @classmethod
    def shared(cls) -> "_Recordings":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


def recorder_port() -> int:
    return _Recordings.shared().port


class Server:
    """One server process. ``start()`` waits until it listens; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None, credentials: bool = True) -> None:
        self.data_dir = data_dir
        self.extra_env = dict(env or {})
        self.credentials = credentials
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.port = 0
        self.output: list[str] = []
        self._clients: list = []  # closed at stop: not left to the garbage collector in the middle of a test

    def start(self, timeout: float = 30.0) -> "Server":
        env = dict(os.environ)
        env.pop("AWS_PROFILE", None)
        if self.credentials:
            env.update(LAMBDAD_ACCESS_KEY_ID=ACCESS_KEY, LAMBDAD_SECRET_ACCESS_KEY=SECRET_KEY)
        env["LAMBDAD_FUNCTION_HOST_SERVICES"] = str(recorder_port())
        env.update(self.extra_env)
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lambdad", "serve", "--port", "0", "--data-dir", str(self.data_dir)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                m = _BANNER.search(line)
                if m and not ready.is_set():
                    self.endpoint, self.port = m.group(1), int(m.group(2))
                    ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        deadline = time.time() + timeout
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.time() > deadline:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()
                self._pump.join(5)
                if self.proc.stdout is not None:
                    self.proc.stdout.close()
                raise RuntimeError("lambdad did not start:\n" + "".join(self.output))
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"lambdad did not stop within {timeout} s; its output:\n" + "".join(self.output)) from exc
        finally:
            self._pump.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def client(self, service: str = "lambda", *, read_timeout: float = 60, **kwargs):
        client = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=kwargs.pop("access_key", ACCESS_KEY),
            aws_secret_access_key=kwargs.pop("secret_key", SECRET_KEY),
            config=Config(read_timeout=read_timeout, retries={"max_attempts": 0}, **kwargs),
        )
        self._clients.append(client)
        return buffered(client)


def buffered(client):
    """``client`` with Invoke's payload read as the call returns. botocore hands the payload over as a stream that
    holds its connection until it is read to the end, and ``close()`` cannot reach a connection held that way: a
    test that never reads a payload (an Event invocation's empty one, say) left its socket to the garbage
    collector, whose ResourceWarning then failed whichever test was running when it came."""
    from botocore.response import StreamingBody

    def read_payload(http_response, parsed, **_):
        body = parsed.get("Payload")
        if body is not None and not isinstance(body, (bytes, str)):
            data = body.read()
            parsed["Payload"] = StreamingBody(io.BytesIO(data), len(data))

    client.meta.events.register("after-call.lambda.Invoke", read_payload)
    return client


def make_zip(files: Mapping[str, str | bytes], modes: Mapping[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, 0o644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def create_python_function(client, name: str, code: str, *, runtime: str = "python3.11", handler: str = "app.handler",
                           **kwargs):
    kwargs.setdefault("Role", ROLE)
    return client.create_function(
        FunctionName=name, Runtime=runtime, Handler=handler,
        Code={"ZipFile": make_zip({"app.py": code})}, **kwargs,
    )


def _cgroup_root() -> Path:
    """Where a server's environment groups live, as lambdad chooses (sandbox/cgroups.py): under the v1 freezer
    controller where it is mounted (hybrid hosts such as these machines), else in the v2 hierarchy — one group
    per environment either way, ``<root>/<server pid>-<id>/<environment id>``."""
    v1 = Path("/sys/fs/cgroup/freezer")
    if (v1 / "cgroup.procs").exists() or not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return v1 / "lambdad"
    return Path("/sys/fs/cgroup/lambdad")


CGROUP_ROOT = _cgroup_root()
GROUPS_RENAMED = CGROUP_ROOT.parent.name == "freezer"  # v1 renames a taken slot's groups; v2 cannot (EPERM)


def env_id(log_stream: str) -> str:
    """The environment id at the end of a log stream name (``YYYY/MM/DD/[$LATEST]<id>``)."""
    return log_stream.rsplit("]", 1)[1]


def env_running(log_stream: str) -> bool:
    """Whether the environment that wrote ``log_stream`` still has a cgroup (a cgroup can only be removed
    once every process in it is gone). Needs the cgroups lambdad uses on Linux as root."""
    return any(CGROUP_ROOT.glob(f"*/{env_id(log_stream)}"))


def logged(server: "Server", name: str, mark: str) -> list[str]:
    """What follows ``mark`` in each line of function ``name``'s log, oldest first, read as a user reads it
    (``lambdad logs NAME --data-dir``)."""
    out = subprocess.run([sys.executable, "-m", "lambdad", "logs", name, "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=30)
    return [line.split(mark, 1)[1] for line in out.stdout.splitlines() if mark in line]


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
