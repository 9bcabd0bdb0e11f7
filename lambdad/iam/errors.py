"""IAM's and STS's errors, by the codes their APIs answer (``Error.Code`` of the query protocol's XML)."""

from __future__ import annotations

from lambdad.errors import LambdaError

__all__ = ["IamError", "NoSuchEntity", "EntityAlreadyExists", "DeleteConflict", "LimitExceeded",
           "MalformedPolicyDocument", "InvalidInput", "IamValidationError", "StsAccessDenied", "ExpiredToken",
           "IamServiceFailure"]


class IamError(LambdaError):
    error_type = "Sender"


class NoSuchEntity(IamError):
    name, status = "NoSuchEntity", 404


class EntityAlreadyExists(IamError):
    name, status = "EntityAlreadyExists", 409


class DeleteConflict(IamError):
    name, status = "DeleteConflict", 409


class LimitExceeded(IamError):
    name, status = "LimitExceeded", 409


class MalformedPolicyDocument(IamError):
    name, status = "MalformedPolicyDocument", 400


class InvalidInput(IamError):
    name, status = "InvalidInput", 400


class IamValidationError(IamError):
    name, status = "ValidationError", 400


class StsAccessDenied(IamError):
    name, status = "AccessDenied", 403


class ExpiredToken(IamError):
    name, status = "ExpiredToken", 400


class IamServiceFailure(LambdaError):
    name, status = "ServiceFailure", 500
    error_type = "Receiver"
