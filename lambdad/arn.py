"""Function names, ARNs and qualifiers: parsing and formatting.

A function can be named three ways (as on Lambda): ``my-function``, the partial ARN
``123456789012:function:my-function`` or the full ARN ``arn:aws:lambda:us-east-1:123456789012:function:my-function``;
the partial and full forms may end with ``:qualifier`` (a version number, ``$LATEST`` or an alias name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdad.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    validation_error,
    violation,
)

__all__ = [
    "FunctionRef",
    "parse_function_name",
    "parse_function_arn",
    "function_arn",
    "is_version_number",
    "is_alias_name",
    "LATEST",
    "ALIAS_PATTERN",
]

LATEST = "$LATEST"

# The pattern Lambda documents for FunctionName (botocore's model carries the same).
_FUNCTION_NAME = re.compile(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_PATTERN_TEXT = _FUNCTION_NAME.pattern
_QUALIFIER = re.compile(r"(|[a-zA-Z0-9$_-]+)")
_VERSION_NUMBER = re.compile(r"[0-9]+")
# CreateAlias's Name pattern (botocore's model): not all digits, else letters, digits, '-' and '_'.
ALIAS_PATTERN = "(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
_ALIAS = re.compile(r"[a-zA-Z0-9_-]+")
# TagResource's Resource pattern for functions (the model's TaggableResource, function branch).
_FUNCTION_ARN = re.compile(
    r"arn:(aws[a-zA-Z-]*):lambda:([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}):(\d{12}):"
    r"function:([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)


@dataclass(frozen=True)
class FunctionRef:
    """A function named by a caller: its bare name and the qualifier it carried, if any."""

    name: str
    qualifier: str | None


def is_version_number(qualifier: str) -> bool:
    """A published version's qualifier: digits only (``$LATEST`` is not a number)."""
    return _VERSION_NUMBER.fullmatch(qualifier) is not None


def is_alias_name(qualifier: str) -> bool:
    """Whether ``qualifier`` is shaped like an alias name (letters, digits, ``-``, ``_``; not all digits)."""
    return _ALIAS.fullmatch(qualifier) is not None and not is_version_number(qualifier)


def function_arn(region: str, account_id: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def parse_function_name(
    value: str,
    *,
    region: str,
    account_id: str,
    qualifier: str | None = None,
    allow_qualifier: bool = True,
    member: str = "functionName",
) -> FunctionRef:
    """Parse a FunctionName parameter; ``qualifier`` is a separate Qualifier parameter, if the call had one."""
    m = _FUNCTION_NAME.fullmatch(value)
    if m is None:
        raise validation_error(violation(member, f"Member must satisfy regular expression pattern: {_PATTERN_TEXT}",
                                         value))
    arn_region = m.group(3)
    arn_account = m.group(5)
    name = m.group(7)
    arn_qualifier = m.group(9)
    if len(name) > 64:
        raise validation_error(violation(member, "Member must have length less than or equal to 64", value))
    if arn_region is not None and arn_region[:-1] != region:
        raise ResourceNotFoundException(f"Functions from '{arn_region[:-1]}' are not reachable in this region ('{region}')")
    if arn_account is not None and arn_account[:-1] != account_id:
        raise ResourceNotFoundException(f"Function not found: {function_arn(region, arn_account[:-1], name)}")
    if arn_qualifier is not None:
        if not allow_qualifier:
            raise InvalidParameterValueException(f"Unsupported FunctionName format: {value}. Qualifiers are not allowed here.")
        if qualifier is not None and qualifier != arn_qualifier:
            raise InvalidParameterValueException("The derived qualifier from the function name does not match the specified qualifier.")
        qualifier = arn_qualifier
    if qualifier is not None and not _QUALIFIER.fullmatch(qualifier):
        raise validation_error(violation(
            "qualifier", "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)", qualifier))
    return FunctionRef(name=name, qualifier=qualifier or None)


def parse_function_arn(value: str, *, region: str, account_id: str) -> FunctionRef | None:
    """A full function ARN (as TagResource takes it) as a reference; None when ``value`` is not one.

    An ARN of another region or account names a function that does not exist here: ResourceNotFoundException.
    """
    m = _FUNCTION_ARN.fullmatch(value)
    if m is None:
        return None
    arn_region, arn_account, name, qualifier = m.group(2), m.group(7), m.group(8), m.group(10)
    if arn_region != region or arn_account != account_id:
        raise ResourceNotFoundException(f"Function not found: {value}")
    return FunctionRef(name=name, qualifier=qualifier)
