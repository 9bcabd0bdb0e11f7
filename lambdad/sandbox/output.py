"""A function's output, read into log lines: the read end of its stdout+stderr pipe, non-blocking.

Each line (up to its newline) is one log event of at most ``MAX_LOG_LINE`` bytes of UTF-8 (CloudWatch Logs'
largest event): a longer one is cut there, and the rest of it, up to its newline, is dropped. A reader reads
about ``READ_LIMIT`` bytes per wake-up, so that one flooding environment cannot hold the event loop; and while
the log writer is ``congested`` it stops reading until the writer has caught up, so that the function blocks on
its full pipe instead of the server holding what it prints (``logs/sink.py``).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from lambdad.sandbox.launcher import LaunchedProcess
    from lambdad.sandbox.spec import LogWriter

__all__ = ["MAX_LOG_LINE", "OutputReader", "READ_LIMIT", "log_text"]

MAX_LOG_LINE = 256 * 1024 - 26  # CloudWatch Logs' largest event (256 KB) less its 26 bytes of overhead
READ_LIMIT = 1 << 20  # bytes of a function's output read per wake-up of its reader


class OutputReader:
    """Reads ``proc.output_fd`` and calls ``on_line`` with each line; owns the descriptor (closed at EOF or by
    ``close``; ``proc.output_fd`` is -1 then)."""

    def __init__(self, proc: LaunchedProcess, writer: LogWriter, on_line: Callable[[str], None]) -> None:
        self._proc = proc
        self._writer = writer
        self._on_line = on_line
        self._partial = b""
        self._cut = False  # the line being read was cut at MAX_LOG_LINE: the rest of it, up to its newline, goes
        self._paused = False  # not reading while the log writer catches up

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self._proc.output_fd, self._on_readable)

    def _on_readable(self) -> None:
        self.drain(READ_LIMIT)
        fd = self._proc.output_fd
        if self._writer.congested and fd >= 0 and not self._paused:
            # the store is behind: stop reading until it catches up; the function blocks on its full pipe
            asyncio.get_running_loop().remove_reader(fd)
            self._paused = True
            self._writer.when_drained(self._resume)

    def _resume(self) -> None:
        self._paused = False
        if self._proc.output_fd >= 0:
            asyncio.get_running_loop().add_reader(self._proc.output_fd, self._on_readable)

    def drain(self, limit: int | None = None) -> None:
        """Read what is there into lines: all of it, or about ``limit`` bytes (then the reader is called again
        on the next loop iteration). At EOF the last, unfinished line is logged and the descriptor closed."""
        fd = self._proc.output_fd
        if fd < 0:
            return
        chunks = []
        eof = False
        budget = limit if limit is not None else -1
        while budget != 0:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            if budget > 0:
                budget = max(0, budget - len(chunk))
        if chunks:
            data = self._partial + b"".join(chunks)
            *lines, self._partial = data.split(b"\n")
            if lines and self._cut:
                del lines[0]  # the end of a line already logged, cut
                self._cut = False
            if self._cut:
                self._partial = b""  # still inside the cut line
            elif len(self._partial) > MAX_LOG_LINE:
                lines.append(self._partial)
                self._partial = b""
                self._cut = True
            for raw in lines:
                self._on_line(log_text(raw))
        if eof:
            if self._partial:
                self._on_line(log_text(self._partial))
                self._partial = b""
            self.close()

    def close(self) -> None:
        """Stop reading and close the descriptor (idempotent)."""
        fd = self._proc.output_fd
        if fd >= 0:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            self._proc.output_fd = -1


def log_text(raw: bytes) -> str:
    """A line of output as one log event: at most MAX_LOG_LINE bytes of UTF-8 (CloudWatch's event), cut on a
    character boundary. Bytes that are not UTF-8 become U+FFFD, three bytes each: counted after replacing, so a
    line of such bytes cannot make an event three times the limit."""
    text = raw[:MAX_LOG_LINE].decode("utf-8", "replace")
    if len(raw) > MAX_LOG_LINE // 3:
        encoded = text.encode("utf-8", "surrogatepass")
        if len(encoded) > MAX_LOG_LINE:
            text = encoded[:MAX_LOG_LINE].decode("utf-8", "ignore")
    return text
