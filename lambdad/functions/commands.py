"""What the write operations of the functions and layers APIs ask for, as the domain says it.

The api layer parses each request (botocore's shapes, already checked by ``api/protocol.py``) into one of these
(``api/commands.py``) and the services take them: they never see a wire parameter name. ``None`` means "not
given", which the services tell apart from an empty value where Lambda does (``environment={}`` clears the
variables; not giving it keeps them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CodeSource", "ConfigChanges", "CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration",
           "PublishLayerVersion", "AddLayerPermission"]


@dataclass(frozen=True, slots=True)
class CodeSource:
    """Where a code or layer package comes from. lambdad takes a .zip upload only; the others are refused."""

    zip_file: bytes | None = None
    from_s3: bool = False  # an S3 bucket, key or object version was named
    image_uri: str | None = None


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """The optional configuration members of CreateFunction and UpdateFunctionConfiguration."""

    memory_size: int | None = None
    timeout: int | None = None
    description: str | None = None
    environment: dict[str, str] | None = None  # the whole set of variables
    ephemeral_storage: int | None = None  # MB of /tmp
    architectures: tuple[str, ...] | None = None
    layers: tuple[str, ...] | None = None  # layer version ARNs, in order
    tracing_mode: str | None = None
    dead_letter_target: str | None = None  # "" clears it
    log_format: str | None = None  # LoggingConfig's members (functions/logging_config.py)
    application_log_level: str | None = None
    system_log_level: str | None = None
    log_group: str | None = None

    def names_logging(self) -> bool:
        return not (self.log_format is None and self.application_log_level is None
                    and self.system_log_level is None and self.log_group is None)


@dataclass(frozen=True, slots=True)
class CreateFunction:
    name: str
    role: str
    code: CodeSource
    runtime: str | None = None
    handler: str | None = None
    package_type: str = "Zip"
    tags: dict[str, str] = field(default_factory=dict)
    publish: bool = False
    config: ConfigChanges = ConfigChanges()


@dataclass(frozen=True, slots=True)
class UpdateFunctionCode:
    name: str
    code: CodeSource
    architectures: tuple[str, ...] | None = None
    publish: bool = False
    revision_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateFunctionConfiguration:
    name: str
    runtime: str | None = None
    handler: str | None = None
    role: str | None = None
    revision_id: str | None = None
    config: ConfigChanges = ConfigChanges()


@dataclass(frozen=True, slots=True)
class PublishLayerVersion:
    name: str
    content: CodeSource
    description: str = ""
    license_info: str | None = None
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AddLayerPermission:
    name: str
    version: int
    statement_id: str
    action: str
    principal: str
    organization_id: str | None = None
    revision_id: str | None = None
