"""One Settings object: command-line flags win over ``LAMBDAD_*`` environment variables, which win over defaults.

Every setting is documented in docs/configuration.md; tests/test_docs.py fails when one is not.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Settings"]


def _parse_delays(text: str) -> tuple[float, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(float(p) for p in parts)


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one lambdad server."""

    host: str = "127.0.0.1"
    port: int = 9001
    data_dir: Path = Path("lambdad-data")
    region: str = "us-east-1"
    account_id: str = "000000000000"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    account_concurrency: int = 1000
    idle_timeout_seconds: float = 600.0
    async_retry_delays: tuple[float, ...] = (60.0, 120.0)
    max_event_age_seconds: float = 21600.0
    log_level: str = "INFO"
    cpu_proportional: bool = True
    # isolated: a network namespace per environment, the outside world and of the host only what is allowed;
    # host: the host's network, loopback services included (single-user development); none: no network at all
    function_network: str = "isolated"
    function_host_services: str = ""  # isolated: host services shown inside, "port", "host:port", "inside=host:port"
    function_subnet: str = "10.201.0.0/16"  # isolated: environments' addresses (a /21 per running server)
    function_blocked_networks: str = "169.254.0.0/16"  # isolated: never reachable (cloud instance metadata)
    isolation: str = "auto"  # auto: every protection this machine offers; none: no jail and no cgroups
    prewarm_pool_size: int = 2  # pre-started Python / Node.js / custom-runtime slots kept per key; 0: none
    http_max_connections: int = 1024  # API connections open at once; one more is answered 503
    http_buffer_mb: int = 256  # request bodies held at once (received, not yet answered), all connections
    http_head_timeout_seconds: float = 10.0  # a request's line and headers must arrive within this
    http_min_rate_kb: float = 64.0  # a body must arrive at this many KiB/s or better
    log_retention_days: float = 30.0  # log events older than this are deleted
    log_function_max_mb: float = 100.0  # a function's (log group's) newest this many MB of log messages are kept
    log_max_mb: float = 1024.0  # the newest this many MB of log messages of all functions together are kept
    metrics: str = "on"  # on: Lambda's CloudWatch metrics are recorded (metrics/); off: not, nor served
    metrics_token: str | None = None  # GET /metrics asks for "Authorization: Bearer <token>" when set
    metrics_retention_days: float = 15.0  # metric data older than this is deleted
    metrics_flush_seconds: float = 5.0  # how often each node adds what it recorded to the store
    console_session_hours: float = 12.0  # a web console session ends this long after its sign-in
    usage_flush_seconds: float = 5.0  # metered use is added to the store this often (and at a clean stop)
    database_url: str | None = None  # postgresql://… for cluster mode; none: SQLite in the data dir
    nats_url: str | None = None  # nats://… (JetStream) for cluster mode; none: a cluster of one, in-process
    cluster_name: str = "lambdad"  # prefixes every NATS subject, stream and bucket of this cluster
    blob_url: str | None = None  # s3://bucket/prefix for the cluster's code blobs; none: JetStream's object store
    blob_sweep_seconds: float = 600.0  # cluster mode: how often the shared blobs nothing references are collected
    blob_grace_seconds: float = 3600.0  # cluster mode: a shared blob younger than this is never collected
    advertise_url: str | None = None  # how the other nodes and `cluster status` reach this node's API
    # the base host name of function URLs as clients reach them (behind a reverse proxy): http://<id>.<url_host>/;
    # none: http://<id>.lambda-url.<region>.localhost:<port>/
    url_host: str | None = None
    # refuse a function's role that is not an IAM role Lambda may assume (as AWS does); off: any role ARN is taken
    iam_refuse_unknown_roles: bool = False
    # http(s)://host:4318: sampled invocations of Active functions are exported there as OTLP/HTTP spans
    otlp_endpoint: str | None = None
    stream_response_max_mb: float = 200.0  # a streamed response's largest size (Lambda's: 200 MiB; 20 before 2025-07)
    s3_events_max_body_kb: int = 256  # the largest body the S3 event webhook takes (/s3-events/<id>), in KiB
    s3_events_max_records: int = 100  # the most S3 event records one webhook request may carry

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the metadata store (``store/sql.py``)."""
        from lambdad.store.sql import database_url

        return database_url(self.database_url, self.data_dir)

    def __post_init__(self) -> None:
        # every path is made absolute and normalised once, here: the jail, the fork servers and the CLI see the
        # same directory whatever the working directory of whoever reads it later
        object.__setattr__(self, "data_dir", Path(os.path.abspath(os.path.expanduser(self.data_dir))))

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from defaults, then ``LAMBDAD_*`` variables, then non-None ``overrides`` (flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("LAMBDAD_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, raw)
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = _convert(key, value) if isinstance(value, str) else value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise ValueError(f"account id must be 12 digits, got {self.account_id!r}")
        if self.account_concurrency < 1:
            raise ValueError("account concurrency must be at least 1")
        if self.idle_timeout_seconds <= 0:
            raise ValueError("idle timeout must be positive")
        if any(d < 0 for d in self.async_retry_delays):
            raise ValueError("async retry delays must not be negative")
        if self.function_network not in ("isolated", "host", "none"):
            raise ValueError(f"function network must be 'isolated', 'host' or 'none', not {self.function_network!r}")
        from lambdad.sandbox.network import BLOCK_PREFIX, parse_host_services, parse_networks

        parse_host_services(self.function_host_services)
        parse_networks(self.function_blocked_networks)
        try:
            subnet = ipaddress.IPv4Network(self.function_subnet)
        except ValueError as exc:
            raise ValueError(f"function subnet: {exc}") from None
        if subnet.prefixlen > BLOCK_PREFIX:
            raise ValueError(f"function subnet {subnet} is too small: /{BLOCK_PREFIX} or larger")
        if self.isolation not in ("auto", "none"):
            raise ValueError(f"isolation must be 'auto' or 'none', not {self.isolation!r}")
        if not 0 <= self.prewarm_pool_size <= 16:
            raise ValueError(f"prewarm pool size must be 0 to 16, not {self.prewarm_pool_size}")
        if self.http_max_connections < 1 or self.http_buffer_mb < 1:
            raise ValueError("http max connections and buffer must be at least 1")
        if self.http_head_timeout_seconds <= 0 or self.http_min_rate_kb <= 0:
            raise ValueError("http head timeout and minimum rate must be positive")
        if min(self.log_retention_days, self.log_function_max_mb, self.log_max_mb) <= 0:
            raise ValueError("log retention days and sizes must be positive")
        if self.metrics not in ("on", "off"):
            raise ValueError(f"metrics must be 'on' or 'off', not {self.metrics!r}")
        if self.metrics_retention_days <= 0 or self.metrics_flush_seconds <= 0:
            raise ValueError("metrics retention days and flush seconds must be positive")
        if self.console_session_hours <= 0:
            raise ValueError("the console session length must be positive")
        if self.usage_flush_seconds <= 0:
            raise ValueError("the usage flush interval must be positive")
        if self.stream_response_max_mb <= 0:
            raise ValueError("the streamed response limit must be positive")
        if not 1 <= self.s3_events_max_body_kb <= 6144 or self.s3_events_max_records < 1:
            raise ValueError("the S3 event webhook's body limit must be 1 to 6144 KiB and its record limit at least 1")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://",
                                                                     "postgresql+psycopg://")):
            raise ValueError(f"database url must be postgresql://USER@HOST:PORT/DATABASE, not {self.database_url!r}")
        if self.nats_url and not self.database_url:
            raise ValueError("LAMBDAD_NATS_URL needs LAMBDAD_DATABASE_URL: the nodes of a cluster share one database")
        if self.blob_url is not None:
            from lambdad.cluster.s3_blobs import BlobUrlError, parse_blob_url

            if not self.database_url:
                raise ValueError("LAMBDAD_BLOB_URL needs LAMBDAD_DATABASE_URL: shared code is for the nodes of a "
                                 "cluster")
            try:
                parse_blob_url(self.blob_url)
            except BlobUrlError as exc:
                raise ValueError(str(exc)) from exc
        if self.url_host is not None and re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?",
                                                      self.url_host) is None:
            raise ValueError(f"url host must be a host name (and port), like lambda-url.example.com, not "
                             f"{self.url_host!r}")
        if self.blob_sweep_seconds <= 0 or self.blob_grace_seconds < 0:
            raise ValueError("the blob sweep interval must be positive and its grace period not negative")
        from lambdad.cluster.link import CLUSTER_NAME

        if CLUSTER_NAME.fullmatch(self.cluster_name) is None:
            raise ValueError(f"cluster name must be 1 to 32 letters, digits, _ and -, not {self.cluster_name!r}")
        if self.otlp_endpoint is not None and not self.otlp_endpoint.startswith(("http://", "https://")):
            raise ValueError(f"OTLP endpoint must be http://HOST:PORT or https://HOST:PORT (OTLP over HTTP), "
                             f"not {self.otlp_endpoint!r}")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both LAMBDAD_ACCESS_KEY_ID and LAMBDAD_SECRET_ACCESS_KEY, or neither")

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def _convert(name: str, raw: str) -> Any:
    if name == "data_dir":
        return Path(raw)
    if name in ("port", "account_concurrency", "prewarm_pool_size", "http_max_connections", "http_buffer_mb",
                "s3_events_max_body_kb", "s3_events_max_records"):
        return int(raw)
    if name in ("idle_timeout_seconds", "max_event_age_seconds", "http_head_timeout_seconds", "http_min_rate_kb",
                "log_retention_days", "log_function_max_mb", "log_max_mb", "blob_sweep_seconds",
                "blob_grace_seconds", "metrics_retention_days", "metrics_flush_seconds", "usage_flush_seconds", "console_session_hours",
                "stream_response_max_mb"):
        return float(raw)
    if name in ("cpu_proportional", "iam_refuse_unknown_roles"):
        if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"LAMBDAD_{name.upper()} must be true or false, not {raw!r}")
        return raw.lower() in ("1", "true", "yes", "on")
    if name == "async_retry_delays":
        return _parse_delays(raw)
    return raw
