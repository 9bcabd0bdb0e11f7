"""The Lambda resource types: functions, versions, aliases, layer versions, permissions, event source mappings,
function URLs and event invoke configs (resources.py says what a ``Kind`` does)."""

from __future__ import annotations

import urllib.request
from typing import Any, Callable

from botocore.exceptions import ClientError

from lambdad.deploy.code import Package, inline_package
from lambdad.deploy.resources import Context, Made, Undo, physical_name, shaped
from lambdad.deploy.template import LOCAL_BUCKET

__all__ = ["LAMBDA_KINDS"]

# what UpdateFunctionConfiguration is given for a property the template no longer sets (the defaults)
_FUNCTION_DEFAULTS: dict[str, Any] = {
    "Description": "", "MemorySize": 128, "Timeout": 3, "Environment": {"Variables": {}}, "Layers": [],
    "EphemeralStorage": {"Size": 512}, "DeadLetterConfig": {"TargetArn": ""}, "TracingConfig": {"Mode": "PassThrough"},
}
_FUNCTION_CONFIG = ("Description", "Handler", "Runtime", "Role", "MemorySize", "Timeout", "Environment", "Layers",
                    "EphemeralStorage", "LoggingConfig", "DeadLetterConfig", "TracingConfig", "KMSKeyArn",
                    "ImageConfig", "VpcConfig", "FileSystemConfigs", "SnapStart")


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) == "ResourceNotFoundException"


def deleted(delete: Callable[..., Any], **params: Any) -> None:
    """Call ``delete``; a resource already gone (deleted by hand, or by a deploy cut short) is deleted too."""
    try:
        delete(**params)
    except ClientError as exc:
        if not _missing(exc):
            raise


def _function_params(props: dict[str, Any]) -> dict[str, Any]:
    params = dict(props)
    if "KmsKeyArn" in params:
        params["KMSKeyArn"] = params.pop("KmsKeyArn")
    return params


def code_package(ctx: Context, code: dict[str, Any], runtime: str | None) -> Package | None:
    """The zip of a function's Code: a local package, InlineCode (ZipFile), or None (code in a real bucket)."""
    if "ZipFile" in code:
        return inline_package(str(code["ZipFile"]), str(runtime or ""))
    if code.get("S3Bucket") == LOCAL_BUCKET:
        return ctx.packages[str(code["S3Key"])]
    return None


class FunctionKind:
    type_name = "AWS::Lambda::Function"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        name = str(props.get("FunctionName") or physical_name(ctx.stack, logical_id))
        params = _function_params(props)
        package = code_package(ctx, dict(params.get("Code") or {}), params.get("Runtime"))
        code = {"ZipFile": package.data} if package is not None else params.get("Code")
        lam = ctx.connection.lambda_
        out = lam.create_function(**shaped("lambda", "CreateFunction", {**params, "FunctionName": name,
                                                                          "Code": code}))
        try:
            self._concurrency(ctx, name, props.get("ReservedConcurrentExecutions"), None)
        except Exception:
            lam.delete_function(FunctionName=name)
            raise
        return self._made(out)

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        lam = ctx.connection.lambda_
        name = made.physical_id
        current = lam.get_function(FunctionName=name)
        before_config = current["Configuration"]
        params = _function_params(new)
        package = code_package(ctx, dict(params.get("Code") or {}), params.get("Runtime"))
        previous_code: bytes | None = None
        if package is not None and package.sha256 != before_config.get("CodeSha256"):
            previous_code = _download(current.get("Code", {}).get("Location"))
            lam.update_function_code(FunctionName=name, ZipFile=package.data)
            ctx.log(f"  {logical_id}: code uploaded ({len(package.data)} bytes)")
        config = {k: params.get(k, _FUNCTION_DEFAULTS.get(k)) for k in _FUNCTION_CONFIG
                  if k in params or k in old}
        restore = {k: old.get(k, _FUNCTION_DEFAULTS.get(k)) for k in config}
        out = lam.update_function_configuration(**shaped("lambda", "UpdateFunctionConfiguration",
                                                         {"FunctionName": name, **config}))
        self._tags(ctx, out["FunctionArn"], old.get("Tags"), new.get("Tags"))
        self._concurrency(ctx, name, new.get("ReservedConcurrentExecutions"), old.get("ReservedConcurrentExecutions"))

        def undo() -> None:
            if previous_code is not None:
                lam.update_function_code(FunctionName=name, ZipFile=previous_code)
            lam.update_function_configuration(**shaped("lambda", "UpdateFunctionConfiguration",
                                                       {"FunctionName": name, **_function_params(restore)}))
            self._tags(ctx, out["FunctionArn"], new.get("Tags"), old.get("Tags"))
            self._concurrency(ctx, name, old.get("ReservedConcurrentExecutions"),
                              new.get("ReservedConcurrentExecutions"))

        final = lam.get_function_configuration(FunctionName=name)
        return self._made(final), undo

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("FunctionName", "PackageType", "Architectures"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.delete_function, FunctionName=made.physical_id)

    @staticmethod
    def _made(out: dict[str, Any]) -> Made:
        return Made(out["FunctionName"], out["FunctionName"], {"Arn": out["FunctionArn"]},
                    code_sha256=out.get("CodeSha256"))

    @staticmethod
    def _concurrency(ctx: Context, name: str, value: Any, before: Any) -> None:
        if value is not None:
            ctx.connection.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(value))
        elif before is not None:
            ctx.connection.lambda_.delete_function_concurrency(FunctionName=name)

    @staticmethod
    def _tags(ctx: Context, arn: str, old: Any, new: Any) -> None:
        old_tags = {str(t["Key"]): str(t["Value"]) for t in old or []}
        new_tags = {str(t["Key"]): str(t["Value"]) for t in new or []}
        gone = [k for k in old_tags if k not in new_tags]
        if gone:
            ctx.connection.lambda_.untag_resource(Resource=arn, TagKeys=gone)
        changed = {k: v for k, v in new_tags.items() if old_tags.get(k) != v}
        if changed:
            ctx.connection.lambda_.tag_resource(Resource=arn, Tags=changed)


