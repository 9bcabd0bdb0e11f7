"""Requests to commands: each write operation's parameters (as ``api/protocol.py`` parsed and checked them against
botocore's shapes) into the typed command its service takes (``functions/commands.py``). Only here do wire
member names (``MemorySize``, ``Code.ZipFile``) meet the domain."""

from __future__ import annotations

from typing import Any, Mapping

from lambdad.functions.policies import Permission
from lambdad.functions.commands import (
    AddLayerPermission, CodeSource, ConfigChanges, CreateFunction, PublishLayerVersion, UpdateFunctionCode,
    UpdateFunctionConfiguration)

__all__ = ["permission", "create_function", "update_function_code", "update_function_configuration", "publish_layer_version",
           "add_layer_permission"]


def _code(members: Mapping[str, Any], s3_members: tuple[str, ...] = ("S3Bucket", "S3Key")) -> CodeSource:
    return CodeSource(zip_file=members.get("ZipFile"), from_s3=any(members.get(m) for m in s3_members),
                      image_uri=members.get("ImageUri"))


def _tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _config(params: Mapping[str, Any]) -> ConfigChanges:
    environment = None
    if "Environment" in params:
        environment = dict((params["Environment"] or {}).get("Variables") or {})
    logging_config = params.get("LoggingConfig") or {}
    return ConfigChanges(
        memory_size=params.get("MemorySize"),
        timeout=params.get("Timeout"),
        description=params.get("Description"),
        environment=environment,
        ephemeral_storage=params["EphemeralStorage"]["Size"] if "EphemeralStorage" in params else None,
        architectures=_tuple(params.get("Architectures")),
        layers=_tuple(params.get("Layers")),
        tracing_mode=(params.get("TracingConfig") or {}).get("Mode") or None,
        dead_letter_target=((params["DeadLetterConfig"] or {}).get("TargetArn") or "") if "DeadLetterConfig" in params
        else None,
        log_format=logging_config.get("LogFormat") or None,
        application_log_level=logging_config.get("ApplicationLogLevel") or None,
        system_log_level=logging_config.get("SystemLogLevel") or None,
        log_group=logging_config.get("LogGroup") or None,
    )


def create_function(params: Mapping[str, Any], name: str) -> CreateFunction:
    return CreateFunction(name=name, role=params["Role"], code=_code(params["Code"]), runtime=params.get("Runtime"),
                          handler=params.get("Handler"), package_type=params.get("PackageType") or "Zip",
                          tags=dict(params.get("Tags") or {}), publish=bool(params.get("Publish")),
                          config=_config(params))


def update_function_code(params: Mapping[str, Any], name: str) -> UpdateFunctionCode:
    return UpdateFunctionCode(name=name, code=_code(params), architectures=_tuple(params.get("Architectures")) or None,
                              publish=bool(params.get("Publish")), revision_id=params.get("RevisionId"))


def update_function_configuration(params: Mapping[str, Any], name: str) -> UpdateFunctionConfiguration:
    return UpdateFunctionConfiguration(name=name, runtime=params.get("Runtime"), handler=params.get("Handler"),
                                       role=params.get("Role"), revision_id=params.get("RevisionId"),
                                       config=_config(params))


def publish_layer_version(params: Mapping[str, Any], name: str) -> PublishLayerVersion:
    return PublishLayerVersion(name=name, content=_code(params["Content"], ("S3Bucket", "S3Key", "S3ObjectVersion")), description=params.get("Description") or "",
                               license_info=params.get("LicenseInfo"),
                               compatible_runtimes=tuple(params.get("CompatibleRuntimes") or ()),
                               compatible_architectures=tuple(params.get("CompatibleArchitectures") or ()))


def add_layer_permission(params: Mapping[str, Any], name: str, version: int) -> AddLayerPermission:
    return AddLayerPermission(name=name, version=version, statement_id=params["StatementId"], action=params["Action"],
                              principal=params["Principal"], organization_id=params.get("OrganizationId"),
                              revision_id=params.get("RevisionId"))


def permission(params: Mapping[str, Any]) -> Permission:
    return Permission(statement_id=params["StatementId"], action=params["Action"], principal=params["Principal"],
                      source_arn=params.get("SourceArn"), source_account=params.get("SourceAccount"),
                      event_source_token=params.get("EventSourceToken"), principal_org_id=params.get("PrincipalOrgID"),
                      function_url_auth_type=params.get("FunctionUrlAuthType"),
                      invoked_via_function_url=bool(params.get("InvokedViaFunctionUrl")))
