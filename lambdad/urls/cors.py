"""CORS of function URLs, answered by the platform from the URL's ``Cors`` config (AWS's "Cross-origin resource
sharing (CORS)" of function URLs): a preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered
without invoking the function; an ordinary response to an allowed Origin gets Access-Control-Allow-Origin,
-Expose-Headers and -Allow-Credentials, and ``Vary: Origin``. With a Cors config, these headers are the
platform's: the function's own Access-Control-* headers are replaced ("the configured CORS headers take
precedence").

An origin is allowed when ``AllowOrigins`` has ``*`` or the origin itself (case-insensitively). The allowed
origin is echoed, but for ``*`` without ``AllowCredentials``, answered ``*``.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["preflight_headers", "response_headers", "is_preflight"]


def _allowed_origin(cors: Mapping[str, Any], origin: str) -> str | None:
    origins = [str(o) for o in cors.get("AllowOrigins") or []]
    if "*" in origins:
        return origin if cors.get("AllowCredentials") else "*"
    lowered = origin.lower()
    return origin if any(o.lower() == lowered for o in origins) else None


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def preflight_headers(cors: Mapping[str, Any], headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers of the platform's answer to a preflight (none but Vary when the origin is not allowed)."""
    out: list[tuple[str, str]] = [("Vary", "Origin")]
    allowed = _allowed_origin(cors, headers["origin"])
    if allowed is None:
        return out
    out.append(("Access-Control-Allow-Origin", allowed))
    methods = [str(m).upper() for m in cors.get("AllowMethods") or []]
    wanted = headers["access-control-request-method"].strip().upper()
    if methods:
        out.append(("Access-Control-Allow-Methods", wanted if "*" in methods else ", ".join(methods)))
    allow_headers = [str(h) for h in cors.get("AllowHeaders") or []]
    if allow_headers:
        requested = headers.get("access-control-request-headers", "")
        out.append(("Access-Control-Allow-Headers", requested if "*" in allow_headers and requested
                    else ", ".join(allow_headers)))
    if cors.get("AllowCredentials"):
        out.append(("Access-Control-Allow-Credentials", "true"))
    if cors.get("MaxAge") is not None:
        out.append(("Access-Control-Max-Age", str(int(cors["MaxAge"]))))
    return out


def response_headers(cors: Mapping[str, Any], origin: str | None,
                     given: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``given`` (a function's response headers) with the platform's CORS headers in place of its own."""
    out = [(n, v) for n, v in given if not n.lower().startswith("access-control-")]
    if origin is None:
        return out
    allowed = _allowed_origin(cors, origin)
    if allowed is None:
        return out
    out.append(("Access-Control-Allow-Origin", allowed))
    expose = [str(h) for h in cors.get("ExposeHeaders") or []]
    if expose:
        out.append(("Access-Control-Expose-Headers", ", ".join(expose)))
    if cors.get("AllowCredentials"):
        out.append(("Access-Control-Allow-Credentials", "true"))
    if not any(n.lower() == "vary" for n, _ in out):
        out.append(("Vary", "Origin"))
    return out
