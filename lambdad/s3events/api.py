"""The API that manages notification endpoints: lambdad's own, beside the AWS services on the one endpoint.

AWS has no operation for this (on AWS the bucket names the function, with S3's PutBucketNotificationConfiguration;
here the store is not lambdad's, so the function is given an endpoint to point the store at). It is served like
the AWS JSON-protocol services (``api/json_api.py``): SigV4-signed for the service name
``lambdad-s3-notifications`` (the credential scope's; ``lambdad-stacks`` is the other of ours), ``POST /`` with
``X-Amz-Target: LambdadS3Notifications.<Operation>`` and a JSON body, checked against the botocore service model
written below (so bad input is answered as AWS's JSON services answer it: ``ValidationException``, "1 validation
error detected: …"). ``lambdad s3-notifications`` is its client.

Operations, each authorized by ``iam/authorize.py`` on the function's ARN (qualified when a qualifier is given),
with actions of lambdad's own (an IAM policy grants them by these names, or by ``lambdad:*``; ``lambda:*`` does not):

- ``PutS3NotificationConfiguration`` (``lambdad:PutS3NotificationConfiguration``): FunctionName, Qualifier,
  Events, Filter, ConfigurationId, Token or NewToken → the endpoint, and ``Token`` when this call made one;
- ``GetS3NotificationConfiguration`` (``lambdad:GetS3NotificationConfiguration``) → the endpoint, never its token;
- ``DeleteS3NotificationConfiguration`` (``lambdad:DeleteS3NotificationConfiguration``);
- ``ListS3NotificationConfigurations`` (``lambdad:ListS3NotificationConfigurations``; on ``*``, or on the function
  when FunctionName is given) → ``NotificationConfigurations``.
"""

from __future__ import annotations

from typing import Any, Mapping

from botocore.model import ServiceModel

from lambdad.api.json_api import JsonApi, JsonContext, JsonHandler
from lambdad.arn import function_arn, parse_function_name
from lambdad.iam.authorize import Authorizer
from lambdad.s3events.configs import S3Notifications

__all__ = ["SERVICE_NAME", "TARGET_PREFIX", "notifications_api", "service_description", "service_model"]

SERVICE_NAME = "lambdad-s3-notifications"
TARGET_PREFIX = "LambdadS3Notifications"

_STRING = {"type": "string"}
_SHAPES: dict[str, Any] = {
    "String": _STRING,
    "Boolean": {"type": "boolean"},
    "FunctionName": {"type": "string", "min": 1, "max": 170},
    "Qualifier": {"type": "string", "min": 1, "max": 128},
    "Events": {"type": "list", "member": {"shape": "String"}, "min": 1, "max": 64},
    "FilterRule": {"type": "structure", "required": ["Name", "Value"],
                   "members": {"Name": {"shape": "String"}, "Value": {"shape": "String"}}},
    "FilterRules": {"type": "list", "member": {"shape": "FilterRule"}, "max": 2},
    "KeyFilter": {"type": "structure", "members": {"FilterRules": {"shape": "FilterRules"}}},
    "Filter": {"type": "structure", "members": {"Key": {"shape": "KeyFilter"}}},
    "Token": {"type": "string", "min": 16, "max": 512, "sensitive": True},
    "ConfigurationId": {"type": "string", "min": 1, "max": 255},
    "Configuration": {"type": "structure", "members": {
        "NotificationId": {"shape": "String"}, "FunctionArn": {"shape": "String"},
        "EndpointPath": {"shape": "String"}, "ConfigurationId": {"shape": "String"},
        "Events": {"shape": "Events"}, "Filter": {"shape": "Filter"}, "CreationTime": {"shape": "String"},
        "LastModified": {"shape": "String"}, "Token": {"shape": "Token"}}},
    "Configurations": {"type": "list", "member": {"shape": "Configuration"}},
    "PutInput": {"type": "structure", "required": ["FunctionName", "Events"], "members": {
        "FunctionName": {"shape": "FunctionName"}, "Qualifier": {"shape": "Qualifier"}, "Events": {"shape": "Events"},
        "Filter": {"shape": "Filter"}, "ConfigurationId": {"shape": "ConfigurationId"}, "Token": {"shape": "Token"},
        "NewToken": {"shape": "Boolean"}}},
    "FunctionInput": {"type": "structure", "required": ["FunctionName"], "members": {
        "FunctionName": {"shape": "FunctionName"}, "Qualifier": {"shape": "Qualifier"}}},
    "ListInput": {"type": "structure", "members": {"FunctionName": {"shape": "FunctionName"}}},
    "ListOutput": {"type": "structure", "members": {"NotificationConfigurations": {"shape": "Configurations"}}},
    "Empty": {"type": "structure", "members": {}},
    "ValidationException": {"type": "structure", "members": {"message": {"shape": "String"}}, "exception": True},
}
_OPERATIONS = {
    "PutS3NotificationConfiguration": ("PutInput", "Configuration"),
    "GetS3NotificationConfiguration": ("FunctionInput", "Configuration"),
    "DeleteS3NotificationConfiguration": ("FunctionInput", "Empty"),
    "ListS3NotificationConfigurations": ("ListInput", "ListOutput"),
}


