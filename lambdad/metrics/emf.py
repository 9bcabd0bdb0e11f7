"""Function log lines in CloudWatch's embedded metric format (EMF) become custom metrics, as CloudWatch Logs makes
them: a JSON object whose ``_aws`` member holds ``Timestamp`` (epoch milliseconds) and ``CloudWatchMetrics``, a list
of directives — ``Namespace``, ``Dimensions`` (a list of dimension sets, each a list of up to 30 names) and
``Metrics`` (``Name``, optional ``Unit``). Each metric's value is the root member of its name (a number, or a list
of up to 100 numbers); each dimension's value the root member of its name (a string). A document that breaks the
specification yields no metric (its line is kept in the log all the same).

The log sink (``logs/sink.py``) hands over the lines that may be EMF — starting with ``{`` and containing
``"_aws"``, a cheap test — as it writes its batch: nothing of this runs on the invoke path.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from lambdad.metrics.recorder import MetricsRecorder, dimensions_key

__all__ = ["maybe_emf", "extract_emf", "record_emf"]

log = logging.getLogger(__name__)

_MAX_VALUES = 100
_MAX_DIMENSIONS = 30
_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
          "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
          "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
          "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def maybe_emf(message: str) -> bool:
    """The cheap test: may this line be an EMF document?"""
    return message[:1] == "{" and '"_aws"' in message


def extract_emf(message: str) -> list[tuple[str, str, str, str, list[float], float]]:
    """The metric values of an EMF document: (namespace, metric, dimensions key, unit, values, timestamp in
    seconds); nothing when the line is not a valid document."""
    try:
        root = json.loads(message)
    except ValueError:
        return []
    if not isinstance(root, dict):
        return []
    meta = root.get("_aws")
    if not isinstance(meta, dict):
        return []
    directives, stamp = meta.get("CloudWatchMetrics"), meta.get("Timestamp")
    if not isinstance(directives, list) or not isinstance(stamp, (int, float)) or not _number(stamp):
        return []
    out: list[tuple[str, str, str, str, list[float], float]] = []
    for directive in directives:
        found = _directive(root, directive, float(stamp) / 1000.0)
        if found is None:
            return []  # an invalid directive: the document yields nothing
        out.extend(found)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _directive(root: dict[str, Any], directive: Any,
               when: float) -> list[tuple[str, str, str, str, list[float], float]] | None:
    if not isinstance(directive, dict):
        return None
    namespace, sets, metrics = directive.get("Namespace"), directive.get("Dimensions"), directive.get("Metrics")
    if not isinstance(namespace, str) or not namespace or namespace.startswith("AWS/"):
        return None
    if not isinstance(sets, list) or not isinstance(metrics, list):
        return None
    keys = []
    for names in sets:
        if not isinstance(names, list) or len(names) > _MAX_DIMENSIONS:
            return None
        pairs = []
        for name in names:
            value = root.get(name) if isinstance(name, str) else None
            if not isinstance(value, str) or not value:
                return None  # a dimension's value must be a string member of the root
            pairs.append((name, value))
        keys.append(dimensions_key(pairs))
    if not sets:
        keys.append(dimensions_key([]))
    out = []
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            return None
        name, unit = metric["Name"], metric.get("Unit", "None")
        if unit not in _UNITS:
            return None
        raw = root.get(name)
        values = raw if isinstance(raw, list) else [raw]
        numbers = [float(v) for v in values if isinstance(v, (int, float)) and _number(v)]
        if not values or len(values) > _MAX_VALUES or len(numbers) != len(values):
            return None
        for key in keys:
            out.append((namespace, name, key, unit, numbers, when))
    return out


def record_emf(recorder: MetricsRecorder, message: str) -> None:
    """Record the metrics of an EMF line, if it is one."""
    for namespace, name, dims, unit, values, when in extract_emf(message):
        recorder.add(namespace, name, (dims,), unit, values, None, when)
