"""``lambdad logs``: a function's log read through the server's CloudWatch Logs API, as `aws logs tail` reads it.

The endpoint is ``--endpoint-url``, else ``AWS_ENDPOINT_URL_LOGS`` / ``AWS_ENDPOINT_URL`` (botocore's own
variables), else the default server address. Credentials are what the AWS SDKs find; where they find none, the
root credentials ``lambdad serve`` wrote to its data dir (``./lambdad-data/credentials``, or ``LAMBDAD_DATA_DIR``'s),
so that the command works in the directory the server was started in with nothing exported.

Events come from FilterLogEvents over the function's group, page by page; ``--follow`` then asks again every
second for events from the newest timestamp seen, skipping the event ids already printed at that timestamp.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from lambdad.auth.credentials import PROFILE
from lambdad.config import Settings

__all__ = ["LogReader", "ReaderError"]

_SINCE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ReaderError(Exception):
    """What to tell the user instead of a traceback."""


class LogReader:
    def __init__(self, session: boto3.Session, endpoint: str, region: str) -> None:
        config = Config(retries={"max_attempts": 2})
        self.endpoint = endpoint
        self._logs = session.client("logs", endpoint_url=endpoint, region_name=region, config=config)
        self._lambda = session.client("lambda", endpoint_url=endpoint, region_name=region, config=config)

    @classmethod
    def connect(cls, endpoint_url: str | None, settings: Settings) -> "LogReader":
        endpoint = (endpoint_url or os.environ.get("AWS_ENDPOINT_URL_LOGS") or os.environ.get("AWS_ENDPOINT_URL")
                    or f"http://{settings.host}:{settings.port}")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or settings.region
        session = boto3.Session()
        if session.get_credentials() is None:
            written = Path(settings.data_dir) / "credentials"
            if not written.exists():
                raise ReaderError(f"no AWS credentials found, and no {written.resolve()}: export the ones "
                                  "`lambdad serve` printed, run this where the server was started, or read a "
                                  "stopped server's store with --data-dir")
            core = botocore.session.Session()
            core.set_config_variable("credentials_file", str(written))
            core.set_config_variable("profile", PROFILE)
            session = boto3.Session(botocore_session=core)
        return cls(session, endpoint, region)

    def group_of(self, name: str) -> str:
        """The log group of function ``name`` (its LoggingConfig's, else /aws/lambda/NAME); a name that starts with
        / is a group's name already."""
        if name.startswith("/"):
            return name
        try:
            config = self._lambda.get_function_configuration(FunctionName=name)
            return str(config.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{name}")
        except ClientError:
            return f"/aws/lambda/{name}"  # no such function (any more), or not allowed to read it: its group
        except (BotoCoreError, EndpointConnectionError) as exc:
            raise ReaderError(f"cannot reach lambdad at {self.endpoint} ({exc}): is `lambdad serve` running? "
                              "(--data-dir reads a stopped server's store)") from None

    @staticmethod
    def since(text: str) -> int:
        match = _SINCE.fullmatch(text.strip())
        if match is None:
            raise ReaderError(f"--since {text!r}: give a number and a unit, e.g. 30s, 10m, 2h, 1d")
        return int((time.time() - int(match.group(1)) * _UNITS[match.group(2)]) * 1000)

    def events(self, group: str, stream: str | None, start: int | None, pattern: str | None, *,
               follow: bool = False) -> Iterator[str]:
        seen: set[str] = set()  # event ids printed at the newest timestamp so far
        newest = start
        printed = False
        while True:
            for event in self._pages(group, stream, newest, pattern):
                if event["eventId"] in seen:
                    continue
                if newest is None or event["timestamp"] > newest:
                    newest, seen = event["timestamp"], set()
                seen.add(event["eventId"])
                printed = True
                yield str(event["message"])
            if not follow:
                break
            time.sleep(1.0)
        if not printed:
            raise ReaderError(f"no log events in {group}{' stream ' + stream if stream else ''} (the function has "
                              "not run, or its log was deleted by retention)")

    def _pages(self, group: str, stream: str | None, start: int | None, pattern: str | None
               ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"logGroupName": group}
        if stream:
            params["logStreamNames"] = [stream]
        if start is not None:
            params["startTime"] = start
        if pattern:
            params["filterPattern"] = pattern
        try:
            for page in self._logs.get_paginator("filter_log_events").paginate(**params):
                yield from page.get("events", ())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ResourceNotFoundException":
                raise ReaderError(f"no log group {group} (the function has not run yet, or its group was "
                                  "deleted)") from None
            raise ReaderError(f"{error.get('Code')}: {error.get('Message')}") from None
        except (BotoCoreError, EndpointConnectionError) as exc:
            raise ReaderError(f"cannot reach lambdad at {self.endpoint} ({exc}): is `lambdad serve` running? "
                              "(--data-dir reads a stopped server's store)") from None
