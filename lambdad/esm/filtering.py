"""Event filtering for event source mappings: a mapping's ``FilterCriteria`` compiled once into a predicate the
poller calls on each record, in the record's Lambda event shape.

What Lambda documents ("Control which events Lambda sends to your function", and the per-source pages for SQS,
Kinesis, DynamoDB and Amazon MQ), and what this module does:

- ``FilterCriteria`` is ``{"Filters": [{"Pattern": "<JSON>"}, ...]}``, up to 5 filters by default; a record passes
  when ANY filter matches. No criteria (``{}``, no ``Filters``, or an empty list) lets every record through.
- A pattern is an EventBridge-style JSON object. Its keys name fields of the record; a value is either a nested
  object (match inside that field) or a non-empty list of rules, ORed. The keys of one object are ANDed.
- Rules, exactly the table of Lambda's "Filter rule syntax": exact values (string, number, ``true``/``false``,
  ``null``; ``""`` is "empty"), ``{"equals-ignore-case": str}``, ``{"prefix": str}``, ``{"suffix": str}``,
  ``{"anything-but": value | [values]}`` (strings or numbers), ``{"numeric": ["=", n]}`` and ranges
  (``[">", 10, "<=", 20]``), ``{"exists": true|false}``, and ``"$or": [pattern, ...]`` over several fields.
  EventBridge's other operators (``cidr``, ``wildcard``, ``prefix``/``suffix`` with ``equals-ignore-case``,
  ``anything-but`` with ``prefix``/``suffix``/``equals-ignore-case``/``wildcard`` inside) are not in Lambda's table
  and are refused as unknown here; ``compile_event_pattern`` (EventBridge rules, ``events/``) is the same matcher
  with them turned on (the ``eventbridge`` flag of the compile functions).
- Strings match character by character; numbers match exactly by their JSON text (300, 300.0 and 3.0e2 differ),
  and ``numeric`` compares values. ``exists`` looks at leaf values only: an object is not a leaf.
- Arrays in the record: a rule list matches if it matches any element; a nested object pattern must match within
  one element (EventBridge's array consistency).
- The data key and its decoding depend on the source: SQS ``body`` (a string), Kinesis ``data`` (base64, inside the
  record's ``kinesis`` object, whose fields may be named at the top level of the pattern as Lambda's example with
  ``partitionKey`` does), DynamoDB ``dynamodb`` (already JSON), RabbitMQ ``data`` (base64, UTF-8). A payload is
  "JSON" when it parses to an object or an array; anything else is a plain string.
- SQS and RabbitMQ payloads may be JSON or plain strings. A pattern whose data key holds an object expects JSON, one
  whose data key holds a rule list expects a plain string; when the record's payload is the other kind the record
  is dropped (Lambda's table "Incoming message body format / Filter pattern body format"). Kinesis and DynamoDB
  patterns must hold an object under the data key (Lambda refuses a non-JSON data pattern when the mapping is
  created); a Kinesis record whose data is not JSON fails any pattern that names ``data``.
- A bad pattern raises ``InvalidFilterCriteria``, whose ``detail`` is in EventBridge's words (what follows
  "Event pattern is not valid. Reason: ") and whose message is the one Lambda answers in its
  InvalidParameterValueException: "Invalid filter pattern definition." (seen through CloudFormation as "Invalid
  request provided: Invalid filter pattern definition.", aws/aws-cdk#23057).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["DEFAULT_MAX_FILTERS", "SOURCES", "InvalidFilterCriteria", "compile_filter_criteria",
           "compile_event_pattern", "parse_event_json"]

DEFAULT_MAX_FILTERS: Final = 5
SOURCES: Final = ("sqs", "kinesis", "dynamodb", "rmq")

_MESSAGE: Final = "Invalid filter pattern definition."
_DATA_KEY: Final = {"sqs": "body", "kinesis": "data", "dynamodb": "dynamodb", "rmq": "data"}

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]
_ObjectMatcher = Callable[[Any], bool]  # takes a field's value: a dict, a list of dicts, or anything else (no object)
_LeafRule = Callable[[Any], bool]
_ABSENT: Final = object()


class InvalidFilterCriteria(ValueError):
    """A pattern Lambda would refuse. ``str()`` is Lambda's message; ``detail`` is ours."""

    def __init__(self, detail: str) -> None:
        super().__init__(_MESSAGE)
        self.detail = detail


