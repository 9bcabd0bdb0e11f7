"""Cluster mode (docs/cluster.md) through real nodes on the machine's PostgreSQL and NATS: each test has a
database and a cluster name of its own (tests/services.py), so tests run in parallel. Skipped with the reason
where PostgreSQL or NATS is absent."""

from __future__ import annotations

import base64
import configparser
import json
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.server import buffered, create_python_function, wait_until
from tests.services import NATS, answers, nats_cluster_name

ECHO = """
import json
def handler(event, context):
    return {"echo": event, "version": context.function_version}
"""


def test_a_node_on_postgresql_keeps_its_functions_across_a_kill(cluster, fname) -> None:
    nodes = cluster(1)
    (node,) = nodes.nodes
    lam = node.client()
    create_python_function(lam, fname, ECHO, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=3)
    node.stop(signal.SIGKILL)
    node.start()
    lam = node.client()
    out = lam.invoke(FunctionName=fname, Qualifier="live", Payload=b'{"a": 1}')
    assert json.loads(out["Payload"].read()) == {"echo": {"a": 1}, "version": "1"}
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 3
    assert not (node.data_dir / "lambdad.db").exists()  # the metadata is in PostgreSQL, not the data dir


def test_a_change_on_one_node_is_seen_by_the_others(cluster, fname) -> None:
    a, b, c = cluster(3).nodes
    la, lb, lc = a.client(), b.client(), c.client()
    create_python_function(la, fname, ECHO, Publish=True)
    la.update_function_configuration(FunctionName=fname, Description="two", MemorySize=256)
    la.get_waiter("function_updated_v2").wait(FunctionName=fname)
    la.publish_version(FunctionName=fname)
    la.create_alias(FunctionName=fname, Name="live", FunctionVersion="1",
                    RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    la.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=4)

    def seen(client) -> bool:
        try:
            config = client.get_function_configuration(FunctionName=fname)
            alias = client.get_alias(FunctionName=fname, Name="live")
            reserved = client.get_function_concurrency(FunctionName=fname).get("ReservedConcurrentExecutions")
        except client.exceptions.ResourceNotFoundException:
            return False
        return (config["Description"], config["MemorySize"], alias["RoutingConfig"], reserved) == (
            "two", 256, {"AdditionalVersionWeights": {"2": 0.25}}, 4)

    assert wait_until(lambda: seen(lb) and seen(lc), timeout=5)
    versions = [v["Version"] for v in lc.list_versions_by_function(FunctionName=fname)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]

    lb.delete_function(FunctionName=fname)  # from another node: gone everywhere

    def gone(client) -> bool:
        try:
            client.get_function(FunctionName=fname)
        except client.exceptions.ResourceNotFoundException:
            return True
        return False

    assert wait_until(lambda: gone(la) and gone(lc), timeout=5)


def test_every_node_accepts_the_root_key_the_first_one_made(cluster) -> None:
    nodes = cluster(0)
    first, second = nodes.start_node(credentials=False), nodes.start_node(credentials=False)
    made = [(n.data_dir / "credentials").read_text() for n in (first, second)]
    assert made[0] == made[1] and "aws_access_key_id" in made[0]
    key = re.search(r"aws_access_key_id = (\S+)", made[0]).group(1)
    secret = re.search(r"aws_secret_access_key = (\S+)", made[0]).group(1)
    for node in (first, second):
        assert node.client(access_key=key, secret_key=secret).list_functions()["Functions"] == []
    # the variables, when set, replace them for the whole cluster
    third = nodes.start_node()
    third.client().list_functions()
    first.stop()
    first.start()
    with pytest.raises(ClientError) as refused:
        first.client(access_key=key, secret_key=secret).list_functions()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


