"""The server's HTTP front: which handler answers a request. The Lambda API's operations, the other AWS APIs on the
same endpoint (told apart by the SigV4 scope's service name: iam, sts, logs, events, scheduler, monitoring, and
lambdad-stacks and lambdad, ours), function URLs (told by Host), code download links, the S3 event webhook
(``/s3-events/``), ``/metrics`` and the web console (``/console/``, lambdad/console/). Built once at ``serve`` from a
built ``LambdadApp``; app.py wires the services, this module routes to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import botocore.session

from lambdad.api.access import AccessControl
from lambdad.api.aliases import alias_handlers
from lambdad.api.code_urls import CODE_PATH
from lambdad.api.concurrency import concurrency_handlers
from lambdad.api.event_invoke import event_invoke_handlers
from lambdad.api.event_sources import event_source_handlers
from lambdad.api.function_urls import function_url_handlers
from lambdad.api.functions import function_handlers
from lambdad.api.http import (MAX_CONTROL_BODY, MAX_SYNC_PAYLOAD, Handler, LambdaApi, OtherService, RequestContext,
                              body_limit)
from lambdad.api.invoke import invoke_handlers
from lambdad.api.json_api import JsonApi
from lambdad.api.layers import layer_handlers
from lambdad.api.policies import policy_handlers
from lambdad.api.query_api import QueryApi
from lambdad.api.rest_api import RestJsonApi
from lambdad.api.rpc_api import RpcApi
from lambdad.api.server import App, HttpRequest, HttpResponse, Precheck, StreamedResponse
from lambdad.api.tags import tag_handlers
from lambdad.api.versions import version_handlers
from lambdad.auth.principals import Principal
from lambdad.deploy.stacks_api import SERVICE as STACKS, stacks_handlers, stacks_model
from lambdad.console.calls import ApiCaller
from lambdad.console.front import CONSOLE_PATH, ConsoleFront
from lambdad.errors import InvalidParameterValueException
from lambdad.events.api import events_handlers
from lambdad.iam.api import iam_handlers
from lambdad.iam.sts import sts_handlers
from lambdad.logs.api import logs_handlers
from lambdad.metrics.api import cloudwatch_handlers
from lambdad.metrics.errors import SHAPES as CLOUDWATCH_ERROR_SHAPES
from lambdad.metrics.prometheus import METRICS_PATH, PrometheusEndpoint
from lambdad.s3events.api import SERVICE_NAME as NOTIFICATIONS_SERVICE
from lambdad.s3events.api import notifications_api
from lambdad.s3events.configs import ENDPOINT_PREFIX as S3_EVENTS_PREFIX
from lambdad.s3events.webhook import S3EventsWebhook
from lambdad.schedules.api import scheduler_handlers
from lambdad.urls.front import UrlFront

if TYPE_CHECKING:
    from lambdad.app import LambdadApp

__all__ = ["http_front", "lambda_handlers"]

_HOSTS_REMEMBERED = 4096  # Host headers remembered as a function URL's or not (cleared when full)

BodyLimit = Callable[[str, str, list[tuple[str, str]]], int]


def lambda_handlers(app: LambdadApp) -> dict[str, Handler]:
    """The handler of every operation of the Lambda API the server implements, by operation name."""
    s = app.settings
    return {
        **function_handlers(app.functions, app.code_urls, app.concurrency.reserved),
        **version_handlers(app.functions),
        **alias_handlers(app.aliases, s.region, s.account_id),
        **tag_handlers(app.functions),
        **policy_handlers(app.policies, s.region, s.account_id),
        **concurrency_handlers(app.concurrency, app.provisioned, s.region, s.account_id),
        **event_invoke_handlers(app.event_configs, s.region, s.account_id),
        **function_url_handlers(app.function_urls, s.region, s.account_id),
        **event_source_handlers(app.event_sources),
        **invoke_handlers(app.runs, app.submissions, s.region, s.account_id,
                          stream_limit=int(s.stream_response_max_mb * 1024 * 1024)),
        **layer_handlers(app.layers, app.code_urls),
    }


def other_services(app: LambdadApp) -> dict[str, OtherService]:
    """The AWS APIs beside Lambda's, by the SigV4 service name their requests are signed for."""
    s = app.settings
    session = botocore.session.get_session()
    regions = (s.region, "us-east-1")  # IAM is global: SDKs sign its requests for us-east-1
    services: dict[str, OtherService] = {
        "iam": QueryApi(session.get_service_model("iam"), iam_handlers(app.iam, app.authorizer), regions),
        "sts": QueryApi(session.get_service_model("sts"), sts_handlers(app.iam, app.authorizer, app.sessions),
                        regions),
        "logs": JsonApi(session.get_service_model("logs"),
                        logs_handlers(app.store, app.authorizer, s.region, s.account_id, app.log_retention.wake),
                        (s.region,), validation_error="InvalidParameterException"),
    }
    services["events"] = JsonApi(session.get_service_model("events"), events_handlers(app.eventbridge, app.authorizer),
                                 (s.region,))
    # lambdad's own: functions' S3 notification endpoints (s3events/api.py)
    services[NOTIFICATIONS_SERVICE] = notifications_api(app.s3_notifications, app.authorizer, s.region, s.account_id)
    services["scheduler"] = RestJsonApi(session.get_service_model("scheduler"),
                                        scheduler_handlers(app.schedules, app.authorizer), (s.region,))
    services[STACKS] = JsonApi(stacks_model(), stacks_handlers(app.store, app.authorizer, s.region, s.account_id),
                               (s.region,))
    if app.metrics is not None:
        services["monitoring"] = RpcApi(session.get_service_model("cloudwatch"),
                                        cloudwatch_handlers(app.metrics, app.authorizer), (s.region,),
                                        CLOUDWATCH_ERROR_SHAPES)
    return services


