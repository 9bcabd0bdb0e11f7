"""The ``lambdad`` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Coroutine, TypeVar

import click

from lambdad import __version__
from lambdad.auth.credentials import PROFILE
from lambdad.ids import RequestIdFilter
from lambdad.cli_common import DATA_DIR, DATABASE_URL, settings_of, with_store
from lambdad.config import Settings
from lambdad.cli_deploy import deploy, stacks
from lambdad.cli_reports import logs, queued, usage
from lambdad.cli_s3events import s3_notifications
from lambdad.store.lock import DataDirLock, DataDirLocked

if TYPE_CHECKING:
    from lambdad.app import LambdadApp
    from lambdad.sandbox.launcher import Containment

__all__ = ["main"]

T = TypeVar("T")


@click.group()
@click.version_option(__version__, prog_name="lambdad")
def main() -> None:
    """lambdad: a self-hosted serverless function platform that speaks the AWS Lambda APIs."""


@main.command()
@click.option("--host", default=None, help="Address to listen on [LAMBDAD_HOST; default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on; 0 picks a free one [LAMBDAD_PORT; default 9001].")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where functions, code and logs are kept [LAMBDAD_DATA_DIR; default ./lambdad-data].")
@click.option("--region", default=None, help="Region the API answers for [LAMBDAD_REGION; default us-east-1].")
@click.option("--account-id", default=None, help="12-digit account id in ARNs [LAMBDAD_ACCOUNT_ID].")
@click.option("--account-concurrency", type=int, default=None,
              help="Concurrent executions allowed [LAMBDAD_ACCOUNT_CONCURRENCY; default 1000].")
@click.option("--idle-timeout", "idle_timeout_seconds", type=float, default=None,
              help="Seconds an idle environment is kept warm [LAMBDAD_IDLE_TIMEOUT_SECONDS; default 600].")
@click.option("--log-level", default=None, help="Server log level [LAMBDAD_LOG_LEVEL; default INFO].")
@click.option("--database-url", default=None,
              help="PostgreSQL for metadata (cluster mode), postgresql://USER@HOST:PORT/DB [LAMBDAD_DATABASE_URL; "
                   "default: SQLite in the data dir].")
@click.option("--nats-url", default=None,
              help="NATS with JetStream, shared by the nodes of a cluster [LAMBDAD_NATS_URL; default: none, a "
                   "cluster of one].")
@click.option("--cluster-name", default=None,
              help="Prefix of the cluster's NATS subjects, streams and buckets [LAMBDAD_CLUSTER_NAME; default "
                   "lambdad].")
@click.option("--blob-url", default=None,
              help="s3://BUCKET[/PREFIX] for the cluster's code blobs, through the AWS SDK's configuration "
                   "[LAMBDAD_BLOB_URL; default: JetStream's object store].")
@click.option("--otlp-endpoint", default=None,
              help="OTLP/HTTP endpoint, e.g. http://localhost:4318, that receives the spans of Active functions' "
                   "sampled invocations [LAMBDAD_OTLP_ENDPOINT; default: none, no spans].")
@click.option("--metrics", type=click.Choice(["on", "off"]), default=None,
              help="Record Lambda's CloudWatch metrics and serve them [LAMBDAD_METRICS; default on].")
@click.option("--metrics-token", default=None,
              help="GET /metrics asks for this bearer token [LAMBDAD_METRICS_TOKEN; default none: open].")
@click.option("--url-host", default=None,
              help="Base host name of function URLs as clients reach them, e.g. lambda-url.example.com behind a "
                   "reverse proxy: http://ID.lambda-url.example.com/ [LAMBDAD_URL_HOST; default: "
                   "lambda-url.REGION.localhost:PORT].")
def serve(**flags: object) -> None:
    """Start the server on the embedded default (SQLite + local files)."""
    try:
        settings = Settings.load(flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
    from lambdad.cluster.s3_blobs import BlobUrlError

    try:
        _run(_serve(settings))
    except (DataDirLocked, BlobUrlError) as exc:
        click.echo(f"lambdad: {exc}", err=True)
        sys.exit(1)


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop (libuv's event loop: several times faster I/O than asyncio's own) where it is installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(settings: Settings) -> None:
    from lambdad.app import LambdadApp

    app = await LambdadApp.open(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        port = await app.serve()
        _print_banner(app, port)
        await stop.wait()
        click.echo("lambdad: shutting down", err=True)
    finally:
        await app.aclose()


def _containment_lines(containment: Containment) -> list[str]:
    return [
        f"isolation: {'on ' if active else 'OFF'} {what}" + ("" if active else f" ({needs})")
        for what, active, needs in containment.describe()
    ]


@main.command()
def doctor() -> None:
    """Say which isolation protections work on this machine, without starting a server."""
    import uuid

    from lambdad.runtimes.registry import RuntimeRegistry, RuntimeUnavailable
    from lambdad.sandbox.cgroups import CgroupRoot
    from lambdad.sandbox.launcher import Containment, probe_jail

    cgroups = CgroupRoot.probe(f"doctor-{uuid.uuid4().hex[:8]}")
    if cgroups is not None:
        cgroups.remove()
    from lambdad.sandbox.scratch import ScratchPool

    from lambdad.sandbox.network import available as network_unavailable
    from lambdad.sandbox.network import loopback_resolvers

    containment = Containment(cgroups=cgroups is not None, jail=probe_jail(),
                              scratch_error=ScratchPool.available(str(Settings.load().data_dir / "scratch")),
                              network_error=network_unavailable())
    for line in _containment_lines(containment):
        click.echo(line)
    resolvers = loopback_resolvers()
    if resolvers:
        click.echo(f"warning: /etc/resolv.conf names resolvers on the host's loopback ({', '.join(resolvers)}), "
                   "which functions in their own network namespace cannot reach: they cannot resolve names")
    click.echo("environments are " + ("jailed" if containment.jailed else
               "NOT jailed: functions run with the server's user and can see its files; trust them, or run as root"))
    attach = containment.jail.get("attach")
    prewarm = cgroups is not None and containment.jailed and bool(attach)
    click.echo("prewarm pool (pre-started Node.js and custom-runtime environments): " + (
        "available (LAMBDAD_PREWARM_POOL_SIZE; not with LAMBDAD_FUNCTION_NETWORK=none)" if prewarm else
        "unavailable (" + str(containment.jail.get("attach_error") or "it needs the jail, cgroups and the mount API "
                              "of Linux 5.12+") + ")"))
    registry = RuntimeRegistry()
    for name in registry.names:
        try:
            spec = registry.get(name)
        except RuntimeUnavailable as exc:
            click.echo(f"runtime {name}: UNAVAILABLE ({exc})")
            continue
        if spec.family == "provided":
            click.echo(f"runtime {name}: the function's own bootstrap")
            continue
        runs = f"{spec.executable} {spec.version}".rstrip()
        click.echo(f"runtime {name}: {runs}" + ("" if spec.exact else " (stand-in: the exact version is not installed)"))


def _print_banner(app: LambdadApp, port: int) -> None:
    s = app.settings
    endpoint = f"http://{s.host}:{port}"
    creds = app.credentials
    lines = [f"lambdad {__version__} listening on {endpoint} (data dir {s.data_dir.resolve()})"]
    if creds.path is not None:
        lines += [
            f"credentials: {creds.path.resolve()} (profile '{PROFILE}'); use them with:",
            f"  export AWS_SHARED_CREDENTIALS_FILE={creds.path.resolve()} AWS_PROFILE={PROFILE} AWS_DEFAULT_REGION={s.region}",
        ]
    else:
        lines.append("credentials: from LAMBDAD_ACCESS_KEY_ID / LAMBDAD_SECRET_ACCESS_KEY")
    lines.append(f"  aws --endpoint-url {endpoint} lambda list-functions")
    lines.append(f"console: {endpoint}/console/ (sign in with an access key id and its secret)")
    lines += _containment_lines(app.launcher.containment)
    click.echo("\n".join(lines), err=True)
    sys.stderr.flush()





@main.group()
def keys() -> None:
    """Access keys of IAM users (principal arn:aws:iam::ACCOUNT:user/NAME): a wrapper over `aws iam`.

    `create NAME` makes the IAM user NAME if there is none, and a key for it. Such a user may call what its IAM
    policies (`aws iam attach-user-policy`, `put-user-policy`) and resource policies (AddPermission) allow;
    nothing else. Works whether or not the server runs: a running server honours a new key at once, and refuses
    a deleted one at once."""





@keys.command("create")
@click.argument("name")
@DATA_DIR
@DATABASE_URL
def keys_create(name: str, data_dir: Path | None, database_url: str | None) -> None:
    """Make an access key for user NAME and print it; the secret is shown only this once."""
    from lambdad.auth.keys import AccessKeyError, create_key
    from lambdad.auth.principals import user_principal

    from lambdad.iam.keycache import touch_marker

    settings = settings_of(data_dir, database_url)
    try:
        key = with_store(settings, lambda store: create_key(store, name))
    except AccessKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    touch_marker(settings.data_dir)  # a server on this data dir reads keys afresh
    click.echo(f"user: {user_principal(settings.account_id, key.name).arn}")
    click.echo(f"aws_access_key_id: {key.access_key_id}")
    click.echo(f"aws_secret_access_key: {key.secret_access_key}")
    click.echo("(the secret is not shown again)", err=True)


@keys.command("list")
@DATA_DIR
@DATABASE_URL
def keys_list(data_dir: Path | None, database_url: str | None) -> None:
    """Print each key's user name, access key id, status and creation time (never the secret)."""
    import time

    from lambdad.auth.keys import list_keys

    for key in with_store(settings_of(data_dir, database_url), list_keys):
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.created))
        click.echo(f"{key.name}\t{key.access_key_id}\t{key.status}\t{created}")


