"""A network namespace per execution environment: the outside world, and of the host only what it is given.

``LAMBDAD_FUNCTION_NETWORK=isolated`` (the default where the jail runs as root). Each environment joins a network
namespace made here, ahead of time (a small pool, so that a cold start does not wait for one):

- ``lo``, up, holding the environment's own endpoints, listening sockets the server opened inside and serves:
  the Runtime API at 127.0.0.1:9001 (as on Lambda), this server's API at 127.0.0.1:9000 (the function's
  ``AWS_ENDPOINT_URL_LAMBDA``), and one relay per allow-listed host service (``LAMBDAD_FUNCTION_HOST_SERVICES``,
  the self-hosted analogue of a VPC: ``127.0.0.1:5432`` inside reaches the host's 127.0.0.1:5432);
- ``eth0``, one end of a veth pair whose other end (``lmd<block><n>``) stays on the host, a /31 of the server's
  address block each; the default route goes through the host, which masquerades it out to the world.

Nothing else of the host is reachable. The server's nftables table (``inet lambdad_<block>``, made at start,
deleted at stop) refuses every packet from its environments addressed to the host itself (any of its addresses,
any port), every packet from one environment to another (of any server on the host), and packets to the blocked
networks (``LAMBDAD_FUNCTION_BLOCKED_NETWORKS``, by default the link-local 169.254.0.0/16 where clouds serve
instance credentials) — refused with ICMP administratively prohibited, so a connect fails at once; packets to an
environment that are not replies are dropped. IPv6 is disabled on both
ends of every pair (no link-local way to the host). The host's loopback is another namespace's, out of reach.

Forwarding: IPv4 forwarding must be on for the environments' traffic to leave. Where it was off, it is turned
on (as Docker does) and a table ``inet lambdad_forward`` drops every forwarded packet that neither comes from
nor goes to an environment, so the host does not start routing anything else. A marker under /run/lambdad/net
records that lambdad turned it on; it is left on at stop (other servers may be running).

Address blocks: the subnet (``LAMBDAD_FUNCTION_SUBNET``, 10.201.0.0/16) is cut into /21 blocks, one per running
server, leased with an flock on /run/lambdad/net/block-<n>.lock (released by the kernel if the server dies, and
a new server of the block first removes what a dead one left). A block holds 1,024 environments.

Threads: unshare and setns of the network namespace apply to the calling thread only, so every namespace is made
on one worker thread of its own, which always returns to the host's namespace before it takes the next job."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import fcntl
import ipaddress
import logging
import os
import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from lambdad.errors import LambdadError

log = logging.getLogger(__name__)

RUNTIME_API_ADDRESS = ("127.0.0.1", 9001)  # inside: where the runtime and extensions find the Runtime API
PLATFORM_API_ADDRESS = ("127.0.0.1", 9000)  # inside: this server's API (AWS_ENDPOINT_URL_LAMBDA)
RESERVED_PORTS = frozenset({RUNTIME_API_ADDRESS[1], PLATFORM_API_ADDRESS[1]})
BLOCK_PREFIX = 21  # one block per server: 2,048 addresses, a /31 per environment
IFNAME_PREFIX = "lmd"  # host ends of the veth pairs: lmd<block, 2 hex digits><pair, 3 hex digits>
LEASE_DIR = "/run/lambdad/net"
POOL_SIZE = 4  # namespaces kept ready
RELAY_CHUNK = 65536

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetworkError(LambdadError):
    """The per-environment network cannot be set up (or a namespace cannot be made)."""


@dataclass(frozen=True)
class HostService:
    """A host service shown inside every environment: ``127.0.0.1:<inside_port>`` there reaches ``host:port``."""

    inside_port: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.inside_port}={self.host}:{self.port}"


def parse_host_services(text: str) -> tuple[HostService, ...]:
    """``LAMBDAD_FUNCTION_HOST_SERVICES``: comma-separated ``port`` (127.0.0.1:port), ``host:port`` or
    ``inside_port=host:port``."""
    services: list[HostService] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        inside, _, target = item.rpartition("=")
        host, _, port = target.rpartition(":")
        try:
            port_number = int(port)
            inside_port = int(inside) if inside else port_number
        except ValueError:
            raise ValueError(f"host service {item!r}: expected port, host:port or inside_port=host:port") from None
        for number in (port_number, inside_port):
            if not 0 < number < 65536:
                raise ValueError(f"host service {item!r}: {number} is not a port")
        if inside_port in RESERVED_PORTS:
            raise ValueError(f"host service {item!r}: port {inside_port} is taken inside the environment "
                             f"(the Runtime API and this server's API)")
        if any(s.inside_port == inside_port for s in services):
            raise ValueError(f"host service {item!r}: port {inside_port} is given twice")
        services.append(HostService(inside_port, host.strip("[]") or "127.0.0.1", port_number))
    return tuple(services)


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network, ...]:
    try:
        return tuple(ipaddress.IPv4Network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"blocked networks: {exc}") from None


# -- nftables expressions (nft's own encoding, as ``nft`` would send it) -------------------------------------------

NFT_META_IIFNAME, NFT_META_OIFNAME = 6, 7
NFT_CT_STATE = 0
CT_ESTABLISHED_OR_RELATED = 2 | 4
CMP_EQ, CMP_NEQ = 0, 1
NF_DROP, NF_ACCEPT = 0, 1
NFPROTO_INET = 1


def _expr(name: str, **attrs: Any) -> dict[str, Any]:
    data = [(f"NFTA_{name.upper()}_{key.upper()}", value) for key, value in attrs.items()]
    return {"attrs": [("NFTA_EXPR_NAME", name), ("NFTA_EXPR_DATA", {"attrs": data})]}


def _value(data: bytes) -> dict[str, Any]:
    return {"attrs": [("NFTA_DATA_VALUE", data)]}


def _ifname(which: int, prefix: str, op: int = CMP_EQ) -> list[dict[str, Any]]:
    """``iifname "<prefix>*"`` (or oifname; ``!=`` with ``op``): the first bytes of the name, as nft compiles it."""
    return [_expr("meta", key=which, dreg=1), _expr("cmp", sreg=1, op=op, data=_value(prefix.encode()))]


def _daddr_in(network: ipaddress.IPv4Network) -> list[dict[str, Any]]:
    load = OrderedDict(dreg=1, base=1, offset=16, len=4)  # the network header's destination address
    return [_expr("payload", **load),
            _expr("bitwise", sreg=1, dreg=1, len=4, mask=_value(network.netmask.packed), xor=_value(bytes(4))),
            _expr("cmp", sreg=1, op=CMP_EQ, data=_value(network.network_address.packed))]


def _ipv4() -> list[dict[str, Any]]:
    return [_expr("meta", key=15, dreg=1), _expr("cmp", sreg=1, op=CMP_EQ, data=_value(bytes([socket.AF_INET])))]


def _ct_established() -> list[dict[str, Any]]:
    return [_expr("ct", key=NFT_CT_STATE, dreg=1),
            _expr("bitwise", sreg=1, dreg=1, len=4, mask=_value(struct.pack("=I", CT_ESTABLISHED_OR_RELATED)),
                  xor=_value(bytes(4))),
            _expr("cmp", sreg=1, op=CMP_NEQ, data=_value(bytes(4)))]


def _verdict(code: int) -> list[dict[str, Any]]:
    return [_expr("immediate", dreg=0, data={"attrs": [("NFTA_DATA_VERDICT", {"attrs": [("NFTA_VERDICT_CODE", code)]})]})]


def _reject() -> list[dict[str, Any]]:
    """Refused at once (ICMP administratively prohibited: the caller's connect fails with EHOSTUNREACH) rather
    than dropped, so that a function's attempt fails fast instead of waiting out its timeout."""
    return [_expr("reject", type=2, icmp_code=3)]


def _masquerade() -> list[dict[str, Any]]:
    return [_expr("masq")]


# -- the namespaces -----------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Namespace:
    """One environment's network namespace, ready to join: ``fd`` for setns, and the listeners opened inside."""

    index: int
    fd: int
    host_ifname: str
    address: str  # eth0's, inside
    runtime_api: socket.socket
    platform_api: socket.socket
    relays: list[tuple[socket.socket, HostService]] = field(default_factory=list)
    _network: "FunctionNetwork | None" = None

    def socket_inside(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket of this namespace (to reach a listener on its loopback: the Telemetry API's destinations).
        setns of the network namespace is per thread; the calling thread is back in its own before this returns."""
        assert self._network is not None
        return self._network.socket_in(self.fd, family, kind)

    def close(self) -> None:
        """Give the namespace up: the listeners closed here; its veth pair goes on the worker thread, and the
        namespace itself with the last process in it."""
        for sock in (self.runtime_api, self.platform_api, *(s for s, _ in self.relays)):
            sock.close()
        self.relays = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        network, self._network = self._network, None
        if network is not None:
            network.release(self)


class FunctionNetwork:
    """The server's network for its environments: a leased address block, its nftables table, and a pool of
    ready namespaces. ``open`` (blocking) sets it up or raises NetworkError; ``take`` gives a namespace."""

    def __init__(self, subnet: str = "10.201.0.0/16", host_services: tuple[HostService, ...] = (),
                 blocked: tuple[ipaddress.IPv4Network, ...] = (ipaddress.IPv4Network("169.254.0.0/16"),),
                 pool_size: int = POOL_SIZE) -> None:
        self.subnet = ipaddress.IPv4Network(subnet)
        if self.subnet.prefixlen > BLOCK_PREFIX:
            raise ValueError(f"function subnet {subnet}: /{BLOCK_PREFIX} or larger is needed")
        self.host_services = host_services
        self.blocked = blocked
        self.pool_size = pool_size
        self.block = -1
        self._block_net: ipaddress.IPv4Network | None = None
        self._lease_fd = -1
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lambdad-netns")
        self._host_ns = -1
        self._ipr: Any = None  # pyroute2 IPRoute on the worker, in the host's namespace
        self._free: list[int] = []
        self._next = 0
        self._ready: list[Namespace] = []
        self._refilling: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def prefix(self) -> str:
        return f"{IFNAME_PREFIX}{self.block:02x}"

    @property
    def table(self) -> str:
        return f"lambdad_{self.block}"

    # -- set up and tear down (blocking: call in a thread) ---------------------------------------------------

    def open(self) -> None:
        try:
            self._worker.submit(self._open).result()
        except NetworkError:
            self.close()
            raise
        except Exception as exc:  # netlink's errors included
            self.close()
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc

    def _open(self) -> None:
        from pyroute2 import IPRoute

        self._host_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._ipr = IPRoute()
        self._check_overlap()
        self._lease()
        self._remove_links()
        self._enable_forwarding()
        self._install_table()

    def _check_overlap(self) -> None:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") or "" for link in self._ipr.get_links()}
        for route in self._ipr.get_routes(family=socket.AF_INET):
            dst = route.get_attr("RTA_DST")
            if dst is None:
                continue
            oif = route.get_attr("RTA_OIF")
            if oif not in names or names[oif].startswith(IFNAME_PREFIX):
                continue  # an environment's (of another server), or a link gone since the listing
            network = ipaddress.IPv4Network(f"{dst}/{route['dst_len']}", strict=False)
            if network.overlaps(self.subnet) and route["dst_len"] > 0:
                raise NetworkError(f"LAMBDAD_FUNCTION_SUBNET {self.subnet} overlaps {network}, a network of this "
                                   f"host: choose another")

    def _lease(self) -> None:
        os.makedirs(LEASE_DIR, mode=0o700, exist_ok=True)
        for block, network in enumerate(self.subnet.subnets(new_prefix=BLOCK_PREFIX)):
            if block > 0xFF:
                break
            fd = os.open(os.path.join(LEASE_DIR, f"block-{network.network_address}.lock"),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.block, self._block_net, self._lease_fd = block, network, fd
            return
        raise NetworkError(f"every address block of {self.subnet} is taken by another running server")

    def _remove_links(self) -> None:
        """What a dead server of this block left (the kernel removes a pair with its namespace; this is for
        namespaces some straggler still holds)."""
        for link in self._ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(self.prefix):
                with contextlib.suppress(Exception):
                    self._ipr.link("del", index=link["index"])

    def _enable_forwarding(self) -> None:
        path = "/proc/sys/net/ipv4/ip_forward"
        with open(path) as f:
            on = f.read().strip() == "1"
        marker = os.path.join(LEASE_DIR, "forwarding-enabled")
        if not on:
            with open(marker, "w"):
                pass
            with open(path, "w") as f:
                f.write("1")
        if os.path.exists(marker):
            self._forward_guard()

    def _forward_guard(self) -> None:
        """With forwarding turned on by us: forward nothing that is not an environment's."""
        lock = os.open(os.path.join(LEASE_DIR, "forward.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # servers starting together make it once
            self._make_forward_guard()
        finally:
            os.close(lock)

    def _make_forward_guard(self) -> None:
        with _nftables() as nft:
            if _has_table(nft, "lambdad_forward"):
                return
            nft.table("add", name="lambdad_forward")
            nft.chain("add", table="lambdad_forward", name="forward", hook="forward", type="filter", priority=-10,
                      policy=NF_ACCEPT)
            nft.rule("add", table="lambdad_forward", chain="forward", expressions=(
                _ifname(NFT_META_IIFNAME, IFNAME_PREFIX, CMP_NEQ), _ifname(NFT_META_OIFNAME, IFNAME_PREFIX, CMP_NEQ),
                _verdict(NF_DROP)))

    def _install_table(self) -> None:
        ours = self.prefix
        with _nftables() as nft:
            if _has_table(nft, self.table):
                nft.table("del", name=self.table)
            nft.table("add", name=self.table)
            for name, hook, kind, priority in (("input", "input", "filter", -10), ("forward", "forward", "filter", -10),
                                               ("postrouting", "postrouting", "nat", 100)):
                nft.chain("add", table=self.table, name=name, hook=hook, type=kind, priority=priority,
                          policy=NF_ACCEPT)
            rules: list[tuple[str, tuple[list[dict[str, Any]], ...]]] = [
                ("input", (_ifname(NFT_META_IIFNAME, ours), _reject())),  # to the host itself: nothing
                ("forward", (_ifname(NFT_META_IIFNAME, ours), _ifname(NFT_META_OIFNAME, IFNAME_PREFIX),
                             _reject())),  # to another environment
                *(("forward", (_ifname(NFT_META_IIFNAME, ours), _ipv4(), _daddr_in(network), _reject()))
                  for network in self.blocked),
                ("forward", (_ifname(NFT_META_OIFNAME, ours), _ct_established(), _verdict(NF_ACCEPT))),
                ("forward", (_ifname(NFT_META_OIFNAME, ours), _verdict(NF_DROP))),  # into one, unasked
                ("postrouting", (_ifname(NFT_META_IIFNAME, ours), _masquerade())),
            ]
            for chain, expressions in rules:
                nft.rule("add", table=self.table, chain=chain, expressions=expressions)

    def close(self) -> None:
        """Tear down: the waiting namespaces, the table, the pairs, the lease. Idempotent, blocking."""
        self._closed = True
        for ns in self._ready:
            ns.close()
        self._ready.clear()
        with contextlib.suppress(RuntimeError):  # the worker already shut down
            self._worker.submit(self._close).result()
        self._worker.shutdown(wait=True)

    def _close(self) -> None:
        if self.block >= 0 and self._ipr is not None:
            with contextlib.suppress(Exception), _nftables() as nft:
                nft.table("del", name=self.table)
            with contextlib.suppress(Exception):
                self._remove_links()
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
        if self._lease_fd >= 0:
            os.close(self._lease_fd)  # the flock goes with it
            self._lease_fd = -1
        if self._host_ns >= 0:
            os.close(self._host_ns)
            self._host_ns = -1

    # -- namespaces -------------------------------------------------------------------------------------------

    async def take(self) -> Namespace:
        """A ready namespace (from the pool, or made now: ~5 ms); the pool is refilled in the background."""
        if self._closed:
            raise NetworkError("the function network is closed")
        if self._ready:
            ns = self._ready.pop()
        else:
            ns = await asyncio.wrap_future(self._worker.submit(self._make))
        self._refill()
        return ns

    def _refill(self) -> None:
        if self._refilling is None or self._refilling.done():
            self._refilling = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while not self._closed and len(self._ready) < self.pool_size:
            try:
                ns = await asyncio.wrap_future(self._worker.submit(self._make))
            except (NetworkError, RuntimeError) as exc:
                log.warning("function network: could not make a namespace ahead: %s", exc)
                return
            if self._closed:
                ns.close()
                return
            self._ready.append(ns)

    def start(self) -> None:
        """Fill the pool (on the running loop, in the background)."""
        self._refill()

    async def aclose(self) -> None:
        if self._refilling is not None:
            self._refilling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refilling
        await asyncio.to_thread(self.close)

    def release(self, ns: Namespace) -> None:
        """The namespace's pair goes now (its address and name free for the next)."""
        with contextlib.suppress(RuntimeError):  # the worker is shut down: close() removed every pair
            self._worker.submit(self._remove_pair, ns.index, ns.host_ifname)

    def _remove_pair(self, index: int, ifname: str) -> None:
        if self._ipr is not None:
            found = self._ipr.link_lookup(ifname=ifname)
            if found:
                with contextlib.suppress(Exception):
                    self._ipr.link("del", index=found[0])
        self._free.append(index)

    def _index(self) -> int:
        if self._free:
            return self._free.pop()
        assert self._block_net is not None
        if self._next >= self._block_net.num_addresses // 2:
            raise NetworkError(f"all {self._block_net.num_addresses // 2} environment addresses of "
                               f"{self._block_net} are in use")
        self._next += 1
        return self._next - 1

    def _make(self) -> Namespace:
        """On the worker: a new namespace with lo, its listeners, and eth0 routed through the host."""
        from pyroute2 import IPRoute

        assert self._block_net is not None
        index = self._index()
        gateway = str(self._block_net.network_address + 2 * index)
        address = str(self._block_net.network_address + 2 * index + 1)
        host_ifname = f"{self.prefix}{index:03x}"
        sockets: list[socket.socket] = []
        fd = -1
        inner = None
        try:
            with self._inside_new() as fd:
                _write_sysctl("ipv6/conf/all/disable_ipv6", "1")
                _write_sysctl("ipv6/conf/default/disable_ipv6", "1")
                inner = IPRoute()
                inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")
                runtime_api = _listen(RUNTIME_API_ADDRESS, sockets)
                platform_api = _listen(PLATFORM_API_ADDRESS, sockets)
                relays = [(_listen(("127.0.0.1", s.inside_port), sockets), s) for s in self.host_services]
            self._ipr.link("add", ifname=host_ifname, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
            host_index = self._ipr.link_lookup(ifname=host_ifname)[0]
            _write_sysctl(f"ipv6/conf/{host_ifname}/disable_ipv6", "1")
            self._ipr.addr("add", index=host_index, address=gateway, prefixlen=31)
            self._ipr.link("set", index=host_index, state="up")
            eth0 = inner.link_lookup(ifname="eth0")[0]
            inner.addr("add", index=eth0, address=address, prefixlen=31)
            inner.link("set", index=eth0, state="up")
            inner.route("add", dst="0.0.0.0/0", gateway=gateway)
        except BaseException as exc:
            for sock in sockets:
                sock.close()
            if fd >= 0:
                os.close(fd)
            self._remove_pair(index, host_ifname)
            if isinstance(exc, (OSError, ValueError)) or type(exc).__module__.startswith("pyroute2"):
                raise NetworkError(f"could not make a network namespace: {type(exc).__name__}: {exc}") from exc
            raise
        finally:
            if inner is not None:
                inner.close()
        return Namespace(index, fd, host_ifname, address, runtime_api, platform_api, relays, self)

    @contextlib.contextmanager
    def _inside_new(self) -> Iterator[int]:
        """Run the block in a new network namespace (this thread only); yields its fd, kept open for the caller."""
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        try:
            yield os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            self._back_home()

    def _back_home(self) -> None:
        if _libc.setns(self._host_ns, CLONE_NEWNET) != 0:  # never happens to root with a valid fd
            raise SystemExit(f"lambdad: cannot return to the host's network namespace: errno {ctypes.get_errno()}")

    def socket_in(self, ns_fd: int, family: int, kind: int) -> socket.socket:
        """A socket of the namespace ``ns_fd``, made on the calling thread (setns there, and back)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(ns_fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the environment's network namespace")
            try:
                return socket.socket(family, kind)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise SystemExit("lambdad: cannot return to the host's network namespace")
        finally:
            os.close(own)


@contextlib.contextmanager
def _nftables() -> Iterator[Any]:
    """A netlink socket to nftables (family inet), closed after the block."""
    from pyroute2.nftables.main import NFTables

    with contextlib.closing(NFTables(nfgen_family=NFPROTO_INET)) as nft:
        yield nft


def _has_table(nft: Any, name: str) -> bool:
    return any(t.get_attr("NFTA_TABLE_NAME") == name for t in nft.get_tables())


def _listen(address: tuple[str, int], sockets: list[socket.socket]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sockets.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _write_sysctl(name: str, value: str) -> None:
    """/proc/sys/net of the calling thread's network namespace."""
    with open(f"/proc/sys/net/{name}", "w") as f:
        f.write(value)


def available() -> str | None:
    """Why per-environment network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root (a network namespace with a route out needs CAP_NET_ADMIN on the host)"
    try:
        import pyroute2  # noqa: F401
    except ImportError as exc:
        return f"pyroute2 is missing ({exc})"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "no network namespaces in this kernel"
    return None


def loopback_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The name servers of ``path`` on the host's loopback (out of reach from an environment's namespace)."""
    found = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    with contextlib.suppress(ValueError):
                        if ipaddress.ip_address(parts[1].split("%")[0]).is_loopback:
                            found.append(parts[1])
    except OSError:
        pass
    return found


# -- relays: allow-listed host services ---------------------------------------------------------------------------


async def serve_relays(ns: Namespace) -> list[asyncio.AbstractServer]:
    """Serve each of ``ns``'s relay listeners: a connection inside is joined to a new one to the host service."""
    servers: list[asyncio.AbstractServer] = []
    for listener, service in ns.relays:
        servers.append(await asyncio.start_server(_relay_handler(service), sock=listener))
    return servers


def _relay_handler(service: HostService) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(service.host, service.port), 10)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()

    return handle


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(RELAY_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.IncompleteReadError):
        writer.close()
