"""A function's LoggingConfig (Lambda's advanced logging controls): its log format, the levels that filter its
application and system records, and its log group. Pure: the functions service resolves what a request gives
against what the function has, and the sandbox reads the result (``sandbox/json_log.py``).

Rules, as Lambda applies them:

- ``LogFormat`` is ``Text`` (the default) or ``JSON``. The levels apply to JSON only: a request that leaves the
  format Text and names a level fails with ``InvalidParameterValueException`` ("LogLevel is not supported when
  LogFormat is set to "Text"..."); a function switched to Text loses its levels.
- With JSON, ``ApplicationLogLevel`` (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) and ``SystemLogLevel`` (DEBUG|INFO|WARN)
  default to INFO; a level the request does not name keeps the function's current one.
- ``LogGroup`` (1-512 characters of ``[\\.\\-_/#A-Za-z0-9]``) defaults to ``/aws/lambda/<function name>``.
- A value outside an enum or the pattern is a ``ValidationException`` worded as AWS's front end words it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdad.errors import InvalidParameterValueException, validation_error, violation

__all__ = ["APPLICATION_LEVELS", "LOG_FORMATS", "LoggingSettings", "SYSTEM_LEVELS", "resolve"]

LOG_FORMATS = ("JSON", "Text")
APPLICATION_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_LEVEL = "INFO"
_LOG_GROUP = re.compile(r"[\.\-_/#A-Za-z0-9]+")
_TEXT_WITH_LEVEL = ('LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request '
                    'or change the LogFormat to "JSON" and try again.')


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """A function's stored logging settings: levels are "" with the Text format."""

    log_format: str = "Text"
    application_log_level: str = ""
    system_log_level: str = ""
    log_group: str = ""  # "" is the default group, /aws/lambda/<name>


def _check_enum(value: str, member: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise validation_error(violation(f"loggingConfig.{member}",
                                         f"Member must satisfy enum value set: [{', '.join(allowed)}]", value))


def resolve(current: LoggingSettings, log_format: str | None, application_log_level: str | None,
            system_log_level: str | None, log_group: str | None) -> LoggingSettings:
    """The settings after a request that gives the members not None, on a function that has ``current``."""
    if log_format is not None:
        _check_enum(log_format, "logFormat", LOG_FORMATS)
    if application_log_level is not None:
        _check_enum(application_log_level, "applicationLogLevel", APPLICATION_LEVELS)
    if system_log_level is not None:
        _check_enum(system_log_level, "systemLogLevel", SYSTEM_LEVELS)
    if log_group is not None and not (_LOG_GROUP.fullmatch(log_group) and len(log_group) <= 512):
        raise validation_error(violation(
            "loggingConfig.logGroup", "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
            log_group))
    fmt = log_format or current.log_format
    group = current.log_group if log_group is None else log_group
    if fmt == "Text":
        if application_log_level is not None or system_log_level is not None:
            raise InvalidParameterValueException(_TEXT_WITH_LEVEL)
        return LoggingSettings("Text", "", "", group)
    return LoggingSettings(
        "JSON",
        application_log_level or current.application_log_level or DEFAULT_LEVEL,
        system_log_level or current.system_log_level or DEFAULT_LEVEL,
        group,
    )
