"""The ``lambdad`` commands that read what a server recorded: ``logs``, ``usage`` and ``queued``. They read through
the server's API (logs) or the store itself (the server need not run)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lambdad.cli_common import DATABASE_URL, settings_of, with_store
from lambdad.config import Settings
from lambdad.invoke.pricing import PRICE_KEYS

if TYPE_CHECKING:
    from lambdad.store.interfaces import LogEvent
    from lambdad.store.sql import SqlStore

__all__ = ["logs", "queued", "usage"]


@click.command()
@click.argument("function_name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they come (Ctrl-C to stop).")
@click.option("--since", default=None, help="Only events this recent: 30s, 10m, 2h, 1d.")
@click.option("--filter-pattern", default=None, help="Only events that match this CloudWatch Logs filter pattern.")
@click.option("--stream", default=None, help="Only this log stream.")
@click.option("--endpoint-url", default=None,
              help="The server [AWS_ENDPOINT_URL_LOGS, AWS_ENDPOINT_URL; default http://127.0.0.1:9001].")
@click.option("--data-dir", type=click.Path(path_type=Path, exists=True), default=None,
              help="Read this data dir's store directly instead of the API (the server need not run).")
@click.option("--database-url", default=None, help="Read this cluster database directly instead of the API.")
def logs(function_name: str, follow: bool, since: str | None, filter_pattern: str | None, stream: str | None,
         endpoint_url: str | None, data_dir: Path | None, database_url: str | None) -> None:
    """Print a function's log (its group: /aws/lambda/FUNCTION_NAME or its LoggingConfig's), oldest first.

    Reads through the server's CloudWatch Logs API (FilterLogEvents), as `aws logs` does, with the credentials the
    AWS SDKs find (or, where there are none, the ones `lambdad serve` wrote to ./lambdad-data/credentials).
    A FUNCTION_NAME that starts with / is a log group's name. --data-dir or --database-url read the store
    directly instead, whether or not the server runs."""
    if data_dir is not None or database_url is not None:
        if follow or since or filter_pattern:
            raise click.UsageError("--follow, --since and --filter-pattern read through the API: drop --data-dir")
        _logs_from_store(function_name, data_dir, stream, database_url)
        return
    from lambdad.logs.reader import LogReader, ReaderError

    try:
        reader = LogReader.connect(endpoint_url, settings_of(None, None))
        group = reader.group_of(function_name)
        start = reader.since(since) if since else None
        for message in reader.events(group, stream, start, filter_pattern, follow=follow):
            click.echo(message)
    except ReaderError as exc:
        click.echo(f"lambdad: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _logs_from_store(function_name: str, data_dir: Path | None, stream: str | None, database_url: str | None) -> None:
    settings = settings_of(data_dir, database_url)
    where = settings.data_dir / "lambdad.db"
    if not settings.database_url and not where.exists():
        raise click.UsageError(
            f"no lambdad data in {settings.data_dir}: run this where the server was started, or name its data dir "
            "with --data-dir or LAMBDAD_DATA_DIR")

    async def read(store: SqlStore) -> tuple[str, list[LogEvent]]:
        group = function_name
        if not function_name.startswith("/"):  # the group $LATEST's LoggingConfig names (a deleted one: the default)
            from lambdad.functions.model import FunctionConfig

            found = await store.load_functions(function_name)
            group = (FunctionConfig.from_json(found[0].latest).log_group_name if found
                     else f"/aws/lambda/{function_name}")
        return group, await store.read_logs(group, stream)

    group, events = with_store(settings, read)
    for event in events:
        click.echo(event.message)
    if not events:
        place = "the cluster's database" if settings.database_url else str(where)
        click.echo(f"lambdad: no log for {group}{' stream ' + stream if stream else ''} in {place} (the function "
                   "has not run, or its log was deleted by retention)", err=True)
        sys.exit(1)


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path, exists=True), default=None,
              help="The server's data dir [LAMBDAD_DATA_DIR; default ./lambdad-data].")
@DATABASE_URL
@click.option("--function", "function_name", default=None, help="Only this function.")
@click.option("--since", default=None,
              help="Only hours from this one: an ISO time (2026-12-05T14, 2026-12-05) or an age (24h, 7d).")
@click.option("--until", default=None, help="Only hours before this one (same forms as --since).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--prices", "prices_file", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              envvar="LAMBDAD_PRICES", show_envvar=True,
              help="A JSON file of prices in US dollars (keys: " + ", ".join(PRICE_KEYS) + ") for a cost estimate.")
@click.option("--aws-prices", is_flag=True,
              help="Estimate cost at AWS's published x86 prices in us-east-1 (a --prices file's keys override them).")
def usage(data_dir: Path | None, database_url: str | None, function_name: str | None, since: str | None,
          until: str | None, as_json: bool, prices_file: Path | None, aws_prices: bool) -> None:
    """Print metered use per function version and hour, as Lambda bills it: requests, billed ms (the REPORT
    lines' Billed Duration), GB-seconds of duration, of provisioned concurrency and of ephemeral storage above
    512 MB; with prices, an estimated cost (no free tier). A totals row ends the table.

    Reads the store directly, so it works whether or not the server runs; a running server adds its counts every
    LAMBDAD_USAGE_FLUSH_SECONDS."""
    import datetime as dt
    import json

    from lambdad.invoke.pricing import AWS_X86_US_EAST_1, PriceError, Prices, figures, parse_prices

    settings = settings_of(data_dir, database_url)
    where = settings.data_dir / "lambdad.db"
    if not settings.database_url and not where.exists():
        raise click.UsageError(
            f"no lambdad data in {settings.data_dir}: run this where the server was started, or name its data dir "
            "with --data-dir or LAMBDAD_DATA_DIR")
    now = dt.datetime.now(dt.timezone.utc)
    try:
        start = _usage_time(since, now, "--since")
        end = _usage_time(until, now, "--until")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    prices: Prices | None = AWS_X86_US_EAST_1 if aws_prices else None
    if prices_file is not None:
        try:
            prices = parse_prices(prices_file.read_text(), prices or Prices(), str(prices_file))
        except (PriceError, OSError) as exc:
            raise click.UsageError(str(exc)) from exc
    # an hour counts when it overlaps [start, end)
    records = with_store(settings, lambda store: store.read_usage(
        function_name, None if start is None else start - start % 3600, end))

    def hour_text(hour: int) -> str:
        return dt.datetime.fromtimestamp(hour, dt.timezone.utc).strftime("%Y-%m-%dT%H:00Z")

    rows = []
    for record in records:
        row: dict[str, Any] = {"function": record.function_name, "version": record.version,
                               "hour": hour_text(record.hour), **figures([record]).as_dict()}
        if prices is not None:
            row["estimated_cost_usd"] = figures([record]).cost(prices)
        rows.append(row)
    totals: dict[str, Any] = figures(records).as_dict()
    if prices is not None:
        totals["estimated_cost_usd"] = figures(records).cost(prices)
    if as_json:
        out: dict[str, Any] = {"rows": rows, "totals": totals}
        if prices is not None:
            out["prices"] = prices.as_dict()
            out["note"] = ("estimated cost: no free tier, first pricing tier only, no Savings Plans, "
                           "no data transfer or other services")
        click.echo(json.dumps(out, indent=2))
        return
    header = ["FUNCTION", "VERSION", "HOUR", "REQUESTS", "BILLED MS", "GB-S", "PROVISIONED GB-S", "EPHEMERAL GB-S"]
    if prices is not None:
        header.append("EST. COST USD")

    def cells(row: dict[str, Any], *first: str) -> list[str]:
        out = [*first, str(row["requests"]), str(row["billed_ms"]), f"{row['gb_seconds']:.6f}",
               f"{row['provisioned_gb_seconds']:.6f}", f"{row['ephemeral_gb_seconds']:.6f}"]
        if prices is not None:
            out.append(f"{row['estimated_cost_usd']:.8f}")
        return out

    table = [header] + [cells(r, r["function"], r["version"], r["hour"]) for r in rows]
    table.append(cells(totals, "TOTAL", "", ""))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        padded = (c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        click.echo("  ".join(padded).rstrip())
    if prices is not None:
        click.echo("estimated cost: no free tier, first pricing tier only, no Savings Plans, no data transfer",
                   err=True)


def _usage_time(text: str | None, now: Any, flag: str) -> int | None:
    """``--since``/``--until``: an age (``90m``, ``24h``, ``7d``) before ``now``, or an ISO date or time (UTC unless
    it says otherwise; ``2026-12-05T14`` is that hour), as epoch seconds."""
    import datetime as dt
    import re

    if text is None:
        return None
    age = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if age:
        seconds = int(age.group(1)) * {"m": 60, "h": 3600, "d": 86400}[age.group(2)]
        return int(now.timestamp()) - seconds
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", value):
        value += ":00"
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not an ISO time (2026-12-05T14, 2026-12-05T14:00Z) or an age "
                         "(90m, 24h, 7d)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp())


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path, exists=True), default=None,
              help="The server's data dir [LAMBDAD_DATA_DIR; default ./lambdad-data].")
@DATABASE_URL
@click.option("--nats-url", default=None, help="A cluster's NATS: its queue is read there [LAMBDAD_NATS_URL].")
@click.option("--cluster-name", default=None, help="The cluster's name [LAMBDAD_CLUSTER_NAME; default lambdad].")
def queued(data_dir: Path | None, database_url: str | None, nats_url: str | None, cluster_name: str | None) -> None:
    """Print the asynchronous events waiting, per function: how many, and how long the oldest has waited.

    An event counts until it has run (and its destinations have what it sends): retries and throttled events
    included. Reads the queue directly — the data dir's database, or a cluster's JetStream stream — so it works
    whether or not a server runs."""
    import time

    try:
        settings = Settings.load({"data_dir": data_dir, "database_url": database_url, "nats_url": nats_url,
                                  "cluster_name": cluster_name})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if settings.nats_url:
        from lambdad.cluster.async_queue import read_queued

        events = asyncio.run(read_queued(settings.nats_url, settings.cluster_name))
    else:
        if not settings.database_url and not (settings.data_dir / "lambdad.db").exists():
            raise click.UsageError(f"no lambdad data in {settings.data_dir}: name its data dir with --data-dir")
        events = [(e.function_name, e.received) for e in with_store(settings, lambda s: s.load_async_events())]
    by_function: dict[str, list[float]] = {}
    for name, received in events:
        by_function.setdefault(name, []).append(received)
    now = time.time()
    click.echo("FUNCTION\tQUEUED\tOLDEST")
    for name, times in sorted(by_function.items()):
        click.echo(f"{name}\t{len(times)}\t{now - min(times):.0f} s")