class _JsonFloat(float):
    """A JSON number with a fraction or exponent, keeping its text: exact matching compares the text."""

    text: str

    def __new__(cls, text: str) -> _JsonFloat:
        value = super().__new__(cls, text)
        value.text = text
        return value


_DECODER: Final = json.JSONDecoder(parse_float=_JsonFloat)  # built once: json.loads with a hook builds one per call


def _loads(text: str) -> Any:
    return _DECODER.decode(text)


def _merge_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A pattern object whose key repeats ANDs the repeated objects (Lambda's DynamoDB page writes
    ``{"dynamodb": {"NewImage": ...}, "dynamodb": {"OldImage": ...}}``); a repeated rule list is refused."""
    merged: dict[str, Any] = {}
    for key, value in pairs:
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _merge_pairs([*merged[key].items(), *value.items()])
        else:
            raise InvalidFilterCriteria(f"the key {key!r} appears twice")
    return merged


def _loads_pattern(text: str) -> Any:
    return json.loads(text, parse_float=_JsonFloat, object_pairs_hook=_merge_pairs)


def _exact_key(value: Any) -> tuple[str, Any] | None:
    """The identity a value is matched by exactly; None for objects and arrays."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, _JsonFloat):
        return ("num", value.text)
    if isinstance(value, float):
        return ("num", repr(value))
    if isinstance(value, int):
        return ("num", str(value))
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- compiling rules ---------------------------------------------------------------------------------------------

_LOWER_OPS: Final = {">": float.__gt__, ">=": float.__ge__}
_UPPER_OPS: Final = {"<": float.__lt__, "<=": float.__le__}


def _compile_numeric(operand: Any) -> _LeafRule:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise InvalidFilterCriteria("numeric takes [op, number] or [op, number, op, number]")
    pairs = [(operand[i], operand[i + 1]) for i in range(0, len(operand), 2)]
    for op, number in pairs:
        if not isinstance(op, str) or op not in ("=", "<", "<=", ">", ">="):
            raise InvalidFilterCriteria(f"unknown numeric operator {op!r}")
        if not _is_number(number):
            raise InvalidFilterCriteria(f"numeric operator {op} needs a number, not {number!r}")
    if len(pairs) == 1:
        op, number = pairs[0]
        bound = float(number)
        if op == "=":
            return lambda v: _is_number(v) and float(v) == bound
        compare = {**_LOWER_OPS, **_UPPER_OPS}[op]
        return lambda v: _is_number(v) and compare(float(v), bound)
    (op1, n1), (op2, n2) = pairs
    if op1 in _UPPER_OPS and op2 in _LOWER_OPS:
        (op1, n1), (op2, n2) = (op2, n2), (op1, n1)
    if op1 not in _LOWER_OPS or op2 not in _UPPER_OPS:
        raise InvalidFilterCriteria("a numeric range takes one lower bound (> or >=) and one upper bound (< or <=)")
    low, high = float(n1), float(n2)
    if low > high:
        raise InvalidFilterCriteria("a numeric range's lower bound is above its upper bound")
    above, below = _LOWER_OPS[op1], _UPPER_OPS[op2]
    return lambda v: _is_number(v) and above(float(v), low) and below(float(v), high)


def _compile_anything_but(operand: Any, eventbridge: bool = False) -> _LeafRule:
    if eventbridge and isinstance(operand, dict):
        return _compile_anything_but_operator(operand)
    values = operand if isinstance(operand, list) else [operand]
    if not values:
        raise InvalidFilterCriteria("Empty arrays are not allowed")
    if all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values):
        excluded = frozenset(_exact_key(v) for v in values)
        return lambda v: _exact_key(v) not in excluded
    raise InvalidFilterCriteria("Inside anything but list, only strings or only numbers are allowed")


