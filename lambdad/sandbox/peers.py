"""Who is on the other end of a loopback TCP connection: is it a process of this environment?

Environments share the host's network namespace (outbound network works as on Lambda), so any process on the
machine could connect to an environment's Runtime API port and take its invocations. The Runtime API therefore
accepts a connection only when the peer socket belongs to a process in the environment's cgroup: the peer's
address is looked up in /proc/net/tcp{,6} to find the socket's inode, and the inode among the file descriptors
of the environment's processes. Reads of procfs only; checked once per connection.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Iterable

__all__ = ["socket_inode", "owned_by"]


def _hex_address(host: str, port: int) -> tuple[str, str]:
    """The local_address column of /proc/net/tcp (v4) and tcp6 for ``host:port``."""
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host)
        v6 = "".join(f"{word:08X}" for word in struct.unpack("<4I", packed))
        return "", f"{v6}:{port:04X}"
    packed = socket.inet_aton(host)
    v4 = f"{struct.unpack('<I', packed)[0]:08X}:{port:04X}"
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:" + host)
    v6 = "".join(f"{word:08X}" for word in struct.unpack("<4I", mapped))
    return v4, f"{v6}:{port:04X}"


def socket_inode(host: str, port: int, server_host: str, server_port: int) -> int | None:
    """The inode of the socket at ``host:port`` connected to ``server_host:server_port`` (a live socket: entries
    in TIME_WAIT, which have no inode, may share the address)."""
    local4, local6 = _hex_address(host, port)
    remote4, remote6 = _hex_address(server_host, server_port)
    for table, local, remote in (("/proc/net/tcp", local4, remote4), ("/proc/net/tcp6", local6, remote6)):
        if not local:
            continue
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1] == local and fields[2] == remote and fields[9] != "0":
                        return int(fields[9])
        except OSError:
            continue
    return None


def owned_by(inode: int, pids: Iterable[int]) -> bool:
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(f"{fd_dir}/{name}") == target:
                    return True
            except OSError:
                continue
    return False