def lambdad(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdad", *args], capture_output=True, text=True, timeout=120)


def test_migrate_moves_a_data_dir_into_a_cluster(fresh_server, postgres_url, tmp_path, fname) -> None:
    if not answers("127.0.0.1", 4222):
        pytest.skip("needs NATS with JetStream on 127.0.0.1:4222 (CI has it)")
    with nats_cluster_name() as cluster_name:
        _migrate(fresh_server, postgres_url, cluster_name, tmp_path, fname)


def _migrate(fresh_server, postgres_url: str, cluster_name: str, tmp_path, fname: str) -> None:
    embedded = fresh_server(data_dir=tmp_path / "data", credentials=False)
    config = configparser.ConfigParser()
    config.read(embedded.data_dir / "credentials")
    root = config["lambdad"]["aws_access_key_id"], config["lambdad"]["aws_secret_access_key"]
    lam = embedded.client(access_key=root[0], secret_key=root[1])
    create_python_function(lam, fname, ECHO, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=2)
    lam.invoke(FunctionName=fname, Payload=b'{"before": 1}')
    made = lambdad("keys", "create", "alice", "--data-dir", str(embedded.data_dir))
    assert made.returncode == 0, made.stderr
    alice_key = re.search(r"aws_access_key_id: (\S+)", made.stdout).group(1)
    assert lambdad("migrate", "--data-dir", str(embedded.data_dir), "--database-url", postgres_url).returncode != 0
    embedded.stop()  # a data dir in use is refused (above); a stopped one moves

    moved = lambdad("migrate", "--data-dir", str(embedded.data_dir), "--database-url", postgres_url,
                    "--nats-url", NATS, "--cluster-name", cluster_name)
    assert moved.returncode == 0, moved.stderr
    assert "moved 1 functions (2 versions with $LATEST), 1 aliases" in moved.stdout and "root credentials" in moved.stdout
    assert "copied 1 code zips" in moved.stdout

    # a node of the cluster with a data dir of its own: the code comes from the object store
    node = fresh_server(data_dir=tmp_path / "node", credentials=False, env={
        "LAMBDAD_DATABASE_URL": postgres_url, "LAMBDAD_NATS_URL": NATS, "LAMBDAD_CLUSTER_NAME": cluster_name})
    lam = node.client(access_key=root[0], secret_key=root[1])  # the same root key
    out = lam.invoke(FunctionName=fname, Qualifier="live", Payload=b'{"after": 1}')
    assert json.loads(out["Payload"].read()) == {"echo": {"after": 1}, "version": "1"}
    assert lam.get_function_concurrency(FunctionName=fname)["ReservedConcurrentExecutions"] == 2
    listed = lambdad("keys", "list", "--database-url", postgres_url)
    assert alice_key in listed.stdout
    log = lambdad("logs", fname, "--database-url", postgres_url)
    assert log.returncode == 0 and log.stdout.count("START RequestId") == 2  # the one before the move, and after
    node.stop()

    again = lambdad("migrate", "--data-dir", str(embedded.data_dir), "--database-url", postgres_url)
    assert again.returncode != 0 and "already holds functions" in again.stderr  # never merges two sets


def test_concurrent_writes_on_several_nodes_lose_nothing(cluster, fname) -> None:
    """Every node updates and publishes one function at once: each call either wins or is told
    ResourceConflictException; no published version is overwritten and every node ends with the same function.
    (A publish may return the version another call just published: $LATEST had not changed since, as on Lambda.)"""
    nodes = cluster(3).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, ECHO)
    assert wait_until(lambda: all(_knows(c, fname) for c in clients), timeout=5)
    published: list[tuple[str, str]] = []  # (version, its description) as each successful publish answered
    conflicts = 0

    def publish(i: int) -> None:
        nonlocal conflicts
        client = clients[i % 3]
        for attempt in range(6):
            try:
                client.update_function_configuration(FunctionName=fname, Description=f"from {i} try {attempt}")
                answer = client.publish_version(FunctionName=fname)
                published.append((answer["Version"], answer["Description"]))
                return
            except client.exceptions.ResourceConflictException:
                conflicts += 1
                time.sleep(0.05 * (attempt + 1))

    with ThreadPoolExecutor(9) as pool:
        list(pool.map(publish, range(9)))
    listed = {c: [v["Version"] for v in c.list_versions_by_function(FunctionName=fname)["Versions"]] for c in clients}
    answered = dict(published)
    assert len(answered) == len(set(published))  # one configuration per version number: none was overwritten
    versions = sorted(answered, key=int)
    assert len(published) == 9 and versions == [str(n) for n in range(1, len(versions) + 1)]  # none lost or skipped
    assert wait_until(lambda: all(
        [v["Version"] for v in c.list_versions_by_function(FunctionName=fname)["Versions"]]
        == ["$LATEST", *versions] for c in clients), timeout=5), (published, listed, conflicts)
    for client in clients:  # each version kept the configuration it was published from: no two the same
        descriptions = [client.get_function_configuration(FunctionName=fname, Qualifier=v)["Description"]
                        for v in versions]
        assert descriptions == [answered[v] for v in versions] and len(set(descriptions)) == len(versions)
    for client in clients:
        client.close()  # their pooled connections are not left to the garbage collector


def _the_one_with_environments(nodes):
    """The one node of ``nodes`` that has environments, as ``lambdad cluster status`` reports (heartbeats: 2 s)."""
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
    found: list = []

    def one() -> bool:
        lines = lambdad("cluster", "status", "--nats-url", NATS, "--cluster-name", name).stdout.splitlines()
        found[:] = [n for n in nodes for line in lines if n.endpoint in line and "/ 0\t" not in line]
        return len(found) == 1

    assert wait_until(one, timeout=8), found
    return found[0]


def _reserved(client, name: str) -> int | None:
    """The reservation ``client``'s node knows for ``name`` (None: none, or the function not known there yet)."""
    try:
        return client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    except client.exceptions.ResourceNotFoundException:
        return None


def _knows(client, name: str) -> bool:
    try:
        client.get_function(FunctionName=name)
        return True
    except client.exceptions.ResourceNotFoundException:
        return False


WHERE = """
def handler(event, context):
    return {"stream": context.log_stream_name, "event": event}
"""


def test_any_node_serves_an_invoke_at_the_function_home(cluster, fname) -> None:
    nodes = cluster(3).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[1], fname, WHERE)  # its code reaches the others through the object store
    assert wait_until(lambda: all(_knows(c, fname) for c in clients), timeout=5)
    streams = set()
    for round_ in range(3):
        for i, client in enumerate(clients):
            out = client.invoke(FunctionName=fname, Payload=json.dumps({"from": i}).encode(), LogType="Tail")
            answer = json.loads(out["Payload"].read())
            assert answer["event"] == {"from": i} and "FunctionError" not in out
            assert "START RequestId" in base64.b64decode(out["LogResult"]).decode()
            streams.add(answer["stream"])
    assert len(streams) == 1  # one warm environment served all nine, at the version's home node
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
    status = lambdad("cluster", "status", "--nats-url", NATS, "--cluster-name", name)
    assert status.returncode == 0 and "3 nodes" in status.stdout, status.stderr
    assert all(n.endpoint in status.stdout for n in nodes)

    home = _the_one_with_environments(nodes)  # the home: status shows each node's, from its heartbeats
    home.stop(signal.SIGKILL)  # kill -9: the others go on serving (the function's home moves)
    survivors = [n.client() for n in nodes if n is not home]
    for client in survivors:
        out = client.invoke(FunctionName=fname, Payload=b'{"after": "kill"}')
        assert json.loads(out["Payload"].read())["event"] == {"after": "kill"}


