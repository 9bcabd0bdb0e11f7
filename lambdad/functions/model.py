"""Typed values for functions: one ``FunctionConfig`` per function version ($LATEST or a published number)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from lambdad.arn import LATEST, function_arn

__all__ = ["FunctionConfig", "Function", "LATEST"]


@dataclass(frozen=True)
class FunctionConfig:
    """The configuration and code of one function version. $LATEST changes by replacement; versions never change."""

    name: str
    version: str
    runtime: str
    handler: str
    role: str
    code_sha256: str  # base64 SHA-256 of the zip, as Lambda reports it
    code_hash: str  # hex SHA-256 of the zip: the key of the code blob and of its extracted tree
    code_size: int
    last_modified: str
    revision_id: str
    description: str = ""
    memory_size: int = 128
    timeout: int = 3
    environment: Mapping[str, str] = field(default_factory=dict)
    ephemeral_storage: int = 512
    architectures: tuple[str, ...] = ("x86_64",)
    layers: tuple[str, ...] = ()
    package_type: str = "Zip"
    tracing_mode: str = "PassThrough"
    log_format: str = "Text"
    log_group: str = ""
    state: str = "Active"
    last_update_status: str = "Successful"

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"

    def arn(self, region: str, account_id: str, qualified: bool = False) -> str:
        return function_arn(region, account_id, self.name, self.version if qualified else None)

    def to_api(self, region: str, account_id: str) -> dict[str, Any]:
        """The FunctionConfiguration shape, as GetFunctionConfiguration returns it."""
        out: dict[str, Any] = {
            "FunctionName": self.name,
            "FunctionArn": function_arn(region, account_id, self.name, None if self.version == LATEST else self.version),
            "Runtime": self.runtime,
            "Role": self.role,
            "Handler": self.handler,
            "CodeSize": self.code_size,
            "Description": self.description,
            "Timeout": self.timeout,
            "MemorySize": self.memory_size,
            "LastModified": self.last_modified,
            "CodeSha256": self.code_sha256,
            "Version": self.version,
            "TracingConfig": {"Mode": self.tracing_mode},
            "RevisionId": self.revision_id,
            "State": self.state,
            "LastUpdateStatus": self.last_update_status,
            "PackageType": self.package_type,
            "Architectures": list(self.architectures),
            "EphemeralStorage": {"Size": self.ephemeral_storage},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "RuntimeVersionConfig": {"RuntimeVersionArn": f"arn:aws:lambda:{region}::runtime:lambdad-{self.runtime}"},
            "LoggingConfig": {"LogFormat": self.log_format, "LogGroup": self.log_group_name},
        }
        if self.environment:
            out["Environment"] = {"Variables": dict(self.environment)}
        if self.layers:
            out["Layers"] = [{"Arn": arn, "CodeSize": 0} for arn in self.layers]
        return out

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FunctionConfig":
        data = json.loads(text)
        data["architectures"] = tuple(data["architectures"])
        data["layers"] = tuple(data["layers"])
        return cls(**data)

    def replace(self, **changes: Any) -> "FunctionConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class Function:
    """A function: its mutable $LATEST, its published versions and its tags (held in memory, persisted by the store)."""

    latest: FunctionConfig
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, FunctionConfig] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.latest.name
