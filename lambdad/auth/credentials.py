"""Root credentials: from LAMBDAD_ACCESS_KEY_ID / LAMBDAD_SECRET_ACCESS_KEY, else generated once per data dir.

Generated credentials are written to ``<data-dir>/credentials`` in the AWS shared-credentials format (profile
``lambdad``, mode 0600) so that ``AWS_SHARED_CREDENTIALS_FILE=<data-dir>/credentials AWS_PROFILE=lambdad`` works
for boto3 and the aws CLI.

In cluster mode (a shared database) the root credentials live in the database so that every node accepts the
same key (``shared_root_credentials``): the variables, when set, replace them there; otherwise the first node to
start generates them and the others read them. Each node also writes them to its data dir's ``credentials`` file,
for the same use as above.
"""

from __future__ import annotations

import configparser
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from lambdad.store.interfaces import IamStore

__all__ = ["RootCredentials", "load_root_credentials", "shared_root_credentials", "PROFILE"]

PROFILE = "lambdad"


@dataclass(frozen=True)
class RootCredentials:
    access_key_id: str
    secret_access_key: str
    path: Path | None  # where they are stored, when generated


def _new_access_key() -> str:
    alphabet = string.ascii_uppercase + "234567"
    return "LKIA" + "".join(secrets.choice(alphabet) for _ in range(16))


def load_root_credentials(data_dir: Path, access_key_id: str | None, secret_access_key: str | None,
                          region: str) -> RootCredentials:
    if access_key_id and secret_access_key:
        return RootCredentials(access_key_id, secret_access_key, None)
    path = data_dir / "credentials"
    parser = configparser.ConfigParser()
    if path.exists():
        parser.read(path)
        if parser.has_section(PROFILE):
            section = parser[PROFILE]
            return RootCredentials(section["aws_access_key_id"], section["aws_secret_access_key"], path)
    key, secret = _new_access_key(), secrets.token_urlsafe(30)
    _write(path, key, secret, region)
    return RootCredentials(key, secret, path)


async def shared_root_credentials(store: IamStore, data_dir: Path, access_key_id: str | None,
                                  secret_access_key: str | None, region: str) -> RootCredentials:
    """Cluster mode: the root credentials of the shared database (see the module's docstring)."""
    given = access_key_id is not None and secret_access_key is not None
    proposed = (access_key_id, secret_access_key) if given else (_new_access_key(), secrets.token_urlsafe(30))
    key, secret = await store.root_credentials(proposed, replace=given)  # type: ignore[arg-type]
    if given:
        return RootCredentials(key, secret, None)
    path = data_dir / "credentials"
    _write(path, key, secret, region)
    return RootCredentials(key, secret, path)


def _write(path: Path, key: str, secret: str, region: str) -> None:
    parser = configparser.ConfigParser()
    parser[PROFILE] = {"aws_access_key_id": key, "aws_secret_access_key": secret, "region": region}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        parser.write(f)