def _compile_anything_but_operator(operand: Mapping[str, Any]) -> _LeafRule:
    """EventBridge's ``{"anything-but": {"prefix" | "suffix" | "equals-ignore-case" | "wildcard": ...}}``: true for a
    string that does not begin with / end with / equal regardless of case / match any of the values."""
    if len(operand) != 1:
        raise InvalidFilterCriteria("Inside anything-but, exactly one of prefix, suffix, equals-ignore-case or "
                                    "wildcard is allowed")
    ((name, value),) = operand.items()
    values = value if isinstance(value, list) and name in ("equals-ignore-case", "wildcard") else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise InvalidFilterCriteria(f"Inside anything-but/{name}, the value must be a string"
                                    + (" or an array of strings" if name in ("equals-ignore-case", "wildcard")
                                       else ""))
    if name == "prefix":
        if not values[0]:
            raise InvalidFilterCriteria("Null prefix/suffix not allowed")
        return lambda v: isinstance(v, str) and not v.startswith(values[0])
    if name == "suffix":
        if not values[0]:
            raise InvalidFilterCriteria("Null prefix/suffix not allowed")
        return lambda v: isinstance(v, str) and not v.endswith(values[0])
    if name == "equals-ignore-case":
        folded = frozenset(v.casefold() for v in values)
        return lambda v: isinstance(v, str) and v.casefold() not in folded
    if name == "wildcard":
        compiled = tuple(_wildcard_regex(v) for v in values)
        return lambda v: isinstance(v, str) and not any(r.fullmatch(v) for r in compiled)
    raise InvalidFilterCriteria(f"Unsupported anything-but pattern: {name}")


def _wildcard_regex(text: str) -> re.Pattern[str]:
    """EventBridge's wildcard: ``*`` is any run of characters (none included), ``\\*`` a star, ``\\\\`` a
    backslash; two stars in a row, and any other escape, are refused as AWS refuses them."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in ("*", "\\"):
                raise InvalidFilterCriteria(f"Invalid escape character at pos {i}")
            out.append(re.escape(nxt))
            i += 2
            continue
        if c == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                raise InvalidFilterCriteria(f"Consecutive wildcard characters at pos {i + 1}")
            out.append(".*")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _compile_cidr(operand: Any) -> _LeafRule:
    if not isinstance(operand, str):
        raise InvalidFilterCriteria("cidr match pattern must be a string")
    try:
        network = ipaddress.ip_network(operand, strict=False)
    except ValueError:
        raise InvalidFilterCriteria(f"Nonstandard IP address: {operand}") from None

    def match(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            return ipaddress.ip_address(v) in network
        except ValueError:
            return False

    return match


def _compile_string_operand(name: str, operand: Any) -> str:
    if not isinstance(operand, str):
        raise InvalidFilterCriteria(f"{name} match pattern must be a string")
    return operand


def _compile_affix(name: str, operand: Any, eventbridge: bool) -> _LeafRule:
    """``prefix`` / ``suffix``: a string, or (EventBridge) ``{"equals-ignore-case": string}``."""
    ignore_case = False
    if eventbridge and isinstance(operand, dict) and set(operand) == {"equals-ignore-case"}:
        operand, ignore_case = operand["equals-ignore-case"], True
    if not isinstance(operand, str):
        raise InvalidFilterCriteria(f"{name} match pattern must be a string")
    if ignore_case:
        folded = operand.casefold()
        if name == "prefix":
            return lambda v: isinstance(v, str) and v.casefold().startswith(folded)
        return lambda v: isinstance(v, str) and v.casefold().endswith(folded)
    if name == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(operand)
    return lambda v: isinstance(v, str) and v.endswith(operand)


def _compile_operator(rule: Mapping[str, Any], eventbridge: bool = False) -> _LeafRule:
    if len(rule) != 1:
        raise InvalidFilterCriteria(f"an operator object holds exactly one operator, not {sorted(rule)}")
    ((name, operand),) = rule.items()
    if name in ("prefix", "suffix"):
        return _compile_affix(name, operand, eventbridge)
    if name == "equals-ignore-case":
        folded = _compile_string_operand(name, operand).casefold()
        return lambda v: isinstance(v, str) and v.casefold() == folded
    if name == "anything-but":
        return _compile_anything_but(operand, eventbridge)
    if name == "numeric":
        return _compile_numeric(operand)
    if eventbridge and name == "cidr":
        return _compile_cidr(operand)
    if eventbridge and name == "wildcard":
        regex = _wildcard_regex(_compile_string_operand(name, operand))
        return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None
    raise InvalidFilterCriteria(f"Unrecognized match type {name}")


def _leaves(value: Any, out: list[Any]) -> list[Any]:
    """The scalar values at a field: arrays are flattened, objects are not leaves."""
    if isinstance(value, list):
        for item in value:
            _leaves(item, out)
    elif not isinstance(value, dict):
        out.append(value)
    return out


def _compile_rules(field: str, rules: list[Any], eventbridge: bool = False) -> Callable[[Any], bool]:
    """A rule list: true when the field's value (``_ABSENT`` if missing) satisfies any rule."""
    if not rules:
        raise InvalidFilterCriteria("Empty arrays are not allowed")
    exact: set[tuple[str, Any] | None] = set()
    leaf_rules: list[_LeafRule] = []
    exists: set[bool] = set()
    for rule in rules:
        if isinstance(rule, dict):
            if set(rule) == {"exists"}:
                if not isinstance(rule["exists"], bool):
                    raise InvalidFilterCriteria("exists match pattern must be either true or false.")
                exists.add(rule["exists"])
            else:
                leaf_rules.append(_compile_operator(rule, eventbridge))
        elif isinstance(rule, list):
            raise InvalidFilterCriteria(f"Match value must be String, number, true, false, or null (in {field!r})")
        else:
            exact.add(_exact_key(rule))
    frozen = frozenset(exact)
    want_present, want_absent = True in exists, False in exists
    checks = tuple(leaf_rules)

    def match(value: Any) -> bool:
        leaves = [] if value is _ABSENT else _leaves(value, [])
        if not leaves:
            return want_absent
        if want_present:
            return True
        for leaf in leaves:
            if frozen and _exact_key(leaf) in frozen:
                return True
            for check in checks:
                if check(leaf):
                    return True
        return False

    return match