def _download(location: str | None) -> bytes | None:
    """The function's current code (GetFunction's link), kept to put back if the deploy rolls back."""
    if not location:
        return None
    with urllib.request.urlopen(location, timeout=60) as response:  # noqa: S310 (the server's own link)
        data: bytes = response.read()
        return data


class VersionKind:
    type_name = "AWS::Lambda::Version"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        out = ctx.connection.lambda_.publish_version(**shaped("lambda", "PublishVersion", props))
        return Made(out["FunctionArn"], out["FunctionArn"], {"Version": out["Version"]})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        return made, lambda: None  # only a Description changed: versions are immutable, and keep theirs

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("FunctionName", "CodeSha256"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.delete_function, FunctionName=made.physical_id)


class AliasKind:
    type_name = "AWS::Lambda::Alias"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        out = ctx.connection.lambda_.create_alias(**shaped("lambda", "CreateAlias", props))
        self._provisioned(ctx, props, None)
        return Made(out["AliasArn"], out["AliasArn"], {})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        lam = ctx.connection.lambda_

        def put(props: dict[str, Any], before: dict[str, Any]) -> None:
            lam.update_alias(**shaped("lambda", "UpdateAlias", {"Description": "", "RoutingConfig": {
                "AdditionalVersionWeights": {}}, **props}))
            self._provisioned(ctx, props, before)

        put(new, old)
        return made, lambda: put(old, new)

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("FunctionName", "Name"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.delete_alias, FunctionName=props["FunctionName"], Name=props["Name"])

    @staticmethod
    def _provisioned(ctx: Context, props: dict[str, Any], before: dict[str, Any] | None) -> None:
        config = props.get("ProvisionedConcurrencyConfig")
        lam = ctx.connection.lambda_
        if config:
            lam.put_provisioned_concurrency_config(
                FunctionName=props["FunctionName"], Qualifier=props["Name"],
                ProvisionedConcurrentExecutions=int(config["ProvisionedConcurrentExecutions"]))
        elif before and before.get("ProvisionedConcurrencyConfig"):
            lam.delete_provisioned_concurrency_config(FunctionName=props["FunctionName"], Qualifier=props["Name"])


