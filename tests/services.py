"""The outside services some tests need (PostgreSQL, NATS), each test on names of its own.

A test that needs one asks for it through a fixture of conftest.py, which skips the test with the reason when the
service does not answer on its standard loopback port (CI has them all, so there they run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
from typing import Iterator

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
NATS = "nats://127.0.0.1:4222"


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (or one test module's servers); dropped afterwards."""
    name = f"lambdad_test_{secrets.token_hex(6)}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _forget_cluster(name: str) -> None:
    """Delete the JetStream streams (key-value and object buckets are streams too) of cluster ``name``."""
    import nats

    client = await nats.connect(NATS, connect_timeout=2)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            stream = info.config.name or ""
            if stream.startswith((f"{name}_", f"KV_{name}_", f"OBJ_{name}_")):
                await js.delete_stream(stream)
    finally:
        await client.close()


@contextlib.contextmanager
def nats_cluster_name() -> Iterator[str]:
    """A cluster name of one test's own (every subject, stream and bucket of its nodes starts with it); its
    streams and buckets are deleted afterwards."""
    name = f"t{secrets.token_hex(5)}"
    try:
        yield name
    finally:
        asyncio.run(_forget_cluster(name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_s3() -> Iterator[tuple[str, str]]:
    """A moto_server (``moto_server``) with an S3 bucket: (endpoint URL, bucket). The caller skips where moto is
    not installed."""
    import boto3

    with moto_server() as endpoint:
        bucket = f"code-{secrets.token_hex(4)}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        client.create_bucket(Bucket=bucket)
        client.close()
        yield endpoint, bucket


MOTO_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto_server on a free port (every AWS service it emulates on one endpoint): its URL. The caller skips
    where moto is not installed (FileNotFoundError)."""
    import shutil
    import subprocess
    import time

    if shutil.which("moto_server") is None:
        raise FileNotFoundError("moto_server")
    port = free_port()
    # moto_server, with SQS's ReceiveMessage made atomic (tests/atomic_moto.py says why)
    proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "atomic_moto.py"),
                             "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not answers("127.0.0.1", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> str | None:
    """Debian's Chromium for the browser tests, installed from Debian's packages when it is absent and this process
    may (root, apt-get): the project's own test setup, so a fresh machine needs no hand-installed browser. Returns
    why it is not there, or None. Workers take turns (a lock file): dpkg allows one installer at a time."""
    import fcntl
    import shutil
    import subprocess

    if os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"needs Debian's Chromium at {CHROMIUM} (apt-get install -y chromium, as root)"
    with open("/tmp/lambdad-tests-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(CHROMIUM):
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        done = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if done.returncode != 0:  # an old package index: read it again once
            subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=600, env=env)
            done = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if not os.path.exists(CHROMIUM):
            return f"could not install Debian's Chromium: {(done.stderr or done.stdout).strip()[-300:]}"
    return None