def _any_of(branches: tuple[_ObjectMatcher, ...]) -> _ObjectMatcher:
    return lambda obj: any(branch(obj) for branch in branches)


def _compile_object(pattern: Any, where: str, data_key: str | None = None,
                    eventbridge: bool = False) -> _ObjectMatcher:
    """A pattern object: true when every field matches (and every ``$or`` has a matching branch).

    ``data_key`` is given for the top of a pattern and its top-level ``$or`` branches: there the payload's kind is
    checked first — an object pattern needs a JSON payload (a dict or a list), a rule list a plain string."""
    if not isinstance(pattern, dict):
        raise InvalidFilterCriteria("Filter is not an object")
    if not pattern:
        raise InvalidFilterCriteria("Empty objects are not allowed")
    fields: list[tuple[str, Callable[[Any], bool], bool]] = []  # (key, matcher, matcher takes the whole object)
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidFilterCriteria("Or relationship must be a list of at least two objects")
            branches = tuple(_compile_object(branch, f"a $or branch in {where}", data_key, eventbridge)
                             for branch in value)
            fields.append((key, _any_of(branches), True))
        elif isinstance(value, dict):
            sub = _compile_object(value, f"the pattern of {key!r}", None, eventbridge)
            fields.append((key, _json_payload(sub) if key == data_key else sub, False))
        elif isinstance(value, list):
            rules = _compile_rules(key, value, eventbridge)
            fields.append((key, _plain_payload(rules) if key == data_key else rules, False))
        else:
            raise InvalidFilterCriteria(f'"{key}" must be an object or an array')
    compiled = tuple(fields)

    def match(obj: Any) -> bool:
        if isinstance(obj, list):
            return any(match(item) for item in obj if isinstance(item, dict)) if obj else match(_ABSENT)
        source = obj if isinstance(obj, dict) else {}
        for key, matcher, whole in compiled:
            if not matcher(source if whole else source.get(key, _ABSENT)):
                return False
        return True

    return match


def _json_payload(sub: _ObjectMatcher) -> Callable[[Any], bool]:
    return lambda payload: isinstance(payload, (dict, list)) and sub(payload)


