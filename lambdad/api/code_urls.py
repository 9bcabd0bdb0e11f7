"""Code.Location URLs: time-limited, unguessable links that download a function's zip without credentials.

A URL carries the code hash, an expiry time and an HMAC-SHA256 of both under a key that is random per server
start; it is valid for 10 minutes, as Lambda's presigned S3 links are.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from typing import Awaitable, Callable
from urllib.parse import parse_qs

from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.functions.service import FunctionService

__all__ = ["CodeUrlSigner", "CODE_PATH", "URL_LIFETIME_SECONDS"]

CODE_PATH = "/_lambdad/code/"
URL_LIFETIME_SECONDS = 600


class CodeUrlSigner:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _signature(self, code_hash: str, expires: int) -> str:
        return hmac.new(self._key, f"{code_hash}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, code_hash: str, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + URL_LIFETIME_SECONDS)
        return f"{base_url}{CODE_PATH}{code_hash}?Expires={expires}&Signature={self._signature(code_hash, expires)}"

    def check(self, code_hash: str, expires: str, signature: str, now: float | None = None) -> bool:
        try:
            when = int(expires)
        except ValueError:
            return False
        if when < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._signature(code_hash, when), signature)

    def handler(self, service: FunctionService) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
        def text(status: int, message: str) -> HttpResponse:
            return HttpResponse(status, message.encode(), (("Content-Type", "text/plain; charset=utf-8"),))

        async def download(request: HttpRequest) -> HttpResponse:
            path, _, raw_query = request.target.partition("?")
            if request.method != "GET":
                return text(405, "Method not allowed.")
            code_hash = path[len(CODE_PATH):]
            query = parse_qs(raw_query)
            if not self.check(code_hash, query.get("Expires", [""])[0], query.get("Signature", [""])[0]):
                return text(403, "Request has expired or the signature does not match.")
            try:  # at most a 50 MB zip, off the event loop (in a cluster it may be fetched first)
                data = await asyncio.to_thread(lambda: service.blob_path(code_hash).read_bytes())
            except (ValueError, FileNotFoundError):
                return text(404, "No such code package.")
            return HttpResponse(200, data, (("Content-Type", "application/zip"),))

        return download
