"""The front of a service on the AWS query protocol (IAM, STS) beside Lambda's on the one endpoint.

``api/http.py`` hands it a request signed for its service (the SigV4 scope names it) with the caller already
authenticated. The form fields (the POST body, ``application/x-www-form-urlencoded``, and the URL's query) name
the operation (``Action``) and carry its parameters; ``api/query.py`` reads them by botocore's model of the
service and writes the XML answer. A handler gets a ``QueryContext`` (who calls, from where) and the parameters,
and returns the operation's output shape; it raises ``LambdaError``s, answered in the query protocol's error
format with the codes these services use (a refused signature is ``SignatureDoesNotMatch``, an unknown key
``InvalidClientTokenId``, as IAM and STS answer). A modelled operation without a handler answers 501
``NotImplemented``, naming it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qs

from botocore.model import ServiceModel

from lambdad.api.query import decode, encode, encode_error
from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Principal
from lambdad.errors import LambdaError, ServiceException

__all__ = ["QueryApi", "QueryContext", "QueryHandler", "QUERY_CODES"]

log = logging.getLogger(__name__)

# the codes IAM and STS answer for what lambdad's signature check raises
QUERY_CODES = {"InvalidSignatureException": "SignatureDoesNotMatch", "UnrecognizedClientException": "InvalidClientTokenId",
          "IncompleteSignatureException": "IncompleteSignature",
          "MissingAuthenticationTokenException": "MissingAuthenticationToken", "AccessDeniedException": "AccessDenied",
          "ServiceException": "ServiceFailure", "NotImplementedException": "NotImplemented"}


@dataclass(frozen=True)
class QueryContext:
    principal: Principal
    access_key_id: str
    request_id: str
    source_ip: str | None


QueryHandler = Callable[[QueryContext, dict[str, Any]], Awaitable[Mapping[str, Any]]]


class QueryApi:
    def __init__(self, model: ServiceModel, handlers: Mapping[str, QueryHandler], regions: tuple[str, ...]) -> None:
        self._model = model
        self._handlers = handlers
        self.regions = regions
        self._xmlns = str(model.metadata.get("xmlNamespace", ""))
        self._version = str(model.metadata.get("apiVersion", ""))

    async def handle(self, request: HttpRequest, principal: Principal, access_key: str, rid: str) -> HttpResponse:
        try:
            form: dict[str, list[str]] = {}
            query = request.target.partition("?")[2]
            for part in (query, request.body.decode("utf-8", "replace")):
                for key, values in parse_qs(part, keep_blank_values=True).items():
                    form.setdefault(key, []).extend(values)
            action = (form.get("Action") or [""])[0]
            if not action:
                raise _QueryError("MissingAction", "Missing Action", 400)
            if action not in self._model.operation_names:
                raise _QueryError("InvalidAction",
                                  f"Could not find operation {action} for version {self._version}", 400)
            operation = self._model.operation_model(action)
            params = decode(operation, form)
            handler = self._handlers.get(action)
            if handler is None:
                raise _QueryError("NotImplemented",
                                  f"The operation {action} is not supported by this lambdad server yet.", 501)
            result = await handler(QueryContext(principal, access_key, rid, request.peer or None), params)
            return HttpResponse(200, encode(operation, result, rid),
                                (("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)))
        except LambdaError as exc:
            return self.error(exc, rid)
        except Exception as exc:  # the boundary: nothing escapes unanswered
            log.exception("%s request failed", self._model.service_name)
            return self.error(ServiceException(f"Internal error: {type(exc).__name__}"), rid)

    def error(self, exc: LambdaError, rid: str) -> HttpResponse:
        code = QUERY_CODES.get(exc.name, exc.name)
        sender = exc.status < 500
        body = encode_error(code, exc.message, exc.status, rid, sender_fault=sender, xmlns=self._xmlns)
        return HttpResponse(exc.status, body, (("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)))


class _QueryError(LambdaError):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.name = code
        self.status = status
