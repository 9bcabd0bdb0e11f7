"""CloudFormation's parameters, conditions, mappings and intrinsic functions, resolved as CloudFormation resolves
them, for the resources lambdad deploys.

A ``Resolver`` turns a resource's properties (long-form intrinsics, after the SAM transform) into plain values:
``Ref`` (parameters, pseudo parameters, resources' physical ids), ``Fn::GetAtt``, ``Fn::Sub`` (both forms, ``${!x}``
for a literal), ``Fn::Join``, ``Fn::If`` (with ``AWS::NoValue`` removing the property), ``Fn::Select``,
``Fn::Split``, ``Fn::FindInMap`` (with ``DefaultValue``), ``Fn::Equals`` / ``Fn::Not`` / ``Fn::And`` / ``Fn::Or`` /
``Condition``, ``Fn::Base64``, ``Fn::ImportValue`` (the exports of this server's other stacks), ``Fn::GetAZs``,
``Fn::Length`` and ``Fn::ToJsonString``. A resource's own references come from ``lookup(logical id, attribute)``;
while planning, the attributes of resources not made yet are ``PENDING`` strings, which mark a property as
changing.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable, Mapping

__all__ = ["Resolver", "ResolveError", "PENDING", "NO_VALUE", "references", "parameter_values"]

PENDING = "{{pending:"  # the start of an attribute's stand-in while planning
_SUB = re.compile(r"\$\{([^}]*)\}")


class ResolveError(Exception):
    pass


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

Lookup = Callable[[str, str | None], Any]  # (logical id, attribute or None for Ref) -> value


def parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """The value of every parameter: its override, else its Default; refused as CloudFormation refuses them
    (an unknown name, a missing value, a value outside AllowedValues or AllowedPattern, not a Number)."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ResolveError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    values: dict[str, Any] = {}
    missing = []
    for name, spec in declared.items():
        spec = spec or {}
        if name in overrides:
            value: Any = overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            missing.append(name)
            continue
        kind = str(spec.get("Type", "String"))
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        allowed = spec.get("AllowedValues")
        if allowed and text not in [str(a) for a in allowed]:
            raise ResolveError(f"Parameter '{name}' must be one of AllowedValues")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(str(pattern), text):
            raise ResolveError(f"Parameter '{name}' must match pattern {pattern}")
        if kind == "Number":
            try:
                float(text)
            except ValueError:
                raise ResolveError(f"Parameter '{name}' must be a number not '{text}'") from None
        if kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<"):
            values[name] = [part.strip() for part in text.split(",")] if text else []
        else:
            values[name] = text
    if missing:
        raise ResolveError(f"Parameters: [{', '.join(missing)}] must have values")
    return values


def references(value: Any) -> set[str]:
    """The logical ids (and parameter names) ``value`` refers to through Ref, Fn::GetAtt and Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add((arg.split(".", 1)[0] if isinstance(arg, str) else str(arg[0])))
            elif key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for name in _SUB.findall(str(text)):
                    if not name.startswith("!") and name.split(".", 1)[0] not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
                return found
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


class Resolver:
    def __init__(self, parameters: Mapping[str, Any], pseudo: Mapping[str, Any], mappings: Mapping[str, Any],
                 conditions: Mapping[str, Any], lookup: Lookup, imports: Callable[[str], str]) -> None:
        self.parameters = {**pseudo, **parameters}
        self.mappings = mappings
        self._condition_specs = conditions
        self._conditions: dict[str, bool] = {}
        self._lookup = lookup
        self._imports = imports
        self.region = str(pseudo.get("AWS::Region", "us-east-1"))

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_specs:
                raise ResolveError(f"Condition {name} is not defined in Conditions")
            self._conditions[name] = False  # a condition that refers to itself is false, not an endless loop
            self._conditions[name] = bool(self.resolve(self._condition_specs[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """``value`` with its intrinsic functions evaluated; ``NO_VALUE`` removed from dicts and lists."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Ref":
            return self.ref(str(arg))
        if key == "Condition":
            return self.condition(str(arg))
        if key == "Fn::GetAtt":
            logical, attr = (arg.split(".", 1) if isinstance(arg, str) else (str(arg[0]), str(self.resolve(arg[1]))))
            return self._lookup(logical, attr)
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(str(name)) else no)
        if key == "Fn::Equals":
            a, b = (self.resolve(x) for x in arg)
            return str(a) == str(b) if not isinstance(a, (list, dict)) else a == b
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(x) for x in arg)
        if key == "Fn::Or":
            return any(self._truth(x) for x in arg)
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            sep, items = arg
            parts = self.resolve(items)
            if not isinstance(parts, list):
                raise ResolveError("Fn::Join needs a list of values")
            return str(self.resolve(sep)).join(_text(p) for p in parts)
        if key == "Fn::Select":
            index, items = self.resolve(arg[0]), self.resolve(arg[1])
            try:
                return items[int(index)]
            except (IndexError, ValueError, TypeError):
                raise ResolveError(f"Fn::Select: index {index} out of range of {items}") from None
        if key == "Fn::Split":
            sep, text = self.resolve(arg[0]), self.resolve(arg[1])
            return str(text).split(str(sep))
        if key == "Fn::FindInMap":
            return self._find_in_map(arg)
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if key == "Fn::ImportValue":
            return self._imports(str(self.resolve(arg)))
        if key == "Fn::GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if key == "Fn::Length":
            items = self.resolve(arg)
            return len(items) if isinstance(items, list) else 0
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        raise ResolveError(f"intrinsic function {key} is not supported")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        return self._lookup(name, None)

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and set(value) == {"Condition"}:
            return self.condition(str(value["Condition"]))
        return bool(self.resolve(value))

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if name in self.parameters:
                return _text(self.parameters[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return _text(self._lookup(logical, attr))
            return _text(self._lookup(name, None))

        return _SUB.sub(one, str(text))

    def _find_in_map(self, arg: Any) -> Any:
        default = None
        if len(arg) == 4 and isinstance(arg[3], dict):
            default = arg[3].get("DefaultValue")
        name, top, second = (self.resolve(x) for x in arg[:3])
        try:
            return self.resolve(self.mappings[str(name)][str(top)][str(second)])
        except (KeyError, TypeError):
            if default is not None:
                return self.resolve(default)
            raise ResolveError(f"Fn::FindInMap: no {name} / {top} / {second} in Mappings") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)
