"""The console's HTTP routes, under ``/console/`` on the API's port (routes.py sends them here).

    GET  /console/                      the page (static/index.html); /console/static/<file>: its assets
    POST /console/api/signin            {"AccessKeyId", "SecretAccessKey"} -> a session cookie
    POST /console/api/signout           the session ends (here and on every node)
    GET  /console/api/session           who is signed in, and the CSRF token of the session
    POST /console/api/call/<svc>/<Op>   an API operation as the session's principal (calls.py): lambda, logs,
                                        monitoring, scheduler
    POST /console/api/create            CreateFunction, its code a blank template when it brings no zip
    GET  /console/api/code/<function>   the function's files ($LATEST), through GetFunction and its code link
    POST /console/api/code/<function>   UpdateFunctionCode with edited files ({"Changed", "Removed", "RevisionId"})
    GET  /console/api/events/<function>          the caller's saved test events of the function
    PUT|DELETE /console/api/events/<function>/<name>

Every answer of the API part is JSON; an error is ``{"Error": {"Code", "Message"}}`` with the API's status. Every
request but GET and HEAD must carry the session's CSRF token and come from the console's origin (sessions.py);
the pages are served with a Content-Security-Policy that allows nothing outside this origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import mimetypes
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import unquote, urlsplit

from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Identity
from lambdad.console.calls import ApiCaller, CallResult
from lambdad.console.code import edited_zip, files_of, template_of, template_zip
from lambdad.console.sessions import (cookie_of, csrf_ok, digest_of, ended_cookie, new_csrf_token, new_session_id,
                                      over_tls, same_origin, session_cookie)
from lambdad.store.sql_console import ConsoleSession, ConsoleTables

__all__ = ["ConsoleFront", "CONSOLE_PATH"]

log = logging.getLogger(__name__)

CONSOLE_PATH = "/console"
STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_SIGNIN_BODY = 16 * 1024
MAX_EVENT_BYTES = 256 * 1024  # a saved test event (Lambda's console: 256 KB... of a payload up to 6 MB we invoke)
_SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)
_API_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"), *_SECURITY_HEADERS)

Lookup = Callable[[str], Awaitable[Identity | None]]
Download = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ConsoleFront:
    def __init__(self, store: ConsoleTables, lookup: Lookup, caller: ApiCaller, download: Download, *,
                 session_seconds: float, region: str, account_id: str, runtimes: tuple[str, ...]) -> None:
        self._store = store
        self._lookup = lookup
        self._caller = caller
        self._download = download  # the code links GetFunction hands out (api/code_urls.py)
        self._session_seconds = session_seconds
        self._info = {"Region": region, "AccountId": account_id, "Runtimes": list(runtimes)}
        self._assets = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}

    # -- before the body -----------------------------------------------------------------------------------------

    def body_limit(self, method: str, target: str) -> int:
        path = target.partition("?")[0]
        if path == "/console/api/signin":
            return MAX_SIGNIN_BODY
        if method in ("GET", "HEAD"):
            return 0
        return 70 * 1024 * 1024  # a 50 MB zip, base64, in JSON (the API's own limit for a code upload)

    async def precheck(self, method: str, target: str, headers: list[tuple[str, str]], host: str) -> HttpResponse | None:
        """A large body is read only for a signed-in session's own page (its cookie, CSRF token and origin)."""
        try:
            await self._session(method, headers, host)
        except _Refused as exc:
            return _error(exc.status, exc.code, exc.message)
        return None

    # -- requests ------------------------------------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.target.partition("?")[0]
        try:
            if path == CONSOLE_PATH:
                return HttpResponse(308, b"", (("Location", "/console/"),))
            if not path.startswith("/console/api/"):
                return self._static(request, path)
            if path == "/console/api/signin":
                return await self._signin(request)
            session, identity = await self._session(request.method, request.headers, request.host)
            return await self._route(request, path, session, identity)
        except _Refused as exc:
            return _error(exc.status, exc.code, exc.message)
        except Exception as exc:  # the boundary: nothing escapes as a raw 500
            log.exception("console request %s failed", path)
            return _error(500, "ServiceException", f"Internal error: {type(exc).__name__}")

    async def _route(self, request: HttpRequest, path: str, session: ConsoleSession,
                     identity: Identity) -> HttpResponse:
        method, parts = request.method, path[len("/console/api/"):].split("/")
        if parts == ["session"] and method == "GET":
            return _json(200, self._whoami(session, identity))
        if parts == ["signout"] and method == "POST":
            sid = cookie_of(request.headers)
            if sid:
                await self._store.delete_console_session(digest_of(sid))
            return _json(200, {}, (("Set-Cookie", ended_cookie(over_tls(request))),))
        if len(parts) == 3 and parts[0] == "call" and method == "POST":
            result = await self._call(request, session, parts[1], parts[2], _body(request))
            return _json(result.status, result.output)
        if parts == ["create"] and method == "POST":
            return await self._create(request, session, _body(request))
        if len(parts) == 2 and parts[0] == "code":
            name = unquote(parts[1])
            if method == "GET":
                return await self._code(request, session, name)
            if method == "POST":
                return await self._save(request, session, name, _body(request))
        if parts[0] == "events" and len(parts) in (2, 3):
            return await self._events(request, session, identity, [unquote(p) for p in parts[1:]])
        raise _Refused(404, "ResourceNotFoundException", f"No console route {method} {path}")

    # -- sessions ------------------------------------------------------------------------------------------------

    async def _signin(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            raise _Refused(405, "MethodNotAllowed", "Sign in with a POST")
        if not same_origin(request.headers, request.host):
            raise _Refused(403, "AccessDeniedException", "Cross-origin requests are refused")
        body = _body(request)
        key, secret = str(body.get("AccessKeyId") or "").strip(), str(body.get("SecretAccessKey") or "").strip()
        identity = await self._lookup(key) if key else None
        # one answer for an unknown key and a wrong secret; the comparison takes the same time for any secret
        expected = identity.secret.secret_access_key if identity is not None else "\x00" * 40
        if identity is None or not hmac.compare_digest(secret.encode(), expected.encode()) \
                or identity.secret.session_token is not None:
            raise _Refused(403, "UnrecognizedClientException",
                           "The access key id or the secret access key is not right (or the key is not active)")
        sid, expires = new_session_id(), time.time() + self._session_seconds
        session = ConsoleSession(key, self._arn_of(identity), new_csrf_token(), expires)
        await self._store.put_console_session(digest_of(sid), session)
        cookie = session_cookie(sid, int(self._session_seconds), over_tls(request))
        return _json(200, self._whoami(session, identity), (("Set-Cookie", cookie),))

    async def _session(self, method: str, headers: list[tuple[str, str]],
                       host: str) -> tuple[ConsoleSession, Identity]:
        sid = cookie_of(headers)
        session = await self._store.get_console_session(digest_of(sid)) if sid else None
        identity = await self._lookup(session.access_key_id) if session is not None else None
        if session is None or identity is None:
            raise _Refused(401, "NotSignedIn", "Sign in to the console (the session has ended)")
        if method not in ("GET", "HEAD"):
            if not same_origin(headers, host):
                raise _Refused(403, "AccessDeniedException", "Cross-origin requests are refused")
            if not csrf_ok(headers, session.csrf):
                raise _Refused(403, "InvalidCsrfToken", "The request does not carry the session's CSRF token")
        return session, identity

    def _arn_of(self, identity: Identity) -> str:
        """Who signed in: a user's ARN, or the account's root."""
        return identity.principal.caller_arn or f"arn:aws:iam::{self._info['AccountId']}:root"

    def _whoami(self, session: ConsoleSession, identity: Identity) -> dict[str, Any]:
        return {"Principal": session.principal, "Root": identity.principal.root, "AccessKeyId": session.access_key_id,
                "CsrfToken": session.csrf, "Expires": session.expires, **self._info}

    # -- what the pages do -------------------------------------------------------------------------------------

    async def _call(self, request: HttpRequest, session: ConsoleSession, service: str, operation: str,
                    params: Mapping[str, Any]) -> CallResult:
        identity = await self._lookup(session.access_key_id)
        if identity is None:
            raise _Refused(401, "NotSignedIn", "Sign in to the console (the session has ended)")
        return await self._caller.call(identity.principal, session.access_key_id, service, operation, params,
                                       request.host, request.peer)

    async def _create(self, request: HttpRequest, session: ConsoleSession, params: dict[str, Any]) -> HttpResponse:
        """CreateFunction; without ``Code``, the runtime's blank function (and its handler)."""
        if "Code" not in params:
            template = template_of(str(params.get("Runtime") or ""))
            if template is None:
                raise _Refused(400, "InvalidParameterValueException",
                               "The console has a blank function for Python and Node.js runtimes only: upload a zip")
            params = {**params, "Handler": params.get("Handler") or template.handler,
                      "Code": {"ZipFile": base64.b64encode(template_zip(template)).decode()}}
        result = await self._call(request, session, "lambda", "CreateFunction", params)
        return _json(result.status, result.output)

    async def _package(self, request: HttpRequest, session: ConsoleSession,
                       name: str) -> tuple[CallResult, bytes | None]:
        """GetFunction as the caller, then its code through the link it hands out."""
        found = await self._call(request, session, "lambda", "GetFunction", {"FunctionName": name})
        if not found.ok:
            return found, None
        location = str(found.output.get("Code", {}).get("Location") or "")
        if not location:
            return found, None
        link = urlsplit(location)
        target = link.path + ("?" + link.query if link.query else "")
        got = await self._download(HttpRequest("GET", target, [("Host", request.host)], b"", True, request.host,
                                               request.peer))
        return found, got.body if got.status == 200 else None

    async def _code(self, request: HttpRequest, session: ConsoleSession, name: str) -> HttpResponse:
        found, package = await self._package(request, session, name)
        if not found.ok:
            return _json(found.status, found.output)
        config = found.output.get("Configuration", {})
        if package is None:
            view: dict[str, Any] = {"editable": False, "files": [],
                                    "reason": "The function's code is a container image or could not be read."}
        else:
            view = files_of(package)
        return _json(200, {**view, "RevisionId": config.get("RevisionId"), "Handler": config.get("Handler"),
                           "Runtime": config.get("Runtime")})

    async def _save(self, request: HttpRequest, session: ConsoleSession, name: str,
                    body: dict[str, Any]) -> HttpResponse:
        changed, removed = body.get("Changed") or {}, body.get("Removed") or []
        if not isinstance(changed, dict) or not isinstance(removed, list) \
                or not all(isinstance(v, str) for v in changed.values()):
            raise _Refused(400, "InvalidParameterValueException", "Changed is {path: text}, Removed [path]")
        found, package = await self._package(request, session, name)
        if not found.ok:
            return _json(found.status, found.output)
        if package is None:
            raise _Refused(400, "InvalidParameterValueException", "The function's code can not be edited here")
        try:
            new = edited_zip(package, changed, [str(p) for p in removed])
        except ValueError as exc:
            raise _Refused(400, "InvalidParameterValueException", str(exc)) from None
        params: dict[str, Any] = {"FunctionName": name, "ZipFile": base64.b64encode(new).decode()}
        if body.get("RevisionId"):  # the copy the editor opened: a save over someone else's is refused
            params["RevisionId"] = str(body["RevisionId"])
        result = await self._call(request, session, "lambda", "UpdateFunctionCode", params)
        return _json(result.status, result.output)

    async def _events(self, request: HttpRequest, session: ConsoleSession, identity: Identity,
                      parts: list[str]) -> HttpResponse:
        """The caller's own saved test events of a function it may read (GetFunctionConfiguration)."""
        function = parts[0]
        seen = await self._call(request, session, "lambda", "GetFunctionConfiguration", {"FunctionName": function})
        if not seen.ok:
            return _json(seen.status, seen.output)
        function = str(seen.output.get("FunctionName") or function)  # an ARN names the same function
        owner = self._arn_of(identity)
        if len(parts) == 1 and request.method == "GET":
            events = await self._store.list_test_events(owner, function)
            return _json(200, {"Events": [{"Name": n, "Body": b} for n, b in events]})
        if len(parts) == 2 and request.method == "PUT":
            name, body = parts[1], request.body.decode("utf-8", "replace")
            if not (0 < len(name) <= 25) or not all(c.isalnum() or c in "-_" for c in name):
                raise _Refused(400, "InvalidParameterValueException",
                               "An event name is 1 to 25 letters, digits, '-' and '_'")
            if len(request.body) > MAX_EVENT_BYTES:
                raise _Refused(400, "InvalidParameterValueException", "A saved test event is at most 256 KB")
            try:
                json.loads(body)
            except ValueError:
                raise _Refused(400, "InvalidRequestContentException", "The event is not valid JSON") from None
            await self._store.put_test_event(owner, function, name, body)
            return _json(200, {"Name": name})
        if len(parts) == 2 and request.method == "DELETE":
            await self._store.delete_test_event(owner, function, parts[1])
            return _json(200, {})
        raise _Refused(404, "ResourceNotFoundException", "No such console route")

    # -- static assets -----------------------------------------------------------------------------------------

    def _static(self, request: HttpRequest, path: str) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            raise _Refused(405, "MethodNotAllowed", f"{request.method} is not served here")
        name = "index.html" if path == "/console/" else (
            path[len("/console/static/"):] if path.startswith("/console/static/") else "")
        file = self._assets.get(name)
        if file is None:
            raise _Refused(404, "NotFound", f"No such page: {path}")
        body = file.read_bytes()  # small, and read on demand so an edited asset shows at once
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        headers = [("Content-Type", _content_type(name)), ("Cache-Control", "no-cache"), ("ETag", etag),
                   *_SECURITY_HEADERS]
        for key, value in request.headers:
            if key.lower() == "if-none-match" and value == etag:
                return HttpResponse(304, b"", tuple(headers))
        return HttpResponse(200, body if request.method == "GET" else b"", tuple(headers))


def _content_type(name: str) -> str:
    if name.endswith((".js", ".mjs")):
        return "text/javascript; charset=utf-8"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("json") else "")


def _body(request: HttpRequest) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise _Refused(400, "SerializationException", "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _Refused(400, "SerializationException", "The request body must be a JSON object")
    return body


def _json(status: int, body: Mapping[str, Any], extra: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), (*_API_HEADERS, *extra))


def _error(status: int, code: str, message: str) -> HttpResponse:
    return _json(status, {"Error": {"Code": code, "Message": message}})
