"""EventBridge Scheduler's operations (service ``scheduler``, REST-JSON, served by ``api/rest_api.py``): thin
handlers that ask the authorizer and call ``Schedules``.

A caller other than root needs ``scheduler:<Operation>`` on the schedule
(``arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>``) or group
(``arn:aws:scheduler:<region>:<account>:schedule-group/<group>``) it names — ``*`` for the List operations — and,
to create or update a schedule, ``iam:PassRole`` on its Target.RoleArn (``iam:PassedToService`` =
``scheduler.amazonaws.com``), as on AWS. Tag operations are not implemented (they answer NotImplemented).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from lambdad.api.json_api import JsonContext, JsonHandler
from lambdad.iam.authorize import Authorizer
from lambdad.schedules.expressions import UTC
from lambdad.schedules.service import DEFAULT_GROUP, Schedules, validation

__all__ = ["scheduler_handlers"]

_DATES = ("StartDate", "EndDate", "CreationDate", "LastModificationDate")


def _shown(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (dt.datetime.fromtimestamp(v, UTC) if k in _DATES and v is not None else v)
            for k, v in config.items() if k != "Tags"}


def _page(items: list[dict[str, Any]], params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    token = params.get("NextToken")
    start = 0
    if token is not None:
        if not str(token).isdigit():
            raise validation("The NextToken is not valid.")
        start = int(token)
    size = int(params.get("MaxResults") or 100)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def scheduler_handlers(schedules: Schedules, authorizer: Authorizer) -> dict[str, JsonHandler]:
    def allow(ctx: JsonContext, operation: str, resource: str) -> None:
        authorizer.check(ctx.principal, f"scheduler:{operation}", resource, source_ip=ctx.source_ip)

    def schedule_arn(params: Mapping[str, Any]) -> str:
        return schedules.schedule_arn(params.get("GroupName") or DEFAULT_GROUP, params["Name"])

    def pass_role(ctx: JsonContext, params: Mapping[str, Any]) -> None:
        authorizer.check(ctx.principal, "iam:PassRole", params["Target"]["RoleArn"], source_ip=ctx.source_ip,
                         context={"iam:PassedToService": "scheduler.amazonaws.com"})

    async def create_schedule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "CreateSchedule", schedule_arn(params))
        pass_role(ctx, params)
        return {"ScheduleArn": await schedules.create(params)}

    async def update_schedule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "UpdateSchedule", schedule_arn(params))
        pass_role(ctx, params)
        return {"ScheduleArn": await schedules.update(params)}

    async def get_schedule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "GetSchedule", schedule_arn(params))
        return _shown(await schedules.get(params["Name"], params.get("GroupName")))

    async def delete_schedule(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "DeleteSchedule", schedule_arn(params))
        await schedules.delete(params["Name"], params.get("GroupName"))
        return {}

    async def list_schedules(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "ListSchedules", "*")
        found = await schedules.find(params.get("GroupName"), params.get("NamePrefix"), params.get("State"))
        page, token = _page(found, params)
        summaries = [{"Arn": c["Arn"], "Name": c["Name"], "GroupName": c["GroupName"], "State": c["State"],
                      "CreationDate": c["CreationDate"], "LastModificationDate": c["LastModificationDate"],
                      "Target": {"Arn": c["Target"]["Arn"]}} for c in page]
        return {"Schedules": [_shown(s) for s in summaries], "NextToken": token}

    async def create_schedule_group(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "CreateScheduleGroup", schedules.group_arn(params["Name"]))
        return {"ScheduleGroupArn": await schedules.create_group(params["Name"], list(params.get("Tags") or []))}

    async def get_schedule_group(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "GetScheduleGroup", schedules.group_arn(params["Name"]))
        return _shown(await schedules.get_group(params["Name"]))

    async def delete_schedule_group(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "DeleteScheduleGroup", schedules.group_arn(params["Name"]))
        await schedules.delete_group(params["Name"])
        return {}

    async def list_schedule_groups(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        allow(ctx, "ListScheduleGroups", "*")
        page, token = _page(await schedules.list_groups(params.get("NamePrefix")), params)
        return {"ScheduleGroups": [_shown(g) for g in page], "NextToken": token}

    return {
        "CreateSchedule": create_schedule, "UpdateSchedule": update_schedule, "GetSchedule": get_schedule,
        "DeleteSchedule": delete_schedule, "ListSchedules": list_schedules,
        "CreateScheduleGroup": create_schedule_group, "GetScheduleGroup": get_schedule_group,
        "DeleteScheduleGroup": delete_schedule_group, "ListScheduleGroups": list_schedule_groups,
    }