def test_a_forwarded_invocation_keeps_the_callers_trace(cluster, fname) -> None:
    """An Active function invoked through each node runs at its home; the caller's X-Amzn-Trace-Id goes with the
    invocation, and the function's header continues it (docs/observability.md#traces)."""
    nodes = cluster(2).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, "import os\n\ndef handler(event, context):\n"
                           "    return os.environ['_X_AMZN_TRACE_ID']\n", TracingConfig={"Mode": "Active"})
    assert wait_until(lambda: all(_knows(c, fname) for c in clients), timeout=5)
    root = "1-5759e988-bd862e3fe1be46a994272793"
    for client in clients:
        def add_header(request, **_) -> None:
            request.headers["X-Amzn-Trace-Id"] = f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1"

        client.meta.events.register("before-sign.lambda.Invoke", add_header)
        seen = json.loads(client.invoke(FunctionName=fname, Payload=b"{}")["Payload"].read())
        assert seen.startswith(f"Root={root};Parent=") and seen.endswith(";Sampled=1"), seen
        assert "53995c3f42cd8ad8" not in seen  # its Parent is the invocation's own


def test_a_lease_owned_job_moves_when_its_node_dies(cluster) -> None:
    nodes = cluster(3).nodes
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]

    def holder() -> tuple[str | None, dict[str, str]]:
        out = lambdad("cluster", "status", "--nats-url", NATS, "--cluster-name", name).stdout
        endpoints = {line.split("\t")[0]: line.split("\t")[1] for line in out.splitlines() if "\t" in line}
        held = re.search(r"lease log-retention: held by (\S+)", out)
        return (held.group(1) if held else None), endpoints

    assert wait_until(lambda: holder()[0] is not None, timeout=10)
    first, endpoints = holder()
    victim = next(n for n in nodes if n.endpoint == endpoints[first])
    victim.stop(signal.SIGKILL)
    killed = time.monotonic()
    assert wait_until(lambda: holder()[0] not in (None, first), timeout=15)
    took = time.monotonic() - killed
    second, endpoints = holder()
    assert second in endpoints and endpoints[second] != victim.endpoint and took < 12


def test_async_events_survive_the_kill_of_the_node_that_accepted_them(cluster, fname) -> None:
    """A stream of async invocations sent to one node, killed with kill -9 half-way: every accepted event runs at
    least once, on the others. Retries after a function error follow LAMBDAD_ASYNC_RETRY_DELAYS in a cluster
    too."""
    from tests.test_server import _Recorder

    nodes = cluster(3, env={"LAMBDAD_ASYNC_RETRY_DELAYS": "0.5,0.5"}).nodes
    recorder = _Recorder()
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, recorder.function_code(fail=False, sleep=0.2))
    assert wait_until(lambda: all(_knows(c, fname) for c in clients), timeout=5)
    accepted = []
    for i in range(40):
        if i == 20:
            nodes[0].stop(signal.SIGKILL)  # the node that accepted the first half
        client = clients[0] if i < 20 else clients[1 + i % 2]
        answer = client.invoke(FunctionName=fname, InvocationType="Event", Payload=json.dumps({"n": i}).encode())
        assert answer["StatusCode"] == 202
        accepted.append(i)
    assert wait_until(lambda: {e["n"] for e in recorder.events} >= set(accepted), timeout=60), (
        sorted(set(accepted) - {e["n"] for e in recorder.events}))

    failing = f"{fname}-f"
    failures = _Recorder()
    create_python_function(clients[1], failing, failures.function_code(fail=True))
    assert wait_until(lambda: _knows(clients[2], failing), timeout=5)
    started = time.time()
    clients[2].invoke(FunctionName=failing, InvocationType="Event", Payload=b'{"n": "f"}')
    assert wait_until(lambda: len(failures.events) >= 3, timeout=20)
    time.sleep(1.5)
    assert len(failures.events) == 3 and time.time() - started >= 1.0  # the first try and two retries


SLEEPER = """
import time
def handler(event, context):
    started = time.time()
    time.sleep(1.5)
    return {"started": started, "ended": time.time()}
"""


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_a_concurrency_limit_holds_across_nodes_under_a_burst(cluster, fname) -> None:
    """Reserved concurrency 5, a burst of 24 invokes over 3 nodes at once, each running where it arrived (a payload
    too big to forward, > 1 MB): never more than 5 run at once in the whole cluster, the rest are throttled with
    Lambda's reason, and the limit is used (at least 5 succeed)."""
    nodes = cluster(3).nodes
    clients = [n.client(read_timeout=30, max_pool_connections=16) for n in nodes]
    create_python_function(clients[0], fname, SLEEPER, Timeout=10)
    clients[0].put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=5)
    assert wait_until(lambda: all(_reserved(c, fname) == 5 for c in clients), timeout=5)
    payload = json.dumps({"pad": "x" * 1_100_000}).encode()
    spans, throttled, other = [], [], []

    def invoke(i: int) -> None:
        client = clients[i % 3]
        try:
            answer = json.loads(client.invoke(FunctionName=fname, Payload=payload)["Payload"].read())
            spans.append((answer["started"], answer["ended"]))
        except client.exceptions.TooManyRequestsException as exc:
            throttled.append(exc.response["Reason"])
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            other.append(repr(exc))

    with ThreadPoolExecutor(24) as pool:
        list(pool.map(invoke, range(24)))
    assert not other, other
    assert _most_at_once(spans) <= 5, sorted(spans)  # in the whole cluster at once
    assert len(spans) >= 5 and len(spans) + len(throttled) == 24
    assert set(throttled) == {"ReservedFunctionConcurrentInvocationLimitExceeded"}
    for client in clients:
        client.close()