def service_description() -> dict[str, Any]:
    """The botocore model of this API, as botocore's service-2.json files hold one (the server validates with it;
    ``lambdad s3-notifications`` makes a botocore client of it)."""
    return {
        "version": "2.0",
        "metadata": {"apiVersion": "2026-12-05", "endpointPrefix": SERVICE_NAME, "jsonVersion": "1.1",
                     "protocol": "json", "serviceFullName": "lambdad S3 notification endpoints",
                     "serviceId": "lambdad S3 Notifications", "signatureVersion": "v4",
                     "signingName": SERVICE_NAME, "targetPrefix": TARGET_PREFIX,
                     "uid": f"{SERVICE_NAME}-2026-12-05"},
        "operations": {name: {"name": name, "http": {"method": "POST", "requestUri": "/"},
                              "input": {"shape": inp}, "output": {"shape": out}}
                       for name, (inp, out) in _OPERATIONS.items()},
        "shapes": _SHAPES,
    }


def service_model() -> ServiceModel:
    return ServiceModel(service_description(), SERVICE_NAME)


def notifications_api(notifications: S3Notifications, authorizer: Authorizer, region: str,
                      account_id: str) -> JsonApi:
    def target(ctx: JsonContext, params: Mapping[str, Any], action: str) -> tuple[str, str | None]:
        ref = parse_function_name(str(params["FunctionName"]), region=region, account_id=account_id,
                                  qualifier=params.get("Qualifier"))
        authorizer.check(ctx.principal, f"lambdad:{action}", function_arn(region, account_id, ref.name, ref.qualifier),
                         source_ip=ctx.source_ip)
        return ref.name, ref.qualifier

    async def put(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name, qualifier = target(ctx, params, "PutS3NotificationConfiguration")
        out, token = await notifications.put(name, qualifier, params["Events"], params.get("Filter"),
                                             params.get("ConfigurationId"), params.get("Token"),
                                             bool(params.get("NewToken")))
        return {**out, "Token": token} if token is not None else out

    async def get(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        return await notifications.get(*target(ctx, params, "GetS3NotificationConfiguration"))

    async def delete(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        await notifications.delete(*target(ctx, params, "DeleteS3NotificationConfiguration"))
        return {}

    async def list_(ctx: JsonContext, params: dict[str, Any]) -> Mapping[str, Any]:
        name = None
        if params.get("FunctionName"):
            name, _ = target(ctx, params, "ListS3NotificationConfigurations")
        else:
            authorizer.check(ctx.principal, "lambdad:ListS3NotificationConfigurations", "*", source_ip=ctx.source_ip)
        return {"NotificationConfigurations": await notifications.list(name)}

    handlers: dict[str, JsonHandler] = {"PutS3NotificationConfiguration": put, "GetS3NotificationConfiguration": get,
                                        "DeleteS3NotificationConfiguration": delete,
                                        "ListS3NotificationConfigurations": list_}
    return JsonApi(service_model(), handlers, (region,))
