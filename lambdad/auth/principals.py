"""Who signed a request, and what such a caller may do.

Three kinds of principal:

- **root**, the server's root credentials: everything.
- **a function**, with the credentials issued to one of its environments (``auth/issued.py``): the principal is
  the function's execution role (its ``Role`` ARN); messages name it as Lambda does, as the role's session
  ``arn:aws:sts::<account>:assumed-role/<role name>/<function name>``.
- **a user**, with an access key made by ``lambdad keys create NAME``: ``arn:aws:iam::<account>:user/NAME``.

What a principal other than root may do is decided by ``api/access.py``: only what a resource policy grants it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdad.auth.sigv4 import Secret

__all__ = ["Principal", "Identity", "ROOT", "function_principal", "user_principal", "action_of"]


@dataclass(frozen=True)
class Principal:
    arn: str  # what policy statements name: a role or user ARN ("" for root)
    caller_arn: str  # how error messages name the caller
    account: str  # the account the principal belongs to
    root: bool = False


@dataclass(frozen=True)
class Identity:
    """What the server knows about an access key id: the secret that signs with it, and whose it is."""

    secret: Secret
    principal: Principal


ROOT = Principal(arn="", caller_arn="", account="", root=True)


def function_principal(role_arn: str, function_name: str) -> Principal:
    """The principal of a function's credentials: its execution role."""
    parts = role_arn.split(":", 5)
    account = parts[4] if len(parts) == 6 else ""
    role_name = parts[5].rsplit("/", 1)[-1] if len(parts) == 6 else role_arn
    return Principal(role_arn, f"arn:aws:sts::{account}:assumed-role/{role_name}/{function_name}", account)


def user_principal(account: str, name: str) -> Principal:
    arn = f"arn:aws:iam::{account}:user/{name}"
    return Principal(arn, arn, account)


_ACTIONS = {
    "Invoke": "lambda:InvokeFunction",
    "InvokeWithResponseStream": "lambda:InvokeFunction",
    "GetLayerVersionByArn": "lambda:GetLayerVersion",
}


def action_of(operation: str) -> str:
    """The IAM action an API operation is authorized as."""
    return _ACTIONS.get(operation) or f"lambda:{operation}"