def test_a_dead_node_gives_its_concurrency_back(cluster, fname) -> None:
    """A node running the whole reservation is killed with kill -9: within the void time of its share (10 s) the
    other node can use the reservation again."""
    a, b = cluster(2).nodes
    la, lb = a.client(read_timeout=60), b.client(read_timeout=60)
    create_python_function(la, fname, NAPPER, Timeout=60)
    la.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=2)
    assert wait_until(lambda: _reserved(lb, fname) == 2, timeout=5)
    pad = "x" * 1_100_000  # too big to forward: each invocation runs where it arrives

    def invoke(client, sleep: float) -> str:
        try:
            client.invoke(FunctionName=fname, Payload=json.dumps({"sleep": sleep, "pad": pad}).encode())
            return "ran"
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    background = ThreadPoolExecutor(2)
    for _ in range(2):
        background.submit(invoke, la, 30)  # a holds both permits
    name = a.extra_env["LAMBDAD_CLUSTER_NAME"]

    def both_running_on_a() -> bool:  # as a's heartbeat reports it (each 30 s asleep)
        out = lambdad("cluster", "status", "--nats-url", NATS, "--cluster-name", name).stdout
        return any(a.endpoint in line and "environments 2 busy" in line for line in out.splitlines())

    assert wait_until(both_running_on_a, timeout=20)
    assert invoke(lb, 0) == "TooManyRequestsException"
    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    background.shutdown(wait=False)
    assert wait_until(lambda: invoke(lb, 0) == "ran", timeout=20)
    assert time.monotonic() - killed < 14  # the share is void 10 s after its last renewal
    lb.close()


NAPPER = """
import time
def handler(event, context):
    time.sleep(event["sleep"])
    return "slept"
"""


def test_an_invocation_forwarded_to_a_node_that_dies_fails_at_once(cluster, fname) -> None:
    """The home of a function is killed with kill -9 while it runs an invocation forwarded to it: the caller gets
    Lambda's ServiceException within seconds (when the home's heartbeats stop), not after the function's timeout."""
    nodes = cluster(2).nodes
    clients = [n.client(read_timeout=120) for n in nodes]
    create_python_function(clients[0], fname, NAPPER, Timeout=60)
    assert wait_until(lambda: all(_knows(c, fname) for c in clients), timeout=5)
    for client in clients:  # the home gets a warm environment; the other node has none, so it forwards
        client.invoke(FunctionName=fname, Payload=b'{"sleep": 0}')
    home = _the_one_with_environments(nodes)
    other = clients[1 - nodes.index(home)]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: other.invoke(FunctionName=fname, Payload=b'{"sleep": 50}'))
        time.sleep(2)
        home.stop(signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(ClientError) as failed:
            pending.result(timeout=40)
    assert failed.value.response["Error"]["Code"] == "ServiceException"
    assert time.monotonic() - killed < 12  # the heartbeat expiry (6 s) and a look each second


def test_an_async_event_of_the_largest_size_goes_through_the_stream(cluster, fname) -> None:
    """An Event payload of 1 MiB (Lambda's limit, also NATS's default message cap) is compressed into the stream."""
    from tests.test_server import _Recorder

    (node,) = cluster(1).nodes
    recorder = _Recorder()
    code = f"""
import json, urllib.request
def handler(event, context):
    body = json.dumps({{"size": len(event["pad"])}}).encode()
    urllib.request.urlopen(urllib.request.Request({recorder.url!r}, data=body, method="POST")).read()
"""
    lam = node.client()
    create_python_function(lam, fname, code)
    pad = "x" * (1024 * 1024 - 20)
    payload = json.dumps({"pad": pad}).encode()
    assert len(payload) <= 1024 * 1024
    assert lam.invoke(FunctionName=fname, InvocationType="Event", Payload=payload)["StatusCode"] == 202
    assert wait_until(lambda: recorder.events == [{"size": len(pad)}], timeout=20), recorder.events


INIT_TYPE = """
import os
def handler(event, context):
    return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
"""


def _provisioned_by_node(nodes) -> dict[str, int]:
    """Each node's initialised provisioned environments, as ``lambdad cluster status`` reports them."""
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
    lines = lambdad("cluster", "status", "--nats-url", NATS, "--cluster-name", name).stdout.splitlines()
    found = {}
    for line in lines:
        match = re.search(r"\tprovisioned (\d+)\t", line)
        for node in nodes:
            if match and node.endpoint in line:
                found[node.endpoint] = int(match.group(1))
    return found


def _provisioned_config(client, fname: str, qualifier: str) -> tuple[str, int]:
    got = client.get_provisioned_concurrency_config(FunctionName=fname, Qualifier=qualifier)
    assert got["AllocatedProvisionedConcurrentExecutions"] == got["AvailableProvisionedConcurrentExecutions"]
    return got["Status"], got["AvailableProvisionedConcurrentExecutions"]


def test_provisioned_concurrency_is_spread_over_the_nodes_and_replaced_when_one_dies(cluster, fname) -> None:
    """A config of 4 on a 3-node cluster runs 2, 1 and 1 environments on the nodes (``lambdad cluster status``
    shows each node's); every node answers its status with all 4 and runs an invocation on its own provisioned
    environment. The node running 2 killed with kill -9: its environments are started on the two others once it
    is taken for dead, and the config is READY with 4 again within 15 s of the kill."""
    nodes = cluster(3).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, INIT_TYPE)
    version = clients[0].publish_version(FunctionName=fname)["Version"]
    assert wait_until(lambda: all(_knows(c, f"{fname}:{version}") for c in clients), timeout=5)
    put = clients[1].put_provisioned_concurrency_config(FunctionName=fname, Qualifier=version,
                                                         ProvisionedConcurrentExecutions=4)
    assert put["RequestedProvisionedConcurrentExecutions"] == 4 and put["Status"] == "IN_PROGRESS"
    assert wait_until(lambda: all(_provisioned_config(c, fname, version) == ("READY", 4) for c in clients),
                      timeout=20)
    assert wait_until(lambda: sorted(_provisioned_by_node(nodes).values()) == [1, 1, 2], timeout=8), \
        _provisioned_by_node(nodes)
    for client in clients:  # each node runs it on its own provisioned environment
        out = client.invoke(FunctionName=fname, Qualifier=version, Payload=b"{}")
        assert json.loads(out["Payload"].read()) == "provisioned-concurrency"

    by_node = _provisioned_by_node(nodes)
    victim = next(n for n in nodes if by_node[n.endpoint] == 2)
    survivors = [n for n in nodes if n is not victim]
    victim.stop(signal.SIGKILL)
    killed = time.monotonic()
    survivor_clients = [c for n, c in zip(nodes, clients) if n is not victim]
    assert wait_until(lambda: all(_provisioned_config(c, fname, version) == ("READY", 4) for c in survivor_clients)
                      and sorted(_provisioned_by_node(survivors).values()) == [2, 2], timeout=20), \
        (_provisioned_by_node(survivors), [_provisioned_config(c, fname, version) for c in survivor_clients])
    took = time.monotonic() - killed
    assert took < 15, took  # heartbeat expiry (6 s), a look each second, a start, a heartbeat
    with ThreadPoolExecutor(4) as pool:  # 4 at once on 2 nodes: (nearly) all on provisioned environments
        answers_ = list(pool.map(lambda c: json.loads(c.invoke(FunctionName=fname, Qualifier=version)["Payload"].read()),
                                 survivor_clients * 2))
    assert answers_.count("provisioned-concurrency") >= 2, answers_  # some may arrive where all are busy: on demand

    survivor_clients[0].delete_provisioned_concurrency_config(FunctionName=fname, Qualifier=version)
    assert wait_until(lambda: sum(_provisioned_by_node(survivors).values()) == 0, timeout=8)
    for client in clients:
        client.close()