@keys.command("delete")
@click.argument("name")
@DATA_DIR
@DATABASE_URL
def keys_delete(name: str, data_dir: Path | None, database_url: str | None) -> None:
    """Delete user NAME's keys: refused from then on, by a running server too."""
    from lambdad.auth.keys import AccessKeyError, delete_key

    from lambdad.iam.keycache import touch_marker

    settings = settings_of(data_dir, database_url)
    try:
        with_store(settings, lambda store: delete_key(store, name))
    except AccessKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    touch_marker(settings.data_dir)  # a server on this data dir drops the key it kept


@main.group()
def brokers() -> None:
    """RabbitMQ brokers and their credentials, for event source mappings of Amazon MQ for RabbitMQ.

    A mapping names its broker by ARN and its credentials by a Secrets Manager ARN
    (--source-access-configurations Type=BASIC_AUTH,URI=SECRET_ARN); lambdad runs neither service, so register
    both once, under the ARNs the mappings will name: `add BROKER_ARN --url amqp://HOST:PORT` and
    `add-secret SECRET_ARN --username U --password-file F`. Works whether or not the server runs; a source reads
    them at each connection. Passwords are never printed."""


@brokers.command("add")
@click.argument("arn")
@click.option("--url", required=True, help="amqp://HOST[:PORT] or amqps://HOST[:PORT], without credentials or "
                                           "virtual host.")
