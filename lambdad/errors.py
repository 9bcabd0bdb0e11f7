"""lambdad's errors, under one root: ``LambdadError``.

    LambdadError                     every error lambdad raises, so that a caller can catch "anything of ours"
    ├── (internal errors, defined where they arise: NetworkError, SpawnError, EnvironmentLost, RuntimeApiError,
    │    RuntimeUnavailable, DataDirLocked, AccessKeyError; jail.py and the fork server stand alone, outside)
    └── LambdaError — the AWS error tree: every error lambdad returns to a client is one of these

    LambdaError                      (name, HTTP status, message)
    ├── ServiceException                     500
    ├── ResourceNotFoundException            404
    ├── ResourceConflictException            409
    ├── ProvisionedConcurrencyConfigNotFoundException  404
    ├── ResourceInUseException               400
    ├── PreconditionFailedException          412
    ├── InvalidParameterValueException       400
    ├── ValidationException                  400
    ├── InvalidRequestContentException       400
    ├── UnsupportedMediaTypeException        415
    ├── RequestTooLargeException             413
    ├── CodeStorageExceededException         400
    ├── TooManyRequestsException             429  (lower-case ``message``, ``Reason``, Retry-After)
    ├── UnknownOperationException            404
    ├── InvalidSignatureException            403
    ├── IncompleteSignatureException         403
    ├── UnrecognizedClientException          403
    ├── MissingAuthenticationTokenException  403
    ├── AccessDeniedException                403
    ├── InvalidRuntimeException              502
    └── NotImplementedException              501  (an operation lambdad does not implement yet)

The HTTP layer renders any ``LambdaError`` as a JSON body with ``Type`` and ``Message`` and the name in the
``x-amzn-ErrorType`` header, which is where botocore reads the error code. Foreign errors are translated at the
boundary (``raise InvalidParameterValueException(...) from exc``); anything else becomes a ServiceException.
"""

from __future__ import annotations

__all__ = [
    "violation",
    "validation_error",
    "LambdadError",
    "LambdaError",
    "ServiceException",
    "ResourceNotFoundException",
    "ResourceConflictException",
    "ProvisionedConcurrencyConfigNotFoundException",
    "ResourceInUseException",
    "PreconditionFailedException",
    "InvalidParameterValueException",
    "ValidationException",
    "InvalidRequestContentException",
    "UnsupportedMediaTypeException",
    "RequestTooLargeException",
    "CodeStorageExceededException",
    "TooManyRequestsException",
    "UnknownOperationException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
    "AccessDeniedException",
    "InvalidRuntimeException",
    "NotImplementedException",
]


class LambdadError(Exception):
    """The root of every error lambdad raises (not of those it lets through from the standard library)."""


class LambdaError(LambdadError):
    """An error with an AWS exception name, an HTTP status and a message."""

    name = "ServiceException"
    status = 500
    error_type = "Service"  # the ``Type`` field of the body: "User" for client faults, "Service" otherwise

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        return {"Type": self.error_type, "Message": self.message}

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": self.name}


class _UserError(LambdaError):
    error_type = "User"


class ServiceException(LambdaError):
    name, status = "ServiceException", 500


class ResourceNotFoundException(_UserError):
    name, status = "ResourceNotFoundException", 404


class ResourceConflictException(_UserError):
    name, status = "ResourceConflictException", 409


class ProvisionedConcurrencyConfigNotFoundException(_UserError):
    """Lambda's model spells this body's message field in lower case."""

    name, status = "ProvisionedConcurrencyConfigNotFoundException", 404

    def body(self) -> dict[str, str]:
        return {"Type": self.error_type, "message": self.message}


class ResourceInUseException(_UserError):
    name, status = "ResourceInUseException", 400


class PreconditionFailedException(_UserError):
    name, status = "PreconditionFailedException", 412


class InvalidParameterValueException(_UserError):
    name, status = "InvalidParameterValueException", 400


class ValidationException(_UserError):
    name, status = "ValidationException", 400


class InvalidRequestContentException(_UserError):
    name, status = "InvalidRequestContentException", 400


class UnsupportedMediaTypeException(_UserError):
    name, status = "UnsupportedMediaTypeException", 415


class RequestTooLargeException(_UserError):
    name, status = "RequestTooLargeException", 413


class CodeStorageExceededException(_UserError):
    name, status = "CodeStorageExceededException", 400


class UnknownOperationException(_UserError):
    name, status = "UnknownOperationException", 404


class TooManyRequestsException(_UserError):
    """Throttling. Lambda spells this body's message field in lower case and adds a ``Reason``."""

    name, status = "TooManyRequestsException", 429

    def __init__(self, message: str, reason: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds

    def body(self) -> dict[str, str]:
        return {"Type": self.error_type, "message": self.message, "Reason": self.reason}

    def headers(self) -> dict[str, str]:
        return {"x-amzn-ErrorType": self.name, "Retry-After": str(self.retry_after_seconds)}


class InvalidSignatureException(_UserError):
    name, status = "InvalidSignatureException", 403


class IncompleteSignatureException(_UserError):
    """A SigV4 Authorization header or query string that does not parse (Lambda's common errors: 403)."""

    name, status = "IncompleteSignatureException", 403


class UnrecognizedClientException(_UserError):
    name, status = "UnrecognizedClientException", 403


class MissingAuthenticationTokenException(_UserError):
    name, status = "MissingAuthenticationTokenException", 403


class AccessDeniedException(_UserError):
    name, status = "AccessDeniedException", 403


class InvalidRuntimeException(LambdaError):
    name, status = "InvalidRuntimeException", 502


class NotImplementedException(LambdaError):
    name, status = "NotImplementedException", 501


_NO_VALUE = object()


def violation(path: str, constraint: str, value: object = _NO_VALUE) -> str:
    """One violated constraint, as AWS words it: ``Value '<value>' at '<path>' failed to satisfy constraint:
    <constraint>``; without ``value`` (a sensitive member, or a map's keys) ``Value at '<path>' ...``, and with
    None ``Value null at '<path>' ...``."""
    shown = "Value" if value is _NO_VALUE else "Value null" if value is None else f"Value '{value}'"
    return f"{shown} at '{path}' failed to satisfy constraint: {constraint}"


def validation_error(*violations: str) -> ValidationException:
    """AWS's ``N validation error(s) detected: <violation>; <violation>`` (see ``violation``): the one place
    that message is made."""
    n = len(violations)
    return ValidationException(f"{n} validation error{'s' if n != 1 else ''} detected: {'; '.join(violations)}")


def _subclasses(cls: type[LambdaError]) -> list[type[LambdaError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def rebuild(name: str, message: str, reason: str | None = None) -> LambdaError:
    """The error ``name`` with ``message`` as another node raised it (cluster/routing.py): the same class where
    lambdad has one, so that callers that tell errors apart (a throttle from a missing function) still can."""
    if name == TooManyRequestsException.name:
        return TooManyRequestsException(message, reason or "ConcurrentInvocationLimitExceeded")
    for cls in _subclasses(LambdaError):
        if cls.name == name and "__init__" not in cls.__dict__:
            return cls(message)
    return ServiceException(message)
