"""The HTTP front of function URLs: a request whose Host is ``<url id>.<URL base name>`` is served here, before
(and instead of) the SigV4 Lambda API (``app.py`` routes by the Host's suffix).

For each request, in order:

1. find the URL by the Host's first label (an unknown id: 403 ``{"Message":null}``, as Lambda answers);
2. a CORS preflight, when the URL has a ``Cors`` config, is answered here (``cors.py``) without invoking;
3. authorize: ``AWS_IAM`` — the request must carry a valid SigV4 signature (service ``lambda``, this region) of
   a known key, and a caller other than root must be allowed ``lambda:InvokeFunctionUrl`` on the URL's function
   (or alias) by its identity policies or the resource policy; ``NONE`` — the resource policy must allow
   ``lambda:InvokeFunctionUrl`` to an anonymous caller (``Principal: "*"``), evaluated with
   ``lambda:FunctionUrlAuthType`` = NONE (what ``add-permission --function-url-auth-type NONE`` grants). A refusal
   is 403 ``{"Message":"Forbidden. For troubleshooting Function URL authorization issues, see: …"}``;
4. the request becomes a payload format 2.0 event (``payload.py``; over 6 MB: 413) and is invoked through the
   Invoker, as Invoke does (concurrency, alias weights, logs and cluster routing apply);
5. the answer becomes the response (``payload.py``): a function error or timeout, an answer that is no valid
   response, or one over 6 MB (the invoke's own Function.ResponseSizeTooLarge) is 502 ``Internal Server
   Error``; throttling is 429; CORS headers are added when the URL has a Cors config.

``InvokeMode`` RESPONSE_STREAM: the invocation is streamed (``invoke/streaming.py``) and the response goes to the
client as the function writes it, in HTTP chunks. A stream of the HTTP integration type (what Node's
``awslambda.HttpResponseStream.from`` writes) gives the status, headers and cookies in its metadata prelude; any
other stream is 200 with the stream's content type. A function that answers without streaming is answered as in
BUFFERED mode; one that fails before it writes is 502; one that fails mid-stream ends the response there (the
head has gone), as on Lambda.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Mapping, Sequence

from lambdad.api.http import MAX_SYNC_PAYLOAD, request_too_large
from lambdad.api.server import HttpRequest, HttpResponse, StreamedResponse
from lambdad.arn import FunctionRef, function_arn
from lambdad.auth.principals import Identity, Principal
from lambdad.auth.sigv4 import SignedRequest, check_claim, read_claim
from lambdad.errors import AccessDeniedException, LambdaError, TooManyRequestsException
from lambdad.functions.service import FunctionService
from lambdad.iam.authorize import Authorizer
from lambdad.iam.policy import Caller, Decision, Request, evaluate
from lambdad.ids import CURRENT_REQUEST_ID, request_id
from lambdad.invoke.service import Invoker
from lambdad.invoke.streaming import PreludeError, StreamedInvocation, read_http_prelude, start_streamed
from lambdad.sandbox.response_stream import STREAM_LIMIT_BYTES
from lambdad.urls import cors
from lambdad.urls.configs import FunctionUrls, UrlConfig
from lambdad.urls.payload import BadAnswer, build_event, interpret_answer

__all__ = ["UrlFront", "url_bases"]

log = logging.getLogger(__name__)

_ACTION = "lambda:InvokeFunctionUrl"
# Lambda's answers (LocalStack's AWS-validated tests): a URL that does not exist, and a caller not allowed
_NO_URL = b'{"Message":null}'
_FORBIDDEN = json.dumps({"Message": "Forbidden. For troubleshooting Function URL authorization issues, see: "
                                    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}).encode()
_INTERNAL = b"Internal Server Error"
_ANONYMOUS = Caller(arn="", account="", principal_arns=())
_INLINE_JSON = 64 * 1024  # larger events are encoded in a thread


def url_bases(region: str, url_host: str | None) -> tuple[str, ...]:
    """The host names URLs live under: ``lambda-url.<region>.localhost`` always, and LAMBDAD_URL_HOST's."""
    bases = [f"lambda-url.{region}.localhost"]
    if url_host:
        bases.insert(0, url_host.partition(":")[0].lower().rstrip("."))
    return tuple(bases)


_CONSTANT_KEYS = frozenset({"lambda:functionurlauthtype", "lambda:functionarn"})


