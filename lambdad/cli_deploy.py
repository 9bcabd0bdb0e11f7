"""``lambdad deploy`` and ``lambdad stacks``: SAM templates applied to a running server (docs/deploy.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import contextlib
from typing import TYPE_CHECKING, Iterator

import click

if TYPE_CHECKING:
    from lambdad.deploy.connection import Connection
    from lambdad.deploy.engine import Deployment
    from lambdad.deploy.planner import Plan

__all__ = ["deploy", "stacks"]

ENDPOINT = click.option("--endpoint-url", default=None,
                        help="The lambdad server [AWS_ENDPOINT_URL_LAMBDA, then AWS_ENDPOINT_URL; default "
                             "http://127.0.0.1:9001].")
PROFILE = click.option("--profile", default=None, help="The AWS profile whose credentials to use [AWS_PROFILE; "
                                                       "default: the standard chain, else the server's "
                                                       "./lambdad-data/credentials].")


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE words; one word may hold several separated by spaces (as sam deploy takes them), a space not
    followed by KEY= staying in the value ("Schedule=rate(5 minutes)"); ParameterKey=K,ParameterValue=V too."""
    import re

    out: dict[str, str] = {}
    for pair in pairs:
        items: list[str] = []
        for word in pair.split(" "):
            if items and not re.match(r"[A-Za-z0-9]+=", word):
                items[-1] += " " + word
            elif word:
                items.append(word)
        for item in items:
            if item.startswith("ParameterKey="):
                key, _, value = item[len("ParameterKey="):].partition(",ParameterValue=")
            else:
                key, sep, value = item.partition("=")
                if not sep:
                    raise click.UsageError(f"--parameter-overrides {item!r}: write KEY=VALUE")
            out[key] = value
    return out


