"""A lambdad app built in the test process (as Datasette's tests build Datasette): ``LambdadApp`` opened and
served on a free port by an event loop on a thread of its own, with the real store, services and HTTP server.
No process to start, so an API test costs milliseconds instead of a server start; tests of what needs a whole
server (signals, crashes, the CLI, the README) keep using ``tests.server.Server``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from lambdad.app import LambdadApp
from lambdad.config import Settings
from tests.server import ACCESS_KEY, SECRET_KEY, buffered


class InProcessApp:
    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.settings = Settings.load(
            {"data_dir": data_dir, "port": 0, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
             **settings}, environ={})
        self.app: LambdadApp | None = None
        self.endpoint = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lambdad-in-process", daemon=True)
        # every client handed out lives, and is closed, with the app: one dropped by a test would otherwise be
        # garbage-collected with its connections open in the middle of a later test (a ResourceWarning there)
        self._clients: list[Any] = []

    def start(self) -> "InProcessApp":
        self._thread.start()
        self.app = self._run(LambdadApp.open(self.settings))
        port = self._run(self.app.serve())
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def client(self, service: str = "lambda", **kwargs: Any) -> Any:
        client = boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=kwargs.pop("access_key", ACCESS_KEY),
                              aws_secret_access_key=kwargs.pop("secret_key", SECRET_KEY),
                              config=Config(retries={"max_attempts": 0}, **kwargs))
        self._clients.append(client)
        return buffered(client)

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.app is not None:
            self._run(self.app.aclose())
            self.app = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
