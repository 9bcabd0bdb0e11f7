"""CloudWatch's errors, by the codes its API answers (the query protocol's ``Error.Code``; on the RPCv2 CBOR
protocol the ``x-amzn-query-error`` header, beside ``__type`` naming the modelled shape)."""

from __future__ import annotations

from lambdad.errors import LambdaError

__all__ = ["CloudWatchError", "InvalidParameterValue", "InvalidParameterCombination", "MissingParameter",
           "InvalidNextToken", "CloudWatchAccessDenied", "SHAPES"]


class CloudWatchError(LambdaError):
    error_type = "Sender"


class InvalidParameterValue(CloudWatchError):
    name, status = "InvalidParameterValue", 400


class InvalidParameterCombination(CloudWatchError):
    name, status = "InvalidParameterCombination", 400


class MissingParameter(CloudWatchError):
    name, status = "MissingParameter", 400


class InvalidNextToken(CloudWatchError):
    name, status = "InvalidNextToken", 400


class CloudWatchAccessDenied(CloudWatchError):
    name, status = "AccessDenied", 403


# the modelled error shapes, by code (``__type`` on the CBOR protocol)
SHAPES = {"InvalidParameterValue": "InvalidParameterValueException",
          "InvalidParameterCombination": "InvalidParameterCombinationException",
          "MissingParameter": "MissingRequiredParameterException", "InvalidNextToken": "InvalidNextToken",
          "InternalServiceError": "InternalServiceFault"}
