"""Who may call which Lambda operation: each request, once routed and parsed, is put to the authorizer
(``iam/authorize.py``) with the action and resource AWS's service authorization reference gives the operation,
the resource policy of what it names, and Lambda's condition keys.

- an operation on a function (its path names one, or its ``Resource`` is a function's ARN; CreateFunction names
  one in its body): the function's ARN, qualified when the request is (``:qualifier`` or ``Qualifier``), and the
  resource policy of what it names — the version's or alias's when qualified, the function's when not or
  ``$LATEST`` (a function's policy does not cover its versions and aliases, as on Lambda);
- layer operations: the layer's ARN (PublishLayerVersion) or the layer version's, with its policy
  (AddLayerVersionPermission's statements) for GetLayerVersion and GetLayerVersionByArn;
- event source mappings: CreateEventSourceMapping on ``*``, Get/Update/DeleteEventSourceMapping on the mapping's
  ARN (``arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID``), with ``lambda:FunctionArn`` naming its function;
- operations on no resource (ListFunctions, ListEventSourceMappings, ListLayers, ListLayerVersions, GetAccountSettings, ...): ``*``.

Actions are ``lambda:<Operation>`` but for Invoke (``lambda:InvokeFunction``) and GetLayerVersionByArn
(``lambda:GetLayerVersion``). Condition keys: ``lambda:FunctionArn`` (operations on a function),
``lambda:Layer`` (the layer version ARNs of CreateFunction and UpdateFunctionConfiguration),
``lambda:Principal`` and ``lambda:FunctionUrlAuthType`` (AddPermission; Create/UpdateFunctionUrlConfig's
``AuthType``). Creating or updating a function with a
role also needs ``iam:PassRole`` on the role (context ``iam:PassedToService = lambda.amazonaws.com``), as on AWS;
whether the role must exist in IAM is the app's setting (``LAMBDAD_IAM_REFUSE_UNKNOWN_ROLES``, ``app.py``).

A function that does not exist is ResourceNotFoundException, as it is for root; a refusal is 403
AccessDeniedException, worded as Lambda words it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from lambdad.arn import LATEST, function_arn, parse_function_arn, parse_function_name
from lambdad.auth.principals import Principal, action_of
from lambdad.errors import LambdaError
from lambdad.functions.layers import LayerService, layer_arn
from lambdad.functions.service import FunctionService
from lambdad.iam.authorize import Authorizer

__all__ = ["AccessControl"]

_MAPPING_OPS = ("CreateEventSourceMapping", "GetEventSourceMapping", "UpdateEventSourceMapping",
                "DeleteEventSourceMapping")
_LAYER_VERSION_OPS = ("GetLayerVersion", "DeleteLayerVersion", "GetLayerVersionPolicy", "AddLayerVersionPermission",
                      "RemoveLayerVersionPermission")


class AccessControl:
    def __init__(self, functions: FunctionService, layers: LayerService, authorizer: Authorizer, region: str,
                 account_id: str, mapping_function: Callable[[str], str | None] = lambda _uuid: None) -> None:
        self._functions = functions
        self._mapping_function = mapping_function  # an event source mapping's UUID -> its FunctionArn
        self._layers = layers
        self._authorizer = authorizer
        self._region = region
        self._account_id = account_id

    def check(self, principal: Principal, operation: str, labels: Mapping[str, str],
              query: Mapping[str, list[str]], params: Mapping[str, Any], source_ip: str | None) -> None:
        """Return if ``principal`` may call ``operation`` on what the request names; raise otherwise."""
        if principal.root:
            return
        action = action_of(operation)
        check = self._authorizer.check
        if operation == "CreateFunction":
            arn = function_arn(self._region, self._account_id, str(params.get("FunctionName", "")), None)
            self._pass_role(principal, params, source_ip)
            check(principal, action, arn, source_ip=source_ip, context=self._layers_of(params))
        elif operation in _MAPPING_OPS:
            self._check_mapping(principal, action, operation, labels, params, source_ip)
        elif "FunctionName" in labels or "Resource" in labels:
            self._check_function(principal, action, operation, labels, query, params, source_ip)
        elif operation in _LAYER_VERSION_OPS or operation == "GetLayerVersionByArn":
            self._check_layer_version(principal, action, operation, labels, query, source_ip)
        elif operation == "PublishLayerVersion":
            name = labels.get("LayerName", "")
            arn = name if name.startswith("arn:") else f"arn:aws:lambda:{self._region}:{self._account_id}:layer:{name}"
            check(principal, action, arn, source_ip=source_ip)
        else:
            check(principal, action, "*", source_ip=source_ip,
                  shown_resource=f"arn:aws:lambda:{self._region}:{self._account_id}:*")

    def _check_function(self, principal: Principal, action: str, operation: str, labels: Mapping[str, str],
                        query: Mapping[str, list[str]], params: Mapping[str, Any], source_ip: str | None) -> None:
        if "FunctionName" in labels:
            qualifier = query.get("Qualifier", [None])[0]
            ref = parse_function_name(labels["FunctionName"], region=self._region, account_id=self._account_id,
                                      qualifier=qualifier or None)
        else:
            found = parse_function_arn(labels["Resource"], region=self._region, account_id=self._account_id)
            if found is None:  # not a function's ARN (tags of another kind of resource)
                self._authorizer.check(principal, action, labels["Resource"], source_ip=source_ip)
                return
            ref = found
        function = self._functions.function(ref.name)  # ResourceNotFoundException first, as for root
        key = LATEST if ref.qualifier in (None, LATEST) else ref.qualifier
        arn = function_arn(self._region, self._account_id, ref.name, ref.qualifier)
        context: dict[str, object] = {"lambda:FunctionArn": function_arn(self._region, self._account_id, ref.name,
                                                                          None)}
        if operation == "AddPermission":
            if "Principal" in params:
                context["lambda:Principal"] = str(params["Principal"])
            if "FunctionUrlAuthType" in params:
                context["lambda:FunctionUrlAuthType"] = str(params["FunctionUrlAuthType"])
        if operation in ("CreateFunctionUrlConfig", "UpdateFunctionUrlConfig") and params.get("AuthType"):
            context["lambda:FunctionUrlAuthType"] = str(params["AuthType"])
        if operation == "UpdateFunctionConfiguration":
            if params.get("Role"):
                self._pass_role(principal, params, source_ip)
            context.update(self._layers_of(params))
        self._authorizer.check(principal, action, arn, source_ip=source_ip, context=context,
                               resource_policy=function.policies.get(key, ()))

    def _check_mapping(self, principal: Principal, action: str, operation: str, labels: Mapping[str, str],
                       params: Mapping[str, Any], source_ip: str | None) -> None:
        """Event source mappings: CreateEventSourceMapping on ``*``, the others on the mapping's ARN; the condition
        key ``lambda:FunctionArn`` names the function it invokes (the one it will, for Create and an Update that
        changes it)."""
        context: dict[str, object] = {}
        named = params.get("FunctionName")
        if named:
            try:
                ref = parse_function_name(str(named), region=self._region, account_id=self._account_id)
                context["lambda:FunctionArn"] = function_arn(self._region, self._account_id, ref.name, ref.qualifier)
            except LambdaError:
                pass  # the handler says what is wrong with it, if the caller may ask
        if operation == "CreateEventSourceMapping":
            self._authorizer.check(principal, action, "*", source_ip=source_ip, context=context,
                                   shown_resource=f"arn:aws:lambda:{self._region}:{self._account_id}:*")
            return
        uuid = labels.get("UUID", "")
        if "lambda:FunctionArn" not in context:
            current = self._mapping_function(uuid)
            if current is not None:
                context["lambda:FunctionArn"] = current
        arn = f"arn:aws:lambda:{self._region}:{self._account_id}:event-source-mapping:{uuid}"
        self._authorizer.check(principal, action, arn, source_ip=source_ip, context=context)

    def _check_layer_version(self, principal: Principal, action: str, operation: str, labels: Mapping[str, str],
                             query: Mapping[str, list[str]], source_ip: str | None) -> None:
        statements: tuple[Mapping[str, Any], ...] = ()
        try:
            if operation == "GetLayerVersionByArn":
                arn = query.get("Arn", [""])[0]
                record = self._layers.get_by_arn(arn)
            else:
                name = labels.get("LayerName", "")
                name = name.rsplit(":", 1)[1] if name.startswith("arn:") else name
                record = self._layers.get(name, int(labels.get("VersionNumber", "")))
                arn = layer_arn(self._region, self._account_id, record.name, record.version)
            statements = tuple(record.statements)
        except (LambdaError, ValueError):  # not there: the handler says so, if the caller may ask
            arn = labels.get("LayerName") or query.get("Arn", [""])[0]
            if labels.get("VersionNumber") and not arn.startswith("arn:"):
                arn = f"arn:aws:lambda:{self._region}:{self._account_id}:layer:{arn}:{labels['VersionNumber']}"
        self._authorizer.check(principal, action, arn, source_ip=source_ip,
                               resource_policy=statements if action == "lambda:GetLayerVersion" else ())

    def _pass_role(self, principal: Principal, params: Mapping[str, Any], source_ip: str | None) -> None:
        role = str(params.get("Role", ""))
        if role:
            self._authorizer.check(principal, "iam:PassRole", role, source_ip=source_ip,
                                   context={"iam:PassedToService": "lambda.amazonaws.com"})

    @staticmethod
    def _layers_of(params: Mapping[str, Any]) -> dict[str, object]:
        layers = params.get("Layers")
        return {"lambda:Layer": [str(arn) for arn in layers]} if isinstance(layers, list) and layers else {}
