"""Checking members against the regular expressions of botocore's model, with AWS's validation messages.

``api.protocol`` leaves patterns to the operations (Lambda words some violations its own way); the operations
that want the model's patterns checked as such call these.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import botocore.session

from lambdad.api.protocol import member_pattern
from lambdad.errors import validation_error, violation

__all__ = ["pattern_violations", "raise_violations"]

_MODEL = botocore.session.get_session().get_service_model("lambda")


def pattern_violations(operation: str, params: Mapping[str, Any], members: tuple[tuple[str, str], ...]) -> list[str]:
    """One message per ``(member, path in messages)`` whose value does not match the member's pattern."""
    op = _MODEL.operation_model(operation)
    errors = []
    for member, path in members:
        value = params.get(member)
        pattern = member_pattern(op, member)
        if value is not None and pattern is not None and re.fullmatch(pattern, value) is None:
            errors.append(violation(path, f"Member must satisfy regular expression pattern: {pattern}", value))
    return errors


def raise_violations(errors: list[str]) -> None:
    """Raise AWS's "N validation error(s) detected: …" for ``errors``, if any."""
    if errors:
        raise validation_error(*errors)