@contextlib.contextmanager
def _told() -> Iterator[None]:
    """An error of the server or of the connection to it, told as one line instead of a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdad.deploy.engine import error_text

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(error_text(exc)) from exc


def _connect(endpoint_url: str | None, profile: str | None) -> Connection:
    from lambdad.deploy.connection import Connection, ConnectionError_


    try:
        return Connection.open(endpoint_url, profile)
    except ConnectionError_ as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.option("--template", "-t", "template", type=click.Path(path_type=Path), default=Path("template.yaml"),
              show_default=True, help="The SAM (or CloudFormation) template.")
@click.option("--stack-name", default=None, help="The stack's name [default: the template's directory name].")
@click.option("--parameter-overrides", multiple=True,
              help="KEY=VALUE (repeatable; several in one quoted, space-separated value, as sam deploy takes them).")
@ENDPOINT
@PROFILE
@click.option("--no-confirm", is_flag=True, help="Apply the change set without asking.")
@click.option("--refuse-unsupported", is_flag=True,
              help="Refuse a template with resources lambdad does not serve, instead of skipping them.")
@click.option("--no-build", is_flag=True,
              help="Zip code directories as they are, without installing requirements.txt / package.json "
                   "dependencies.")
@click.option("--watch", is_flag=True, help="After deploying, push code changes as they are saved (Ctrl-C stops).")
@click.argument("more_overrides", nargs=-1, metavar="[KEY=VALUE]...")
def deploy(template: Path, stack_name: str | None, parameter_overrides: tuple[str, ...], endpoint_url: str | None,
           profile: str | None, no_confirm: bool, refuse_unsupported: bool, no_build: bool, watch: bool,
           more_overrides: tuple[str, ...]) -> None:
    """Deploy a SAM template to lambdad as a stack: create what is new, update what changed, delete what was
    removed, after showing the change set.

    As with sam deploy, --parameter-overrides may be followed by several KEY=VALUE words."""
    import logging

    from lambdad.deploy.builder import build_dir
    from lambdad.deploy.engine import Deployment

    if more_overrides and not parameter_overrides:
        raise click.UsageError(f"unexpected {more_overrides[0]!r}: parameter values follow --parameter-overrides")
    parameter_overrides += more_overrides
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its feature-toggle notes are not the user's
    name = stack_name or _default_name(template)
    connection = _connect(endpoint_url, profile)
    builder = None if no_build else build_dir
    deployment = Deployment(connection, name, template, _overrides(parameter_overrides), refuse_unsupported,
                            builder, log=click.echo)
    try:
        _deploy(deployment, name, no_confirm, watch)
    finally:
        connection.close()


def _deploy(deployment: Deployment, name: str, no_confirm: bool, watch: bool) -> None:
    from lambdad.deploy.engine import DeployError

    with _told():
        plan = _prepared(deployment)
        for logical_id, (kind, why) in sorted(plan.skipped.items()):
            click.echo(f"skipped {logical_id} [{kind}]: {why}", err=True)
        if not plan.changes:
            click.echo(f"stack {name}: no changes")
            recorded = deployment.previous.document.get("Outputs", {}) if deployment.previous else {}
            for key, output in recorded.items():
                click.echo(f"output {key}: {output['Value']}")
        else:
            click.echo(f"change set for stack {name}:")
            for change in plan.changes:
                click.echo(change.line())
            if not no_confirm and not click.confirm("apply these changes?", default=False):
                click.echo("nothing applied")
                return
            try:
                outputs = deployment.apply()
            except DeployError as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"stack {name}: deployed")
            for key, output in outputs.items():
                click.echo(f"output {key}: {output['Value']}")
        if watch:
            from lambdad.deploy.watch import watch_stack

            watch_stack(deployment, click.echo)


def _prepared(deployment: Deployment) -> Plan:
    from lambdad.deploy.engine import DeployError

    try:
        return deployment.prepare()
    except DeployError as exc:
        raise click.ClickException(str(exc)) from exc


def _default_name(template: Path) -> str:
    import re

    base = re.sub(r"[^a-zA-Z0-9-]", "-", template.resolve().parent.name).strip("-") or "stack"
    return base if base[0].isalpha() else f"s-{base}"


@click.group()
def stacks() -> None:
    """Stacks made by `lambdad deploy`: list, describe, delete."""


@contextlib.contextmanager
def _connected(endpoint_url: str | None, profile: str | None) -> Iterator[Connection]:
    connection = _connect(endpoint_url, profile)
    try:
        with _told():
            yield connection
    finally:
        connection.close()


@stacks.command("list")
@ENDPOINT
@PROFILE
def stacks_list(endpoint_url: str | None, profile: str | None) -> None:
    """Print each stack: name, status, resources, last update."""
    import time

    with _connected(endpoint_url, profile) as connection:
        for s in connection.stacks.list_stacks().get("Stacks", []):
            count = len(json.loads(s["Document"]).get("Resources", {}))
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s["LastUpdatedTime"]))
            click.echo(f"{s['StackName']}\t{s['Status']}\t{count} resources\t{when}")


@stacks.command("describe")
@click.argument("name")
@ENDPOINT
@PROFILE
@click.option("--json", "as_json", is_flag=True, help="The whole record as JSON.")
def stacks_describe(name: str, endpoint_url: str | None, profile: str | None, as_json: bool) -> None:
    """Print a stack's resources (logical id, type, physical id), skipped resources and outputs."""
    from lambdad.deploy.engine import read_stack

    with _connected(endpoint_url, profile) as connection:
        stack = read_stack(connection, name)
    if stack is None:
        raise click.ClickException(f"no stack {name}")
    if as_json:
        click.echo(json.dumps({"StackName": stack.name, "Status": stack.status, "TemplateHash": stack.template_hash,
                               **stack.document}, indent=2))
        return
    doc = stack.document
    click.echo(f"stack {stack.name}: {stack.status} (template {doc.get('Template', '?')}, hash "
               f"{stack.template_hash[:12]})")
    for logical_id, r in (doc.get("Resources") or {}).items():
        click.echo(f"resource {logical_id}\t{r['Type']}\t{r['PhysicalId']}")
    for logical_id, r in (doc.get("Skipped") or {}).items():
        click.echo(f"skipped {logical_id}\t{r['Type']}\t{r['Reason']}")
    for key, output in (doc.get("Outputs") or {}).items():
        click.echo(f"output {key}\t{output['Value']}")


@stacks.command("delete")
@click.argument("name")
@ENDPOINT
@PROFILE
@click.option("--no-confirm", is_flag=True, help="Delete without asking.")
def stacks_delete(name: str, endpoint_url: str | None, profile: str | None, no_confirm: bool) -> None:
    """Delete a stack's resources (those with DeletionPolicy Retain are kept) and the stack."""
    from lambdad.deploy.engine import DeployError, delete_stack

    if not no_confirm and not click.confirm(f"delete stack {name} and its resources?", default=False):
        sys.exit(1)
    with _connected(endpoint_url, profile) as connection:
        try:
            delete_stack(connection, name, click.echo)
        except DeployError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"stack {name}: deleted")
