"""Where an asynchronous invocation's outcome goes: the OnSuccess / OnFailure destinations of its event invoke
config, with Lambda's invocation record.

The record (``version`` "1.0", ``timestamp``, ``requestContext`` {requestId, functionArn, condition —
``Success``, ``RetriesExhausted`` or ``EventAgeExceeded`` —, approximateInvokeCount}, ``requestPayload``,
``responseContext`` {statusCode, executedVersion, functionError}, ``responsePayload``) is sent to:

- **a function of this server** (``arn:aws:lambda:…:function:NAME[:QUALIFIER]``): invoked asynchronously, so it
  has retries of its own;
- **an EventBridge bus of this server** (its region and account): put on it here (``events/service.py``), so it is
  routed by the bus's rules at once;
- **an SQS queue, an SNS topic, an EventBridge bus** (``arn:aws:sqs|sns|events:…``): through botocore, with the AWS
  SDK's own configuration of the server process — the standard credential chain, and ``AWS_ENDPOINT_URL_SQS``,
  ``AWS_ENDPOINT_URL_SNS``, ``AWS_ENDPOINT_URL_EVENTS`` or ``AWS_ENDPOINT_URL`` for another endpoint (LocalStack,
  ElasticMQ, moto) — so the same lambdad works with real AWS.

**Dead-letter queues**: an event that failed (RetriesExhausted, EventAgeExceeded) also goes to its function's
``DeadLetterConfig.TargetArn`` (SQS or SNS) when it has one, as Lambda sends it: the original event as the message,
with the attributes ``RequestID``, ``ErrorCode`` (the Invoke's status, 200 when the function ran and failed;
absent when it never ran) and ``ErrorMessage`` (the first kilobyte of the function's error message, or why the
event was dropped).

Durability: the queues (``invoke/async_queue.py``, ``cluster/async_queue.py``) keep an event until its record is
sent: when a send fails, the record is stored with the event (``AsyncEvent.outcome``: the function is not run
again) and sent again later, with a growing delay, each failure logged — never dropped in silence.

Recursive loops: an event sent by a destination carries the count of events before it (``hops``), through a bus of
this server and its rules too; the 17th of a chain is not invoked (Lambda's recursive loop detection stops after
16), and says so in the log. A record over an asynchronous invocation's payload limit (256 KB) is not sent to a
function either, and the log says so.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from lambdad.arn import parse_function_arn
from lambdad.metrics.recorder import MetricsRecorder
from lambdad.store.interfaces import AsyncEvent

__all__ = ["Destinations", "DeliveryResult", "MAX_HOPS", "destination_kind"]

log = logging.getLogger(__name__)

MAX_HOPS = 16
MAX_FUNCTION_RECORD = 256 * 1024  # an asynchronous invocation's payload limit: a record to a function must fit it

Submit = Callable[..., Awaitable[str]]  # the async queue's submit(name, qualifier, payload, client_context, hops=)


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt of an async event gave."""

    ok: bool  # ran without a function error
    payload: bytes
    function_error: str | None
    executed_version: str
    status: int