def test_provisioned_concurrency_moves_to_a_joining_node_without_a_gap(cluster, fname) -> None:
    """A config of 4 on 2 nodes (2 each); a third node joins and gets its share (the shares become 2, 1, 1): the
    node giving one up keeps it until the newcomer's is initialised, so the config never shows fewer than 4
    available on any node, nor do the nodes' heartbeats (``lambdad cluster status``) sum to fewer."""
    made = cluster(2)
    nodes = list(made.nodes)
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, INIT_TYPE)
    version = clients[0].publish_version(FunctionName=fname)["Version"]
    assert wait_until(lambda: all(_knows(c, f"{fname}:{version}") for c in clients), timeout=5)
    clients[0].put_provisioned_concurrency_config(FunctionName=fname, Qualifier=version,
                                                  ProvisionedConcurrentExecutions=4)
    assert wait_until(lambda: all(_provisioned_config(c, fname, version) == ("READY", 4) for c in clients),
                      timeout=20)
    assert wait_until(lambda: sorted(_provisioned_by_node(nodes).values()) == [2, 2], timeout=8)

    seen: list[tuple[str, int]] = []
    sums: list[int] = []
    done = False

    def watch() -> None:
        while not done:
            for client in clients:
                seen.append(_provisioned_config(client, fname, version))
            time.sleep(0.05)

    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(watch)
        try:
            nodes.append(made.start_node())

            def moved() -> bool:
                by_node = _provisioned_by_node(nodes)
                sums.append(sum(by_node.values()))
                return sorted(by_node.values()) == [1, 1, 2]

            assert wait_until(moved, timeout=15), _provisioned_by_node(nodes)
            time.sleep(2.5)  # a heartbeat more: the node that gave one up has said so
            assert sorted(_provisioned_by_node(nodes).values()) == [1, 1, 2]
        finally:
            done = True
            watching.result()
    assert len(seen) > 20 and set(seen) == {("READY", 4)}, sorted(set(seen))
    assert min(sums) >= 4, sums
    new_client = nodes[2].client()
    assert wait_until(lambda: _provisioned_config(new_client, fname, version) == ("READY", 4), timeout=5)
    for client in [*clients, new_client]:
        client.close()


SLEEPY_INIT_TYPE = """
import os, time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
"""


def test_a_burst_at_one_node_uses_the_environments_provisioned_on_the_others(cluster, fname) -> None:
    """A config of 4 on 3 nodes (2, 1, 1); 4 overlapping invocations all sent to a node running 1 of them: each
    runs on a provisioned environment (its own first, then those the other nodes' heartbeats show), none on an
    on-demand one (without that routing the third would start cold where it arrived)."""
    nodes = cluster(3).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, SLEEPY_INIT_TYPE, Timeout=10)
    version = clients[0].publish_version(FunctionName=fname)["Version"]
    assert wait_until(lambda: all(_knows(c, f"{fname}:{version}") for c in clients), timeout=5)
    clients[0].put_provisioned_concurrency_config(FunctionName=fname, Qualifier=version,
                                                  ProvisionedConcurrentExecutions=4)
    assert wait_until(lambda: all(_provisioned_config(c, fname, version) == ("READY", 4) for c in clients),
                      timeout=20)
    assert wait_until(lambda: sorted(_provisioned_by_node(nodes).values()) == [1, 1, 2], timeout=8)
    by_node = _provisioned_by_node(nodes)
    client = next(c for n, c in zip(nodes, clients) if by_node[n.endpoint] == 1)

    def invoke(delay: float) -> str:
        time.sleep(delay)  # each one routed after the one before has taken its environment
        out = client.invoke(FunctionName=fname, Qualifier=version, Payload=json.dumps({"sleep": 3}).encode())
        return json.loads(out["Payload"].read())

    with ThreadPoolExecutor(4) as pool:
        ran = list(pool.map(invoke, [0, 0.4, 0.8, 1.2]))
    assert ran == ["provisioned-concurrency"] * 4, ran
    for c in clients:
        c.close()


