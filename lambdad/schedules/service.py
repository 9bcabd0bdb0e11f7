"""EventBridge Scheduler: schedules and schedule groups, kept in the store, fired by the timer (``timer.py``).

Every schedule is a row of ``schedules`` (its GetSchedule shape as JSON) and, while it is ENABLED, a timer of kind
``scheduler`` keyed ``<group>/<name>``. Nothing is held in memory, so every node of a cluster answers the API alike
and the timer's lease holder fires. A create or update writes the row, then puts (or, DISABLED, deletes) its timer;
``load`` at start mends the two where a crash came in between.

**A fire** reads the schedule, renders its target's Input (Scheduler's context attributes
``<aws.scheduler.schedule-arn>``, ``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>`` and
``<aws.scheduler.attempt-number>`` replaced) and submits it to lambdad's async queue for the target function: an
asynchronous Invoke, as Scheduler's Lambda target is, so the function's own async retries, maximum age and
destinations apply to what the function does. The schedule's RetryPolicy is Scheduler's: it covers the hand-off —
a target that cannot be invoked (the function, or its version or alias, does not exist; an Input that is not
JSON, which Lambda refuses) is tried again with
exponential back-off until MaximumRetryAttempts or MaximumEventAgeInSeconds runs out, then its event goes to the
DeadLetterConfig's SQS queue (the Input as body, Scheduler's attributes ERROR_CODE, ERROR_MESSAGE,
EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS, SCHEDULE_ARN, TARGET_ARN, SCHEDULED_TIME, EXECUTION_ID) or is dropped
with a log line. Those retries are kept in memory (a restart ends them). An occurrence missed while no node ran
is fired once, late (``timer.py``), unless it is older than MaximumEventAgeInSeconds: then it is dead-lettered.
After the last occurrence (an ``at()``, or the EndDate reached), ActionAfterCompletion DELETE deletes the schedule.

The execution role (Target.RoleArn) is required and kept, as on AWS, but not assumed: the fire is lambdad's own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import time
import uuid
from typing import Any, Protocol

import sqlalchemy as sa

from lambdad.api.json_api import JsonError
from lambdad.arn import FunctionRef, parse_function_arn
from lambdad.errors import LambdaError
from lambdad.invoke.async_queue import EventQueue
from lambdad.schedules.expressions import UTC, ScheduleError, parse, zone
from lambdad.schedules.timer import Fire, Timer
from lambdad.store import schema as t
from lambdad.store.sql import SqlStore

__all__ = ["Schedules", "KIND", "DEFAULT_GROUP"]

log = logging.getLogger(__name__)

KIND = "scheduler"
DEFAULT_GROUP = "default"
DEFAULT_RETRY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
_RETRY_CAP = 60.0  # the longest wait between two hand-off retries


class Routes(Protocol):
    """The invoker's look-up of a function version (raises ResourceNotFoundException when there is none)."""

    def route(self, ref: FunctionRef) -> Any: ...


def validation(message: str) -> JsonError:
    return JsonError("ValidationException", message, 400)


def not_found(message: str) -> JsonError:
    return JsonError("ResourceNotFoundException", message, 404)


def conflict(message: str) -> JsonError:
    return JsonError("ConflictException", message, 409)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, dt.datetime) else None


