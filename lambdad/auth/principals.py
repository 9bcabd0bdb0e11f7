"""Who signed a request, and what such a caller may do.

Three kinds of principal:

- **root**, the server's root credentials: everything.
- **a function**, with the credentials issued to one of its environments (``auth/issued.py``): the principal is
  the function's execution role (its ``Role`` ARN); messages name it as Lambda does, as the role's session
  ``arn:aws:sts::<account>:assumed-role/<role name>/<function name>``.
- **a user**, with an access key made by ``lambdad keys create NAME``: ``arn:aws:iam::<account>:user/NAME``.

The rules for every principal but root (there are no identity-based policies):

- read-only operations (``Get*``, ``List*``) are allowed;
- ``Invoke`` is allowed when the resource policy of what is invoked (the version's or alias's for a qualified
  name, else the function's) has a statement that allows it to the caller (``PolicyService.authorize_invoke``);
- every other operation is refused with AccessDeniedException.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdad.auth.sigv4 import Secret
from lambdad.errors import AccessDeniedException

__all__ = ["Principal", "Identity", "ROOT", "function_principal", "user_principal", "action_of", "check_operation"]


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


def action_of(operation: str) -> str:
    """The IAM action an API operation is authorized as."""
    return "lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}"


def check_operation(principal: Principal, operation: str, resource: str) -> None:
    """Refuse what a non-root principal may never do (writes); Invoke is decided by the resource policy."""
    if principal.root or operation == "Invoke" or operation.startswith(("Get", "List")):
        return
    action = action_of(operation)
    raise AccessDeniedException(
        f"User: {principal.caller_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