def test_provisioned_configs_put_at_once_on_two_nodes_stay_within_the_reservation(cluster, fname) -> None:
    """Two nodes put configs of 2 for two versions of a function reserving 3, at the same moment, many times: one
    is refused each time (the store decides over what both stored), never both stored."""
    nodes = cluster(2).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, INIT_TYPE)
    versions = []
    for memory in (128, 256):  # two versions (a publish of unchanged code and configuration gives the same one)
        clients[0].update_function_configuration(FunctionName=fname, MemorySize=memory)
        clients[0].get_waiter("function_updated_v2").wait(FunctionName=fname)
        versions.append(clients[0].publish_version(FunctionName=fname)["Version"])
    assert versions == ["1", "2"]
    clients[0].put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=3)
    assert wait_until(lambda: all(_reserved(c, fname) == 3 and _knows(c, f"{fname}:{versions[1]}")
                                  for c in clients), timeout=5)

    def put(i: int) -> str:
        try:
            clients[i].put_provisioned_concurrency_config(FunctionName=fname, Qualifier=versions[i],
                                                          ProvisionedConcurrentExecutions=2)
            return "stored"
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidParameterValueException", exc.response
            assert "ReservedConcurrentExecutions (3)" in exc.response["Error"]["Message"]
            return "refused"

    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(put, [0, 1]))
        assert outcomes == ["refused", "stored"], outcomes
        listed = [c for v in versions for c in
                  clients[0].list_provisioned_concurrency_configs(FunctionName=fname)["ProvisionedConcurrencyConfigs"]
                  if c["FunctionArn"].endswith(f":{v}")]
        assert len(listed) == 1
        for v in versions:  # start again from none
            clients[0].delete_provisioned_concurrency_config(FunctionName=fname, Qualifier=v)
        assert wait_until(lambda: all(not c.list_provisioned_concurrency_configs(FunctionName=fname)
                                      ["ProvisionedConcurrencyConfigs"] for c in clients), timeout=5)
    for client in clients:
        client.close()


def test_iam_holds_on_every_node(cluster, fname) -> None:
    """A user made and given a policy on one node is known with its policy on the others (its key too), a change
    reaches them, and an AssumeRole session made on one node is accepted by another."""
    import boto3
    from botocore.config import Config

    nodes = cluster(3).nodes
    iams = [n.client("iam") for n in nodes]
    iams[0].create_user(UserName="carol")
    iams[0].attach_user_policy(UserName="carol", PolicyArn="arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess")
    key = iams[1].create_access_key(UserName="carol")["AccessKey"]

    def as_carol(node, service="lambda", token=None, creds=key):
        client = boto3.client(service, endpoint_url=node.endpoint, region_name="us-east-1",
                              aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                              aws_session_token=token, config=Config(retries={"max_attempts": 0}))
        node._clients.append(client)
        return buffered(client)

    def can_list(node) -> bool:
        try:
            as_carol(node).list_functions()
            return True
        except ClientError:
            return False

    assert wait_until(lambda: all(can_list(n) for n in nodes), timeout=5)
    iams[2].detach_user_policy(UserName="carol", PolicyArn="arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess")
    assert wait_until(lambda: not any(can_list(n) for n in nodes), timeout=5)  # the change reached every node
    iams[0].create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::000000000000:user/carol"}}]}))
    iams[0].attach_role_policy(RoleName="reader", PolicyArn="arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess")
    assert wait_until(lambda: all(_role_known(i, "reader") for i in iams), timeout=5)
    session = as_carol(nodes[1], "sts").assume_role(RoleArn="arn:aws:iam::000000000000:role/reader",
                                                   RoleSessionName="s1")["Credentials"]
    on_other = as_carol(nodes[2], "sts", token=session["SessionToken"], creds=session)
    assert on_other.get_caller_identity()["Arn"] == "arn:aws:sts::000000000000:assumed-role/reader/s1"
    as_carol(nodes[0], token=session["SessionToken"], creds=session).list_functions()
    # a key deactivated on one node is refused by the others (they kept it in memory: the notice drops it)
    for node in nodes:
        as_carol(node, "sts").get_caller_identity()
    iams[0].update_access_key(UserName="carol", AccessKeyId=key["AccessKeyId"], Status="Inactive")

    def refused(node) -> bool:
        try:
            as_carol(node, "sts").get_caller_identity()
            return False
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "InvalidClientTokenId"

    assert wait_until(lambda: all(refused(n) for n in nodes), timeout=3)