@DATA_DIR
@DATABASE_URL
def brokers_add(arn: str, url: str, data_dir: Path | None, database_url: str | None) -> None:
    """Register broker ARN (arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID) at URL, replacing what it had."""
    from lambdad.esm.brokers import BrokerError, add_broker

    try:
        with_store(settings_of(data_dir, database_url), lambda store: add_broker(store, arn, url))
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"broker {arn}: {url}")


@brokers.command("add-secret")
@click.argument("arn")
@click.option("--username", required=True, help="The user the source connects as.")
@click.option("--password-file", type=click.File("r"), required=True,
              help="A file holding the password (its first line; - reads standard input).")
@DATA_DIR
@DATABASE_URL
def brokers_add_secret(arn: str, username: str, password_file: Any, data_dir: Path | None,
                       database_url: str | None) -> None:
    """Register secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) as USERNAME and the password."""
    from lambdad.esm.brokers import BrokerError, add_secret

    password = password_file.readline().rstrip("\r\n")
    try:
        with_store(settings_of(data_dir, database_url), lambda store: add_secret(store, arn, username, password))
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"secret {arn}: user {username}")


@brokers.command("list")
@DATA_DIR
@DATABASE_URL
def brokers_list(data_dir: Path | None, database_url: str | None) -> None:
    """Print each broker (ARN, URL) and secret (ARN, user name), with its registration time; never a password."""
    import time

    from lambdad.esm.brokers import list_records

    for record in with_store(settings_of(data_dir, database_url), list_records):
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        shown = record.url if record.kind == "broker" else f"user {record.username}"
        click.echo(f"{record.kind}\t{record.arn}\t{shown}\t{created}")


@brokers.command("remove")
@click.argument("arn")
@DATA_DIR
@DATABASE_URL
def brokers_remove(arn: str, data_dir: Path | None, database_url: str | None) -> None:
    """Forget broker or secret ARN: a source connecting from then on is refused (ESM_CONFIG_NOT_VALID)."""
    from lambdad.esm.brokers import BrokerError, remove

    try:
        with_store(settings_of(data_dir, database_url), lambda store: remove(store, arn))
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def cluster() -> None:
    """The nodes of a cluster (cluster mode: docs/cluster.md)."""


