"""Whether a resource policy lets a principal take an action: Lambda's resource-policy statements, matched.

A statement allows ``action`` to ``principal`` when

- its Effect is ``Allow``;
- one of its Actions matches ``action``, case-insensitively, ``*`` and ``?`` as wildcards (``lambda:*``,
  ``lambda:Get*``, ``*``), as IAM matches actions;
- its Principal is ``*``, or its ``AWS`` principals include ``*``, the principal's ARN (a function's execution
  role, a ``lambdad keys`` user) or its account (``arn:aws:iam::<account>:root``, how AddPermission stores a
  bare account id, or the bare id);
- and it has no Condition: the keys AddPermission can set (source ARN or account, organization, function URL)
  are never present on a direct API call, so such a statement never matches one.

Service principals never match: no AWS service calls lambdad. There are no Deny statements to weigh (Lambda's
AddPermission writes only Allow statements), and nothing but resource policies grants anything yet.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any, Iterable, Mapping

from lambdad.auth.principals import Principal

__all__ = ["allows"]


@functools.lru_cache(maxsize=256)
def _action_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern.lower()))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches_action(statement: Mapping[str, Any], action: str) -> bool:
    wanted = action.lower()
    return any(isinstance(a, str) and _action_pattern(a).match(wanted) for a in _listed(statement.get("Action")))


def _matches_principal(statement: Mapping[str, Any], principal: Principal) -> bool:
    named = statement.get("Principal")
    if named == "*":
        return True
    if not isinstance(named, dict):
        return False
    accepted = {"*", principal.arn, principal.account, f"arn:aws:iam::{principal.account}:root"}
    return any(p in accepted for p in _listed(named.get("AWS", [])))


def allows(statements: Iterable[Mapping[str, Any]], principal: Principal, action: str) -> bool:
    """Whether one of ``statements`` allows ``action`` to ``principal`` (see the module's rules)."""
    return any(
        s.get("Effect") == "Allow" and "Condition" not in s and _matches_action(s, action)
        and _matches_principal(s, principal)
        for s in statements
    )
