"""The CloudWatch API's metric operations: ListMetrics, GetMetricStatistics, GetMetricData, PutMetricData.

Handlers parse and check the parameters (with CloudWatch's error codes), authorize a caller other than root
(``cloudwatch:<Operation>`` on ``*``: CloudWatch's metric actions have no resource-level permissions), call the
metrics service and shape the answer. The same handlers serve the RPCv2 CBOR protocol and the query protocol
(``api/rpc_api.py``). Periods are multiples of 60 s: lambdad keeps one-minute data only (no high-resolution
metrics). GetMetricData answers MetricStat queries; a metric math ``Expression`` is refused, saying so.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import time
from typing import Any, Mapping, Sequence

from lambdad.api.query_api import QueryContext, QueryHandler
from lambdad.iam.authorize import Authorizer
from lambdad.metrics.errors import (CloudWatchAccessDenied, InvalidNextToken, InvalidParameterCombination,
                                    InvalidParameterValue, MissingParameter)
from lambdad.metrics.recorder import dimensions_key
from lambdad.metrics.service import Datapoint, MetricsService

__all__ = ["cloudwatch_handlers"]

_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"p(\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)")
_QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")
_UNITS = ("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
          "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
          "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
          "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None")
_MAX_DATAPOINTS = 1440
_PAGE = 500
_TWO_WEEKS = 14 * 86400


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return float(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidParameterValue(f"The parameter {name} must be a timestamp.")


def _timestamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def _required(params: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name) in (None, ""):
            raise MissingParameter(f"The parameter {name} is required.")


def _dimensions(value: Any, where: str, filters: bool = False) -> list[tuple[str, str | None]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameterValue(f"The parameter {where} must be a list.")
    if len(value) > 30:
        raise InvalidParameterValue(f"The collection {where} must not have a size greater than 30.")
    out: list[tuple[str, str | None]] = []
    for i, item in enumerate(value, 1):
        name = item.get("Name") if isinstance(item, dict) else None
        val = item.get("Value") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise MissingParameter(f"The parameter {where}.member.{i}.Name is required.")
        if val is None and not filters:
            raise MissingParameter(f"The parameter {where}.member.{i}.Value is required.")
        if val is not None and (not isinstance(val, str) or not val):
            raise InvalidParameterValue(f"The parameter {where}.member.{i}.Value must be a non-empty string.")
        out.append((name, val))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise InvalidParameterValue(f"No Metric may specify the same dimension twice: {where} names one again.")
    return out


def _key(dimensions: Sequence[tuple[str, str | None]]) -> str:
    return dimensions_key((name, value or "") for name, value in dimensions)


def _period(value: Any, name: str = "Period") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidParameterValue(f"The parameter {name} must be greater than 0.")
    if value % 60:
        raise InvalidParameterValue(f"The parameter {name} must be a multiple of 60: lambdad keeps one-minute "
                                    "data only (no high-resolution metrics).")
    return value


def _range(params: Mapping[str, Any]) -> tuple[float, float]:
    start, end = _seconds(params["StartTime"], "StartTime"), _seconds(params["EndTime"], "EndTime")
    if start >= end:
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    return start, end


def _percentiles(values: Sequence[Any], where: str) -> list[str]:
    for value in values:
        if not isinstance(value, str) or _PERCENTILE.fullmatch(value) is None or float(value[1:]) <= 0:
            raise InvalidParameterValue(f"The value {value} for parameter {where} is not supported.")
    return list(values)


def _datapoint(point: Datapoint, statistics: Sequence[str], extended: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"Timestamp": _timestamp(point.timestamp), "Unit": point.unit}
    for name in statistics:
        out[name] = point.statistic(name)
    if extended:
        values = {name: point.statistic(name) for name in extended}
        out["ExtendedStatistics"] = {k: v for k, v in values.items() if v is not None}
    return out


def _metric(item: tuple[str, str, str]) -> dict[str, Any]:
    namespace, name, dims = item
    return {"Namespace": namespace, "MetricName": name,
            "Dimensions": [{"Name": n, "Value": v} for n, v in json.loads(dims)]}


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"lambdad:{offset}".encode()).decode()


def _offset(token: Any) -> int:
    if token in (None, ""):
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "lambdad":
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidNextToken("The service returned an invalid next token.") from exc


def cloudwatch_handlers(service: MetricsService, authorizer: Authorizer) -> dict[str, QueryHandler]:
    def authorize(ctx: QueryContext, operation: str) -> None:
        authorizer.check(ctx.principal, f"cloudwatch:{operation}", "*", source_ip=ctx.source_ip,
                         denied=CloudWatchAccessDenied)

    async def list_metrics(ctx: QueryContext, params: dict[str, Any]) -> Mapping[str, Any]:
        authorize(ctx, "ListMetrics")
        filters = _dimensions(params.get("Dimensions"), "Dimensions", filters=True)
        recent = params.get("RecentlyActive")
        if recent not in (None, "PT3H"):
            raise InvalidParameterValue(f"The value {recent} for parameter RecentlyActive is not valid: PT3H.")
        found = await service.list_metrics(params.get("Namespace") or None, params.get("MetricName") or None,
                                           recently_active=recent == "PT3H")
        if filters:
            def matches(dims: str) -> bool:
                have = dict(json.loads(dims))
                return all(name in have and (value is None or have[name] == value) for name, value in filters)
            found = [m for m in found if matches(m[2])]
        offset = _offset(params.get("NextToken"))
        page = found[offset:offset + _PAGE]
        out: dict[str, Any] = {"Metrics": [_metric(m) for m in page]}
        if offset + _PAGE < len(found):
            out["NextToken"] = _token(offset + _PAGE)
        return out

    async def get_metric_statistics(ctx: QueryContext, params: dict[str, Any]) -> Mapping[str, Any]:
        authorize(ctx, "GetMetricStatistics")
        _required(params, "Namespace", "MetricName", "StartTime", "EndTime", "Period")
        statistics = list(params.get("Statistics") or [])
        extended = _percentiles(params.get("ExtendedStatistics") or [], "ExtendedStatistics")
        if not statistics and not extended:
            raise MissingParameter("Must specify either Statistics or ExtendedStatistics, but not both.")
        if statistics and extended:
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics, but not both.")
        if len(statistics) > 5 or len(extended) > 10:
            raise InvalidParameterValue("At most 5 Statistics and 10 ExtendedStatistics may be asked for.")
        for i, name in enumerate(statistics, 1):
            if name not in _STATISTICS:
                raise InvalidParameterValue(f"The parameter Statistics.member.{i} must be a value in the set "
                                            f"[ {', '.join(_STATISTICS)} ].")
        start, end = _range(params)
        period = _period(params["Period"])
        if math.ceil((end - start) / period) > _MAX_DATAPOINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {math.ceil((end - start) / period):,} datapoints, which exceeds the "
                f"limit of {_MAX_DATAPOINTS:,}. You may reduce the datapoints requested by increasing Period, or "
                "decreasing the time range.")
        unit = params.get("Unit")
        if unit is not None and unit not in _UNITS:
            raise InvalidParameterValue(f"The parameter Unit must be a value in the set [ {', '.join(_UNITS)} ].")
        dims = _dimensions(params.get("Dimensions"), "Dimensions")
        points = await service.statistics(params["Namespace"], params["MetricName"], _key(dims), start, end, period,
                                          bool(extended), unit)
        return {"Label": params["MetricName"], "Datapoints": [_datapoint(p, statistics, extended) for p in points]}

    async def get_metric_data(ctx: QueryContext, params: dict[str, Any]) -> Mapping[str, Any]:
        authorize(ctx, "GetMetricData")
        _required(params, "MetricDataQueries", "StartTime", "EndTime")
        queries = params["MetricDataQueries"]
        if not isinstance(queries, list) or not queries:
            raise MissingParameter("The parameter MetricDataQueries is required.")
        if len(queries) > 500:
            raise InvalidParameterValue("The collection MetricDataQueries must not have a size greater than 500.")
        start, end = _range(params)
        ascending = params.get("ScanBy") == "TimestampAscending"
        if params.get("ScanBy") not in (None, "TimestampAscending", "TimestampDescending"):
            raise InvalidParameterValue("The parameter ScanBy must be TimestampAscending or TimestampDescending.")
        _offset(params.get("NextToken"))  # every result comes in one answer: a token is only checked
        seen: set[str] = set()
        results = []
        for i, query in enumerate(queries, 1):
            where = f"MetricDataQueries.member.{i}"
            if not isinstance(query, dict):
                raise InvalidParameterValue(f"The parameter {where} must be a structure.")
            query_id = query.get("Id")
            if not isinstance(query_id, str) or _QUERY_ID.fullmatch(query_id) is None:
                raise InvalidParameterValue(f"The value {query_id} for parameter {where}.Id is not valid: it must "
                                            "start with a lowercase letter, then letters, digits and underscores.")
            if query_id in seen:
                raise InvalidParameterValue(f"The value {query_id} for parameter {where}.Id is used more than once.")
            seen.add(query_id)
            if query.get("Expression") is not None:
                raise InvalidParameterValue(f"The parameter {where}.Expression is not supported by this lambdad "
                                            "server: metric math and Metrics Insights queries are not implemented; "
                                            "use MetricStat queries.")
            stat = query.get("MetricStat")
            if not isinstance(stat, dict):
                raise MissingParameter(f"The parameter {where}.MetricStat is required (or Expression).")
            metric = stat.get("Metric")
            if not isinstance(metric, dict) or not metric.get("Namespace") or not metric.get("MetricName"):
                raise MissingParameter(f"The parameter {where}.MetricStat.Metric.Namespace and MetricName are "
                                       "required.")
            statistic = stat.get("Stat")
            if statistic not in _STATISTICS and (not isinstance(statistic, str)
                                                 or _PERCENTILE.fullmatch(statistic) is None):
                raise InvalidParameterValue(f"The value {statistic} for parameter {where}.MetricStat.Stat is not "
                                            "supported.")
            period = _period(stat.get("Period"), f"{where}.MetricStat.Period")
            unit = stat.get("Unit")
            dims = _dimensions(metric.get("Dimensions"), f"{where}.MetricStat.Metric.Dimensions")
            points = await service.statistics(metric["Namespace"], metric["MetricName"], _key(dims), start, end,
                                              period, statistic.startswith("p"), unit)
            values = [(p.timestamp, p.statistic(statistic)) for p in points]
            pairs = [(t, v) for t, v in values if v is not None]
            if not ascending:
                pairs.reverse()
            if query.get("ReturnData", True) is False:
                continue
            results.append({"Id": query_id, "Label": query.get("Label") or metric["MetricName"],
                            "Timestamps": [_timestamp(t) for t, _ in pairs], "Values": [v for _, v in pairs],
                            "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}

    async def put_metric_data(ctx: QueryContext, params: dict[str, Any]) -> Mapping[str, Any]:
        authorize(ctx, "PutMetricData")
        _required(params, "Namespace")
        namespace = params["Namespace"]
        if not isinstance(namespace, str) or namespace.startswith("AWS/") or len(namespace) > 255:
            raise InvalidParameterValue(f"The value {namespace} for parameter Namespace is invalid.")
        data = params.get("MetricData") or []
        if not isinstance(data, list) or not data:
            raise MissingParameter("The parameter MetricData is required.")
        if len(data) > 1000:
            raise InvalidParameterValue("The collection MetricData must not have a size greater than 1000.")
        now = time.time()
        checked = []
        for i, datum in enumerate(data, 1):
            where = f"MetricData.member.{i}"
            if not isinstance(datum, dict) or not datum.get("MetricName"):
                raise MissingParameter(f"The parameter {where}.MetricName is required.")
            dims = _dimensions(datum.get("Dimensions"), f"{where}.Dimensions")
            unit = datum.get("Unit") or "None"
            if unit not in _UNITS:
                raise InvalidParameterValue(f"The parameter {where}.Unit must be a value in the set "
                                            f"[ {', '.join(_UNITS)} ].")
            when = _seconds(datum["Timestamp"], f"{where}.Timestamp") if datum.get("Timestamp") is not None else now
            if when < now - _TWO_WEEKS or when > now + 7200:
                raise InvalidParameterValue(f"The parameter {where}.Timestamp must specify a time no more than two "
                                            "weeks in the past and no more than two hours in the future.")
            value, values, summary = datum.get("Value"), datum.get("Values"), datum.get("StatisticValues")
            counts = datum.get("Counts")
            given = [n for n, v in (("Value", value), ("Values", values), ("StatisticValues", summary))
                     if v is not None]
            if len(given) > 1:
                raise InvalidParameterCombination(f"The parameters {where}.{given[0]} and {where}.{given[1]} are "
                                                  "mutually exclusive and you have specified both.")
            if not given:
                raise MissingParameter(f"The parameter {where}.Value, Values or StatisticValues is required.")
            if counts is not None and (values is None or len(counts) != len(values)):
                raise InvalidParameterValue(f"The parameters {where}.Values and {where}.Counts must be of the same "
                                            "size.")
            for number in ([value] if value is not None else list(values or []) + list(counts or [])):
                if not isinstance(number, (int, float)) or isinstance(number, bool) or not math.isfinite(number):
                    raise InvalidParameterValue(f"The value {number} for parameter {where} is not a finite number.")
            if summary is not None:
                fields = [summary.get(k) for k in ("SampleCount", "Sum", "Minimum", "Maximum")]
                if any(not isinstance(f, (int, float)) or isinstance(f, bool) for f in fields):
                    raise MissingParameter(f"The parameter {where}.StatisticValues needs SampleCount, Sum, Minimum "
                                           "and Maximum.")
                if fields[0] <= 0 or fields[2] > fields[3]:
                    raise InvalidParameterValue(f"The parameter {where}.StatisticValues is not consistent: "
                                                "SampleCount must be positive and Minimum at most Maximum.")
            checked.append((datum["MetricName"], _key(dims), unit, when, value, values, counts, summary))
        recorder = service.recorder
        for name, dims_key, unit, when, value, values, counts, summary in checked:
            if summary is not None:
                recorder.add_summary(namespace, name, dims_key, unit, float(summary["SampleCount"]),
                                     float(summary["Sum"]), float(summary["Minimum"]), float(summary["Maximum"]), when)
            else:
                recorder.add(namespace, name, (dims_key,), unit, [float(v) for v in (values or [value])],
                             [float(c) for c in counts] if counts is not None else None, when)
        return {}

    return {"ListMetrics": list_metrics, "GetMetricStatistics": get_metric_statistics,
            "GetMetricData": get_metric_data, "PutMetricData": put_metric_data}
