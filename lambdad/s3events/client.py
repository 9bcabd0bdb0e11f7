"""``lambdad s3-notifications``' client: a botocore client of the notification API (``s3events/api.py``), made
from the model the server serves, so requests are signed, sent, retried and their errors read as any AWS SDK's.

Endpoint and credentials are found as ``lambdad logs`` finds them: ``--endpoint-url``, else ``AWS_ENDPOINT_URL``,
else the default server address; the credentials the AWS SDKs find, else the root credentials ``lambdad serve``
wrote to its data dir.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

from lambdad.auth.credentials import PROFILE
from lambdad.config import Settings
from lambdad.s3events.api import SERVICE_NAME, service_description

__all__ = ["ClientError", "connect", "make_client", "write_model"]


class ClientError(Exception):
    """What to tell the user instead of a traceback."""


def connect(endpoint_url: str | None, settings: Settings) -> tuple[Any, str]:
    """A botocore client of the notification API, and the endpoint it talks to."""
    endpoint = (endpoint_url or os.environ.get("AWS_ENDPOINT_URL_LAMBDAD") or os.environ.get("AWS_ENDPOINT_URL")
                or f"http://{settings.host}:{settings.port}")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or settings.region
    session = botocore.session.Session()
    if session.get_credentials() is None:
        written = Path(settings.data_dir) / "credentials"
        if not written.exists():
            raise ClientError(f"no AWS credentials found, and no {written}: export the ones `lambdad serve` printed, "
                              "or run this where the server was started")
        session = botocore.session.Session()
        session.set_config_variable("credentials_file", str(written))
        session.set_config_variable("profile", PROFILE)
    return make_client(session, endpoint, region), endpoint


def write_model(root: Path) -> Path:
    """Write the API's botocore model under ``root`` as botocore looks for one (``AWS_DATA_PATH=root`` then gives
    the aws CLI an ``aws lambdad`` command); returns the file written."""
    description = service_description()
    where: Path = root / SERVICE_NAME / str(description["metadata"]["apiVersion"])
    where.mkdir(parents=True, exist_ok=True)
    (where / "service-2.json").write_text(json.dumps(description, indent=1))
    return where / "service-2.json"


def make_client(session: botocore.session.Session, endpoint: str, region: str) -> Any:
    """A client of the notification API on ``session`` (its credentials sign the requests)."""
    with tempfile.TemporaryDirectory(prefix="lambdad-model-") as models:
        write_model(Path(models))
        session.get_component("data_loader").search_paths.insert(0, models)
        return session.create_client(SERVICE_NAME, region_name=region, endpoint_url=endpoint,
                                     config=Config(retries={"max_attempts": 2}))
