"""Lambda's own checks on function configuration, with Lambda's error names and messages.

(Shape-level checks — required members, types, string lengths, numeric minimums — happen earlier, in
``api.protocol``, from botocore's model; this module adds what the model does not say or says differently.)
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from lambdad.errors import InvalidParameterValueException, ValidationException, validation_error, violation

__all__ = [
    "RESERVED_ENV_KEYS",
    "check_memory",
    "check_timeout",
    "check_ephemeral_storage",
    "check_environment",
    "check_runtime",
    "check_handler",
    "check_layers",
    "check_role",
    "check_architectures",
    "check_tracing_mode",
]

RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
)
_ENV_KEY = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
_ROLE = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
_LAYER_VERSION_ARN = re.compile(
    r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+"
)
ENV_LIMIT_BYTES = 4096


def _constraint(value: Any, member: str, constraint: str) -> ValidationException:
    return validation_error(violation(member, constraint, value))


def check_memory(value: int) -> None:
    if value < 128:
        raise _constraint(value, "memorySize", "Member must have value greater than or equal to 128")
    if value > 10240:
        raise _constraint(value, "memorySize", "Member must have value less than or equal to 10240")


def check_timeout(value: int) -> None:
    if value < 1:
        raise _constraint(value, "timeout", "Member must have value greater than or equal to 1")
    if value > 900:
        raise InvalidParameterValueException("Timeout value must be less than or equal to 900 seconds.")


def check_ephemeral_storage(value: int) -> None:
    if value < 512:
        raise _constraint(value, "ephemeralStorage.size", "Member must have value greater than or equal to 512")
    if value > 10240:
        raise _constraint(value, "ephemeralStorage.size", "Member must have value less than or equal to 10240")


def check_environment(variables: Mapping[str, str]) -> None:
    for key in variables:
        if not _ENV_KEY.fullmatch(key):
            raise validation_error(violation(
                "environment.variables",
                "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"))
    reserved = sorted(k for k in variables if k in RESERVED_ENV_KEYS)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(dict(variables), separators=(",", ":"))
    if len(measured.encode()) > ENV_LIMIT_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided exceeded the 4KB limit. String measured: " + measured[:200]
        )


def check_runtime(runtime: str, known: tuple[str, ...] | list[str], supported: tuple[str, ...]) -> None:
    if runtime not in known:
        raise _constraint(runtime, "runtime", f"Member must satisfy enum value set: [{', '.join(known)}]")
    if runtime not in supported:
        raise InvalidParameterValueException(
            f"The runtime parameter of {runtime} is not supported by this lambdad server. "
            f"Supported runtimes: {', '.join(supported)}"
        )


def check_handler(handler: str) -> None:
    if not handler or any(c.isspace() for c in handler):
        raise _constraint(handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+")


def check_role(role: str) -> None:
    if not _ROLE.fullmatch(role):
        raise _constraint(
            role, "role", "Member must satisfy regular expression pattern: "
            "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
        )


def check_layers(layers: list[str]) -> None:
    if len(layers) > 5:
        raise InvalidParameterValueException("Cannot reference more than 5 layers.")
    for arn in layers:
        if not _LAYER_VERSION_ARN.fullmatch(arn):
            raise _constraint(
                arn, "layers", "Member must satisfy regular expression pattern: "
                "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+"
            )
    if len({arn.rsplit(":", 1)[0] for arn in layers}) != len(layers):
        raise InvalidParameterValueException("Two different versions of the same layer are not allowed to be referenced in the same function.")


def check_architectures(architectures: list[str]) -> None:
    import platform

    native = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    for arch in architectures:
        if arch not in ("x86_64", "arm64"):
            raise _constraint(arch, "architectures", "Member must satisfy enum value set: [x86_64, arm64]")
        if arch != native:
            raise InvalidParameterValueException(
                f"This lambdad server runs on {native} and cannot run {arch} functions."
            )


def check_tracing_mode(mode: str) -> None:
    """TracingConfig's Mode: Active or PassThrough (docs/observability.md#traces)."""
    if mode not in ("Active", "PassThrough"):
        raise _constraint(mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")


def check_dead_letter_target(arn: str) -> None:
    """DeadLetterConfig.TargetArn: an SQS queue's or an SNS topic's ARN ("" clears it)."""
    parts = arn.split(":")
    if arn and not (len(parts) == 6 and parts[0] == "arn" and parts[2] in ("sqs", "sns") and parts[5]):
        raise InvalidParameterValueException(
            f"The target ARN {arn} of the dead-letter queue is not an SQS queue or an SNS topic.")
