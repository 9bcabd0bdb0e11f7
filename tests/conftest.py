from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.inprocess import InProcessApp
from tests.server import Server

_names = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by the tests that need no special settings."""
    srv = Server(tmp_path_factory.mktemp("data"), env={"LAMBDAD_ASYNC_RETRY_DELAYS": "0.5,0.5"}).start()
    yield srv
    srv.stop()


@pytest.fixture
def lam(server: Server):
    return server.client()


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    """A moto_server of the module's own (SQS, SNS, Kinesis, DynamoDB Streams... on one endpoint); skipped where
    moto is not installed."""
    from tests.services import moto_server

    try:
        with moto_server() as endpoint:
            yield endpoint
    except FileNotFoundError:
        pytest.skip("needs moto_server (pip install 'moto[server]'; the test extra has it)")


@pytest.fixture
def aws(moto: str) -> Iterator[Any]:
    """A maker of SDK clients for ``moto``, each closed when the test ends (one left to the garbage collector
    warns, and the warning fails whichever test happens to be running then)."""
    import boto3

    made: list[Any] = []

    def make(service: str) -> Any:
        client = boto3.client(service, endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def fname(request: pytest.FixtureRequest) -> str:
    """A function name unique to the test."""
    base = re.sub(r"[^a-zA-Z0-9_-]", "-", request.node.name)
    return f"{base[:50]}-{next(_names)}"


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[callable]:
    """Start servers with their own settings; every one is stopped after the test."""
    started: list[Server] = []

    def start(env: dict[str, str] | None = None, data_dir: Path | None = None, **kw) -> Server:
        srv = Server(data_dir or tmp_path / f"data{len(started)}", env=env, **kw).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.stop()


@pytest.fixture(scope="session")
def inproc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """One lambdad app built in this test process (tests/inprocess.py), for fast tests of the API."""
    app = InProcessApp(tmp_path_factory.mktemp("inproc")).start()
    yield app
    app.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new PostgreSQL database of this test's own (skipped where no PostgreSQL answers)."""
    from tests.services import answers, postgres_database

    if not answers("127.0.0.1", 5432):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 (CI has it)")
    with postgres_database() as url:
        yield url


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[callable]:
    """Start nodes of one cluster of this test's own (tests/cluster.py); skipped where PostgreSQL or NATS is
    absent. ``cluster(3)`` starts three; every node is stopped after the test."""
    from tests.cluster import Cluster
    from tests.services import answers, nats_cluster_name

    if not answers("127.0.0.1", 4222):
        pytest.skip("needs NATS with JetStream on 127.0.0.1:4222 (CI has it)")
    made: list[Cluster] = []
    with nats_cluster_name() as name:
        def start(count: int, env: dict[str, str] | None = None) -> Cluster:
            made.append(Cluster(tmp_path, postgres_url, name, env).start(count))
            return made[-1]

        try:
            yield start
        finally:
            for c in made:
                c.stop()