def destination_kind(arn: str) -> str | None:
    """"lambda", "sqs", "sns" or "events" for a destination ARN lambdad can send to; None otherwise."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    service, resource = parts[2], parts[5]
    if service == "lambda" and resource.startswith("function:"):
        return "lambda"
    if service in ("sqs", "sns") and resource and "/" not in resource:
        return service
    if service == "events" and resource.startswith("event-bus/"):
        return "events"
    return None


def _bus_entry(bus_arn: str, body: str, condition: str) -> dict[str, Any]:
    """The PutEvents entry of a record sent to an EventBridge bus, as Lambda sends it."""
    detail = "Success" if condition == "Success" else "Failure"
    return {"Source": "lambda", "DetailType": f"Lambda Function Invocation Result - {detail}", "Detail": body,
            "EventBusName": bus_arn}


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


class Destinations:
    def __init__(self, destination_of: Callable[[str, str | None, bool], str | None],
                 dead_letter_of: Callable[[str, str | None], str | None], *, region: str, account_id: str,
                 metrics: MetricsRecorder | None = None) -> None:
        self._metrics = metrics  # AsyncEventsDropped, DestinationDeliveryFailures, DeadLetterErrors
        self._destination_of = destination_of  # (function, qualifier, success) -> destination ARN or None
        self._dead_letter_of = dead_letter_of  # (function, qualifier) -> its DeadLetterConfig.TargetArn or None
        self._region, self._account_id = region, account_id
        self.submit: Submit | None = None  # the async queue's, set once it exists
        # EventBridge's PutEvents of this server, for a bus it serves: (bus ARN, entry, hops) -> True when it was
        # put there (events/service.py); the functions its rules invoke carry the hops on
        self.local_bus: Callable[[str, dict[str, Any], int], Awaitable[bool]] | None = None
        self._clients: dict[str, Any] = {}

    def outcome(self, event: AsyncEvent, result: DeliveryResult | None, condition: str) -> str | None:
        """What to send for ``event``'s end — its record to its destination, its payload to its dead-letter queue —
        as JSON, or None when there is nowhere to send anything."""
        if condition != "Success" and self._metrics is not None:  # dropped without a successful run
            self._metrics.function_event("AsyncEventsDropped", event.function_name, event.qualifier)
        sends: list[dict[str, Any]] = []
        dead_letter = None if condition == "Success" else self._dead_letter_of(event.function_name,
                                                                                event.qualifier or None)
        if dead_letter:
            attributes = {"RequestID": event.id}
            if result is not None:
                attributes["ErrorCode"] = str(result.status)
                error = _json_or_text(result.payload)
                message = error.get("errorMessage") if isinstance(error, dict) else None
                attributes["ErrorMessage"] = str(message if message is not None else error)[:1024] or condition
            else:
                attributes["ErrorMessage"] = f"{condition}: the event was older than its maximum age before it ran"
            sends.append({"destination": dead_letter, "dead_letter": True, "attributes": attributes,
                          "body": event.payload.decode("utf-8", "replace")})
        destination = self._destination_of(event.function_name, event.qualifier or None, condition == "Success")
        if destination is None:
            return json.dumps({"sends": sends, "hops": event.hops, "function": event.function_name,
                               "qualifier": event.qualifier}) if sends else None
        qualifier = event.qualifier or "$LATEST"
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": event.id,
                "functionArn": f"arn:aws:lambda:{self._region}:{self._account_id}:function:{event.function_name}:"
                               f"{qualifier}",
                "condition": condition,
                "approximateInvokeCount": event.attempts + (1 if result is not None else 0),
            },
            "requestPayload": _json_or_text(event.payload),
        }
        if result is not None:
            context: dict[str, Any] = {"statusCode": result.status, "executedVersion": result.executed_version}
            if result.function_error:
                context["functionError"] = result.function_error
            record["responseContext"] = context
            record["responsePayload"] = _json_or_text(result.payload)
        sends.append({"destination": destination, "condition": condition, "body": json.dumps(record)})
        return json.dumps({"sends": sends, "hops": event.hops, "function": event.function_name,
                           "qualifier": event.qualifier})

    async def send(self, outcome: str) -> str | None:
        """Send what ``outcome`` holds; None when all of it went, else what is left to send (the caller keeps it
        and tries again later). Each failure is logged."""
        found = json.loads(outcome)
        left = []
        for item in found["sends"]:
            try:
                await self._send_one(item, int(found.get("hops", 0)))
            except Exception as exc:
                log.warning("async destination %s: could not send (%s: %s); kept for a later try",
                            item["destination"], type(exc).__name__, exc)
                left.append(item)
                if self._metrics is not None and found.get("function"):
                    self._metrics.function_event("DeadLetterErrors" if item.get("dead_letter") else
                                                 "DestinationDeliveryFailures", found["function"],
                                                 found.get("qualifier") or "")
        return json.dumps({**found, "sends": left}) if left else None

    async def _send_one(self, item: dict[str, Any], hops: int) -> None:
        destination, body = item["destination"], item["body"]
        if item.get("dead_letter"):
            await asyncio.to_thread(self._send_aws, destination_kind(destination), destination, body, "",
                                    item["attributes"])
            return
        kind = destination_kind(destination)
        if kind == "lambda":
            if hops + 1 >= MAX_HOPS:
                log.warning("async destination %s not invoked: %d events in a chain of destinations (recursive loop "
                            "detected; Lambda stops after %d)", destination, hops + 1, MAX_HOPS)
                return
            ref = parse_function_arn(destination, region=self._region, account_id=self._account_id)
            if ref is None or self.submit is None:
                raise RuntimeError(f"the destination {destination} is not a function of this server")
            if len(body) > MAX_FUNCTION_RECORD:
                log.warning("async destination %s not invoked: the record (%d bytes) is over an asynchronous "
                            "invocation's %d-byte payload limit", destination, len(body), MAX_FUNCTION_RECORD)
                return
            await self.submit(ref.name, ref.qualifier or "", body.encode(), None, hops=hops + 1)
            return
        if kind == "events" and self.local_bus is not None:
            if hops + 1 >= MAX_HOPS:
                log.warning("async destination %s not sent: %d events in a chain of destinations and rules "
                            "(recursive loop detected; stopped after %d)", destination, hops + 1, MAX_HOPS)
                return
            if await self.local_bus(destination, _bus_entry(destination, body, item["condition"]), hops + 1):
                return
        await asyncio.to_thread(self._send_aws, kind, destination, body, item["condition"])

    def _send_aws(self, kind: str | None, arn: str, body: str, condition: str,
                  attributes: dict[str, str] | None = None) -> None:
        """Send ``body`` to the SQS queue, SNS topic or EventBridge bus ``arn`` (with message ``attributes``: a
        dead-letter message)."""
        region = arn.split(":")[3] or self._region
        extra: dict[str, Any] = {}
        if attributes:
            extra["MessageAttributes"] = {k: {"DataType": "Number" if k == "ErrorCode" else "String",
                                              "StringValue": v} for k, v in attributes.items()}
        if kind == "sqs":
            account, name = arn.split(":")[4], arn.split(":")[5]
            sqs = self._client("sqs", region)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=body, **extra)
        elif kind == "sns":
            self._client("sns", region).publish(TopicArn=arn, Message=body, **extra)
        elif kind == "events":
            out = self._client("events", region).put_events(Entries=[_bus_entry(arn, body, condition)])
            if out.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge refused the record: {out.get('Entries')}")
        else:
            raise RuntimeError(f"not a destination lambdad can send to: {arn}")

    def _client(self, service: str, region: str) -> Any:
        import boto3

        key = f"{service}:{region}"
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = boto3.session.Session().client(service, region_name=region)
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
