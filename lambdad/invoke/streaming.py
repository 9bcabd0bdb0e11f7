"""Streamed invocations: what InvokeWithResponseStream runs, and what function URLs in RESPONSE_STREAM mode call.

    streamed = await start_streamed(invoker, config, payload, request_id=..., invoked_arn=...)
        # raises the AWS errors of an invocation that cannot start (throttled, no such runtime...) before anything
        # is answered; returns once the function began to stream or finished
    streamed.content_type        the response's content type (the runtime's; application/json for a buffered answer)
    streamed.executed_version
    async for data in streamed.chunks(): ...   the body as the function writes it (a buffered answer: whole)
    outcome = await streamed.outcome()         the InvokeOutcome: function_error set when the function failed,
                                               before or mid-stream (its payload then the error's JSON)

    metadata, body = await read_http_prelude(streamed)
        # for a function URL: with the content type application/vnd.awslambda.http-integration-response (what
        # awslambda.HttpResponseStream.from sends), the metadata JSON before the 8 null bytes ({"statusCode",
        # "headers", "cookies"}) and an iterator of the body after them; otherwise (None, the whole body)

The function keeps running when its reader goes away (as on Lambda: the invocation runs to its end); its
environment is held until then. A streamed invocation runs on the node that received it (cluster mode).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, AsyncGenerator, AsyncIterator

from lambdad.functions.model import FunctionConfig
from lambdad.invoke.service import InvokeOutcome, Invoker
from lambdad.sandbox.response_stream import STREAM_LIMIT_BYTES, ResponseStream

__all__ = ["StreamedInvocation", "start_streamed", "read_http_prelude", "PreludeError",
           "HTTP_INTEGRATION_CONTENT_TYPE"]

log = logging.getLogger(__name__)

HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
BUFFERED_CONTENT_TYPE = "application/json"
STREAM_CONTENT_TYPE = "application/octet-stream"  # a stream whose runtime named no type (as AWS's runtime client)
_DELIMITER = b"\0" * 8
_MAX_PRELUDE = 16 * 1024  # the metadata must come within the first 16 KB (as API Gateway requires)


class PreludeError(ValueError):
    """A response of the HTTP integration type whose metadata prelude is missing, too long or not a JSON object."""


@dataclass
class StreamedInvocation:
    executed_version: str
    stream: ResponseStream
    running: "asyncio.Task[InvokeOutcome]"

    @property
    def streamed(self) -> bool:
        """The function streamed its answer (else it answered buffered, or failed before it wrote)."""
        return self.stream.opened

    @property
    def content_type(self) -> str:
        if self.stream.opened:
            return self.stream.content_type or STREAM_CONTENT_TYPE
        return BUFFERED_CONTENT_TYPE

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body, each piece as the runtime sent it (a buffered answer as one piece); nothing of an error."""
        try:
            async for data in self.stream.chunks():
                yield data
            outcome = await self.running
        finally:
            if not self.running.done():  # the reader went away: the invocation goes on, its outcome unread
                self.stream.abandon()
                self.running.add_done_callback(_drop_outcome)
        if not self.stream.opened and not outcome.result.function_error and outcome.result.payload:
            yield outcome.result.payload

    async def outcome(self) -> InvokeOutcome:
        return await self.running


def _drop_outcome(task: "asyncio.Task[InvokeOutcome]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a streamed invocation whose reader went away failed: %s", task.exception())


async def start_streamed(invoker: Invoker, config: FunctionConfig, payload: bytes, *, request_id: str,
                         invoked_arn: str | None = None, client_context: str | None = None,
                         want_log: bool = False, lineage: int = 0,
                         limit: int = STREAM_LIMIT_BYTES) -> StreamedInvocation:
    """Start one invocation whose answer is read as it is written (see the module's docstring)."""
    stream = ResponseStream(limit)
    running = asyncio.get_running_loop().create_task(invoker.invoke(
        config, payload, request_id=request_id, client_context=client_context, invoked_arn=invoked_arn,
        want_log=want_log, lineage=lineage, stream=stream))
    running.add_done_callback(lambda _: stream.end())  # failed before it ran (throttled...): nobody else would
    await stream.wait_opened()  # a caller's head goes out once the response's content type is known
    if running.done():
        error = running.exception()
        if error is not None:
            raise error
    return StreamedInvocation(config.version, stream, running)


async def read_http_prelude(streamed: StreamedInvocation) -> tuple[dict[str, Any] | None, AsyncIterator[bytes]]:
    """The metadata prelude of an HTTP integration response and the body after it (see the module's docstring).
    Raises PreludeError when the response has the type but no valid prelude within its first 16 KB."""
    chunks = streamed.chunks()
    if streamed.content_type != HTTP_INTEGRATION_CONTENT_TYPE:
        return None, chunks
    head = b""
    async for data in chunks:
        head += data
        end = head.find(_DELIMITER)
        if end >= 0:
            break
        if len(head) > _MAX_PRELUDE:
            break
    else:
        end = head.find(_DELIMITER)
    if end < 0 or end > _MAX_PRELUDE:
        await chunks.aclose()
        raise PreludeError("The response's metadata prelude did not end with 8 null bytes within its first 16 KB")
    try:
        metadata = json.loads(head[:end])
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        await chunks.aclose()
        raise PreludeError(f"The response's metadata prelude is not JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        await chunks.aclose()
        raise PreludeError("The response's metadata prelude is not a JSON object")
    rest = head[end + len(_DELIMITER):]

    async def body() -> AsyncIterator[bytes]:
        try:
            if rest:
                yield rest
            async for data in chunks:
                yield data
        finally:
            await chunks.aclose()

    return metadata, body()