class Schedules:
    def __init__(self, store: SqlStore, timer: Timer, runs: Routes, queue: EventQueue, *, region: str,
                 account_id: str) -> None:
        self._store = store
        self._timer = timer
        self._runs = runs
        self._queue = queue
        self.region, self.account_id = region, account_id
        self._retries: set[asyncio.Task[None]] = set()
        self._sqs: Any = None
        timer.register(KIND, self._fire)

    def schedule_arn(self, group: str, name: str) -> str:
        return f"arn:aws:scheduler:{self.region}:{self.account_id}:schedule/{group}/{name}"

    def group_arn(self, group: str) -> str:
        return f"arn:aws:scheduler:{self.region}:{self.account_id}:schedule-group/{group}"

    async def load(self) -> None:
        """The default group exists; every ENABLED schedule has its timer, and no timer outlives its schedule."""
        now = time.time()
        groups = t.schedule_groups

        def ensure(conn: sa.Connection) -> None:
            if conn.execute(sa.select(groups.c.name).where(groups.c.name == DEFAULT_GROUP)).first() is None:
                conn.execute(sa.insert(groups).values(name=DEFAULT_GROUP, config=json.dumps(
                    {"Name": DEFAULT_GROUP, "State": "ACTIVE", "CreationDate": now, "LastModificationDate": now})))

        await self._store.run(ensure, write=True)
        configs = {f"{c['GroupName']}/{c['Name']}": c for c in await self._all()}
        timers = set(await self._timer.keys(KIND))
        for key in timers - set(configs):
            await self._timer.delete(KIND, key)
        for key, config in configs.items():
            if config["State"] == "ENABLED" and key not in timers:
                log.info("schedule %s had no timer (a stop came between its write and its timer's): armed", key)
                await self._arm(config, created=False)

    async def aclose(self) -> None:
        for task in list(self._retries):
            task.cancel()
        if self._retries:
            await asyncio.gather(*self._retries, return_exceptions=True)
        if self._sqs is not None:
            self._sqs.close()

    # -- schedules ----------------------------------------------------------------------------------------------

    async def create(self, params: dict[str, Any]) -> str:
        name, group = params["Name"], params.get("GroupName") or DEFAULT_GROUP
        await self._group(group)
        now = time.time()
        config = self._config(params, name, group, created=now)
        try:
            await self._store.run(lambda conn: conn.execute(sa.insert(t.schedules).values(
                group_name=group, name=name, config=json.dumps(config))), write=True)
        except sa.exc.IntegrityError:
            raise conflict(f"Schedule {name} already exists.") from None
        await self._arm(config, created=True)
        return str(config["Arn"])

    async def update(self, params: dict[str, Any]) -> str:
        name, group = params["Name"], params.get("GroupName") or DEFAULT_GROUP
        current = await self.get(name, group)
        config = self._config(params, name, group, created=current["CreationDate"])
        table = t.schedules
        done = await self._store.run(lambda conn: conn.execute(sa.update(table).where(
            table.c.group_name == group, table.c.name == name).values(config=json.dumps(config))).rowcount,
            write=True)
        if not done:
            raise not_found(f"Schedule {name} does not exist.")
        await self._arm(config, created=False)
        return str(config["Arn"])

    async def get(self, name: str, group: str | None) -> dict[str, Any]:
        group = group or DEFAULT_GROUP
        config = await self._read(group, name)
        if config is None:
            raise not_found(f"Schedule {name} does not exist.")
        return config

    async def delete(self, name: str, group: str | None) -> None:
        group = group or DEFAULT_GROUP
        table = t.schedules
        done = await self._store.run(lambda conn: conn.execute(sa.delete(table).where(
            table.c.group_name == group, table.c.name == name)).rowcount, write=True)
        if not done:
            raise not_found(f"Schedule {name} does not exist.")
        await self._timer.delete(KIND, f"{group}/{name}")

    async def find(self, group: str | None, prefix: str | None, state: str | None) -> list[dict[str, Any]]:
        if group is not None:
            await self._group(group)
        return [c for c in await self._all()
                if (group is None or c["GroupName"] == group) and (not prefix or c["Name"].startswith(prefix))
                and (state is None or c["State"] == state)]

    # -- groups ---------------------------------------------------------------------------------------------------

    async def create_group(self, name: str, tags: list[dict[str, str]]) -> str:
        now = time.time()
        config = {"Name": name, "Arn": self.group_arn(name), "State": "ACTIVE", "CreationDate": now,
                  "LastModificationDate": now, "Tags": tags}
        try:
            await self._store.run(lambda conn: conn.execute(sa.insert(t.schedule_groups).values(
                name=name, config=json.dumps(config))), write=True)
        except sa.exc.IntegrityError:
            raise conflict(f"Schedule group {name} already exists.") from None
        return self.group_arn(name)

    async def get_group(self, name: str) -> dict[str, Any]:
        return await self._group(name)

    async def delete_group(self, name: str) -> None:
        """Delete a group and every schedule in it (AWS deletes them too)."""
        if name == DEFAULT_GROUP:
            raise validation("The default schedule group cannot be deleted.")
        await self._group(name)
        members = [c["Name"] for c in await self._all() if c["GroupName"] == name]
        schedules, groups = t.schedules, t.schedule_groups

        def remove(conn: sa.Connection) -> None:
            conn.execute(sa.delete(schedules).where(schedules.c.group_name == name))
            conn.execute(sa.delete(groups).where(groups.c.name == name))

        await self._store.run(remove, write=True)
        for member in members:
            await self._timer.delete(KIND, f"{name}/{member}")

    async def list_groups(self, prefix: str | None) -> list[dict[str, Any]]:
        rows = await self._store.run(lambda conn: conn.execute(
            sa.select(t.schedule_groups.c.config).order_by(t.schedule_groups.c.name)).all())
        groups = [self._shown_group(json.loads(row[0])) for row in rows]
        return [g for g in groups if not prefix or g["Name"].startswith(prefix)]

    # -- helpers ----------------------------------------------------------------------------------------------

    async def _group(self, name: str) -> dict[str, Any]:
        groups = t.schedule_groups
        rows = await self._store.run(lambda conn: conn.execute(
            sa.select(groups.c.config).where(groups.c.name == name)).all())
        if not rows:
            raise not_found(f"Schedule group {name} does not exist.")
        return self._shown_group(json.loads(rows[0][0]))

    def _shown_group(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"Name": config["Name"], "Arn": self.group_arn(config["Name"]), "State": config["State"],
                "CreationDate": config["CreationDate"], "LastModificationDate": config["LastModificationDate"]}

    async def _read(self, group: str, name: str) -> dict[str, Any] | None:
        table = t.schedules
        rows = await self._store.run(lambda conn: conn.execute(sa.select(table.c.config).where(
            table.c.group_name == group, table.c.name == name)).all())
        return json.loads(rows[0][0]) if rows else None

    async def _all(self) -> list[dict[str, Any]]:
        table = t.schedules
        rows = await self._store.run(lambda conn: conn.execute(
            sa.select(table.c.config).order_by(table.c.group_name, table.c.name)).all())
        return [json.loads(row[0]) for row in rows]

    def _config(self, params: dict[str, Any], name: str, group: str, *, created: float) -> dict[str, Any]:
        """The schedule as GetSchedule shows it (dates as epoch seconds), checked as Scheduler checks it."""
        expression = params["ScheduleExpression"]
        timezone = params.get("ScheduleExpressionTimezone") or "UTC"
        try:
            parse(expression)
        except ScheduleError as exc:
            raise validation(exc.message) from None
        try:
            zone(timezone)
        except ScheduleError:
            raise validation(f"Invalid ScheduleExpressionTimezone: {timezone}") from None
        start, end = _epoch(params.get("StartDate")), _epoch(params.get("EndDate"))
        if start is not None and end is not None and end <= start:
            raise validation("The EndDate must be later than the StartDate.")
        window = dict(params["FlexibleTimeWindow"])
        if window["Mode"] == "FLEXIBLE" and window.get("MaximumWindowInMinutes") is None:
            raise validation("MaximumWindowInMinutes is required when the FlexibleTimeWindow Mode is FLEXIBLE.")
        if window["Mode"] == "OFF" and window.get("MaximumWindowInMinutes") is not None:
            raise validation("MaximumWindowInMinutes must not be set when the FlexibleTimeWindow Mode is OFF.")
        target = dict(params["Target"])
        others = sorted(k for k in target if k.endswith("Parameters"))
        try:
            ref = parse_function_arn(target["Arn"], region=self.region, account_id=self.account_id)
        except LambdaError:
            ref = None
        if ref is None or others:
            raise validation(f"This lambdad server's EventBridge Scheduler invokes AWS Lambda functions of its own "
                             f"region and account only: {target['Arn']} is not one"
                             + (f" (and takes no {', '.join(others)})" if others else ""))
        target["RetryPolicy"] = {**DEFAULT_RETRY, **(target.get("RetryPolicy") or {})}
        config: dict[str, Any] = {
            "Name": name, "GroupName": group, "Arn": self.schedule_arn(group, name),
            "ScheduleExpression": expression, "ScheduleExpressionTimezone": timezone,
            "StartDate": start, "EndDate": end, "Description": params.get("Description"),
            "State": params.get("State") or "ENABLED", "FlexibleTimeWindow": window, "Target": target,
            "ActionAfterCompletion": params.get("ActionAfterCompletion") or "NONE",
            "KmsKeyArn": params.get("KmsKeyArn"), "CreationDate": created, "LastModificationDate": time.time(),
        }
        return config

    async def _arm(self, config: dict[str, Any], *, created: bool) -> None:
        """Put the schedule's timer (or delete it, DISABLED). A rate without a StartDate counts from the schedule's
        creation: it fires at once when made, and keeps its step when changed later."""
        key = f"{config['GroupName']}/{config['Name']}"
        if config["State"] != "ENABLED":
            await self._timer.delete(KIND, key)
            return
        start = config["StartDate"]
        if start is None and not created and config["ScheduleExpression"].strip().startswith("rate("):
            start = config["CreationDate"]
        window = config["FlexibleTimeWindow"]
        minutes = window.get("MaximumWindowInMinutes") if window["Mode"] == "FLEXIBLE" else None
        await self._timer.put(KIND, key, config["ScheduleExpression"], config["ScheduleExpressionTimezone"],
                              start=dt.datetime.fromtimestamp(start, UTC) if start is not None else None,
                              end=dt.datetime.fromtimestamp(config["EndDate"], UTC) if config["EndDate"] else None,
                              window=float(minutes or 0) * 60.0)

    # -- firing -------------------------------------------------------------------------------------------------

    async def _fire(self, fire: Fire) -> None:
        group, _, name = fire.key.partition("/")
        config = await self._read(group, name)
        if config is None:  # deleted as it came due
            await self._timer.delete(KIND, fire.key)
            return
        if config["State"] == "ENABLED":
            execution = str(uuid.uuid4())
            policy = config["Target"]["RetryPolicy"]
            scheduled = fire.scheduled.timestamp()
            window = config["FlexibleTimeWindow"]
            flexible = float(window.get("MaximumWindowInMinutes") or 0) * 60 if window["Mode"] == "FLEXIBLE" else 0.0
            # the event is as old as the time since its occurrence, less the delay its window allowed
            if time.time() - scheduled - flexible > policy["MaximumEventAgeInSeconds"]:
                log.warning("schedule %s: the occurrence of %s was missed and is older than its "
                            "MaximumEventAgeInSeconds (%s s): not invoked", fire.key, _iso(scheduled),
                            policy["MaximumEventAgeInSeconds"])
                await self._dead_letter(config, scheduled, execution, 0, "MaximumEventAgeInSeconds",
                                        "EventAgeExceeded", "The event was older than its maximum age.")
            elif (failed := await self._hand_off(config, scheduled, execution, 0)) is not None:
                task = asyncio.get_running_loop().create_task(self._retry(config, scheduled, execution, failed))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)
        if fire.last and config.get("ActionAfterCompletion") == "DELETE":
            log.info("schedule %s completed: deleted (ActionAfterCompletion DELETE)", fire.key)
            try:
                await self.delete(name, group)
            except JsonError:
                pass  # deleted meanwhile

    def _payload(self, config: dict[str, Any], scheduled: float, execution: str, attempt: int) -> bytes:
        text = config["Target"].get("Input")
        if text is None:
            return b"{}"
        for attribute, value in (("schedule-arn", config["Arn"]), ("scheduled-time", _iso(scheduled)),
                                 ("execution-id", execution), ("attempt-number", str(attempt + 1))):
            text = text.replace(f"<aws.scheduler.{attribute}>", value)
        return str(text).encode()

    async def _hand_off(self, config: dict[str, Any], scheduled: float, execution: str,
                        retries: int) -> tuple[str, str] | None:
        """Submit the event to the async queue: None when it is queued, the error's name and message when the
        target cannot be invoked (then retried). A failure of the queue itself raises: the timer fires the
        occurrence again."""
        target = config["Target"]
        try:
            ref = parse_function_arn(target["Arn"], region=self.region, account_id=self.account_id)
            if ref is None:
                raise not_found(f"Function not found: {target['Arn']}")
            version = self._runs.route(ref)
        except LambdaError as exc:
            log.warning("schedule %s/%s: target %s cannot be invoked: %s: %s", config["GroupName"], config["Name"],
                        target["Arn"], exc.name, exc.message)
            return exc.name, exc.message
        payload = self._payload(config, scheduled, execution, retries)
        try:
            json.loads(payload)
        except ValueError as exc:  # what Lambda's Invoke refuses
            log.warning("schedule %s/%s: its Input is not JSON, which Lambda does not take: %s", config["GroupName"],
                        config["Name"], exc)
            return "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        request_id = await self._queue.submit(version.name, ref.qualifier or "", payload, None)
        log.info("schedule %s/%s fired for %s: async invocation %s of %s", config["GroupName"], config["Name"],
                 _iso(scheduled), request_id, target["Arn"])
        return None

    async def _retry(self, config: dict[str, Any], scheduled: float, execution: str,
                     error: tuple[str, str]) -> None:
        """Hand the event off again with exponential back-off until it is queued or the RetryPolicy runs out."""
        policy = config["Target"]["RetryPolicy"]
        attempts, most, max_age = 0, int(policy["MaximumRetryAttempts"]), float(policy["MaximumEventAgeInSeconds"])
        while True:
            if attempts >= most:
                condition = "MaximumRetryAttempts"
                break
            delay = min(_RETRY_CAP, 2.0 ** attempts) * random.uniform(0.5, 1.0)
            if time.time() + delay - scheduled > max_age:
                condition = "MaximumEventAgeInSeconds"
                break
            await asyncio.sleep(delay)
            attempts += 1
            try:
                failed = await self._hand_off(config, scheduled, execution, attempts)
            except Exception as exc:
                log.exception("schedule %s/%s: a retry failed", config["GroupName"], config["Name"])
                failed = ("InternalServerException", str(exc))
            if failed is None:
                return
            error = failed
        await self._dead_letter(config, scheduled, execution, attempts, condition, *error)

    async def _dead_letter(self, config: dict[str, Any], scheduled: float, execution: str, attempts: int,
                           condition: str, code: str, message: str) -> None:
        target = config["Target"]
        queue = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue:
            log.warning("schedule %s/%s: the event of %s is dropped (%s; no DeadLetterConfig)", config["GroupName"],
                        config["Name"], _iso(scheduled), condition)
            return
        attributes = {"ERROR_CODE": code, "ERROR_MESSAGE": message[:1024], "EXHAUSTED_RETRY_CONDITION": condition,
                      "RETRY_ATTEMPTS": str(attempts), "SCHEDULE_ARN": config["Arn"], "TARGET_ARN": target["Arn"],
                      "SCHEDULED_TIME": _iso(scheduled), "EXECUTION_ID": execution,
                      "IS_PAYLOAD_TRUNCATED": "false"}
        body = self._payload(config, scheduled, execution, attempts).decode()
        try:
            await asyncio.to_thread(self._send_sqs, queue, body, attributes)
            log.warning("schedule %s/%s: the event of %s went to its dead-letter queue %s (%s)", config["GroupName"],
                        config["Name"], _iso(scheduled), queue, condition)
        except Exception as exc:
            log.error("schedule %s/%s: the event of %s is lost: its dead-letter queue %s refused it: %s",
                      config["GroupName"], config["Name"], _iso(scheduled), queue, exc)

    def _send_sqs(self, arn: str, body: str, attributes: dict[str, str]) -> None:
        """Send to the SQS queue ``arn`` through botocore (AWS_ENDPOINT_URL_SQS and the standard credentials)."""
        import boto3

        _, _, _, region, account, name = arn.split(":", 5)
        if self._sqs is None:
            self._sqs = boto3.session.Session().client("sqs", region_name=region or self.region)
        url = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        self._sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v})
