"""``lambdad s3-notifications put|get|delete|list``: functions' notification endpoints for S3-compatible stores,
managed through the server's API (``s3events/api.py``) with the client ``s3events/client.py`` makes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lambdad.cli_common import settings_of

__all__ = ["s3_notifications"]

_ENDPOINT_URL = click.option("--endpoint-url", default=None,
                              help="The server [AWS_ENDPOINT_URL; default http://127.0.0.1:9001].")
_QUALIFIER = click.option("--qualifier", default=None, help="A version or alias of the function (default: none).")


@click.group("s3-notifications")
def s3_notifications() -> None:
    """Notification endpoints of functions, for S3-compatible stores (MinIO, Ceph RGW, ...) to send S3 event
    records to (docs/events.md).

    `put FUNCTION --events s3:ObjectCreated:* [--prefix P] [--suffix S]` gives the function an endpoint,
    http://SERVER/s3-events/ID, and prints it with its token (once: only its hash is kept); point the store's
    webhook at it with the token (MinIO: `auth_token`). Each record that passes the filters invokes the function
    asynchronously with Lambda's S3 event. Talks to the server's API with the credentials the AWS SDKs find (or
    those `lambdad serve` wrote to its data dir)."""


def _notifications_call(endpoint_url: str | None, operation: str, **params: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from lambdad.s3events.client import ClientError as SetupError
    from lambdad.s3events.client import connect

    try:
        client, endpoint = connect(endpoint_url, settings_of(None, None))
    except SetupError as exc:
        click.echo(f"lambdad: {exc}", err=True)
        sys.exit(1)
    try:
        out: dict[str, Any] = getattr(client, operation)(**{k: v for k, v in params.items() if v is not None})
    except ClientError as exc:
        error = exc.response.get("Error", {})
        click.echo(f"lambdad: {error.get('Code')}: {error.get('Message')}", err=True)
        sys.exit(1)
    except BotoCoreError as exc:
        click.echo(f"lambdad: cannot reach lambdad at {endpoint} ({exc}): is `lambdad serve` running?", err=True)
        sys.exit(1)
    finally:
        client.close()
    out.pop("ResponseMetadata", None)
    for config in [out, *out.get("NotificationConfigurations", [])]:
        if "EndpointPath" in config:
            config["Endpoint"] = endpoint.rstrip("/") + config["EndpointPath"]
    return out


@s3_notifications.command("put")
@click.argument("function_name")
@_QUALIFIER
@click.option("--events", "events", multiple=True, required=True,
              help="An S3 event type, such as s3:ObjectCreated:* or s3:ObjectRemoved:Delete (repeat for more).")
@click.option("--prefix", default=None, help="Only object keys that start with this.")
@click.option("--suffix", default=None, help="Only object keys that end with this.")
@click.option("--configuration-id", default=None, help="The records' s3.configurationId (default: the endpoint's id).")
@click.option("--token-file", type=click.File("r"), default=None,
              help="Use the token in this file (16 to 512 characters, no spaces) instead of making one.")
@click.option("--new-token", is_flag=True, help="Make a new token, replacing the endpoint's.")
@_ENDPOINT_URL
def s3_notifications_put(function_name: str, qualifier: str | None, events: tuple[str, ...], prefix: str | None,
                         suffix: str | None, configuration_id: str | None, token_file: Any, new_token: bool,
                         endpoint_url: str | None) -> None:
    """Give FUNCTION a notification endpoint, or replace what its endpoint filters (its id and token are kept)."""
    rules = [{"Name": name, "Value": value} for name, value in (("prefix", prefix), ("suffix", suffix))
             if value is not None]
    token = token_file.read().strip() if token_file is not None else None
    out = _notifications_call(endpoint_url, "put_s3_notification_configuration", FunctionName=function_name,
                              Qualifier=qualifier, Events=list(events),
                              Filter={"Key": {"FilterRules": rules}} if rules else None,
                              ConfigurationId=configuration_id, Token=token, NewToken=new_token or None)
    click.echo(json.dumps(out, indent=2))
    if "Token" in out:
        click.echo("lambdad: the token is shown this once; give it to the store (MinIO: auth_token)", err=True)


@s3_notifications.command("get")
@click.argument("function_name")
@_QUALIFIER
@_ENDPOINT_URL
def s3_notifications_get(function_name: str, qualifier: str | None, endpoint_url: str | None) -> None:
    """Print FUNCTION's notification endpoint (never its token)."""
    click.echo(json.dumps(_notifications_call(endpoint_url, "get_s3_notification_configuration",
                                              FunctionName=function_name, Qualifier=qualifier), indent=2))


@s3_notifications.command("delete")
@click.argument("function_name")
@_QUALIFIER
@_ENDPOINT_URL
def s3_notifications_delete(function_name: str, qualifier: str | None, endpoint_url: str | None) -> None:
    """Delete FUNCTION's notification endpoint: the store's requests to it are refused (403) from then on."""
    _notifications_call(endpoint_url, "delete_s3_notification_configuration", FunctionName=function_name,
                        Qualifier=qualifier)


@s3_notifications.command("list")
@click.argument("function_name", required=False)
@_ENDPOINT_URL
def s3_notifications_list(function_name: str | None, endpoint_url: str | None) -> None:
    """Print every notification endpoint (of FUNCTION, when given)."""
    click.echo(json.dumps(_notifications_call(endpoint_url, "list_s3_notification_configurations",
                                              FunctionName=function_name), indent=2))


@s3_notifications.command("model")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def s3_notifications_model(directory: Path) -> None:
    """Write the API's botocore model under DIRECTORY, for the aws CLI and the AWS SDKs:
    `AWS_DATA_PATH=DIRECTORY aws lambdad-s3-notifications put-s3-notification-configuration --endpoint-url URL ...`."""
    from lambdad.s3events.client import write_model

    click.echo(write_model(directory))
