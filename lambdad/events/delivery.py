"""Delivery of a matched event to a rule's targets: Lambda functions, invoked asynchronously.

For each target, in order:
1. **Input**: the event itself (EventBridge's shape), or the target's ``Input`` (as given), ``InputPath`` (the value
   it names) or ``InputTransformer`` (``events/transform.py``).
2. **The function** the target's ARN names (unqualified, a version or an alias) must exist, and its resource policy
   (the qualifier's: ``AddPermission`` with ``--qualifier`` or not) must allow ``lambda:InvokeFunction`` to the
   service principal ``events.amazonaws.com`` with ``aws:SourceArn`` = the rule's ARN and ``aws:SourceAccount`` =
   the account — evaluated by ``iam/policy.py`` as AWS evaluates it. Root's credentials grant nothing here: on AWS
   too a rule cannot invoke a function whose policy does not let EventBridge.
3. **The async queue** (``invoke/async_queue.py``): the event is written there before PutEvents answers, so it
   survives a crash, and gets the function's own asynchronous retries, maximum age and destinations.

A refused target (no such function: ``RESOURCE_NOT_FOUND``; no permission: ``NO_PERMISSIONS``; the queue could not
take it: ``SDK_CLIENT_ERROR``) is never dropped in silence: it is logged (a WARNING naming the rule, the target
and why), counted (AWS/Events ``FailedInvocations``, by RuleName and by EventBusName+RuleName, beside
``Invocations`` and ``TriggeredRules``; ``MatchedEvents`` per event, by EventBusName) and, when the target has a
``DeadLetterConfig``, sent to that SQS queue through botocore with AWS's message attributes ``RULE_ARN``,
``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE`` (``DeadLetterInvocations``). The event for the queue is
written to the store first (``event_dead_letters``) and sent by the node holding the lease
``eventbridge-dead-letters``, so a stop or a crash does not lose it; a send that fails is tried again after 1, 5,
15, 60 and 300 seconds, then every 300 seconds, each failure logged (the fifth counted as
``InvocationsFailedToBeSentToDlq``), and after a day given up with an ERROR line holding the whole event. As on
AWS, the refusals themselves are not retried: retrying cannot grant a permission or make a function exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Mapping, Protocol

from lambdad.arn import LATEST, function_arn, parse_function_arn
from lambdad.errors import LambdaError
from lambdad.events.model import Rule, Target
from lambdad.events.store import EventsStore
from lambdad.events.transform import found, read_path, render_template
from lambdad.functions.service import FunctionService
from lambdad.iam.policy import Caller, Decision, Request, evaluate
from lambdad.metrics.recorder import MetricsRecorder, dimensions_key
from lambdad.periodic import Held, Periodic

__all__ = ["Deliveries", "SERVICE_PRINCIPAL", "target_input"]

log = logging.getLogger(__name__)

SERVICE_PRINCIPAL = "events.amazonaws.com"
NAMESPACE = "AWS/Events"
_DLQ_DELAYS = (1.0, 5.0, 15.0, 60.0, 300.0)  # after each failed send (then every 300 s)
_DLQ_BATCH = 100
DLQ_POLL_SECONDS = 5.0  # how often the lease's holder looks for stored events to send (a refusal wakes it at once)
DLQ_MAX_AGE = 86400.0  # a day (EventBridge's longest MaximumEventAgeInSeconds): then given up, logged in full

Submit = Callable[..., Awaitable[str]]  # the async queue's submit(name, qualifier, payload, client_context, ...)


class _Sender(Protocol):
    def __call__(self, queue_arn: str, body: str, attributes: dict[str, str]) -> None: ...


def _without_detail(event: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "detail"}


def target_input(target: Mapping[str, Any], rule_arn: str, rule_name: str, event: Mapping[str, Any],
                 received: float) -> str:
    """What ``target`` receives of ``event``, as JSON text (a plain-text template's result as a JSON string)."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath") is not None:
        value = read_path(event, str(target["InputPath"]))
        return json.dumps(value if found(value) else None)
    transformer = target.get("InputTransformer")
    if transformer is not None:
        variables: dict[str, Any] = {
            "aws.events.rule-arn": rule_arn, "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": dt.datetime.fromtimestamp(received, dt.timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "aws.events.event": _without_detail(event), "aws.events.event.json": dict(event)}
        for key, path in (transformer.get("InputPathsMap") or {}).items():
            variables[key] = read_path(event, str(path))
        text = render_template(str(transformer.get("InputTemplate", "")), variables)
        try:
            json.loads(text)
        except ValueError:
            return json.dumps(text)  # a function's event is JSON: plain text goes as a JSON string
        return text
    return json.dumps(event)


class Deliveries:
    def __init__(self, functions: FunctionService, store: EventsStore, lease: Held, *, region: str,
                 account_id: str, metrics: MetricsRecorder | None = None) -> None:
        self._functions = functions
        self._store = store
        self._region, self._account = region, account_id
        self._metrics = metrics
        self.submit: Submit | None = None  # the async queue's, set once it exists
        self._caller = Caller(arn=SERVICE_PRINCIPAL, account=account_id, principal_arns=(), service=SERVICE_PRINCIPAL)
        # the stored events for dead-letter queues, sent by the node holding the lease
        self._dead_letters = Periodic("eventbridge-dead-letters", self._send_dead_letters, DLQ_POLL_SECONDS,
                                      lease=lease)
        self._clients: dict[str, Any] = {}
        self.failures = 0  # refused deliveries since the start (also logged and in AWS/Events FailedInvocations)

    async def deliver(self, rule_arn: str, rule: Rule, event: Mapping[str, Any], received: float,
                      hops: int = 0) -> None:
        """Hand ``event`` to every target of ``rule``; returns once each is queued or refused."""
        self._count("TriggeredRules", rule)
        for target in list(rule.targets.values()):
            payload = target_input(target.config, rule_arn, rule.name, event, received)
            refusal = self._refusal(rule_arn, target)
            if refusal is None:
                try:
                    assert self.submit is not None
                    ref = parse_function_arn(target.arn, region=self._region, account_id=self._account)
                    assert ref is not None
                    await self.submit(ref.name, ref.qualifier or "", payload.encode(), None, hops=hops)
                except Exception as exc:  # the store could not take it
                    refusal = ("SDK_CLIENT_ERROR", f"{type(exc).__name__}: {exc}")
            if refusal is None:
                self._count("Invocations", rule)
                continue
            await self._refused(rule_arn, rule, target, event, *refusal)

    def _refusal(self, rule_arn: str, target: Target) -> tuple[str, str] | None:
        """Why ``target`` may not be invoked for ``rule_arn`` (an ERROR_CODE and message), or None."""
        try:
            ref = parse_function_arn(target.arn, region=self._region, account_id=self._account)
            if ref is None:
                return ("RESOURCE_NOT_FOUND", f"{target.arn} is not a function ARN")
            function = self._functions.function(ref.name)
            self._functions.resolve(ref)  # the version or alias exists
        except LambdaError as exc:
            return ("RESOURCE_NOT_FOUND", exc.message)
        key = LATEST if ref.qualifier in (None, LATEST) else ref.qualifier
        statements = function.policies.get(key, ())
        request = Request(self._caller, "lambda:InvokeFunction",
                          function_arn(self._region, self._account, ref.name, ref.qualifier),
                          {"aws:SourceArn": rule_arn, "aws:SourceAccount": self._account,
                           "lambda:FunctionArn": function_arn(self._region, self._account, ref.name)})
        decision = evaluate([], {"Version": "2012-10-17", "Statement": list(statements)},
                            request).decision if statements else Decision.IMPLICIT_DENY
        if decision is not Decision.ALLOW:
            return ("NO_PERMISSIONS", f"The resource-based policy of {target.arn} does not allow "
                    f"{SERVICE_PRINCIPAL} to invoke it for {rule_arn} (aws lambda add-permission --principal "
                    f"{SERVICE_PRINCIPAL} --source-arn {rule_arn})")
        return None

    def start(self) -> None:
        self._dead_letters.start(at_once=True)  # what a stop left unsent

    async def _refused(self, rule_arn: str, rule: Rule, target: Target, event: Mapping[str, Any], code: str,
                       message: str) -> None:
        self.failures += 1
        self._count("FailedInvocations", rule)
        dead_letter = (target.config.get("DeadLetterConfig") or {}).get("Arn")
        log.warning("EventBridge: event %s of rule %s not delivered to target %s (%s): %s%s", event.get("id"),
                    rule_arn, target.id, code, message,
                    f"; sent to its dead-letter queue {dead_letter}" if dead_letter
                    else "; it has no dead-letter queue")
        if dead_letter:
            attributes = {"RULE_ARN": rule_arn, "TARGET_ARN": target.arn, "ERROR_CODE": code,
                          "ERROR_MESSAGE": message[:1024]}
            now = time.time()
            try:
                await self._store.put_event_dead_letter({
                    "id": str(uuid.uuid4()), "queue_arn": str(dead_letter), "body": json.dumps(event),
                    "attributes": json.dumps(attributes), "rule": f"{rule.bus}/{rule.name}", "attempts": 0,
                    "not_before": now, "created": now})
            except Exception:
                log.exception("EventBridge: event %s of rule %s could not be kept for its dead-letter queue %s",
                              event.get("id"), rule_arn, dead_letter)
                self._count("InvocationsFailedToBeSentToDlq", rule)
                return
            self._dead_letters.wake()

    async def _send_dead_letters(self) -> bool:
        """Send the stored events whose time has come to their dead-letter queues; True when there may be more."""
        rows = await self._store.due_event_dead_letters(time.time(), _DLQ_BATCH)
        for row in rows:
            queue_arn, attempts = str(row["queue_arn"]), int(str(row["attempts"]))
            bus, _, name = str(row["rule"]).rpartition("/")
            rule = Rule(bus, name, {}, 0.0)
            try:
                await asyncio.to_thread(self._send_sqs, queue_arn, str(row["body"]),
                                        json.loads(str(row["attributes"])))
            except Exception as exc:
                attempts += 1
                log.warning("EventBridge: could not send an event of rule %s to its dead-letter queue %s (try %d: "
                            "%s: %s)", row["rule"], queue_arn, attempts, type(exc).__name__, exc)
                if attempts == len(_DLQ_DELAYS):
                    self._count("InvocationsFailedToBeSentToDlq", rule)
                if time.time() - float(str(row["created"])) > DLQ_MAX_AGE:
                    log.error("EventBridge: gave up sending an event of rule %s to its dead-letter queue %s after "
                              "%d tries over a day: %s", row["rule"], queue_arn, attempts, row["body"])
                    await self._store.delete_event_dead_letter(str(row["id"]))
                    continue
                delay = _DLQ_DELAYS[min(attempts, len(_DLQ_DELAYS)) - 1]
                await self._store.retry_event_dead_letter(str(row["id"]), attempts, time.time() + delay)
                continue
            await self._store.delete_event_dead_letter(str(row["id"]))
            self._count("DeadLetterInvocations", rule)
        return len(rows) == _DLQ_BATCH

    def _send_sqs(self, queue_arn: str, body: str, attributes: dict[str, str]) -> None:
        import boto3

        _, _, _, region, account, name = queue_arn.split(":", 5)
        client = self._clients.get(region)
        if client is None:
            client = self._clients[region] = boto3.session.Session().client("sqs", region_name=region)
        url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()})

    def matched(self, bus: str) -> None:
        """An event matched at least one rule of ``bus`` (MatchedEvents: for the account, and by EventBusName)."""
        if self._metrics is not None:
            self._metrics.add(NAMESPACE, "MatchedEvents", [dimensions_key([]),
                                                           dimensions_key([("EventBusName", bus)])], "Count", (1.0,))

    def _count(self, metric: str, rule: Rule) -> None:
        if self._metrics is None:
            return
        self._metrics.add(NAMESPACE, metric, [dimensions_key([("RuleName", rule.name)]),
                                              dimensions_key([("EventBusName", rule.bus), ("RuleName", rule.name)])],
                          "Count", (1.0,))

    async def aclose(self) -> None:
        await self._dead_letters.aclose()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
