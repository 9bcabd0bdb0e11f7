"""The Invoke handler: RequestResponse (200), Event (202, durable before the answer), DryRun (204); and
InvokeWithResponseStream: RequestResponse (200, an event stream) and DryRun (204).

InvokeWithResponseStream answers with an AWS event stream (``api/eventstream.py``) once the function began a
streamed answer or finished: a ``PayloadChunk`` event for each piece of the response as the runtime sends it, or
one for the whole answer of a function that did not stream, then ``InvokeComplete`` (``ErrorCode`` and
``ErrorDetails`` when the function failed, before or mid-stream; ``LogResult`` with LogType=Tail). Errors before
the function runs (no such function, throttling, a bad payload) are ordinary AWS error responses. The HTTP
``Content-Type`` is the response's (``ResponseStreamContentType``): the runtime's stream's, or
application/json for a buffered answer. See docs/streaming.md.

A caller other than root has been let through by the resource policy of what it invokes (``api/access.py``),
whatever the invocation type."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import Any, AsyncIterator, Mapping

from lambdad.api.eventstream import event_message, payload_chunk
from lambdad.api.http import MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD, Handler, RequestContext
from lambdad.arn import parse_function_name
from lambdad.errors import (
    InvalidRequestContentException,
    RequestTooLargeException,
    validation_error,
    violation,
)
from lambdad.invoke.async_queue import EventQueue
from lambdad.invoke.destinations import MAX_HOPS
from lambdad.invoke.service import Invoker
from lambdad.invoke.streaming import StreamedInvocation, start_streamed
from lambdad.sandbox.response_stream import STREAM_LIMIT_BYTES, error_details

__all__ = ["invoke_handlers"]

log = logging.getLogger(__name__)

_INVOCATION_TYPES = ("Event", "RequestResponse", "DryRun")
_STREAM_INVOCATION_TYPES = ("RequestResponse", "DryRun")
_MAX_EVENT_PAYLOAD = 1024 * 1024  # a buffered answer goes out in PayloadChunks of at most this size
_LOG_TYPES = ("None", "Tail")
_JSON_CHECK_INLINE = 64 * 1024  # larger payloads are checked in a thread, off the event loop


def _check_json(payload: bytes) -> None:
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from exc
    except RecursionError as exc:  # valid JSON may nest deeper than Python's parser goes: refused, not a 500
        raise InvalidRequestContentException(
            "Could not parse request body into json: Could not parse payload into json: nested too deeply"
        ) from exc


def _client_context(value: str | None) -> str | None:
    """The ClientContext header is base64 JSON; the runtime receives the JSON text."""
    if value is None:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
        if not isinstance(json.loads(text), dict):
            raise ValueError("not a JSON object")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContentException("Client context must be a valid Base64-encoded JSON object.") from exc
    return text


def _enum(value: str, member: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise validation_error(violation(member, f"Member must satisfy enum value set: [{', '.join(allowed)}]", value))


async def _checked_payload(params: Mapping[str, Any], limit: int) -> bytes:
    """The request's payload (``{}`` when empty), refused when over ``limit`` or not JSON."""
    payload: bytes = params.get("Payload") or b""
    if len(payload) > limit:
        raise RequestTooLargeException(f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    if not payload:
        return b"{}"
    if len(payload) > _JSON_CHECK_INLINE:
        await asyncio.to_thread(_check_json, payload)
    else:
        _check_json(payload)
    return payload


async def _stream_events(streamed: StreamedInvocation, want_log: bool) -> AsyncIterator[bytes]:
    """The event stream of one InvokeWithResponseStream: a PayloadChunk for each piece as the function writes it
    (a buffered answer in pieces of at most 1 MB), then InvokeComplete."""
    chunks = streamed.chunks()
    try:
        async for data in chunks:
            for start in range(0, len(data), _MAX_EVENT_PAYLOAD):
                yield payload_chunk(data[start:start + _MAX_EVENT_PAYLOAD])
    finally:
        await chunks.aclose()  # a client gone: the stream is abandoned now, not when the garbage is collected
    result = (await streamed.outcome()).result
    code = details = None
    if result.function_error:
        code, details = error_details(result.payload)
    yield event_message("InvokeComplete", {"ErrorCode": code, "ErrorDetails": details,
                                           "LogResult": result.log_tail_b64() if want_log else None})


def invoke_handlers(service: Invoker, queue: EventQueue, region: str, account_id: str,
                    stream_limit: int = STREAM_LIMIT_BYTES) -> dict[str, Handler]:
    async def invoke(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        invocation_type = params.get("InvocationType") or "RequestResponse"
        log_type = params.get("LogType") or "None"
        _enum(invocation_type, "invocationType", _INVOCATION_TYPES)
        _enum(log_type, "logType", _LOG_TYPES)
        ref = parse_function_name(
            params["FunctionName"], region=region, account_id=account_id, qualifier=params.get("Qualifier")
        )
        config = service.route(ref)
        payload = await _checked_payload(params, MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD)
        client_context = _client_context(params.get("ClientContext"))
        if invocation_type == "DryRun":
            return {"StatusCode": 204}
        if invocation_type == "Event":
            if ctx.lineage >= MAX_HOPS:  # a function's call in a chain of 16 async invocations already: a loop
                log.warning("Event invocation of %s not queued: %d asynchronous invocations in a chain (recursive "
                            "loop detected; Lambda stops after %d)", config.name, ctx.lineage, MAX_HOPS)
                return {"StatusCode": 202}
            # the qualifier as the caller gave it ("" for none): an alias is resolved again when the event is delivered
            await queue.submit(config.name, ref.qualifier or "", payload, client_context, request_id=ctx.request_id,
                               hops=ctx.lineage)
            return {"StatusCode": 202}
        outcome = await service.invoke(
            config, payload, request_id=ctx.request_id, client_context=client_context,
            invoked_arn=service.invoked_arn(ref), want_log=log_type == "Tail", lineage=ctx.lineage, trace=ctx.trace,
        )
        result = outcome.result
        out: dict[str, Any] = {"StatusCode": 200, "Payload": result.payload, "ExecutedVersion": outcome.executed_version}
        if result.function_error:
            out["FunctionError"] = result.function_error
        if log_type == "Tail":
            out["LogResult"] = result.log_tail_b64()
        return out

    async def invoke_with_response_stream(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        invocation_type = params.get("InvocationType") or "RequestResponse"
        log_type = params.get("LogType") or "None"
        _enum(invocation_type, "invocationType", _STREAM_INVOCATION_TYPES)
        _enum(log_type, "logType", _LOG_TYPES)
        ref = parse_function_name(
            params["FunctionName"], region=region, account_id=account_id, qualifier=params.get("Qualifier")
        )
        config = service.route(ref)
        payload = await _checked_payload(params, MAX_SYNC_PAYLOAD)
        client_context = _client_context(params.get("ClientContext"))
        if invocation_type == "DryRun":
            return {"StatusCode": 204}
        streamed = await start_streamed(
            service, config, payload, request_id=ctx.request_id, client_context=client_context,
            invoked_arn=service.invoked_arn(ref), want_log=log_type == "Tail", lineage=ctx.lineage, limit=stream_limit)
        return {"StatusCode": 200, "ExecutedVersion": streamed.executed_version,
                "ResponseStreamContentType": streamed.content_type,
                "EventStream": _stream_events(streamed, log_type == "Tail")}

    return {
        "Invoke": invoke,
        "InvokeWithResponseStream": invoke_with_response_stream,
    }