def _role_known(iam, name: str) -> bool:
    try:
        return bool(iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
    except ClientError:
        return False


@pytest.fixture
def s3():
    """A bucket on a moto_server: (endpoint, bucket). Skipped where moto is not installed."""
    from tests.services import moto_s3

    try:
        with moto_s3() as found:
            yield found
    except FileNotFoundError:
        pytest.skip("needs moto_server (pip install 'moto[server]'; the test extra has it)")


def _s3_keys(endpoint: str, bucket: str) -> set[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    try:
        return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", ())}
    finally:
        client.close()


def _object_store_keys(cluster_name: str) -> set[str]:
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    async def read() -> set[str]:
        # each object's last meta record, subject by subject: nats-py's store.list() can wait forever while the
        # nodes' sweep deletes objects beside it (lambdad/cluster/blobs.py)
        client = await nats.connect(NATS, connect_timeout=2)
        try:
            js = client.jetstream()
            stream, names = f"OBJ_{cluster_name}_code", set()
            state = (await js.stream_info(stream, subjects_filter=f"$O.{cluster_name}_code.M.>")).state
            for subject in state.subjects or {}:
                try:
                    meta = json.loads((await js.get_last_msg(stream, subject)).data)
                except NotFoundError:
                    continue
                if not meta.get("deleted"):
                    names.add(meta["name"])
            return names
        finally:
            await client.close()

    return asyncio.run(asyncio.wait_for(read(), 10))


def test_code_blobs_in_an_s3_bucket_serve_every_node(cluster, s3, fname) -> None:
    """--blob-url s3://…: code uploaded on one node is stored in the bucket (through botocore and
    AWS_ENDPOINT_URL_S3), and another node with a data dir of its own fetches it from there to run it."""
    from tests.services import MOTO_ENV

    endpoint, bucket = s3
    nodes = cluster(2, {**MOTO_ENV, "AWS_ENDPOINT_URL_S3": endpoint, "LAMBDAD_BLOB_URL": f"s3://{bucket}/code"}).nodes
    clients = [n.client() for n in nodes]
    config = create_python_function(clients[0], fname, ECHO)
    keys = _s3_keys(endpoint, bucket)
    digest = base64.b64decode(config["CodeSha256"]).hex()
    assert keys == {f"code/{digest}.zip"}
    assert wait_until(lambda: _knows(clients[1], fname), timeout=5)
    out = clients[1].invoke(FunctionName=fname, Payload=b'{"from": 1}')
    assert json.loads(out["Payload"].read())["echo"] == {"from": 1}


def test_a_bad_blob_url_stops_the_start_with_the_reason(postgres_url, s3, tmp_path) -> None:
    """A blob URL that is not s3://BUCKET[/PREFIX] is a usage error; a bucket that cannot be reached stops the
    start with the reason, before anything is served."""
    import os

    from tests.services import MOTO_ENV

    endpoint, _bucket = s3
    env = {**os.environ, **MOTO_ENV, "AWS_ENDPOINT_URL_S3": endpoint, "LAMBDAD_DATABASE_URL": postgres_url}
    run = [sys.executable, "-m", "lambdad", "serve", "--port", "0", "--data-dir", str(tmp_path / "d")]
    bad = subprocess.run([*run, "--blob-url", "https://bucket/x"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "blob url must be s3://BUCKET[/PREFIX]" in bad.stderr
    missing = subprocess.run([*run, "--blob-url", "s3://no-such-bucket/code"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 1 and "the blob bucket 'no-such-bucket' cannot be reached" in missing.stderr


@pytest.mark.parametrize("where", ["object-store", "s3"])
def test_shared_code_nothing_references_is_swept_after_its_grace(cluster, request, where, fname) -> None:
    """Three functions, two of them on the same code. The one with code of its own is deleted: its shared blob
    stays while younger than the grace period (a node may be storing a function on it), then the node holding the
    lease blob-sweep deletes it; the blob the two others share stays."""
    from tests.services import MOTO_ENV

    env = {"LAMBDAD_BLOB_SWEEP_SECONDS": "0.5", "LAMBDAD_BLOB_GRACE_SECONDS": "4"}
    if where == "s3":
        endpoint, bucket = request.getfixturevalue("s3")
        env.update(MOTO_ENV, AWS_ENDPOINT_URL_S3=endpoint, LAMBDAD_BLOB_URL=f"s3://{bucket}")
        listed = lambda: {k.removesuffix(".zip") for k in _s3_keys(endpoint, bucket)}  # noqa: E731
    nodes = cluster(2, env).nodes
    if where == "object-store":
        name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
        listed = lambda: _object_store_keys(name)  # noqa: E731
    client = nodes[0].client()
    shared = ECHO
    own = ECHO + "\n# code of its own\n"

    def digest(config) -> str:
        return base64.b64decode(config["CodeSha256"]).hex()

    kept = digest(create_python_function(client, f"{fname}-a", shared))
    create_python_function(client, f"{fname}-b", shared)
    doomed = digest(create_python_function(client, f"{fname}-c", own))
    assert listed() == {kept, doomed}
    client.delete_function(FunctionName=f"{fname}-c")
    time.sleep(1.0)  # a few rounds of the sweep: within the grace period the blob stays
    assert doomed in listed()
    assert wait_until(lambda: doomed not in listed(), timeout=10)
    assert listed() == {kept}
    nodes[1].client().invoke(FunctionName=f"{fname}-b")  # the kept code still runs, on the other node too


def test_migrate_moves_code_into_an_s3_bucket(fresh_server, postgres_url, s3, tmp_path, fname) -> None:
    """lambdad migrate --blob-url: the code zips go to the cluster's bucket, and a node with a data dir of its own
    runs the function from there."""
    from tests.services import MOTO_ENV

    endpoint, bucket = s3
    embedded = fresh_server(data_dir=tmp_path / "data", credentials=False)
    config = configparser.ConfigParser()
    config.read(embedded.data_dir / "credentials")
    root = config["lambdad"]["aws_access_key_id"], config["lambdad"]["aws_secret_access_key"]
    create_python_function(embedded.client(access_key=root[0], secret_key=root[1]), fname, ECHO)
    embedded.stop()
    import os

    env = {**os.environ, **MOTO_ENV, "AWS_ENDPOINT_URL_S3": endpoint}
    moved = subprocess.run([sys.executable, "-m", "lambdad", "migrate", "--data-dir", str(embedded.data_dir),
                            "--database-url", postgres_url, "--blob-url", f"s3://{bucket}/code"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert moved.returncode == 0, moved.stderr
    assert "copied 1 code zips into the cluster's bucket" in moved.stdout
    node = fresh_server(data_dir=tmp_path / "node", credentials=False, env={
        **MOTO_ENV, "AWS_ENDPOINT_URL_S3": endpoint, "LAMBDAD_DATABASE_URL": postgres_url,
        "LAMBDAD_BLOB_URL": f"s3://{bucket}/code"})
    out = node.client(access_key=root[0], secret_key=root[1]).invoke(FunctionName=fname, Payload=b'{"s3": 1}')
    assert json.loads(out["Payload"].read())["echo"] == {"s3": 1}


def test_event_invoke_configs_hold_on_every_node(cluster, fname) -> None:
    """A config put on one node decides how often an event accepted by another runs (the JetStream queue asks the
    same rules as the embedded one)."""
    nodes = cluster(2, {"LAMBDAD_ASYNC_RETRY_DELAYS": "0.5,0.5"}).nodes
    clients = [n.client() for n in nodes]
    create_python_function(clients[0], fname, "def handler(event, context):\n    raise ValueError('always')\n")
    clients[0].put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1)
    assert wait_until(lambda: _event_config(clients[1], fname) == 1, timeout=5)
    clients[1].invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")
    url = nodes[0].extra_env["LAMBDAD_DATABASE_URL"]

    def runs() -> int:
        return lambdad("logs", fname, "--database-url", url).stdout.count("START RequestId")

    assert wait_until(lambda: runs() >= 2, timeout=20)
    time.sleep(2.0)  # a third run (the default of two retries) would have come by now
    assert runs() == 2


def _event_config(client, name: str) -> int | None:
    try:
        return client.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"]
    except ClientError:
        return None


def test_lambdad_queued_reads_a_clusters_stream(cluster, fname) -> None:
    nodes = cluster(1).nodes
    client = nodes[0].client()
    create_python_function(client, fname, "def handler(e, c):\n    return 1\n")
    client.put_function_concurrency(FunctionName=fname, ReservedConcurrentExecutions=0)
    for _ in range(3):
        client.invoke(FunctionName=fname, InvocationType="Event", Payload=b"{}")
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
    out = lambdad("queued", "--nats-url", NATS, "--cluster-name", name,
                  "--database-url", nodes[0].extra_env["LAMBDAD_DATABASE_URL"])
    assert out.returncode == 0, out.stderr
    assert f"{fname}\t3\t" in out.stdout


def test_destinations_work_across_a_cluster(cluster, fname) -> None:
    """An event accepted by one node, failing, ends on whichever node: its OnFailure record (published to the
    stream first, then sent) reaches the destination function, once, with Lambda's record."""
    nodes = cluster(2, {"LAMBDAD_ASYNC_RETRY_DELAYS": "0.3,0.3"}).nodes
    clients = [n.client() for n in nodes]
    arn = "arn:aws:lambda:us-east-1:000000000000:function"
    create_python_function(clients[0], fname, "def handler(event, context):\n    raise ValueError('no')\n")
    create_python_function(clients[0], f"{fname}-dest",
                           "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n")
    clients[0].put_function_event_invoke_config(FunctionName=fname, MaximumRetryAttempts=1, DestinationConfig={
        "OnFailure": {"Destination": f"{arn}:{fname}-dest"}})
    assert wait_until(lambda: _event_config(clients[1], fname) == 1, timeout=5)
    sent = clients[1].invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"x": 1}')
    url = nodes[0].extra_env["LAMBDAD_DATABASE_URL"]

    def records() -> list:
        out = lambdad("logs", f"{fname}-dest", "--database-url", url).stdout
        return [json.loads(line.split("RECORD ", 1)[1]) for line in out.splitlines() if "RECORD " in line]

    assert wait_until(lambda: records(), timeout=30)
    time.sleep(1.5)
    (record,) = records()
    assert record["requestContext"]["requestId"] == sent["ResponseMetadata"]["RequestId"]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2 and record["requestPayload"] == {"x": 1}


def test_the_logs_api_reads_what_any_node_wrote(cluster, fname) -> None:
    """CloudWatch Logs on a cluster: a function's lines written by one node, events put through another, read
    and filtered through a third; a retention policy set on one node deletes on whichever holds the lease."""
    nodes = cluster(2).nodes
    lam = nodes[0].client()
    create_python_function(lam, fname, "def handler(e, c):\n    print('ERROR from node a')\n")
    lam.invoke(FunctionName=fname)
    la, lb = nodes[0].client("logs"), nodes[1].client("logs")
    group = f"/aws/lambda/{fname}"
    from tests.test_logs_api import events_of

    assert wait_until(lambda: any(e["message"] == "ERROR from node a" for e in events_of(lb, group)), timeout=15)
    lb.create_log_stream(logGroupName=group, logStreamName="mine")
    now = int(time.time() * 1000)
    lb.put_log_events(logGroupName=group, logStreamName="mine", logEvents=[
        {"timestamp": now - 3 * 86_400_000, "message": "old"}, {"timestamp": now - 3 * 86_400_000 + 1,
                                                                 "message": "old too"}])
    lb.put_log_events(logGroupName=group, logStreamName="mine", logEvents=[{"timestamp": now, "message": "new"}])
    got = la.get_log_events(logGroupName=group, logStreamName="mine", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["old", "old too", "new"]
    la.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert wait_until(lambda: [e["message"] for e in lb.get_log_events(
        logGroupName=group, logStreamName="mine", startFromHead=True)["events"]] == ["new"], timeout=90)


def test_a_function_is_invoked_the_moment_it_is_made(cluster, fname) -> None:
    """An invocation forwarded to its home node before that node heard of the new function: the home reads it
    from the store instead of answering ResourceNotFoundException (half of these names have their home on the
    other node)."""
    nodes = cluster(2).nodes
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
    assert wait_until(lambda: sum(n.endpoint in lambdad("cluster", "status", "--nats-url", NATS, "--cluster-name",
                                                         name).stdout for n in nodes) == 2, timeout=10)
    time.sleep(2.5)  # a heartbeat more: the first node has seen the second too
    lam = nodes[0].client()
    for i in range(6):
        create_python_function(lam, f"{fname}-{i}", ECHO)
        out = lam.invoke(FunctionName=f"{fname}-{i}", Payload=b'{"i": 1}')
        assert json.loads(out["Payload"].read())["echo"] == {"i": 1}
