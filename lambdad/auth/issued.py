"""Temporary credentials issued to execution environments, so that the AWS SDK inside a function can call lambdad.

Each environment gets its own access key id (``ASIA…``), secret and session token when it starts; they are
accepted (SigV4 with the matching ``X-Amz-Security-Token``) until the environment is closed, when they are
revoked, or until they expire (12 hours, Lambda's longest execution-role session), whichever comes first. They
live only in memory: a restarted server has no environments and so no credentials to honour.

Their principal is the function's execution role (``auth/principals.py`` says what it may do).
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from lambdad.auth.principals import Identity, Principal
from lambdad.auth.sigv4 import Secret

__all__ = ["IssuedCredentials", "CredentialIssuer", "LIFETIME_SECONDS"]

LIFETIME_SECONDS = 12 * 3600
_KEY_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires: float  # epoch seconds
    owner: str  # the environment id
    principal: Principal  # the function's execution role
    function_arn: str  # the function version the environment runs

    def as_environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


class CredentialIssuer:
    def __init__(self) -> None:
        self._by_key: dict[str, IssuedCredentials] = {}

    def issue(self, owner: str, principal: Principal, function_arn: str) -> IssuedCredentials:
        creds = IssuedCredentials(
            access_key_id="ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
            secret_access_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(96),
            expires=time.time() + LIFETIME_SECONDS,
            owner=owner,
            principal=principal,
            function_arn=function_arn,
        )
        self._by_key[creds.access_key_id] = creds
        return creds

    def revoke(self, access_key_id: str) -> None:
        self._by_key.pop(access_key_id, None)

    def lookup(self, access_key_id: str) -> Identity | None:
        creds = self._by_key.get(access_key_id)
        if creds is None:
            return None
        if creds.expires < time.time():
            self.revoke(access_key_id)
            return None
        return Identity(Secret(creds.secret_access_key, creds.session_token), creds.principal)

    def __len__(self) -> int:
        return len(self._by_key)
