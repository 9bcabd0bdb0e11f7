"""Builds a lambdad server: the one place where stores, services and the pool are wired together (routes.py
routes requests to them; rundirs.py keeps the run dir).

``LambdadApp.open(settings)`` takes the data dir lock, opens the stores, loads functions, and starts the
background tasks (log sink, idle reaper); ``serve()`` binds the HTTP listener and starts the async queue; ``aclose()`` undoes
all of it in reverse order, leaving no process, cgroup or temp dir behind. ``serve``, the tests and the
benchmarks all build the server through this class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable


from lambdad import __version__
from lambdad.api.code_urls import CodeUrlSigner
from lambdad.api.http import (MAX_BODY_BYTES, Handler, request_too_busy, request_too_large)
from lambdad.api.server import HttpServer, Limits
from lambdad.arn import FunctionRef
from lambdad.auth.credentials import RootCredentials, load_root_credentials, shared_root_credentials
from lambdad.auth.issued import CredentialIssuer, IssuedCredentials
from lambdad.auth.principals import ROOT, Identity, function_principal, user_principal
from lambdad.auth.sigv4 import Secret
from lambdad.cluster.async_queue import JetStreamQueue
from lambdad.cluster.blob_sweep import BlobSweep
from lambdad.cluster.blobs import SharedBlobStore
from lambdad.cluster.s3_blobs import S3BlobStore
from lambdad.cluster.leases import Leases
from lambdad.cluster.link import Link
from lambdad.cluster.membership import Membership
from lambdad.cluster.notices import ChangeNotices
from lambdad.cluster.placement import SpreadPlacement
from lambdad.errors import LambdaError
from lambdad.esm.mappings import EventSourceMappings
from lambdad.events.delivery import Deliveries
from lambdad.events.model import Names as EventNames
from lambdad.events.service import EventBridge
from lambdad.esm.pollers import PollerManager, Source
from lambdad.esm.rmq import RmqSource
from lambdad.esm.sqs import SqsSource
from lambdad.esm.streams import StreamSource
from lambdad.iam.authorize import Authorizer
from lambdad.iam.keycache import KeyCache
from lambdad.iam.policy import validate_policy
from lambdad.iam.service import IamService
from lambdad.iam.sts import Sessions
from lambdad.cluster.permits import ClusterPermits
from lambdad.cluster.routing import InvokeRouter
from lambdad.config import Settings
from lambdad.functions.aliases import AliasService
from lambdad.functions.code import CodeTrees
from lambdad.functions.collector import CodeCollector
from lambdad.functions.concurrency import ConcurrencyService
from lambdad.functions.layers import LayerService
from lambdad.functions.model import FunctionConfig
from lambdad.functions.policies import PolicyService
from lambdad.functions.service import FunctionService
from lambdad.invoke.async_queue import AsyncQueue, CountedQueue, EventQueue
from lambdad.invoke.destinations import DeliveryResult, Destinations
from lambdad.invoke.event_config import AsyncRules, EventInvokeConfigs
from lambdad.invoke.provisioned import ProvisionedConcurrency
from lambdad.invoke.service import Invoker, InvokeService
from lambdad.invoke.usage import UsageMeter
from lambdad.logs.retention import LogRetention
from lambdad.schedules.service import Schedules
from lambdad.schedules.timer import LEASE as TIMER_LEASE, Timer
from lambdad.metrics.emf import maybe_emf, record_emf
from lambdad.metrics.recorder import MetricsRecorder
from lambdad.metrics.service import MetricsService
from lambdad.logs.sink import LogSink
from lambdad.runtimes.registry import RuntimeRegistry
from lambdad.runtimes.sdk import find_python_sdk
from lambdad.sandbox.cgroups import CgroupRoot
from lambdad.sandbox.environment import Environment, EnvironmentSpec, PlatformAccess
from lambdad.sandbox.launcher import Containment, Launcher, probe_jail, write_etc_files
from lambdad.sandbox.network import FunctionNetwork, NetworkError, parse_host_services, parse_networks
from lambdad.sandbox.network import available as network_unavailable
from lambdad.sandbox.pool import EnvironmentPool
from lambdad.sandbox.prewarm import MAX_KEYS as PREWARM_KEYS
from lambdad.sandbox.scratch import ScratchPool
from lambdad.sandbox.variables import runtime_variables
from lambdad.s3events.configs import S3Notifications
from lambdad.store.blobs import FileBlobStore
from lambdad.store.lock import DataDirLock
from lambdad.store.interfaces import AsyncEvent, BlobStore
from lambdad.store.sql import SqlStore
from lambdad.urls.configs import FunctionUrls
from lambdad.urls.front import url_bases
from lambdad.routes import http_front, lambda_handlers
from lambdad.rundirs import hold_alive, raise_descriptor_limit, sweep_run_dirs

if TYPE_CHECKING:
    from lambdad.spans import Traces

__all__ = ["LambdadApp"]

log = logging.getLogger(__name__)





class LambdadApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server_id = uuid.uuid4().hex[:12]
        self._lock = DataDirLock(settings.data_dir)
        self._http: HttpServer | None = None
        self.port: int | None = None

    @classmethod
    async def open(cls, settings: Settings) -> "LambdadApp":
        app = cls(settings)
        await app._open()
        return app

    async def _open(self) -> None:
        s = self.settings
        raise_descriptor_limit()
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            await self._build()
        except BaseException:
            await self._unbuild()
            self._lock.release()
            raise

    async def _unbuild(self) -> None:
        """A start that failed half-way: close what was opened (the store's thread would keep the process; the
        function network holds an address block and its nftables table)."""
        network = getattr(self, "network", None)
        if network is not None:
            await network.aclose()
        link = getattr(self, "link", None)
        if link is not None:
            await link.aclose()
        store = getattr(self, "store", None)
        if store is not None:
            await store.aclose()
        cgroups = getattr(self, "cgroups", None)
        if cgroups is not None:
            await asyncio.to_thread(cgroups.remove)
        run_dir = getattr(self, "run_dir", None)
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)

    async def _build(self) -> None:
        s = self.settings
        self.store = await SqlStore.open(s.store_url)
        self.credentials: RootCredentials = (
            await shared_root_credentials(self.store, s.data_dir, s.access_key_id, s.secret_access_key, s.region)
            if s.database_url else load_root_credentials(s.data_dir, s.access_key_id, s.secret_access_key, s.region))
        self._root = Identity(Secret(self.credentials.secret_access_key), ROOT)
        self.issuer = CredentialIssuer()
        # IAM: users, groups, roles, policies; every decision about a caller other than root (iam/authorize.py)
        self.iam = IamService(self.store, s.account_id, validate_policy)
        await self.iam.load()
        self.authorizer = Authorizer(self.iam, s.region)
        self.sessions = Sessions(self.store)
        self.keys = KeyCache(s.data_dir)  # users' keys and STS sessions between requests
        self.iam.key_changed = self.keys.forget
        self.link = await Link.open(s.nats_url, s.cluster_name, node_id=self.server_id)
        self.blobs: BlobStore = FileBlobStore(s.data_dir / "code")
        self.shared_blobs: SharedBlobStore | S3BlobStore | None = None
        if s.blob_url:  # the node's files become its cache of the cluster's bucket
            self.shared_blobs = await asyncio.to_thread(S3BlobStore.open, FileBlobStore(s.data_dir / "code"),
                                                        s.blob_url, s.region)
        elif self.link.clustered:  # ... or of the cluster's object store
            self.shared_blobs = await SharedBlobStore.open(FileBlobStore(s.data_dir / "code"), self.link)
        if self.shared_blobs is not None:
            self.blobs = self.shared_blobs
        self.trees = CodeTrees(s.data_dir / "tasks")
        self.runtimes = RuntimeRegistry()
        self.layers = LayerService(self.store, self.blobs, CodeTrees(s.data_dir / "opt"), region=s.region,
                                   account_id=s.account_id)
        await self.layers.load()
        self.functions = FunctionService(
            self.store, self.blobs, self.trees, self.runtimes, region=s.region, account_id=s.account_id,
            layers=self.layers,
        )
        await self.functions.load()
        self.concurrency = ConcurrencyService(self.functions, self.store, s.account_concurrency)
        await self.concurrency.load()
        self.aliases = AliasService(self.functions, self.store)
        self.policies = PolicyService(self.functions, self.store)
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"lambdad-{self.server_id}-"))
        self._alive = hold_alive(self.run_dir)
        self._run_dir_sweep = asyncio.get_running_loop().create_task(
            asyncio.to_thread(sweep_run_dirs, self.run_dir.parent, self.run_dir))
        isolated = s.isolation == "auto"
        self.cgroups = await asyncio.to_thread(CgroupRoot.probe, self.server_id) if isolated else None
        jail = await asyncio.to_thread(probe_jail) if isolated else {"error": "turned off by LAMBDAD_ISOLATION=none"}
        containment = Containment(cgroups=self.cgroups is not None, jail=jail,
                                  scratch_error=ScratchPool.available(str(s.data_dir / "scratch")) if isolated
                                  else "turned off")
        if not containment.jailed:
            log.warning("environments are NOT jailed: functions run as the server's user and can read its files")
        self.network, network_error = await self._open_network(containment)
        containment = dataclasses.replace(containment, network_error=network_error)
        self.launcher = Launcher(
            self.cgroups, containment, jailed=containment.jailed, cpu_proportional=s.cpu_proportional,
            python_sdk=find_python_sdk(), private_network=s.function_network == "none",
            etc_files=write_etc_files(str(self.run_dir)),
            prewarm_size=s.prewarm_pool_size, slot_dir=str(self.run_dir / "slots"), idle_timeout=s.idle_timeout_seconds,
            scratch_dir=str(s.data_dir / "scratch"), network=self.network,
        )
        if s.function_network == "none" and not containment.jailed:
            log.warning("LAMBDAD_FUNCTION_NETWORK=none needs the jail, which is not active: functions have network")
        mb = 1024 * 1024
        self.leases = Leases(self.link)  # work one node of a cluster does (embedded: this one)
        self.log_retention = LogRetention(
            self.store, max_age_seconds=s.log_retention_days * 86400, group_bytes=int(s.log_function_max_mb * mb),
            total_bytes=int(s.log_max_mb * mb), lease=self.leases.lease("log-retention"))
        # Lambda's CloudWatch metrics (LAMBDAD_METRICS=off: none recorded, nor served)
        self.recorder = MetricsRecorder() if s.metrics == "on" else None
        self.metrics = (MetricsService(self.store, self.recorder, flush_seconds=s.metrics_flush_seconds,
                                       retention_days=s.metrics_retention_days,
                                       lease=self.leases.lease("metrics-retention"))
                        if self.recorder is not None else None)
        await self.leases.start()
        self.log_retention.start()
        if self.metrics is not None:
            self.metrics.start()
        self.log_sink = LogSink(self.store, on_written=self.log_retention.written,
                                structured=(maybe_emf, functools.partial(record_emf, self.recorder))
                                if self.recorder is not None else None)
        self.log_sink.start()
        # metered use (``lambdad usage``): counted as invocations end, added to the store every few seconds
        self.usage = UsageMeter(self.store, lambda: self.provisioned.allocated(), s.usage_flush_seconds)
        # in a cluster each node uses a share of each concurrency limit, granted through the database
        self.permits = (ClusterPermits(self.store, self.link.node_id, lambda: self.pool.usage())
                        if self.link.clustered else None)
        self.pool = EnvironmentPool(
            self._make_environment, account_limit=s.account_concurrency, idle_timeout=s.idle_timeout_seconds,
            limits=self.concurrency, on_gone=self._code_released, permits=self.permits,
        )
        if self.permits is not None:
            self.permits.start()
        self.pool.start()
        # spans of Active functions' sampled invocations, over OTLP/HTTP (traces.py); None: nothing is exported
        self.traces: Traces | None = None
        if s.otlp_endpoint:
            from lambdad.spans import Traces

            self.traces = Traces(s.otlp_endpoint)
            log.info("traces: spans of Active functions' sampled invocations go to %s", self.traces.endpoint)
        self.invoker = InvokeService(self.functions, self.pool, self.runtimes, self.traces, self.recorder)
        if self.launcher.prewarm_size:
            log.info("prewarm pool: %d pre-started slots per Python / Node.js / custom-runtime key", self.launcher.prewarm_size)
            self.functions.on_ready(self._expect_slots)
            latest = sorted((c for c in self.functions.all_configs() if c.version == "$LATEST"),
                            key=lambda c: c.last_modified)
            # the most recently modified last, as many as the pool keeps keys: a key is computed from the function's
            # spec, which has its code unpacked here (in a cluster, fetched), not worth it for keys the pool drops
            for config in latest[-PREWARM_KEYS:]:
                await self._expect_slots(config)
        elif s.prewarm_pool_size:
            log.info("prewarm pool: off (it needs the jail, cgroups and the mount API, and not "
                     "LAMBDAD_FUNCTION_NETWORK=none)")
        self.membership = Membership(self.link, "", __version__, lambda: (self.pool.in_use, self.pool.environment_count),
                                     lambda: self.provisioned.report())
        self.router = InvokeRouter(self.link, self.invoker, self.membership.live, self._reload_function,
                                   self.pool.has_idle)
        # what runs an invocation: here, or in a cluster at the function version's home node
        self.runs: Invoker = self.router if self.link.clustered else self.invoker
        # provisioned environments: all here, or in a cluster spread over the live nodes
        self.provisioned = ProvisionedConcurrency(
            self.functions, self.aliases, self.concurrency, self.invoker, self.pool, self.store,
            SpreadPlacement(self.link.node_id, self.membership.live) if self.link.clustered else None)
        await self.provisioned.load()
        # asynchronous invocation settings per function, version or alias; the queues ask them for each event
        self.event_configs = EventInvokeConfigs(self.functions, self.aliases, self.store, region=s.region,
                                                account_id=s.account_id, default_max_age=s.max_event_age_seconds)
        await self.event_configs.load()
        # function URLs of $LATEST or an alias; every node serves every one (urls/front.py)
        self.function_urls = FunctionUrls(self.functions, self.aliases, self.store, region=s.region,
                                          account_id=s.account_id, url_of=self.function_url)
        await self.function_urls.load()
        # event source mappings (esm/): stored here, polled by the node holding each one's lease
        self.sources: dict[str, Source] = {"sqs": SqsSource(s.region), "mq": RmqSource(self.store),
                                           "kinesis": StreamSource("kinesis", s.region, self.store),
                                           "dynamodb": StreamSource("dynamodb", s.region, self.store)}
        self.event_sources = EventSourceMappings(self.functions, self.store, self.sources, region=s.region,
                                                 account_id=s.account_id)
        await self.event_sources.load()
        self.pollers = PollerManager(self.event_sources, self.sources, self.leases, self.runs,
                                     self.concurrency.reserved)
        self.url_marks = tuple("." + base for base in url_bases(s.region, s.url_host))  # a URL's Host ends so
        # EventBridge (events/): buses, rules and targets; matched events go to the async queue
        self.event_deliveries = Deliveries(self.functions, self.store, self.leases.lease("eventbridge-dead-letters"),
                                           region=s.region, account_id=s.account_id, metrics=self.recorder)
        self.eventbridge = EventBridge(self.store, self.event_deliveries, EventNames(s.region, s.account_id))
        await self.eventbridge.load()

        def rules(event: AsyncEvent) -> AsyncRules:
            return self.event_configs.rules(event.function_name, event.qualifier)

        self.destinations = Destinations(self.event_configs.destination, self._dead_letter_of, region=s.region,
                                         account_id=s.account_id, metrics=self.recorder)
        self.async_queue: AsyncQueue | JetStreamQueue = (
            JetStreamQueue(self.link, self.store, self._deliver_async, retry_delays=s.async_retry_delays,
                           rules=rules, destinations=self.destinations) if self.link.clustered else
            AsyncQueue(self.store, self._deliver_async, retry_delays=s.async_retry_delays, rules=rules,
                       destinations=self.destinations))
        recorder = self.recorder
        # what the API and the destinations submit to: counted (AsyncEventsReceived) when metrics are on
        self.submissions: EventQueue = (CountedQueue(self.async_queue, lambda name, qualifier: recorder.function_event(
            "AsyncEventsReceived", name, qualifier)) if recorder is not None else self.async_queue)
        self.destinations.submit = self.submissions.submit  # a function destination is invoked asynchronously
        self.destinations.local_bus = self.eventbridge.put_local  # a bus of this server: delivered here
        self.event_deliveries.submit = self.submissions.submit
        # S3 object events: functions' notification endpoints, read from the store by the webhook (s3events/)
        self.s3_notifications = S3Notifications(self.functions, self.store, region=s.region, account_id=s.account_id)
        # timers (schedules/timer.py): fired by the node holding their lease; features register their kinds
        self.timer = Timer(self.store, self.leases.lease(TIMER_LEASE),
                           poll_seconds=1.0 if self.link.clustered else 30.0)
        # EventBridge Scheduler (schedules/service.py): schedules in the store, fired through the timer
        self.schedules = Schedules(self.store, self.timer, self.runs, self.submissions, region=s.region,
                                   account_id=s.account_id)
        await self.schedules.load()
        await self.eventbridge.attach_timer(self.timer)  # EventBridge's scheduled rules (kind "rule")
        self.code_urls = CodeUrlSigner()
        self.collector = CodeCollector(self.functions, self.layers, blobs=self.blobs.root, tasks=self.trees.root,
                                       opt=s.data_dir / "opt", in_use=self.pool.in_use_paths,
                                       running=self.invoker.running_configs, guard=self.blobs.guard)
        # the shared copies of code nothing references: collected by one node (the lease's holder)
        self.blob_sweep = (BlobSweep(self.shared_blobs, self.collector.referenced_blobs,
                                     self.leases.lease("blob-sweep"), interval=s.blob_sweep_seconds,
                                     grace=s.blob_grace_seconds) if self.shared_blobs is not None else None)
        self.functions.on_change(self._function_changed)
        self.notices = ChangeNotices(self.link, {"function": self._reload_function,
                                                 "concurrency": lambda _name: self.concurrency.load(),
                                                 "layer": lambda _name: self.layers.load(),
                                                 "provisioned": self.provisioned.reload,
                                                 "iam": self.iam.reload,
                                                 "eventinvoke": self.event_configs.reload,
                                                 "functionurl": self.function_urls.reload,
                                                 "eventsource": self.event_sources.reload,
                                                 "events": self.eventbridge.reload}, self._reload_all)
        self.store.written = self.notices.written
        await self.notices.start()

    async def _open_network(self, containment: Containment) -> tuple[FunctionNetwork | None, str | None]:
        """LAMBDAD_FUNCTION_NETWORK=isolated: the environments' network (sandbox/network.py), or None with the
        reason (and a warning: then functions share the host's network)."""
        s = self.settings
        if s.function_network != "isolated":
            return None, f"LAMBDAD_FUNCTION_NETWORK={s.function_network}"
        why = network_unavailable() if containment.jailed else "environments are not jailed"
        network = None
        if why is None:
            # where it can be made it must be: a setup that fails (an overlapping subnet, netlink refusing) stops
            # the start with the reason, rather than quietly giving functions the host's network
            network = FunctionNetwork(s.function_subnet, parse_host_services(s.function_host_services),
                                      parse_networks(s.function_blocked_networks))
            try:
                await asyncio.to_thread(network.open)
            except NetworkError as exc:
                raise SystemExit(f"lambdad: the function network (LAMBDAD_FUNCTION_NETWORK=isolated) could not be "
                                 f"set up: {exc}; set LAMBDAD_FUNCTION_NETWORK=host to share the host's") from exc
        if network is None:
            log.warning("functions share the host's network, loopback services included: no network namespace per "
                        "environment (%s)", why)
            return None, why
        network.start()
        log.info("function network: environments in %s (block %d), host services: %s", network.subnet,
                 network.block, ", ".join(map(str, network.host_services)) or "none")
        return network, None

    async def _await_run_dir_sweep(self) -> None:
        await asyncio.gather(self._run_dir_sweep, return_exceptions=True)

    async def _close_permits(self) -> None:
        if self.permits is not None:
            await self.permits.aclose()

    async def _close_network(self) -> None:
        if self.network is not None:
            await self.network.aclose()

    def _code_released(self) -> None:
        collector = getattr(self, "collector", None)  # environments may die before it exists (a failed start)
        if collector is not None:
            collector.request()

    async def _function_changed(self, name: str, version: str | None) -> None:
        self._code_released()

    async def _reload_function(self, name: str) -> None:
        """Another node changed function ``name`` (cluster/notices.py)."""
        for alias in await self.functions.reload(name):
            await self.aliases.changed(name, alias)

    async def _reload_all(self) -> None:
        """Change notices may have been missed (NATS was away): read everything kept in memory again."""
        await self.iam.load()
        await self.layers.load()
        await self.event_configs.load()
        await self.function_urls.load()
        await self.event_sources.load()
        await self.eventbridge.load()
        await self.concurrency.load()
        names = {f.name for f in self.functions.all()} | {f.name for f in await self.store.load_functions()}
        for name in sorted(names):
            await self._reload_function(name)
            await self.provisioned.reload(name)

    async def _expect_slots(self, config: FunctionConfig) -> None:
        """A function was created, updated or loaded: slots of its key get ready for its first cold start. The key
        is computed as a launch computes it, from the spec and variables an environment of it would have (without
        the Runtime API's address, log stream and credentials, which no key holds)."""
        try:
            spec = await self.invoker.spec(config)
        except Exception as exc:  # e.g. its code not fetched from a cluster's blob store: slots are only a head start,
            # never a reason for a create, an update or the server's start to fail; its invocations will say what it is
            log.warning("no slots asked for ahead for %s: %s", config.name, exc)
            return
        jailed = self.launcher.jailed
        self.launcher.expect(spec.runtime, environment=runtime_variables(spec, runtime_api="", jailed=jailed,
                                                                         log_stream=""),
                             memory_mb=config.memory_size, task_root=spec.task_root,
                             tmp_mb=config.ephemeral_storage, opt_dir=spec.opt_dir)

    def _make_environment(self, spec: EnvironmentSpec, on_dead: Callable[[Environment], None]) -> Environment:
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        platform = (PlatformAccess(self._issue_credentials, self.issuer.revoke, f"http://{host}:{self.port}",
                                   self._serve_inside) if self.port else None)
        return Environment(spec, self.launcher, self.log_sink, str(self.run_dir), on_dead, platform, meter=self.usage)

    def _dead_letter_of(self, name: str, qualifier: str | None) -> str | None:
        """The dead-letter queue of the version an event ran (DeadLetterConfig.TargetArn), or None."""
        try:
            return self.functions.resolve(FunctionRef(name, qualifier)).dead_letter_target or None
        except LambdaError:
            return None

    async def _deliver_async(self, event: AsyncEvent) -> DeliveryResult:
        if self.recorder is not None:  # how long it waited in the queue, each attempt
            self.recorder.function_event("AsyncEventAge", event.function_name, event.qualifier,
                                         max(0.0, (time.time() - event.received) * 1000.0), "Milliseconds")
        ref = FunctionRef(event.function_name, event.qualifier or None)
        config = self.runs.route(ref)  # an alias is resolved (and its weights drawn) per delivery attempt
        outcome = await self.runs.invoke(
            config, event.payload, request_id=event.id, client_context=event.client_context,
            invoked_arn=self.runs.invoked_arn(ref), lineage=event.hops + 1,  # its place in a chain, from 1
        )
        result = outcome.result
        return DeliveryResult(ok=result.function_error is None, payload=result.payload,
                              function_error=result.function_error, executed_version=outcome.executed_version,
                              status=200)  # the Invoke status: the function ran (an error of its own included)

    async def _lookup_identity(self, access_key_id: str) -> Identity | None:
        """Root, then a function environment's credentials (memory), then an STS session's or an IAM user's key
        (read from the store each time, off the event loop, so keys made, deactivated or deleted anywhere count
        at once)."""
        if access_key_id == self.credentials.access_key_id:
            return self._root
        issued = self.issuer.lookup(access_key_id)
        if issued is not None:
            return issued
        cached = self.keys.get(access_key_id)
        if cached is not None:
            return cached
        if access_key_id.startswith("ASIA"):
            found = await self.sessions.lookup(access_key_id)
            if found is not None:
                self.keys.put(access_key_id, found[0], expires=found[1])
            return found[0] if found is not None else None
        stored = await self.store.get_access_key(access_key_id)
        if stored is None or stored[2] != "Active":
            return None
        name, secret, _status = stored
        identity = Identity(Secret(secret), user_principal(self.settings.account_id, name,
                                                           self.iam.path_of("user", name)))
        self.keys.put(access_key_id, identity)
        return identity

    def handlers(self) -> dict[str, Handler]:
        """The handler of every operation of the Lambda API this server implements, by operation name."""
        return lambda_handlers(self)


    def function_url(self, url_id: str) -> str:
        """The FunctionUrl shown for a URL id: under LAMBDAD_URL_HOST, else ``lambda-url.<region>.localhost`` and
        this node's port."""
        s = self.settings
        if s.url_host:
            return f"http://{url_id}.{s.url_host}/"
        return f"http://{url_id}.lambda-url.{s.region}.localhost:{self.port}/"

    def _issue_credentials(self, env_id: str, spec: EnvironmentSpec) -> IssuedCredentials:
        """An environment's own credentials: its function's principal, valid while the environment lives."""
        config = spec.config
        assert isinstance(config, FunctionConfig)  # the sandbox sees it through its FunctionVersion protocol
        return self.issuer.issue(env_id, function_principal(config.role, config.name),
                                 config.arn(spec.region, spec.account_id, qualified=True))

    async def _serve_inside(self, listener: socket.socket) -> asyncio.AbstractServer:
        """The API on a listener in an environment's network namespace (its AWS_ENDPOINT_URL_LAMBDA)."""
        assert self._http is not None
        return await self._http.serve_socket(listener)

    async def _close_metrics(self) -> None:
        if self.metrics is not None:
            await self.metrics.aclose()

    async def _close_event_sources(self) -> None:
        await self.pollers.aclose()
        await self.event_sources.aclose()

    async def _close_destinations(self) -> None:
        self.destinations.close()

    async def _close_blob_sweep(self) -> None:
        if self.blob_sweep is not None:
            await self.blob_sweep.aclose()
        if isinstance(self.shared_blobs, S3BlobStore):
            self.shared_blobs.close()

    async def _close_traces(self) -> None:
        if self.traces is not None:
            await self.traces.aclose()

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.aclose(timeout=5.0)  # requests still being answered get 5 s
            self._http = None

    async def serve(self) -> int:
        """Bind the HTTP listener; returns the port (useful with port 0)."""
        s = self.settings
        app, precheck, limit = http_front(self)
        limits = Limits(max_connections=s.http_max_connections, max_buffered=s.http_buffer_mb * 1024 * 1024,
                        head_timeout=s.http_head_timeout_seconds, min_rate=s.http_min_rate_kb * 1024)
        self._http = HttpServer(app, max_body=MAX_BODY_BYTES, too_large=request_too_large, limits=limits,
                                body_limit=limit, precheck=precheck, too_busy=request_too_busy)
        self.port = await self._http.start(self.settings.host, self.settings.port)
        host = s.host if s.host not in ("0.0.0.0", "::", "") else socket.gethostname()
        self.membership.endpoint = s.advertise_url or f"http://{host}:{self.port}"
        await self.router.start()
        await self.membership.start()
        # queued async events are delivered once functions can reach the API (their credentials name its port)
        await self.async_queue.start()
        await self.provisioned.start()
        self.pollers.start()  # event source mappings: invocations need the API's port too
        self.event_deliveries.start()  # EventBridge: events kept for dead-letter queues
        self.timer.start()  # after every kind is registered, and the async queue takes events
        self.usage.start()
        self.collector.start()
        if self.blob_sweep is not None:
            self.blob_sweep.start()
        # What start-up built (botocore's service model, the routes, the loaded functions) lives as long as the
        # server: moved out of the collector's generations, so that a full collection does not walk it again
        gc.collect()
        gc.freeze()
        return self.port

    async def aclose(self) -> None:
        """Stop everything, in order. Every step runs even when one before it failed (the failure is logged):
        a stop must never leave environments, cgroups or the data dir lock behind because, say, the log sink
        could not flush."""
        steps = [
            ("membership", self.membership.aclose),  # first: the other nodes stop sending invocations here
            ("invoke router", self.router.aclose),
            ("http listener", self._close_http),
            ("timers", self.timer.aclose),  # before the async queue: a fire submits to it
            ("schedules", self.schedules.aclose),
            ("async queue", self.async_queue.aclose),
            ("event source pollers", self._close_event_sources),
            ("destination clients", self._close_destinations),
            ("EventBridge deliveries", self.event_deliveries.aclose),
            ("code collector", self.collector.aclose),
            ("blob sweep", self._close_blob_sweep),
            ("provisioned concurrency", self.provisioned.aclose),
            ("environments", self.pool.aclose),
            ("trace exporter", self._close_traces),  # after the environments: their last spans are ended
            ("concurrency shares", self._close_permits),
            ("fork servers", self.launcher.aclose),
            ("function network", self._close_network),
            ("log sink", self.log_sink.aclose),  # before metrics: its last lines may hold EMF metrics
            ("metrics", self._close_metrics),
            ("usage meter", self.usage.aclose),  # after the environments: their last invocations count
            ("log retention", self.log_retention.aclose),
            ("leases", self.leases.aclose),
            ("change notices", self.notices.aclose),
            ("cluster link", self.link.aclose),
            ("metadata store", self.store.aclose),
            ("run dir sweep", self._await_run_dir_sweep),
        ]
        for what, close in steps:
            started = time.monotonic()
            try:
                await close()
            except Exception:
                log.exception("shutdown: closing the %s failed; going on", what)
                continue
            log.info("shutdown: %s closed in %.3f s", what, time.monotonic() - started)
        try:
            if self.cgroups is not None:
                await asyncio.to_thread(self.cgroups.remove)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        finally:
            self._lock.release()
