"""Request and trace ids, as Lambda formats them.

Request ids are random (version 4) UUIDs as text. They name an invocation; they are not secrets (nothing is
granted by knowing one), so they come from a Mersenne Twister seeded from the OS (one ``getrandbits`` instead of
a ``getrandom`` system call, which costs a few microseconds on a VM) and are formatted straight from the bits,
without building a UUID object: ~0.6 µs instead of ~5 µs for ``str(uuid.uuid4())``, on every API request and
invocation.
"""

from __future__ import annotations

import logging
import os
import random
from contextvars import ContextVar

__all__ = ["CURRENT_REQUEST_ID", "RequestIdFilter", "new_trace_root", "random_bits", "random_hex", "request_id", "trace_header"]

# The request (or asynchronous invocation) being served: set where one starts (api/http.py per API request,
# invoke/async_queue.py per delivery attempt); every task started under it inherits it. Server log lines carry it.
CURRENT_REQUEST_ID: ContextVar[str] = ContextVar("lambdad_request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Gives each log record ``request_id``: the request being served when it was logged, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = CURRENT_REQUEST_ID.get()
        return True

_random = random.Random(os.urandom(32))
_getrandbits = _random.getrandbits
_VARIANT = "89ab89ab89ab89ab"  # the top two bits of byte 8 are 10: its first hex digit is 8, 9, a or b


def request_id() -> str:
    h = f"{_getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


def trace_header(epoch_seconds: float) -> str:
    """An X-Ray trace header for a new, unsampled trace: ``Root=1-<time>-<96 bits>;Parent=<64 bits>;Sampled=0``."""
    h = f"{_getrandbits(160):040x}"
    return f"Root=1-{int(epoch_seconds):08x}-{h[:24]};Parent={h[24:]};Sampled=0"


def new_trace_root(epoch_seconds: float) -> str:
    """A new X-Ray trace id (a header's Root): ``1-<time, 8 hex digits>-<96 bits>``."""
    return f"1-{int(epoch_seconds):08x}-{_getrandbits(96):024x}"


def random_bits(bits: int) -> int:
    """A random number of ``bits`` bits (a span id: 64), never 0 (an invalid id)."""
    return _getrandbits(bits) or 1


def random_hex(digits: int) -> str:
    """``digits`` random hex digits (an X-Ray Parent: 16)."""
    return f"{_getrandbits(digits * 4):0{digits}x}"


LINEAGE_HASH = "6c616d64"  # the hash part of the Lineage field lambdad writes ("lamd")


def lineage_of(trace: str | None) -> int:
    """How many invocations of a chain of asynchronous ones came before, as an X-Amzn-Trace-Id's ``Lineage=
    <hash>:<count>`` field says (0 without one): Lambda's recursive loop detection reads the same field."""
    if not trace or "Lineage=" not in trace:
        return 0
    count = trace.split("Lineage=", 1)[1].split(";", 1)[0].rpartition(":")[2]
    return int(count) if count.isdigit() else 0


def reseed() -> None:
    """A forked child must not share its parent's sequence."""
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=reseed)
