"""moto_server with one fix for the tests: an SQS ReceiveMessage that is atomic, as SQS's is.

moto's ``receive_message`` checks that a message is visible and then marks it received without a lock, so two
ReceiveMessage calls served at the same moment (moto_server serves each request in a thread of its own) can both
return the same message, each with a receipt handle of its own. An event source mapping polls with several
concurrent ReceiveMessage calls, as Lambda's pollers do, and ``test_every_message_once_in_batches`` once saw a
message in two batches that way, ApproximateReceiveCount 2 in both. Here each pass over a queue's messages runs
under one lock, and a long poll (WaitTimeSeconds) waits between passes, outside it.

    python tests/atomic_moto.py [moto_server's arguments]
"""

from __future__ import annotations

import inspect
import threading
import time

from moto.server import main
from moto.sqs.models import SQSBackend

_receive = SQSBackend.receive_message
_signature = inspect.signature(_receive)
_lock = threading.Lock()


def _atomic_receive(self: SQSBackend, *args: object, **kwargs: object) -> list:
    call = _signature.bind(self, *args, **kwargs)
    wait = float(call.arguments.get("wait_seconds_timeout") or 0)
    call.arguments["wait_seconds_timeout"] = 0  # one pass over the messages, no waiting inside
    deadline = time.monotonic() + wait
    while True:
        with _lock:
            messages = _receive(*call.args, **call.kwargs)
        left = deadline - time.monotonic()
        if messages or left <= 0:
            return messages
        self.get_queue(call.arguments["queue_name"]).wait_for_messages(min(1.0, left))


SQSBackend.receive_message = _atomic_receive  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
