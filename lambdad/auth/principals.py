"""Who signed a request, and what such a caller may do.

Three kinds of principal:

- **root**, the server's root credentials: everything, never evaluated.
- **an assumed-role session**: a function's environment's credentials (``auth/issued.py``), a session of the
  function's execution role named after the function, or credentials from STS AssumeRole
  (``iam/sts.py``). Named ``arn:aws:sts::<account>:assumed-role/<role name>/<session name>``; resource policies
  may name it by its role's ARN.
- **an IAM user**, with one of its access keys (``aws iam create-access-key``, ``lambdad keys create NAME``):
  ``arn:aws:iam::<account>:user/NAME``.

What a principal other than root may do is what the policies that apply to it allow (``iam/authorize.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdad.auth.sigv4 import Secret

__all__ = ["Principal", "Identity", "ROOT", "function_principal", "session_principal", "user_principal",
           "action_of"]


@dataclass(frozen=True)
class Principal:
    arn: str  # what resource policies name: a role or user ARN ("" for root)
    caller_arn: str  # how the caller is named (GetCallerIdentity, error messages): a session's ARN for a role
    account: str  # the account the principal belongs to
    root: bool = False
    kind: str = ""  # "user" or "role" (an assumed-role session): whose identity policies apply
    name: str = ""  # the user's or the role's name
    session: str = ""  # an assumed-role session's name


@dataclass(frozen=True)
class Identity:
    """What the server knows about an access key id: the secret that signs with it, and whose it is."""

    secret: Secret
    principal: Principal


ROOT = Principal(arn="", caller_arn="", account="", root=True)


def session_principal(role_arn: str, session_name: str) -> Principal:
    """An assumed-role session of ``role_arn`` named ``session_name``."""
    parts = role_arn.split(":", 5)
    account = parts[4] if len(parts) == 6 else ""
    role_name = parts[5].rsplit("/", 1)[-1] if len(parts) == 6 else role_arn
    return Principal(role_arn, f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}", account,
                     kind="role", name=role_name, session=session_name)


def function_principal(role_arn: str, function_name: str) -> Principal:
    """The principal of a function's credentials: a session of its execution role named after the function."""
    return session_principal(role_arn, function_name)


def user_principal(account: str, name: str, path: str = "/") -> Principal:
    arn = f"arn:aws:iam::{account}:user{path}{name}"
    return Principal(arn, arn, account, kind="user", name=name)


_ACTIONS = {
    "Invoke": "lambda:InvokeFunction",
    "InvokeWithResponseStream": "lambda:InvokeFunction",
    "GetLayerVersionByArn": "lambda:GetLayerVersion",
}


def action_of(operation: str) -> str:
    """The IAM action an API operation is authorized as."""
    return _ACTIONS.get(operation) or f"lambda:{operation}"