def _plain_payload(rules: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda payload: isinstance(payload, str) and rules(payload)


# --- the payload of each source ----------------------------------------------------------------------------------


def _decode(raw: Any, base64_encoded: bool) -> Any:
    """The payload as patterns see it: parsed JSON (an object or array), else the plain string; ``_ABSENT`` when
    there is none or it cannot be read (not base64, not UTF-8)."""
    if not isinstance(raw, str):
        return _ABSENT
    text = raw
    if base64_encoded:
        try:
            text = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _ABSENT
    if text.lstrip()[:1] in ("{", "["):
        try:
            return _loads(text)
        except ValueError:
            pass
    return text


def _compile_filter(pattern: Mapping[str, Any], source: str) -> _ObjectMatcher:
    data_key = _DATA_KEY[source]
    if source in ("kinesis", "dynamodb") and _names_with(pattern, data_key, list):
        raise InvalidFilterCriteria(f"the pattern of {data_key!r} must be a JSON object for {source}")
    return _compile_object(pattern, "the pattern", data_key)


def _names_with(pattern: Mapping[str, Any], key: str, kind: type | None = None) -> bool:
    """Whether a pattern names ``key`` (holding a ``kind`` value, if given) at its top or in a top-level ``$or``."""
    if key in pattern and (kind is None or isinstance(pattern[key], kind)):
        return True
    branches = pattern.get("$or")
    return isinstance(branches, list) and any(isinstance(b, dict) and _names_with(b, key, kind) for b in branches)


def _parse_filters(criteria: Mapping[str, Any], max_filters: int) -> list[Mapping[str, Any]]:
    if not isinstance(criteria, Mapping):
        raise InvalidFilterCriteria("FilterCriteria is not an object")
    filters = criteria.get("Filters") or []
    if not isinstance(filters, list):
        raise InvalidFilterCriteria("Filters is not a list")
    if len(filters) > max_filters:
        raise InvalidFilterCriteria(f"{len(filters)} filters; the limit is {max_filters}")
    patterns: list[Mapping[str, Any]] = []
    for item in filters:
        text = item.get("Pattern") if isinstance(item, Mapping) else None
        if not isinstance(text, str):
            raise InvalidFilterCriteria("a filter has no Pattern string")
        try:
            pattern = _loads_pattern(text)
        except InvalidFilterCriteria:
            raise
        except ValueError as exc:
            raise InvalidFilterCriteria(f"the pattern is not JSON: {exc}") from exc
        if not isinstance(pattern, dict):
            raise InvalidFilterCriteria("the pattern is not a JSON object")
        patterns.append(pattern)
    return patterns


def compile_filter_criteria(
    criteria: Mapping[str, Any], source: str, *, max_filters: int = DEFAULT_MAX_FILTERS
) -> Predicate:
    """Compile ``FilterCriteria`` for one source (``sqs``, ``kinesis``, ``dynamodb``, ``rmq``) into a predicate on
    records in their Lambda event shape. Raises ``InvalidFilterCriteria`` for criteria Lambda would refuse."""
    if source not in _DATA_KEY:
        raise ValueError(f"unknown event source {source!r}; expected one of {SOURCES}")
    patterns = _parse_filters(criteria, max_filters)
    filters = tuple(_compile_filter(pattern, source) for pattern in patterns)
    if not filters:
        return _always
    if source == "dynamodb":
        return lambda record: any(f(record) for f in filters)
    data_key = _DATA_KEY[source]
    decode = any(_names_with(pattern, data_key) for pattern in patterns)

    def predicate(record: Record) -> bool:
        view: dict[str, Any]
        if source == "kinesis":
            inner = record.get("kinesis")
            view = {**record, **inner} if isinstance(inner, Mapping) else dict(record)
            payload = _decode(view.pop("data", None), True) if decode else _ABSENT
        elif decode:
            view = dict(record)
            payload = _decode(view.pop(data_key, None), source == "rmq")
        else:
            return any(f(record) for f in filters)
        if payload is not _ABSENT:
            view[data_key] = payload
        return any(f(view) for f in filters)

    return predicate


def _always(record: Record) -> bool:
    return True


# --- EventBridge event patterns ----------------------------------------------------------------------------------


def compile_event_pattern(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """An EventBridge rule's ``EventPattern`` (JSON text) as a predicate on events (as ``parse_event_json`` reads
    them: numbers keep their text). EventBridge's syntax is Lambda's plus ``cidr``, ``wildcard``, ``prefix`` /
    ``suffix`` with ``equals-ignore-case``, and ``anything-but`` with ``prefix``, ``suffix``, ``equals-ignore-case``
    or ``wildcard`` (a string or a list). Raises ``InvalidFilterCriteria`` whose ``detail`` is the reason EventBridge
    gives after "Event pattern is not valid. Reason: "."""
    try:
        pattern = _loads_pattern(text)
    except InvalidFilterCriteria:
        raise
    except ValueError as exc:
        raise InvalidFilterCriteria(str(exc).split(":")[0]) from exc
    if not isinstance(pattern, dict):
        raise InvalidFilterCriteria("Filter is not an object")
    return _compile_object(pattern, "the pattern", None, eventbridge=True)


def parse_event_json(text: str) -> Any:
    """JSON as event patterns read it: a number keeps its text, so that exact matching compares the text."""
    return _loads(text)