def _request_independent(statements: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a policy decides the same for every anonymous request: its conditions name only keys fixed for a
    URL (its auth type, its function), none of the request's (source IP, time...)."""
    for statement in statements:
        for block in (statement.get("Condition") or {}).values():
            if not isinstance(block, Mapping) or any(str(key).lower() not in _CONSTANT_KEYS for key in block):
                return False
    return True


class UrlFront:
    def __init__(self, urls: FunctionUrls, runs: Invoker, functions: FunctionService, authorizer: Authorizer,
                 lookup: Callable[[str], Awaitable[Identity | None]], *, region: str, account_id: str,
                 stream_limit: int = STREAM_LIMIT_BYTES) -> None:
        self._urls = urls
        self._stream_limit = stream_limit  # a streamed response's largest size (LAMBDAD_STREAM_RESPONSE_MAX_MB)
        self._runs = runs
        self._functions = functions
        self._authorizer = authorizer
        self._lookup = lookup
        self._region, self._account_id = region, account_id

    async def handle(self, request: HttpRequest) -> HttpResponse | StreamedResponse:
        rid = request_id()
        CURRENT_REQUEST_ID.set(rid)
        domain = request.host.rpartition(":")[0] if ":" in request.host else request.host
        config = self._urls.by_id.get(domain.partition(".")[0].lower())  # host names are case-insensitive
        if config is None:
            return HttpResponse(403, _NO_URL, (("Content-Type", "application/json"), ("x-amzn-RequestId", rid),
                                               ("x-amzn-ErrorType", "AccessDeniedException")))
        headers = {name.lower(): value for name, value in request.headers}
        if config.cors is not None and cors.is_preflight(request.method, headers):
            return HttpResponse(200, b"", (*cors.preflight_headers(config.cors, headers), ("x-amzn-RequestId", rid)))
        try:
            iam = await self._authorize(config, request)
        except LambdaError as exc:
            log.info("function URL %s: %s refused: %s", config.url_id, request.method, exc.message)
            return self._forbidden(rid, config, headers)
        event = build_event(method=request.method, target=request.target, headers=request.headers, body=request.body,
                            peer=request.peer, port=request.host.rpartition(":")[2] if ":" in request.host else "80",
                            url_id=config.url_id, domain=domain, account_id=self._account_id,
                            request_id=rid, iam=iam)
        payload = (json.dumps(event).encode() if len(request.body) <= _INLINE_JSON
                   else await asyncio.to_thread(lambda: json.dumps(event).encode()))
        if len(payload) > MAX_SYNC_PAYLOAD:
            too_large = request_too_large(MAX_SYNC_PAYLOAD)
            return HttpResponse(413, too_large.body, too_large.headers)
        return await self._respond(config, payload, rid, headers, request.method)

    async def _respond(self, config: UrlConfig, payload: bytes, rid: str, headers: Mapping[str, str],
                       method: str) -> HttpResponse | StreamedResponse:
        """Invoke, and answer the function's response: whole (BUFFERED), or as it is written (RESPONSE_STREAM)."""
        ref = FunctionRef(config.name, config.invoked_qualifier)
        try:
            version = self._runs.route(ref)
            if config.invoke_mode == "RESPONSE_STREAM":
                streamed = await start_streamed(self._runs, version, payload, request_id=rid,
                                                invoked_arn=self._runs.invoked_arn(ref), limit=self._stream_limit)
                if streamed.streamed:
                    return await self._streamed(config, streamed, rid, headers, method)
                outcome = await streamed.outcome()  # answered without streaming: as BUFFERED mode answers it
            else:
                outcome = await self._runs.invoke(version, payload, request_id=rid,
                                                  invoked_arn=self._runs.invoked_arn(ref))
        except TooManyRequestsException as exc:
            return self._finish(config, headers, 429, [("Content-Type", "application/json")],
                                json.dumps({"Message": exc.message}).encode(), rid, method)
        except LambdaError as exc:
            log.warning("function URL %s: the invocation failed: %s", config.url_id, exc.message)
            return self._finish(config, headers, 502, [("Content-Type", "application/json")], _INTERNAL, rid, method)
        result = outcome.result
        if result.function_error is not None:
            return self._finish(config, headers, 502, [("Content-Type", "application/json")], _INTERNAL, rid, method)
        try:
            status, out, body = interpret_answer(result.payload)
        except BadAnswer as exc:
            log.info("function URL %s: %s", config.url_id, exc)
            return self._finish(config, headers, 502, [("Content-Type", "application/json")], _INTERNAL, rid, method)
        return self._finish(config, headers, status, out, body, rid, method)

    async def _streamed(self, config: UrlConfig, streamed: StreamedInvocation, rid: str, headers: Mapping[str, str],
                        method: str) -> HttpResponse | StreamedResponse:
        """The head of a streamed answer (from its HTTP prelude, if it has one) and its body as it comes."""
        try:
            metadata, body = await read_http_prelude(streamed)
        except PreludeError as exc:
            log.info("function URL %s: %s", config.url_id, exc)
            return self._finish(config, headers, 502, [("Content-Type", "application/json")], _INTERNAL, rid, method)
        status, out = 200, [("Content-Type", streamed.content_type)]
        if metadata is not None:
            try:
                status, out = _prelude_head(metadata)
            except BadAnswer as exc:
                await body.aclose()  # type: ignore[attr-defined]
                log.info("function URL %s: %s", config.url_id, exc)
                return self._finish(config, headers, 502, [("Content-Type", "application/json")], _INTERNAL, rid,
                                    method)
        if config.cors is not None:
            out = cors.response_headers(config.cors, headers.get("origin"), out)
        out.append(("x-amzn-RequestId", rid))
        if method == "HEAD":
            await body.aclose()  # type: ignore[attr-defined]
            return HttpResponse(status, b"", out)
        return StreamedResponse(status, out, body)

    @staticmethod
    def _finish(config: UrlConfig, headers: Mapping[str, str], status: int, out: list[tuple[str, str]], body: bytes,
                rid: str, method: str) -> HttpResponse:
        if method == "HEAD":
            body = b""  # no body after a HEAD's response head, whatever the function answered
        if config.cors is not None:
            out = cors.response_headers(config.cors, headers.get("origin"), out)
        out.append(("x-amzn-RequestId", rid))
        return HttpResponse(status, body, out)

    @staticmethod
    def _forbidden(rid: str, config: UrlConfig, headers: Mapping[str, str]) -> HttpResponse:
        out = [("Content-Type", "application/json")]
        if config.cors is not None:
            out = cors.response_headers(config.cors, headers.get("origin"), out)
        return HttpResponse(403, _FORBIDDEN, (*out, ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", "AccessDeniedException")))

    # -- authorization ---------------------------------------------------------------------------------------

    async def _authorize(self, config: UrlConfig, request: HttpRequest) -> dict[str, Any] | None:
        """Return the event's ``authorizer.iam`` (AWS_IAM) or None (NONE); raise when the caller may not."""
        function = self._functions.function(config.name)
        statements = function.policies.get(config.qualifier, ())
        arn = function_arn(self._region, self._account_id, config.name, config.invoked_qualifier)
        context: dict[str, object] = {
            "lambda:FunctionUrlAuthType": config.auth_type,
            "lambda:FunctionArn": function_arn(self._region, self._account_id, config.name)}
        if config.auth_type == "NONE":
            remembered = config.derived.get("none")
            if remembered is not None and remembered[0] is function and remembered[1] == function.generation:
                decision = remembered[2]
            else:
                if request.peer:
                    context["aws:SourceIp"] = request.peer
                decision = evaluate([], {"Version": "2012-10-17", "Statement": list(statements)},
                                    Request(_ANONYMOUS, _ACTION, arn, context)).decision if statements else None
                if _request_independent(statements):  # the same for every request until the policy changes
                    config.derived["none"] = (function, function.generation, decision)
            if decision is not Decision.ALLOW:
                raise AccessDeniedException("no resource-based policy allows lambda:InvokeFunctionUrl to anyone")
            return None
        path, _, raw_query = request.target.partition("?")
        claim = read_claim(SignedRequest(request.method, path, raw_query, request.headers, request.body))
        key = claim.access_key
        identity = await self._lookup(key)
        check_claim(claim, lambda k: identity.secret if identity is not None and k == key else None,
                    region=self._region, service="lambda")
        assert identity is not None  # check_claim refuses an unknown key
        principal = identity.principal
        if not principal.root:
            self._authorizer.check(principal, _ACTION, arn, source_ip=request.peer or None, context=context,
                                   resource_policy=statements)
        return self._caller(principal, key)

    def _caller(self, principal: Principal, access_key: str) -> dict[str, Any]:
        """The event's ``requestContext.authorizer.iam`` of the signer."""
        if principal.root:
            user_arn, user_id, account = f"arn:aws:iam::{self._account_id}:root", self._account_id, self._account_id
        else:
            account = principal.account
            user_arn = principal.caller_arn
            user_id = str(self._authorizer.context(principal, None).get("aws:userid", ""))
        return {"accessKey": access_key, "accountId": account, "callerId": user_id, "cognitoIdentity": None,
                "principalOrgId": None, "userArn": user_arn, "userId": user_id}


def _prelude_head(metadata: dict[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    """Status and headers from an HTTP integration response's metadata (statusCode, headers, cookies)."""
    status = metadata.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadAnswer(f"bad statusCode {status!r} in the stream's metadata")
    given = metadata.get("headers") or {}
    cookies = metadata.get("cookies") or []
    if not isinstance(given, dict) or not isinstance(cookies, list):
        raise BadAnswer("headers or cookies of the stream's metadata are not an object and a list")
    out = [(str(name), str(value)) for name, value in given.items() if not isinstance(value, (dict, list))]
    if not any(name.lower() == "content-type" for name, _ in out):
        out.append(("Content-Type", "application/octet-stream"))
    out.extend(("Set-Cookie", str(cookie)) for cookie in cookies)
    return status, out
