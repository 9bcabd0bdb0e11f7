"""Typed values for functions: one ``FunctionConfig`` per function version ($LATEST or a published number),
``Alias`` for a named pointer to one or two versions, ``Function`` for all of a function's state."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from lambdad.arn import LATEST, function_arn

__all__ = ["FunctionConfig", "Alias", "Function", "LATEST", "POLICY_VERSION"]

POLICY_VERSION = "2012-10-17"

# Fields that change on every write without changing what runs; PublishVersion ignores them when it decides
# whether $LATEST changed since the last published version.
_VOLATILE = ("version", "last_modified", "revision_id", "state", "last_update_status")
# Fields that follow from others (a layer version ARN names immutable content).
_DERIVED = ("layer_sizes", "layer_hashes")


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
    layers: tuple[str, ...] = ()  # layer version ARNs, in order
    layer_sizes: tuple[int, ...] = ()  # each layer's zip size (CodeSize in Layers)
    layer_hashes: tuple[str, ...] = ()  # each layer's content hash: what the merged /opt tree is built from
    package_type: str = "Zip"
    tracing_mode: str = "PassThrough"
    dead_letter_target: str = ""  # DeadLetterConfig.TargetArn: an SQS queue or SNS topic ("" none)
    log_format: str = "Text"  # LoggingConfig (functions/logging_config.py): Text | JSON
    log_group: str = ""  # "" is the default group, /aws/lambda/<name>
    application_log_level: str = ""  # with JSON only: TRACE ... FATAL
    system_log_level: str = ""  # with JSON only: DEBUG | INFO | WARN
    state: str = "Active"
    last_update_status: str = "Successful"

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"

    def arn(self, region: str, account_id: str, qualified: bool = False) -> str:
        return function_arn(region, account_id, self.name, self.version if qualified else None)

    def fingerprint(self) -> str:
        """A digest of the code and configuration, ignoring revision, time and state (see PublishVersion)."""
        data = dataclasses.asdict(self)
        for key in _VOLATILE + _DERIVED:
            data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def to_api(self, region: str, account_id: str, arn_qualifier: str | None = None) -> dict[str, Any]:
        """The FunctionConfiguration shape, as GetFunctionConfiguration returns it.

        FunctionArn is qualified with ``arn_qualifier`` when given (the alias or ``$LATEST`` a caller named),
        else with the version number for a published version and not at all for $LATEST.
        """
        qualifier = arn_qualifier or (None if self.version == LATEST else self.version)
        out: dict[str, Any] = {
            "FunctionName": self.name,
            "FunctionArn": function_arn(region, account_id, self.name, qualifier),
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
            "LoggingConfig": self._logging_config(),
        }
        if self.environment:
            out["Environment"] = {"Variables": dict(self.environment)}
        if self.dead_letter_target:
            out["DeadLetterConfig"] = {"TargetArn": self.dead_letter_target}
        if self.layers:
            sizes = self.layer_sizes or (0,) * len(self.layers)
            out["Layers"] = [{"Arn": arn, "CodeSize": size} for arn, size in zip(self.layers, sizes)]
        return out

    def _logging_config(self) -> dict[str, str]:
        out = {"LogFormat": self.log_format}
        if self.application_log_level:
            out["ApplicationLogLevel"] = self.application_log_level
        if self.system_log_level:
            out["SystemLogLevel"] = self.system_log_level
        out["LogGroup"] = self.log_group_name
        return out

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FunctionConfig":
        data = json.loads(text)
        data["architectures"] = tuple(data["architectures"])
        for key in ("layers", "layer_sizes", "layer_hashes"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)

    def replace(self, **changes: Any) -> "FunctionConfig":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Alias:
    """A named pointer to a version, optionally sending a share of invocations to a second version."""

    function_name: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)  # additional version -> share of invocations

    def arn(self, region: str, account_id: str) -> str:
        return function_arn(region, account_id, self.function_name, self.name)

    def versions(self) -> set[str]:
        """Every version this alias can route to."""
        return {self.function_version, *self.weights}

    def to_api(self, region: str, account_id: str) -> dict[str, Any]:
        """The AliasConfiguration shape."""
        out: dict[str, Any] = {
            "AliasArn": self.arn(region, account_id),
            "Name": self.name,
            "FunctionVersion": self.function_version,
            "Description": self.description,
            "RevisionId": self.revision_id,
        }
        if self.weights:
            out["RoutingConfig"] = {"AdditionalVersionWeights": dict(self.weights)}
        return out

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Alias":
        return cls(**json.loads(text))

    def replace(self, **changes: Any) -> "Alias":
        return dataclasses.replace(self, **changes)


@dataclass
class Function:
    """A function: its mutable $LATEST, published versions, aliases, tags and resource policies (held in memory,
    persisted by the store).

    ``last_version`` is the highest version number ever published (numbers are never reused, even after a
    deletion); ``published_from`` is the fingerprint of $LATEST when that version was published. ``generation``
    counts its stored writes: each write names the one this copy came from, so that a write based on a copy
    another node has since changed is refused (``FunctionService.commit``).
    ``policies`` maps a qualifier ($LATEST for the unqualified function, a version or an alias name) to the
    statements of its resource-based policy, in the order they were added.
    """

    latest: FunctionConfig
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, FunctionConfig] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_version: int = 0
    published_from: str = ""
    generation: int = 0  # the count of its stored writes (store/interfaces.py FunctionStore)

    @property
    def name(self) -> str:
        return self.latest.name

    def sorted_versions(self) -> list[FunctionConfig]:
        """$LATEST, then the published versions in ascending order (as ListVersionsByFunction lists them)."""
        return [self.latest, *(self.versions[v] for v in sorted(self.versions, key=int))]

    def aliases_of(self, version: str) -> list[str]:
        """Names of the aliases that route to ``version``, sorted."""
        return sorted(a.name for a in self.aliases.values() if version in a.versions())
