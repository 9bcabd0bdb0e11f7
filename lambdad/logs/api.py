"""The CloudWatch Logs API (``logs``, JSON 1.1, ``api/json_api.py``) over lambdad's stored logs.

Groups and streams are the store's (``LogStore``): a function's group (``/aws/lambda/<name>``, or its LoggingConfig
LogGroup) is made by its first line, as Lambda makes it; CreateLogGroup / CreateLogStream / PutLogEvents let
extensions and other programs write their own. Every handler asks the authorizer first — action ``logs:<Operation>``
on the group's ARN (``arn:aws:logs:<region>:<account>:log-group:<name>``, with ``:log-stream:<name>`` for the
stream operations), as the service authorization reference gives them — so a function's role needs what
AWSLambdaBasicExecutionRole grants to write, as on AWS.

Paging, as the CLI and SDKs page:
- GetLogEvents: ``f/`` and ``b/`` tokens of 56 digits (the position of an event: its timestamp and id); at the end
  of the stream the token passed in comes back, which is how callers know to stop. Without a token the newest
  events come (oldest of them first) unless startFromHead.
- FilterLogEvents: events of all the group's streams (or those named) interleaved by time; a page holds up to
  ``limit`` matches (10,000) and 1 MB, and scans at most ``SCAN_LIMIT`` events, so a rare match in a large group
  may come after pages with no events but a nextToken, as AWS's do. The plain terms of a pattern are looked for
  by the store itself (SQL LIKE), so only events that may match are read into Python.
- DescribeLogGroups / DescribeLogStreams: up to 50 a page.

Reads go through the store a bounded page at a time, never holding the store for long, and never touch the
invoke path.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any, Awaitable, Callable, Mapping, Sequence

from lambdad.api.json_api import JsonContext, JsonError, JsonHandler
from lambdad.iam.authorize import Authorizer
from lambdad.logs.patterns import InvalidFilterPattern, compile_pattern, required_substrings
from lambdad.store.interfaces import LogEvent, LogGroupInfo, LogStore, StoredLogEvent

__all__ = ["logs_handlers", "RETENTION_DAYS", "SCAN_LIMIT"]

# the values PutRetentionPolicy accepts (the model's documentation of retentionInDays)
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
                  3653)
SCAN_LIMIT = 50_000  # events one FilterLogEvents page reads at most
_PAGE = 1000  # events read from the store at a time
_MAX_BYTES = 1_048_576  # of events in a response (GetLogEvents, FilterLogEvents), and of a PutLogEvents batch
_EVENT_OVERHEAD = 26  # bytes PutLogEvents counts per event beside its message
_DAY_MS = 86_400_000
_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]+")


def _invalid(message: str) -> JsonError:
    return JsonError("InvalidParameterException", message)


def _not_found(message: str) -> JsonError:
    return JsonError("ResourceNotFoundException", message)


_NO_GROUP = "The specified log group does not exist."
_NO_STREAM = "The specified log stream does not exist."


def _position_token(direction: str, position: tuple[int, int]) -> str:
    timestamp, event_id = position
    return f"{direction}/{max(timestamp, 0):020d}{max(event_id, 0):036d}"


def _read_position_token(token: str) -> tuple[str, tuple[int, int]]:
    if len(token) != 58 or token[0] not in "fb" or token[1] != "/" or not token[2:].isdigit():
        raise _invalid("The specified nextToken is invalid.")
    return token[0], (int(token[2:22]), int(token[22:]))


def _opaque(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _unopaque(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise _invalid("The specified nextToken is invalid.") from None


def logs_handlers(store: LogStore, authorizer: Authorizer, region: str, account: str,
                  retention_changed: Callable[[], None] = lambda: None) -> dict[str, JsonHandler]:
    def group_arn(name: str) -> str:
        return f"arn:aws:logs:{region}:{account}:log-group:{name}"

    def allow(ctx: JsonContext, operation: str, resource: str) -> None:
        authorizer.check(ctx.principal, f"logs:{operation}", resource, source_ip=ctx.source_ip)

    def group_of(params: Mapping[str, Any]) -> str:
        """logGroupName, or logGroupIdentifier (a name or an ARN), not both."""
        name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
        if name and identifier:
            raise _invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if identifier:
            prefix = f"arn:aws:logs:{region}:{account}:log-group:"
            if str(identifier).startswith("arn:"):
                if not str(identifier).startswith(prefix):
                    raise _invalid(f"The specified logGroupIdentifier {identifier} is not a log group ARN of this "
                                   "account and region.")
                identifier = str(identifier)[len(prefix):].removesuffix(":*")
            return str(identifier)
        if not name:
            raise _invalid("Either logGroupName or logGroupIdentifier must be specified.")
        return str(name)

    async def existing_group(name: str) -> LogGroupInfo:
        found = await store.log_groups(name)
        if not found:
            raise _not_found(_NO_GROUP)
        return found[0]

    def described_group(g: LogGroupInfo) -> dict[str, Any]:
        out: dict[str, Any] = {"logGroupName": g.name, "creationTime": g.created, "metricFilterCount": 0,
                               "arn": f"{group_arn(g.name)}:*", "logGroupArn": group_arn(g.name),
                               "storedBytes": g.stored_bytes, "logGroupClass": "STANDARD"}
        if g.retention_days is not None:
            out["retentionInDays"] = g.retention_days
        return out

    # -- groups ---------------------------------------------------------------------------------------------------

    async def create_log_group(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = str(params["logGroupName"])
        allow(ctx, "CreateLogGroup", group_arn(name))
        if not _GROUP_NAME.fullmatch(name):
            raise _invalid(f"1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy "
                           r"constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+")
        if params.get("kmsKeyId"):
            raise _invalid("lambdad does not encrypt log groups with KMS keys: kmsKeyId is not supported.")
        if params.get("logGroupClass") not in (None, "STANDARD"):
            raise _invalid("lambdad keeps STANDARD log groups only.")
        if not await store.create_log_group(name, int(time.time() * 1000)):
            raise JsonError("ResourceAlreadyExistsException", "The specified log group already exists")
        return {}

    async def describe_log_groups(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "DescribeLogGroups", group_arn("*"))
        prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
        if prefix and pattern:
            raise _invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        limit = int(params.get("limit") or 50)
        after = _unopaque(params["nextToken"]) if params.get("nextToken") else None
        groups = [g for g in await store.log_groups()
                  if (not prefix or g.name.startswith(prefix))
                  and (not pattern or str(pattern).lower() in g.name.lower())
                  and (after is None or g.name > after)]
        page = groups[:limit]
        out: dict[str, Any] = {"logGroups": [described_group(g) for g in page]}
        if len(groups) > limit:
            out["nextToken"] = _opaque(page[-1].name)
        return out

    async def delete_log_group(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = str(params["logGroupName"])
        allow(ctx, "DeleteLogGroup", group_arn(name))
        if not await store.delete_log_group(name):
            raise _not_found(_NO_GROUP)
        return {}

    async def put_retention_policy(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name, days = str(params["logGroupName"]), params["retentionInDays"]
        allow(ctx, "PutRetentionPolicy", group_arn(name))
        if days not in RETENTION_DAYS:
            raise _invalid(f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy "
                           "constraint: Member must satisfy enum value set: "
                           f"[{', '.join(map(str, RETENTION_DAYS))}]")
        if not await store.set_log_retention(name, int(days)):
            raise _not_found(_NO_GROUP)
        retention_changed()
        return {}

    async def delete_retention_policy(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = str(params["logGroupName"])
        allow(ctx, "DeleteRetentionPolicy", group_arn(name))
        if not await store.set_log_retention(name, None):
            raise _not_found(_NO_GROUP)
        return {}

    # -- streams --------------------------------------------------------------------------------------------------

    async def create_log_stream(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        group, stream = str(params["logGroupName"]), str(params["logStreamName"])
        allow(ctx, "CreateLogStream", f"{group_arn(group)}:log-stream:{stream}")
        if ":" in stream or "*" in stream:
            raise _invalid(f"1 validation error detected: Value '{stream}' at 'logStreamName' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: [^:*]*")
        await existing_group(group)
        if not await store.create_log_stream(group, stream, int(time.time() * 1000)):
            raise JsonError("ResourceAlreadyExistsException", "The specified log stream already exists")
        return {}

    async def describe_log_streams(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        group = group_of(params)
        allow(ctx, "DescribeLogStreams", group_arn(group))
        order, prefix = params.get("orderBy") or "LogStreamName", params.get("logStreamNamePrefix")
        if order == "LastEventTime" and prefix:
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        await existing_group(group)
        streams = [s for s in await store.log_stream_infos(group) if not prefix or s.name.startswith(prefix)]
        if order == "LastEventTime":
            streams.sort(key=lambda s: (s.last_event or 0, s.name))
        if params.get("descending"):
            streams.reverse()
        limit = int(params.get("limit") or 50)
        start = int(_unopaque(params["nextToken"])) if params.get("nextToken") else 0
        page = streams[start:start + limit]
        described = []
        for s in page:
            item: dict[str, Any] = {"logStreamName": s.name, "creationTime": s.created,
                                    "arn": f"{group_arn(group)}:log-stream:{s.name}", "storedBytes": 0}
            if s.first_event is not None and s.last_event is not None:
                item.update(firstEventTimestamp=s.first_event, lastEventTimestamp=s.last_event)
            if s.last_ingestion is not None:
                item["lastIngestionTime"] = s.last_ingestion
            described.append(item)
        out: dict[str, Any] = {"logStreams": described}
        if start + limit < len(streams):
            out["nextToken"] = _opaque(str(start + limit))
        return out

    async def delete_log_stream(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        group, stream = str(params["logGroupName"]), str(params["logStreamName"])
        allow(ctx, "DeleteLogStream", f"{group_arn(group)}:log-stream:{stream}")
        await existing_group(group)
        if not await store.delete_log_stream(group, stream):
            raise _not_found(_NO_STREAM)
        return {}

    # -- events ---------------------------------------------------------------------------------------------------

    async def put_log_events(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        group, stream = str(params["logGroupName"]), str(params["logStreamName"])
        allow(ctx, "PutLogEvents", f"{group_arn(group)}:log-stream:{stream}")
        events: Sequence[Mapping[str, Any]] = params["logEvents"]
        if not events:
            raise _invalid("1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: "
                           "Member must have length greater than or equal to 1")
        size = sum(len(str(e["message"]).encode()) + _EVENT_OVERHEAD for e in events)
        if size > _MAX_BYTES:
            raise _invalid(f"Upload too large: {size} bytes exceeds limit of {_MAX_BYTES}")
        stamps = [int(e["timestamp"]) for e in events]
        if any(b < a for a, b in zip(stamps, stamps[1:])):
            raise _invalid("Log events in a single PutLogEvents request must be in chronological order.")
        if stamps[-1] - stamps[0] > _DAY_MS:
            raise _invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 "
                           "hours.")
        info = await existing_group(group)
        if not await store.log_stream_infos(group, stream):
            raise _not_found(_NO_STREAM)
        now = int(time.time() * 1000)
        too_old = now - 14 * _DAY_MS
        expired = now - info.retention_days * _DAY_MS if info.retention_days is not None else None
        too_new = now + 2 * 3_600_000
        rejected: dict[str, int] = {}
        kept: list[LogEvent] = []
        for i, (event, stamp) in enumerate(zip(events, stamps)):
            if stamp > too_new:
                rejected.setdefault("tooNewLogEventStartIndex", i)
            elif expired is not None and stamp < expired:
                rejected["expiredLogEventEndIndex"] = i
            elif stamp < too_old:
                rejected["tooOldLogEventEndIndex"] = i
            else:
                kept.append(LogEvent(group, stream, stamp, str(event["message"])))
        await store.append_logs(kept)
        out: dict[str, Any] = {"nextSequenceToken": f"{now:056d}"}
        if rejected:
            out["rejectedLogEventsInfo"] = rejected
        return out

    def event_out(e: StoredLogEvent, with_stream: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"timestamp": e.timestamp, "message": e.message,
                               "ingestionTime": e.ingested if e.ingested is not None else e.timestamp}
        if with_stream:
            out.update(logStreamName=e.log_stream, eventId=f"{e.id:056d}")
        return out

    async def get_log_events(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        group, stream = group_of(params), str(params["logStreamName"])
        allow(ctx, "GetLogEvents", f"{group_arn(group)}:log-stream:{stream}")
        await existing_group(group)
        if not await store.log_stream_infos(group, stream):
            raise _not_found(_NO_STREAM)
        limit = min(int(params.get("limit") or 10_000), 10_000)
        start, end = params.get("startTime"), params.get("endTime")
        token = params.get("nextToken")
        direction, position = _read_position_token(str(token)) if token else ("", (0, 0))
        backward = direction == "b" or (not token and not params.get("startFromHead"))
        page = await store.log_events_page(
            group, [stream], start, end, after=position if direction == "f" else None,
            before=position if direction == "b" else None, limit=limit, newest_first=backward)
        page = _within_bytes(page)
        if backward:
            page.reverse()
        if page:
            forward_token = _position_token("f", (page[-1].timestamp, page[-1].id))
            backward_token = _position_token("b", (page[0].timestamp, page[0].id))
        else:  # the end: the token passed in comes back
            forward_token = str(token) if direction == "f" else _position_token("f", (0, 0))
            backward_token = str(token) if direction == "b" else _position_token("b", (0, 0))
        return {"events": [event_out(e, False) for e in page], "nextForwardToken": forward_token,
                "nextBackwardToken": backward_token}

    async def filter_log_events(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        group = group_of(params)
        allow(ctx, "FilterLogEvents", group_arn(group))
        names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
        if names and prefix:
            raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        pattern = str(params.get("filterPattern") or "")
        try:
            matches = compile_pattern(pattern)
        except InvalidFilterPattern as exc:
            raise _invalid(str(exc)) from None
        containing = required_substrings(pattern)  # the store reads only the events that may match
        await existing_group(group)
        streams: list[str] | None = None
        if prefix:
            streams = [s.name for s in await store.log_stream_infos(group) if s.name.startswith(prefix)]
        elif names:
            streams = [str(n) for n in names]
        limit = min(int(params.get("limit") or 10_000), 10_000)
        start, end = params.get("startTime"), params.get("endTime")
        after: tuple[int, int] | None = None
        if params.get("nextToken"):
            raw = _unopaque(str(params["nextToken"]))
            try:
                ts, _, event_id = raw.partition(":")
                after = (int(ts), int(event_id))
            except ValueError:
                raise _invalid("The specified nextToken is invalid.") from None
        found: list[StoredLogEvent] = []
        size, scanned, more = 0, 0, False
        while streams != []:
            rows = await store.log_events_page(group, streams, start, end, after=after, before=None,
                                               limit=_PAGE, newest_first=False, containing=containing)
            for row in rows:
                scanned += 1
                after = (row.timestamp, row.id)
                if matches(row.message):
                    found.append(row)
                    size += len(row.message) + _EVENT_OVERHEAD
                if len(found) >= limit or size >= _MAX_BYTES or scanned >= SCAN_LIMIT:
                    more = True
                    break
            if more or len(rows) < _PAGE:
                break
        out: dict[str, Any] = {"events": [event_out(e, True) for e in found], "searchedLogStreams": []}
        if more and after is not None:
            out["nextToken"] = _opaque(f"{after[0]}:{after[1]}")
        return out

    handlers: dict[str, Callable[[JsonContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]] = {
        "CreateLogGroup": create_log_group, "DescribeLogGroups": describe_log_groups,
        "DeleteLogGroup": delete_log_group, "PutRetentionPolicy": put_retention_policy,
        "DeleteRetentionPolicy": delete_retention_policy, "CreateLogStream": create_log_stream,
        "DescribeLogStreams": describe_log_streams, "DeleteLogStream": delete_log_stream,
        "PutLogEvents": put_log_events, "GetLogEvents": get_log_events, "FilterLogEvents": filter_log_events,
    }
    return handlers


def _within_bytes(page: list[StoredLogEvent]) -> list[StoredLogEvent]:
    """The first events of ``page`` that fit a response (1 MB), at least one."""
    size = 0
    for i, event in enumerate(page):
        size += len(event.message) + _EVENT_OVERHEAD
        if size > _MAX_BYTES and i:
            return page[:i]
    return page
