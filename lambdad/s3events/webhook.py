"""The webhook S3-compatible stores send their event records to: ``POST /s3-events/<id>`` on lambdad's port.

What a store sends, and what it is answered (MinIO's webhook target, ``internal/event/target/webhook.go``):

- MinIO POSTs one record per request, ``{"EventName", "Key", "Records": [record]}``, ``Content-Type:
  application/json``, with ``Authorization: Bearer <auth_token>`` (a token of two words is sent as it is). Any 2xx
  is success; anything else is a failure, which MinIO retries from its queue (``queue_dir``) — without a queue
  directory a failed event is dropped by MinIO, so docs/events.md says to set one. Before its first POST, MinIO
  sends ``HEAD`` to the endpoint to see that it is up: any answer will do; it is answered 200 (or 403).
- lambdad answers **200 only once every record that passes the endpoint's filters is queued durably** in the async
  queue (``invoke/async_queue.py`` ``submit``: stored before it returns), one invocation per record, in Lambda's S3
  event shape (``s3events/records.py``). A failure to queue answers 500, and the store sends the request again;
  records of it queued before the failure are then queued twice — at-least-once, as S3's own delivery is.
- HTTP Basic authentication with the token as its password (any user name) is taken too, for a store that can
  only put credentials in its endpoint URL (``http://lambdad:<token>@host/s3-events/<id>``).
- An unknown id and a wrong or missing token are both answered **403** ``{"Message": "Forbidden"}``, with no
  detail: the answer does not tell which. The token is compared in constant time (``configs.py``). A request
  signed with SigV4 (scope service ``lambda``) by a lambdad user or role is taken instead of a token when that
  principal may invoke the function (``lambda:InvokeFunction``, with the function's resource policy), as Invoke
  is authorized.
- A body that is not JSON records is **400**; a body over ``LAMBDAD_S3_EVENTS_MAX_BODY_KB`` is **413**, refused by
  its Content-Length before it is read (``app.py``'s body limit); more than ``LAMBDAD_S3_EVENTS_MAX_RECORDS``
  records in one body is 400, and so is a record whose event would be over an Event invocation's payload limit
  (1 MB; only a raised body limit lets one be that large). Every record is checked before any is queued.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Awaitable, Callable

from lambdad.api.http import MAX_ASYNC_PAYLOAD
from lambdad.api.server import HttpRequest, HttpResponse
from lambdad.auth.principals import Identity, Principal
from lambdad.auth.sigv4 import SignedRequest, check_claim, read_claim
from lambdad.errors import LambdaError
from lambdad.invoke.async_queue import EventQueue
from lambdad.s3events.configs import ENDPOINT_PREFIX, S3Notification, S3Notifications
from lambdad.s3events.records import RecordError, lambda_event, object_key, parse_body

__all__ = ["S3EventsWebhook"]

log = logging.getLogger(__name__)

# may this principal invoke function NAME (QUALIFIER)? raises when not
AuthorizeInvoke = Callable[[Principal, str, str | None, str | None], None]
_JSON = (("Content-Type", "application/json"),)


def _answer(status: int, message: str, **extra: object) -> HttpResponse:
    return HttpResponse(status, json.dumps({"Message": message, **extra}).encode(), _JSON)


_FORBIDDEN = b'{"Message": "Forbidden"}'


class S3EventsWebhook:
    def __init__(self, notifications: S3Notifications, queue: EventQueue, *, region: str, max_records: int,
                 lookup: Callable[[str], Awaitable[Identity | None]], authorize_invoke: AuthorizeInvoke) -> None:
        self._notifications = notifications
        self._queue = queue
        self._region = region
        self._max_records = max_records
        self._lookup = lookup  # an access key's identity (SigV4-signed requests)
        self._authorize_invoke = authorize_invoke

    @staticmethod
    def addresses(target: str) -> bool:
        return target.startswith(ENDPOINT_PREFIX)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path, _, raw_query = request.target.partition("?")
        notification_id = path[len(ENDPOINT_PREFIX):].rstrip("/")
        if request.method not in ("POST", "HEAD"):
            return HttpResponse(405, b'{"Message": "Method Not Allowed"}', (*_JSON, ("Allow", "POST, HEAD")))
        try:
            notification = await self._notifications.by_id(notification_id) if "/" not in notification_id else None
        except Exception:  # the store could not be read: the store sends the request again
            log.exception("S3 event webhook: the endpoint could not be read")
            return _answer(500, "The endpoint could not be read; send the request again")
        if notification is None or not await self._allowed(request, path, raw_query, notification):
            return HttpResponse(403, _FORBIDDEN, _JSON)
        if request.method == "HEAD":
            return HttpResponse(200, b"", _JSON)
        try:
            records = parse_body(request.body, self._max_records)
        except RecordError as exc:
            return _answer(400, str(exc))
        payloads = []  # every record checked before any is queued: a bad one queues none of the request's
        for record in records:
            if notification.filter.matches(str(record["eventName"]), object_key(record)):
                payload = json.dumps(lambda_event(record, configuration_id=notification.configuration_id,
                                                  region=self._region)).encode()
                if len(payload) > MAX_ASYNC_PAYLOAD:
                    return _answer(400, f"A record's event is over the {MAX_ASYNC_PAYLOAD}-byte limit of an "
                                        "asynchronous invocation")
                payloads.append(payload)
        for payload in payloads:
            try:
                await self._queue.submit(notification.name, notification.qualifier, payload, None)
            except Exception:  # the store sends the request again: nothing is lost
                log.exception("S3 event for %s could not be queued; answered 500 so that the store retries",
                              notification.name)
                return _answer(500, "The event could not be queued; send it again")
        return _answer(200, "OK", Queued=len(payloads), Filtered=len(records) - len(payloads))

    async def _allowed(self, request: HttpRequest, path: str, raw_query: str, notification: S3Notification) -> bool:
        """The endpoint's token (Bearer, or a Basic password), or a SigV4 signature of a principal that may invoke
        its function."""
        authorization = next((value for name, value in request.headers if name.lower() == "authorization"), "")
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return bool(credential.strip()) and notification.accepts(credential.strip())
        if scheme.lower() == "basic":  # a store that takes credentials only in its endpoint URL: the password
            try:
                _, colon, password = base64.b64decode(credential.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return bool(colon and password) and notification.accepts(password)
        if scheme != "AWS4-HMAC-SHA256":
            return False
        try:
            claim = read_claim(SignedRequest(request.method, path, raw_query, request.headers, request.body))
            identity = await self._lookup(claim.access_key)
            check_claim(claim, lambda key: identity.secret if identity is not None and key == claim.access_key
                        else None, region=self._region, service="lambda")
            assert identity is not None
            self._authorize_invoke(identity.principal, notification.name, notification.qualifier or None,
                                   request.peer or None)
        except LambdaError:
            return False
        return True
