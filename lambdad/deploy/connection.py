"""The server ``lambdad deploy`` talks to, and the SDK clients it talks through.

Endpoint: ``--endpoint-url``, else ``AWS_ENDPOINT_URL_LAMBDA``, else ``AWS_ENDPOINT_URL``, else the default server
address (http://127.0.0.1:9001). Every service (Lambda, IAM, STS, EventBridge, Scheduler and lambdad's stacks API)
is reached there: they share the server's one endpoint. Credentials: the standard chain as boto3 finds it
(environment, ``--profile`` / ``AWS_PROFILE``, the shared files); where it finds none, the root credentials
``lambdad serve`` wrote to its data dir, as ``lambdad logs`` does (logs/reader.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from lambdad.auth.credentials import PROFILE
from lambdad.config import Settings
from lambdad.deploy.stacks_api import MODELS, SERVICE

__all__ = ["Connection", "ConnectionError_", "endpoint_of"]

DEFAULT_ENDPOINT = "http://127.0.0.1:9001"


class ConnectionError_(Exception):
    """No credentials or no server: what to tell the user instead of a traceback."""


def endpoint_of(endpoint_url: str | None) -> str:
    return (endpoint_url or os.environ.get("AWS_ENDPOINT_URL_LAMBDA") or os.environ.get("AWS_ENDPOINT_URL")
            or DEFAULT_ENDPOINT)


@dataclass
class Connection:
    session: boto3.Session
    endpoint: str
    region: str
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, endpoint_url: str | None, profile: str | None, settings: Settings | None = None) -> "Connection":
        settings = settings or Settings.load()
        core = botocore.session.Session(profile=profile)
        try:
            credentials = core.get_credentials()
        except ProfileNotFound as exc:
            raise ConnectionError_(f"{exc}: name one of the profiles in your AWS config and credentials files") \
                from None
        if profile is None and credentials is None:
            written = Path(settings.data_dir) / "credentials"
            if not written.exists():
                raise ConnectionError_(
                    f"no AWS credentials found, and no {written.resolve()}: export the ones `lambdad serve` printed, "
                    "name a profile with --profile, or run this where the server was started")
            core = botocore.session.Session()
            core.set_config_variable("credentials_file", str(written))
            core.set_config_variable("profile", PROFILE)
        return cls.of(core, endpoint_of(endpoint_url), settings.region)

    @classmethod
    def of(cls, core: botocore.session.Session, endpoint: str, default_region: str) -> "Connection":
        """On a botocore session (its credentials and region), knowing the stacks API's model."""
        core.get_component("data_loader").search_paths.insert(0, str(MODELS))
        session = boto3.Session(botocore_session=core)
        return cls(session, endpoint, session.region_name or default_region)

    def client(self, service: str) -> Any:
        """One client per service for the connection's life (closed by ``close``)."""
        found = self._clients.get(service)
        if found is None:
            found = self.session.client(
                service, endpoint_url=self.endpoint, region_name=self.region,
                config=Config(retries={"max_attempts": 2}, read_timeout=120, connect_timeout=5))
            self._clients[service] = found
        return found

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def stacks(self) -> Any:
        return self.client(SERVICE)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
