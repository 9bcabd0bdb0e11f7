"""Root credentials: from LAMBDAD_ACCESS_KEY_ID / LAMBDAD_SECRET_ACCESS_KEY, else generated once per data dir.

Generated credentials are written to ``<data-dir>/credentials`` in the AWS shared-credentials format (profile
``lambdad``, mode 0600) so that ``AWS_SHARED_CREDENTIALS_FILE=<data-dir>/credentials AWS_PROFILE=lambdad`` works
for boto3 and the aws CLI.
"""

from __future__ import annotations

import configparser
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RootCredentials", "load_root_credentials", "PROFILE"]

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
    parser[PROFILE] = {"aws_access_key_id": key, "aws_secret_access_key": secret, "region": region}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        parser.write(f)
    return RootCredentials(key, secret, path)
