"""The console's sessions: who is signed in, as which key, and the rules every request to the console meets.

- A session is a random id (256 bits) in a cookie that is HttpOnly, SameSite=Strict, scoped to ``/console/``, with
  an expiry (``Max-Age``), and Secure when the browser reached us over TLS (a proxy's ``X-Forwarded-Proto: https``;
  lambdad itself speaks plain HTTP). The store keeps only the id's SHA-256, so a read of the database does not
  yield a usable cookie; the store is shared by a cluster's nodes, so a session is good on each.
- A session names the access key that signed in, never its secret: each request looks the key up again (as a
  signed request's would be), so a key deactivated or deleted ends its sessions at once.
- A state-changing request (anything but GET and HEAD) carries the session's CSRF token in ``X-CSRF-Token``,
  compared in constant time, and must come from the console's own origin (``Origin``, ``Sec-Fetch-Site``): a page
  of another site can neither forge it nor sign a victim in to an account of its choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie

from lambdad.api.server import HttpRequest

__all__ = ["COOKIE", "CSRF_HEADER", "cookie_of", "csrf_ok", "digest_of", "new_session_id", "new_csrf_token",
           "same_origin", "session_cookie", "ended_cookie", "over_tls", "header_of"]

COOKIE = "lambdad_console"
CSRF_HEADER = "x-csrf-token"
PATH = "/console/"


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def digest_of(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def header_of(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (lower case)."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def cookie_of(headers: list[tuple[str, str]]) -> str | None:
    """The session id a request's Cookie headers carry."""
    for key, value in headers:
        if key.lower() == "cookie":
            try:
                jar = SimpleCookie(value)
            except CookieError:
                continue
            morsel = jar.get(COOKIE)
            if morsel is not None and morsel.value:
                return morsel.value
    return None


def over_tls(request: HttpRequest) -> bool:
    return (header_of(request.headers, "x-forwarded-proto") or "").lower() == "https"


def session_cookie(session_id: str, max_age: int, secure: bool) -> str:
    return (f"{COOKIE}={session_id}; Path={PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
            + ("; Secure" if secure else ""))


def ended_cookie(secure: bool) -> str:
    return f"{COOKIE}=; Path={PATH}; Max-Age=0; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def same_origin(headers: list[tuple[str, str]], host: str) -> bool:
    """Whether a request comes from the console's own origin: its ``Origin`` (when sent: browsers send it with
    every POST) names this host, and its ``Sec-Fetch-Site`` (when sent) says same-origin. A client that is not a
    browser sends neither; it still needs the CSRF token, which only a signed-in page can read."""
    origin = header_of(headers, "origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return False
    site = header_of(headers, "sec-fetch-site")
    return site is None or site in ("same-origin", "none")


def csrf_ok(headers: list[tuple[str, str]], expected: str) -> bool:
    given = header_of(headers, CSRF_HEADER) or ""
    return hmac.compare_digest(given.encode(), expected.encode())
