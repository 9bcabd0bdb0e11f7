"""A hostile function on the network (issue 10, item 12). By default every environment has a network namespace of
its own: it reaches the outside world (here a test host in a network namespace of its own, routed through this
machine, standing in for the internet), and of this host only its Runtime API, this server's API and the host
services an operator allow-lists. The attacks: the host's loopback services (a cache with no password), the host's
other addresses, the gateway, another environment, the cloud metadata address, IPv6 link-local to the host.
On the old code (the host's network shared) the loopback service, the host's address and the metadata host answer."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.server import create_python_function

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces with a route out need root")

PROBE = """
import json, os, socket, time

def connect(host, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port) if family == socket.AF_INET else (host, port, 0, 0))
        s.sendall(b"ping\\n")
        return "open:" + s.recv(100).decode(errors="replace")
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()

def own_address():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.123", 9))  # no packet: only picks the route
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()

def handler(event, context):
    if event.get("listen"):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", event["listen"]))
        server.listen()
        globals()["kept"] = server  # kept open while the environment is warm
    time.sleep(event.get("sleep", 0))
    own = own_address()
    targets = {name: connect(*target) for name, target in event["targets"].items() if target[0] != own}
    with open("/proc/net/if_inet6") as f:
        ipv6 = f.read()
    return {"targets": targets, "ipv6": ipv6, "env": os.environ.get("AWS_ENDPOINT_URL_LAMBDA"), "own": own}
"""


class EchoServer:
    """A TCP server answering 'pong <name>' to every connection, in this process."""

    def __init__(self, host: str, name: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.name = name
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(f"pong {self.name}".encode())


@pytest.fixture(scope="module")
def outside():
    """A host 'on the internet': its own network namespace, a veth to this host, routed; it serves the same echo
    at 10.<r>.0.2 and at 169.254.169.254 (where a cloud serves instance credentials)."""
    tag = uuid.uuid4().hex[:6]
    ns, link = f"ldtest{tag}", f"xo{tag}"
    net = f"10.{200 - (int(tag, 16) % 50)}.77"
    setup = [
        f"ip netns add {ns}",
        f"ip link add {link} type veth peer name eth0 netns {ns}",
        f"ip addr add {net}.1/24 dev {link}",
        f"ip link set {link} up",
        f"ip -n {ns} addr add {net}.2/24 dev eth0",
        f"ip -n {ns} addr add 169.254.169.254/32 dev eth0",
        f"ip -n {ns} link set eth0 up",
        f"ip -n {ns} link set lo up",
        f"ip -n {ns} route add default via {net}.1",
    ]
    for command in setup:
        subprocess.run(command.split(), check=True)
    code = ("import socket,threading\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7777)); "
            "s.listen(16)\n"
            "while True:\n c,_=s.accept(); c.sendall(b'pong outside'); c.close()\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code])
    time.sleep(0.5)
    try:
        yield {"address": f"{net}.2", "gateway": f"{net}.1", "port": 7777}
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "link", "del", link], check=False, stderr=subprocess.DEVNULL)


def host_address() -> str:
    """This host's own address on its way out (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the route
        return s.getsockname()[0]


