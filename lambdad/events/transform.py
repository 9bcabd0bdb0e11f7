"""What a rule's target receives: the event itself, or its ``Input``, ``InputPath`` or ``InputTransformer``.

EventBridge's rules, as its "Amazon EventBridge input transformation" page and the InputTransformer API reference
give them:

- **Paths** (InputPath, InputPathsMap values): JSON paths in dot notation from ``$`` — names of letters, digits,
  ``-``, ``_`` and ``/``, array indices ``[n]``, and the wildcard ``*`` (``.*`` or ``[*]``: every member, as a
  list). A path that names nothing gives nothing: InputPath then sends nothing (``null``), a template variable is
  not set.
- **Templates** (InputTemplate) are JSON (beginning ``{``, ``[`` or ``"``) or plain text (``<instance> is in state
  <state>``, the API reference's first example): in plain text each value is inserted as text. In JSON, ``<name>``
  is replaced by the variable ``name`` of InputPathsMap, or one of the
  predefined ``aws.events.rule-arn``, ``aws.events.rule-name``, ``aws.events.event.ingestion-time``,
  ``aws.events.event`` (the event without ``detail``) and ``aws.events.event.json`` (the whole event). Quoting
  follows the template: a placeholder outside a JSON string is replaced by the value as JSON (a string gets its
  quotes: ``{"id": <id>}`` gives ``{"id": "i-1"}``); inside a JSON string (``"<id> is <state>"``) a string is
  inserted as its text, and an object or array as its JSON with the inner quotes removed, as AWS does, so the
  result stays a valid string. Unlike AWS (which inserts text unescaped), a quote or backslash inside such a string
  value is escaped, so a value cannot break the template's JSON. A variable that is not set is replaced by nothing
  inside a string and by ``null`` outside one. A ``<...>`` that names no variable is left as written.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

__all__ = ["PREDEFINED", "InvalidPath", "check_path", "found", "read_path", "render_template", "template_variables"]

PREDEFINED = ("aws.events.rule-arn", "aws.events.rule-name", "aws.events.event.ingestion-time", "aws.events.event",
              "aws.events.event.json")
_STEP = re.compile(r"\.([A-Za-z0-9_\-/@:]+|\*)|\[(\d+|\*)\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_\-.]+)>")
_NOTHING = object()


class InvalidPath(ValueError):
    pass


def _steps(path: str) -> list[str | int]:
    if not path.startswith("$"):
        raise InvalidPath(path)
    steps: list[str | int] = []
    at = 1
    while at < len(path):
        m = _STEP.match(path, at)
        if m is None:
            raise InvalidPath(path)
        name, index = m.group(1), m.group(2)
        steps.append(name if name is not None else ("*" if index == "*" else int(index)))
        at = m.end()
    return steps


def check_path(path: str) -> bool:
    """Whether ``path`` is a JSON path EventBridge takes."""
    try:
        _steps(path)
    except InvalidPath:
        return False
    return True


def read_path(document: Any, path: str) -> Any:
    """The value ``path`` names in ``document``; ``_NOTHING`` (see ``found``) when it names nothing."""
    values = [document]
    wild = False
    for step in _steps(path):
        out: list[Any] = []
        for value in values:
            if step == "*":
                wild = True
                if isinstance(value, dict):
                    out.extend(value.values())
                elif isinstance(value, list):
                    out.extend(value)
            elif isinstance(step, int):
                if isinstance(value, list) and step < len(value):
                    out.append(value[step])
            elif isinstance(value, dict) and step in value:
                out.append(value[step])
        values = out
    if wild:
        return values
    return values[0] if values else _NOTHING


def found(value: Any) -> bool:
    return value is not _NOTHING


def template_variables(template: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(template)}


def _in_string_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":")).replace('"', "")
    return json.dumps(text)[1:-1]  # escaped for a JSON string, without its quotes


def render_template(template: str, variables: Mapping[str, Any]) -> str:
    """``template`` with its placeholders replaced (the module's quoting rules)."""
    if template.lstrip()[:1] not in ("{", "[", '"'):
        return _render_text(template, variables)
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        c = template[i]
        if c == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        elif c == "<":
            m = _PLACEHOLDER.match(template, i)
            if m is not None and m.group(1) in variables:
                value = variables[m.group(1)]
                if in_string:
                    out.append("" if value is _NOTHING else _in_string_text(value))
                else:
                    out.append("null" if value is _NOTHING else json.dumps(value))
                i = m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _render_text(template: str, variables: Mapping[str, Any]) -> str:
    """A plain-text template (``<instance> is in state <state>``): each value as text (a string as it is, anything
    else as JSON), nothing for a variable that is not set."""
    def value(m: re.Match[str]) -> str:
        if m.group(1) not in variables:
            return m.group(0)
        found_value = variables[m.group(1)]
        if found_value is _NOTHING:
            return ""
        return found_value if isinstance(found_value, str) else json.dumps(found_value)

    return _PLACEHOLDER.sub(value, template)