@cluster.command("status")
@click.option("--nats-url", default=None, help="The cluster's NATS [LAMBDAD_NATS_URL].")
@click.option("--cluster-name", default=None, help="The cluster's name [LAMBDAD_CLUSTER_NAME; default lambdad].")
def cluster_status(nats_url: str | None, cluster_name: str | None) -> None:
    """List the live nodes: id, API address, uptime, environments busy and alive (of which provisioned and
    initialised), cores."""
    import os
    import time

    from lambdad.cluster.link import Link
    from lambdad.cluster.leases import read_holders
    from lambdad.cluster.membership import read_nodes

    url = nats_url or os.environ.get("LAMBDAD_NATS_URL")
    name = cluster_name or os.environ.get("LAMBDAD_CLUSTER_NAME") or "lambdad"
    if not url:
        raise click.ClickException("not a cluster: name its NATS with --nats-url or LAMBDAD_NATS_URL")

    async def read() -> tuple[list[Any], dict[str, str]]:
        link = await Link.open(url, name)
        try:
            return await read_nodes(link), await read_holders(link)
        finally:
            await link.aclose()

    nodes, holders = asyncio.run(read())
    click.echo(f"cluster {name}: {len(nodes)} node{'s' if len(nodes) != 1 else ''}")
    for node in nodes:
        up = time.time() - node.started
        provisioned = sum(int(there[0]) for there in node.provisioned.values())  # [initialised, …]
        click.echo(f"{node.node}\t{node.endpoint}\tup {up:.0f} s\tenvironments {node.busy} busy / "
                   f"{node.environments}\tprovisioned {provisioned}\t{node.cores} cores\tlambdad {node.version}")
    for lease, holder in sorted(holders.items()):
        click.echo(f"lease {lease}: held by {holder}")


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="The embedded data dir to move [LAMBDAD_DATA_DIR; default ./lambdad-data].")
@click.option("--database-url", default=None, help="The cluster's PostgreSQL [LAMBDAD_DATABASE_URL].")
@click.option("--nats-url", default=None,
              help="The cluster's NATS: the code zips go to its object store too [LAMBDAD_NATS_URL].")
@click.option("--cluster-name", default=None, help="The cluster's name [LAMBDAD_CLUSTER_NAME; default lambdad].")
@click.option("--blob-url", default=None,
              help="The cluster's S3 bucket for code: the code zips go there instead [LAMBDAD_BLOB_URL].")
def migrate(data_dir: Path | None, database_url: str | None, nats_url: str | None, cluster_name: str | None,
            blob_url: str | None) -> None:
    """Move an embedded data dir's functions, versions, aliases, policies, concurrency settings, layers, access
    keys, queued async events, logs and root credentials into a cluster's empty database.

    The data dir must not be in use (stop its server first); it is left unchanged."""
    from lambdad.cluster.migrate import MigrationRefused, migrate_blobs, migrate_metadata
    from lambdad.cluster.s3_blobs import BlobUrlError

    try:
        settings = Settings.load({"data_dir": data_dir, "database_url": database_url, "nats_url": nats_url,
                                  "cluster_name": cluster_name, "blob_url": blob_url})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if not settings.database_url:
        raise click.UsageError("name the cluster's database: --database-url or LAMBDAD_DATABASE_URL")
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirLocked as exc:
        raise click.ClickException(f"{exc}: stop its server first") from exc
    try:
        moved = asyncio.run(migrate_metadata(settings.data_dir, settings.database_url))
        blobs = (asyncio.run(migrate_blobs(settings.data_dir, settings.nats_url, settings.cluster_name,
                                           settings.blob_url, settings.region))
                 if settings.nats_url or settings.blob_url else None)
    except (MigrationRefused, BlobUrlError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        lock.release()
    rows = moved.rows
    click.echo(f"moved {rows['functions']} functions ({rows['versions']} versions with $LATEST), "
               f"{rows['aliases']} aliases, {rows['layer_versions']} layer versions, {rows['iam_entities']} IAM "
               f"entities, {rows['iam_access_keys']} access keys, {rows['async_events']} queued async events and {rows['log_events']} log events"
               + (", and the root credentials" if moved.root_credentials else ""))
    if blobs is not None:
        click.echo(f"copied {blobs} code zips into the cluster's " + ("bucket" if settings.blob_url else "object store"))
    else:
        click.echo("no --nats-url or --blob-url: the code zips stay in the data dir (a node started on it serves "
                   "them)", err=True)


# the commands that read what a server recorded (cli_reports.py)
main.add_command(logs)
main.add_command(usage)
main.add_command(queued)
main.add_command(s3_notifications)

# SAM templates and their stacks (cli_deploy.py)
main.add_command(deploy)
main.add_command(stacks)
