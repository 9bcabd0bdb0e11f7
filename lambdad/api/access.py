"""Who may call what: the rule for every principal but root, applied to a request once it is routed and before
its body is parsed.

Default deny. Root may do everything. Any other principal (a function's own credentials, a ``lambdad keys`` user)
may call an operation only where a resource policy grants it, as on Lambda without identity-based policies:

- an operation on a function (every operation whose path names a function, or whose ``Resource`` is a function
  ARN) needs a statement allowing its action in the policy of what it names: the version's or alias's when the
  name is qualified (by ``:qualifier`` or a ``Qualifier`` parameter), the function's when it is not or names
  ``$LATEST`` (a function's policy does not cover its versions and aliases). AddPermission writes such statements:
  ``lambda:InvokeFunction``, ``lambda:GetFunction``, ``lambda:*`` … (``auth/statements.py`` matches them);
- GetLayerVersion and GetLayerVersionByArn need a statement allowing ``lambda:GetLayerVersion`` in the layer
  version's policy (AddLayerVersionPermission);
- every other operation (create, list, account settings, the rest of the layer operations) has no resource
  policy that could grant it, and is refused.

A function that does not exist is ResourceNotFoundException, as it is for root; a refusal is 403
AccessDeniedException, worded as Lambda words it. The identity-based half (IAM policies) arrives with the IAM
issue and will be weighed here beside the resource policies.
"""

from __future__ import annotations

from typing import Mapping

from lambdad.arn import LATEST, function_arn, parse_function_arn, parse_function_name
from lambdad.auth.principals import Principal, action_of
from lambdad.auth.statements import allows
from lambdad.errors import AccessDeniedException, LambdaError
from lambdad.functions.layers import LayerService, layer_arn
from lambdad.functions.service import FunctionService

__all__ = ["AccessControl"]

_LAYER_READS = ("GetLayerVersion", "GetLayerVersionByArn")


class AccessControl:
    def __init__(self, functions: FunctionService, layers: LayerService, region: str, account_id: str) -> None:
        self._functions = functions
        self._layers = layers
        self._region = region
        self._account_id = account_id

    def check(self, principal: Principal, operation: str, labels: Mapping[str, str],
              query: Mapping[str, list[str]]) -> None:
        """Return if ``principal`` may call ``operation`` on what the request names; raise otherwise."""
        if principal.root:
            return
        action = action_of(operation)
        if "FunctionName" in labels or "Resource" in labels:
            self._check_function(principal, action, labels, query)
        elif operation in _LAYER_READS:
            self._check_layer(principal, action, operation, labels, query)
        else:
            raise _denied(principal, action, f"arn:aws:lambda:{self._region}:{self._account_id}:*")

    def _check_function(self, principal: Principal, action: str, labels: Mapping[str, str],
                        query: Mapping[str, list[str]]) -> None:
        if "FunctionName" in labels:
            qualifier = query.get("Qualifier", [None])[0]
            ref = parse_function_name(labels["FunctionName"], region=self._region, account_id=self._account_id,
                                      qualifier=qualifier or None)
        else:
            found = parse_function_arn(labels["Resource"], region=self._region, account_id=self._account_id)
            if found is None:  # not a function's ARN: nothing a resource policy could grant
                raise _denied(principal, action, labels["Resource"])
            ref = found
        function = self._functions.function(ref.name)  # ResourceNotFoundException first, as for root
        key = LATEST if ref.qualifier in (None, LATEST) else ref.qualifier
        if allows(function.policies.get(key, ()), principal, action):
            return
        raise _denied(principal, action, function_arn(self._region, self._account_id, ref.name, ref.qualifier))

    def _check_layer(self, principal: Principal, action: str, operation: str, labels: Mapping[str, str],
                     query: Mapping[str, list[str]]) -> None:
        try:
            if operation == "GetLayerVersionByArn":
                arn = query.get("Arn", [""])[0]
                record = self._layers.get_by_arn(arn)
            else:
                name = labels.get("LayerName", "")
                name = name.rsplit(":", 1)[1] if name.startswith("arn:") else name
                record = self._layers.get(name, int(labels.get("VersionNumber", "")))
                arn = layer_arn(self._region, self._account_id, record.name, record.version)
        except (LambdaError, ValueError):
            record = None
            arn = labels.get("LayerName") or query.get("Arn", [""])[0]
        # a layer version the caller may not see is refused whether or not it exists
        if record is None or not allows(record.statements, principal, action):
            raise _denied(principal, action, arn)


def _denied(principal: Principal, action: str, resource: str) -> AccessDeniedException:
    # Lambda's wording: an invoke is refused for want of a resource-based policy (what grants it to other
    # principals), any other action for want of an identity-based one (what would normally grant it)
    kind = "resource" if action == "lambda:InvokeFunction" else "identity"
    return AccessDeniedException(
        f"User: {principal.caller_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no {kind}-based policy allows the {action} action"
    )