class LayerVersionKind:
    type_name = "AWS::Lambda::LayerVersion"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        content = dict(props.get("Content") or {})
        package = ctx.packages.get(str(content.get("S3Key"))) if content.get("S3Bucket") == LOCAL_BUCKET else None
        params = {**props, "LayerName": props.get("LayerName") or physical_name(ctx.stack, logical_id, 140),
                  "Content": {"ZipFile": package.data} if package is not None else content}
        out = ctx.connection.lambda_.publish_layer_version(**shaped("lambda", "PublishLayerVersion", params))
        return Made(out["LayerVersionArn"], out["LayerVersionArn"], {})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        raise AssertionError("layer versions are replaced, never updated")

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return True

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        name, _, number = made.physical_id.rpartition(":")
        deleted(ctx.connection.lambda_.delete_layer_version, LayerName=name, VersionNumber=int(number))


class PermissionKind:
    type_name = "AWS::Lambda::Permission"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        sid = physical_name(ctx.stack, logical_id, 100)
        ctx.connection.lambda_.add_permission(**shaped("lambda", "AddPermission", {**props, "StatementId": sid}))
        return Made(sid, sid, {})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        self.delete(ctx, made, old)
        self.create(ctx, logical_id, new)

        def undo() -> None:
            self.delete(ctx, made, new)
            self.create(ctx, logical_id, old)
        return made, undo

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return False

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.remove_permission, FunctionName=props["FunctionName"],
                StatementId=made.physical_id)


class EventSourceMappingKind:
    type_name = "AWS::Lambda::EventSourceMapping"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        out = ctx.connection.lambda_.create_event_source_mapping(
            **shaped("lambda", "CreateEventSourceMapping", props))
        return Made(out["UUID"], out["UUID"], {"EventSourceMappingArn": out.get("EventSourceMappingArn", "")})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        lam = ctx.connection.lambda_

        def put(props: dict[str, Any]) -> None:
            lam.update_event_source_mapping(**shaped("lambda", "UpdateEventSourceMapping",
                                                     {"Enabled": True, **props, "UUID": made.physical_id}))
        put(new)
        return made, lambda: put(old)

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("EventSourceArn", "StartingPosition", "Queues", "Topics",
                                                       "SelfManagedEventSource"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.delete_event_source_mapping, UUID=made.physical_id)


class UrlKind:
    type_name = "AWS::Lambda::Url"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        params = {**props, "FunctionName": props["TargetFunctionArn"]}
        out = ctx.connection.lambda_.create_function_url_config(**shaped("lambda", "CreateFunctionUrlConfig", params))
        return Made(out["FunctionArn"], out["FunctionArn"], {"FunctionArn": out["FunctionArn"],
                                                             "FunctionUrl": out["FunctionUrl"]})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        lam = ctx.connection.lambda_

        def put(props: dict[str, Any]) -> None:
            lam.update_function_url_config(**shaped("lambda", "UpdateFunctionUrlConfig", {
                "Cors": {}, "InvokeMode": "BUFFERED", **props, "FunctionName": props["TargetFunctionArn"]}))
        put(new)
        return made, lambda: put(old)

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("TargetFunctionArn", "Qualifier"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.delete_function_url_config,
                **shaped("lambda", "DeleteFunctionUrlConfig", {**props, "FunctionName": props["TargetFunctionArn"]}))


class EventInvokeConfigKind:
    type_name = "AWS::Lambda::EventInvokeConfig"

    def create(self, ctx: Context, logical_id: str, props: dict[str, Any]) -> Made:
        ctx.connection.lambda_.put_function_event_invoke_config(
            **shaped("lambda", "PutFunctionEventInvokeConfig", props))
        ident = f"{props['FunctionName']}|{props.get('Qualifier', '$LATEST')}"
        return Made(ident, ident, {})

    def update(self, ctx: Context, logical_id: str, made: Made, old: dict[str, Any], new: dict[str, Any]
               ) -> tuple[Made, Undo]:
        self.create(ctx, logical_id, new)

        def undo() -> None:
            self.create(ctx, logical_id, old)
        return made, undo

    def replaces(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return any(old.get(k) != new.get(k) for k in ("FunctionName", "Qualifier"))

    def delete(self, ctx: Context, made: Made, props: dict[str, Any]) -> None:
        deleted(ctx.connection.lambda_.delete_function_event_invoke_config,
                **shaped("lambda", "DeleteFunctionEventInvokeConfig", props))


LAMBDA_KINDS = (FunctionKind(), VersionKind(), AliasKind(), LayerVersionKind(), PermissionKind(),
                EventSourceMappingKind(), UrlKind(), EventInvokeConfigKind())