def invoke(client, name: str, event: dict) -> dict:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_a_function_reaches_the_world_and_nothing_of_the_host(fresh_server, fname, outside):
    loopback = EchoServer("127.0.0.1", "loopback")  # a cache with no password, on the host's loopback
    anywhere = EchoServer("0.0.0.0", "host")  # a host service on every address
    allowed = EchoServer("127.0.0.1", "allowed")  # one the operator shows the functions
    srv = fresh_server(env={"LAMBDAD_FUNCTION_HOST_SERVICES": f"15432=127.0.0.1:{allowed.port}"})
    lam = srv.client()
    create_python_function(lam, fname, PROBE, Timeout=30)
    targets = {
        "outside": [outside["address"], outside["port"]],
        "metadata": ["169.254.169.254", outside["port"]],
        "host_loopback": ["127.0.0.1", loopback.port],
        "host_address": [host_address(), anywhere.port],
        "host_other_address": [outside["gateway"], anywhere.port],
        "allowed": ["127.0.0.1", 15432],
        "allowed_direct": ["127.0.0.1", allowed.port],
        "server_api_on_host": ["127.0.0.1", srv.port],
    }
    result = invoke(lam, fname, {"targets": targets})
    got = result["targets"]
    assert got["outside"] == "open:pong outside"
    assert got["allowed"] == "open:pong allowed"
    for name in ("metadata", "host_loopback", "host_address", "host_other_address", "allowed_direct",
                 "server_api_on_host"):
        assert not got[name].startswith("open"), (name, got)
    assert got["host_address"] in ("OSError", "ConnectionRefusedError")  # refused at once, not a timeout
    assert result["ipv6"] == ""  # no IPv6 address at all: no link-local way to the host
    assert result["env"] == "http://127.0.0.1:9000"


def test_environments_cannot_reach_each_other(fresh_server, fname):
    srv = fresh_server()
    lam = srv.client()
    create_python_function(lam, fname, PROBE, Timeout=60)
    # the first environment listens on every address of its own namespace and stays warm while a second one,
    # started by a concurrent invoke, tries to reach it at every address environments of this server can have
    first = invoke(lam, fname, {"listen": 8080, "targets": {}})
    assert first["targets"] == {}
    block = ipaddress.IPv4Network(f"{first['own']}/21", strict=False)  # this server's (other servers' may go)
    addresses = [a for a in _environment_addresses() if ipaddress.IPv4Address(a) in block]
    assert addresses, "no environment address found on the host"
    targets = {a: [a, 8080] for a in addresses}
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(invoke(lam, fname, {"targets": targets, "sleep": 1})))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    owners = {result["own"] for result in results}
    assert len(owners | {first["own"]}) >= 2, "the invokes all ran in one environment"
    for result in results:
        assert result["targets"], result  # it tried at least the first environment's address
        assert not any(v.startswith("open") for v in result["targets"].values()), result


def _environment_addresses() -> list[str]:
    """The environments' addresses: each host end ``lmd…`` holds the even address of a /31, the environment the
    odd one."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if parts[1].startswith("lmd"):
            gateway = parts[3].split("/")[0]
            a, b, c, d = map(int, gateway.split("."))
            found.append(f"{a}.{b}.{c}.{d + 1}")
    return found


def test_host_mode_keeps_the_hosts_network(fresh_server, fname):
    loopback = EchoServer("127.0.0.1", "loopback")
    srv = fresh_server(env={"LAMBDAD_FUNCTION_NETWORK": "host"})
    lam = srv.client()
    create_python_function(lam, fname, PROBE)
    result = invoke(lam, fname, {"targets": {"host_loopback": ["127.0.0.1", loopback.port]}})
    assert result["targets"]["host_loopback"] == "open:pong loopback"


def test_bad_host_services_are_refused_at_start(tmp_path):
    from lambdad.config import Settings

    for bad in ("9001=127.0.0.1:80", "nope", "70000", "5432,5432"):
        with pytest.raises(ValueError):
            Settings.load(environ={"LAMBDAD_FUNCTION_HOST_SERVICES": bad, "LAMBDAD_DATA_DIR": str(tmp_path)}).validate()


def test_a_subnet_that_overlaps_the_hosts_stops_the_start(tmp_path):
    """As root, a function network that cannot be made stops the start with the reason: never a quiet fallback
    to the host's network."""
    from tests.server import Server

    overlapping = str(ipaddress.IPv4Network(f"{host_address()}/16", strict=False))
    srv = Server(tmp_path / "data", env={"LAMBDAD_FUNCTION_SUBNET": overlapping})
    with pytest.raises(RuntimeError) as failed:
        srv.start()
    assert f"LAMBDAD_FUNCTION_SUBNET {overlapping} overlaps" in str(failed.value)
    assert "LAMBDAD_FUNCTION_NETWORK=host" in str(failed.value)