def http_front(app: LambdadApp) -> tuple[App, Precheck, BodyLimit]:
    """The control API, the other AWS APIs, function URLs, code download links and ``/metrics``, as one HTTP
    application; its precheck of requests whose bodies are not read yet; and its body limit per request."""
    s = app.settings
    model = botocore.session.get_session().get_service_model("lambda")
    handlers = lambda_handlers(app)
    if s.iam_refuse_unknown_roles:
        for operation in ("CreateFunction", "UpdateFunctionConfiguration"):
            handlers[operation] = _known_role(app, handlers[operation])
    access = AccessControl(app.functions, app.layers, app.authorizer, s.region, s.account_id,
                           app.event_sources.function_arn_of)
    metrics_endpoint = None
    if app.metrics is not None:
        assert app.recorder is not None
        pool = app.pool
        metrics_endpoint = PrometheusEndpoint(
            app.recorder, lambda: (pool.environment_count, pool.in_use, pool.unreserved_in_use), s.metrics_token)
    api = LambdaApi(model, handlers, app._lookup_identity, access.check, s.region, other_services(app))
    download = app.code_urls.handler(app.functions)

    def may_invoke(principal: Principal, name: str, qualifier: str | None, source_ip: str | None) -> None:
        access.check(principal, "Invoke", {"FunctionName": name}, {"Qualifier": [qualifier]} if qualifier else {}, {},
                     source_ip)

    s3_events = S3EventsWebhook(app.s3_notifications, app.submissions, region=s.region,
                                max_records=s.s3_events_max_records, lookup=app._lookup_identity,
                                authorize_invoke=may_invoke)
    console = ConsoleFront(
        app.store, app._lookup_identity,
        ApiCaller(api, ("lambda", "logs", "scheduler") + (("monitoring",) if app.metrics is not None else ())),
        download, session_seconds=s.console_session_hours * 3600, region=s.region, account_id=s.account_id,
        runtimes=tuple(r for r in app.runtimes.names if r.startswith(("python", "nodejs"))))
    urls = UrlFront(app.function_urls, app.runs, app.functions, app.authorizer, app._lookup_identity,
                    region=s.region, account_id=s.account_id,
                    stream_limit=int(s.stream_response_max_mb * 1024 * 1024))
    marks = app.url_marks  # a function URL's Host ends with one (before its port)
    url_hosts: dict[str, bool] = {}  # Host header -> a function URL's? (the API's few hosts: one look-up each)

    async def front(request: HttpRequest) -> HttpResponse | StreamedResponse:
        host = request.host
        to_url = url_hosts.get(host)
        if to_url is None:
            to_url = host.partition(":")[0].lower().endswith(marks)
            if len(url_hosts) >= _HOSTS_REMEMBERED:
                url_hosts.clear()
            url_hosts[host] = to_url
        if to_url:  # before the API: a function URL
            return await urls.handle(request)
        if request.target.startswith(CODE_PATH):
            return await download(request)
        if request.target.startswith(S3_EVENTS_PREFIX):  # a store's S3 event records: a token, not SigV4
            return await s3_events.handle(request)
        if request.target.startswith(CONSOLE_PATH):
            return await console.handle(request)
        if metrics_endpoint is not None and request.target.partition("?")[0] == METRICS_PATH:
            return await metrics_endpoint.handle(request)
        return await api.handle(request)

    async def precheck(method: str, target: str, headers: list[tuple[str, str]]) -> HttpResponse | None:
        # a large body to a function URL is not signed for the API (NONE: not signed at all)
        if _addresses_url(headers, marks) or target.startswith(S3_EVENTS_PREFIX):
            return None  # a function URL's or the S3 event webhook's: not signed for the API
        if target.startswith(CONSOLE_PATH):
            host = next((value for name, value in headers if name.lower() == "host"), "")
            return await console.precheck(method, target, headers, host)
        return await api.precheck(method, target, headers)

    def limit(method: str, target: str, headers: list[tuple[str, str]]) -> int:
        """``body_limit``, and a function URL's request: 6 MB (its event's limit is checked once it is built)."""
        if target.startswith(S3_EVENTS_PREFIX) and not _addresses_url(headers, marks):
            return s.s3_events_max_body_kb * 1024
        if target.startswith(CONSOLE_PATH) and not _addresses_url(headers, marks):
            return console.body_limit(method, target)
        found = body_limit(method, target, headers)
        if found == MAX_CONTROL_BODY and _addresses_url(headers, marks):
            return MAX_SYNC_PAYLOAD
        return found

    return front, precheck, limit


def _addresses_url(headers: list[tuple[str, str]], marks: tuple[str, ...]) -> bool:
    """Whether a request's Host (among its ``headers``) is a function URL's."""
    for name, value in headers:
        if len(name) == 4 and name.lower() == "host":
            return value.partition(":")[0].lower().endswith(marks)
    return False


def _known_role(app: LambdadApp, handler: Handler) -> Handler:
    """``handler`` refusing a role Lambda could not assume: not an IAM role of this account, or one whose trust
    policy does not let lambda.amazonaws.com assume it (LAMBDAD_IAM_REFUSE_UNKNOWN_ROLES, as AWS)."""
    async def checked(ctx: RequestContext, params: dict[str, Any]) -> Mapping[str, Any]:
        role = params.get("Role")
        if role and not app.iam.lambda_may_assume(str(role)):
            raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")
        return await handler(ctx, params)
    return checked
