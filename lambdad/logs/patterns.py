"""CloudWatch Logs filter patterns: parse once, then match messages (FilterLogEvents' ``filterPattern``).

``compile_pattern(text)`` returns a predicate on a log event's message; a pattern CloudWatch would refuse raises
``InvalidFilterPattern``. Nothing here does I/O: the API layer maps the error to ``InvalidParameterException``
(HTTP 400) with ``str(exc)`` as its message. The rules follow AWS's page "Filter pattern syntax for metric filters,
subscription filters, filter log events, and Live Tail" (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/
FilterAndPatternSyntax.html); every example on it is a case in tests/unit/test_log_patterns.py.

Grammar (one of four kinds, chosen by the pattern's first character once blanks are stripped)::

    pattern      := ""                                   every message matches (also only blanks)
                  | "{" json_expr "}"                    JSON: a message that is not JSON never matches
                  | "[" [slot ("," slot)* [","]] "]"     space-delimited
                  | "%" regex "%"                        one regex on its own
                  | term+                                unstructured

    term         := ["?" | "-"] (WORD | QUOTED)          WORD: letters, digits, "_"; anything else is quoted
    json_expr    := json_and ("||" json_and)*            precedence () > && > ||
    json_and     := json_unary ("&&" json_unary)*
    json_unary   := "(" json_expr ")" | selector (op value | "IS" ("NULL"|"TRUE"|"FALSE") | "NOT" "EXISTS")
    selector     := "$" ("." NAME | ".*" | [.] "[" (INDEX | "*" | "'" KEY "'") "]")*
    slot         := "..." | "" | NAME | slot_expr        slot_expr: like json_expr, each condition
                                                         "NAME op value" naming the slot's own field
    op           := "=" | "!=" | "<" | "<=" | ">" | ">="
    value        := NUMBER | QUOTED | BARE | "%" regex "%"   BARE: letters, digits, "_", ".", "-", "+", "*"

Matching, as the page describes it:

- Unstructured terms and phrases are case-sensitive substrings: ``ERROR`` matches ``ERRORCODE``. All plain terms
  must appear and no ``-`` term may. ``?`` terms match when any of them appears, but only in a pattern made of
  ``?`` terms alone: next to a plain or ``-`` term they are ignored, as the page says. ``" "`` (a quoted blank)
  matches everything.
- A regex (``%...%``) is searched for, not anchored (``%AUTHORIZED%`` matches ``UNAUTHORIZED``). Only what the page
  lists is accepted: ASCII letters and digits, the symbols ``: _ # = @ / ; , -`` and space, the operators
  ``^ $ ? [ ] { } | \\ * + .``, and the escapes ``\\d \\D \\s \\S \\w \\W \\xhh`` (ASCII classes) or a backslash
  before a symbol or operator. No ``(``/``)``, no multi-byte characters, at most 2 regexes in a JSON or
  space-delimited pattern.
- JSON: the message must parse as JSON. A selector may hold one wildcard (``[*]``, ``.*``) and a pattern three;
  a wildcard condition holds when any selected node satisfies it. ``=``/``!=`` with a string compare whole values
  (``*`` is a wildcard, also inside quotes), with a regex search them, with a number compare numerically (a numeric
  string counts). ``<``, ``<=``, ``>``, ``>=`` take a number. Only strings and numbers are value nodes: a condition
  on an array, an object, a boolean, null or a missing property is false, ``!=`` included. ``IS NULL``,
  ``IS TRUE``, ``IS FALSE`` and ``NOT EXISTS`` test just that (``IS NOT`` and ``EXISTS`` are refused, as on AWS).
- Space-delimited: the message is split on runs of blanks; text between ``[`` and ``]`` or between double quotes
  is one field (without its brackets or quotes). ``...`` stands for any number of fields. Without an ellipsis the
  last named field takes the rest of the line, which is why ``[w1=ERROR, w2]`` matches any line starting with the
  word ERROR; a line with fewer fields than the pattern never matches. Field values are text; a numeric operator
  needs a field that reads as a number.

Regex engine. Regexes run on RE2 (google-re2), whose time is linear in the message: with Python's backtracking
``re``, ``%a*a*a*b%`` takes seconds on a 400-character line, and FilterLogEvents runs on the event loop. RE2 takes
everything the page lists; ``\\d \\s \\w`` are ASCII classes there, ``$`` is the end of the text (a Lambda line's
final newline is dropped before an unstructured regex is searched), and ``{m, n}``/``{,n}`` are rewritten to the
``{m,n}``/``{0,n}`` it reads.

Errors. AWS answers ``InvalidParameterException`` (400). Reports of FilterLogEvents show the bare message
``Invalid filter pattern``; newer ones (StartLiveTail, 2025) show ``Invalid filter pattern: Invalid character(s) in
term '""'``, and PutSubscriptionFilter/PutMetricFilter say ``Invalid character(s) in term '('`` and ``If a filter
pattern starts with '{' it must end with '}'``. Our messages are ``Invalid filter pattern`` followed, when we know
it, by ``: `` and one of those details (the ``[``/``]`` one is written by analogy).

Deliberate differences from AWS (where the page is silent or we cannot know):

- ``""`` (empty quotes) is refused like the 2025 report shows; the page's ``" "`` matches everything.
- Keywords (``IS``, ``NULL``, ``TRUE``, ``FALSE``, ``NOT``, ``EXISTS``) are accepted in any letter case; an
  unquoted term may hold non-ASCII letters and digits.
- A space-delimited slot's conditions must all name that slot's field (``status_code = 4* && bytes > 1000`` in one
  slot is refused, as a 2019 report says AWS does). An empty slot is an unnamed field: the older version of the
  page shows ``[..., request=*.html*, status_code=4*,]`` extracting ``$7`` from a 7-field line.
- Runs of blanks separate space-delimited fields (AWS may count empty fields); a JSON event's number is compared as
  text in the form Python writes it (``1e3`` reads as ``1000.0``).
- The 1,024-character length limit is the API's check (a ValidationException), not this module's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["InvalidFilterPattern", "compile_pattern", "required_substrings"]

Matcher = Callable[[str], bool]
JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]
# a predicate on one value: a JSON node, or a space-delimited field's text
ValueTest = Callable[[object], bool]
# a predicate on what a compound expression tests: a parsed JSON event, or one space-delimited field's text
Test = Callable[[Any], bool]

MAX_REGEXES = 2  # per JSON or space-delimited pattern
MAX_WILDCARDS_PER_SELECTOR = 1
MAX_WILDCARDS = 3  # per JSON pattern


class InvalidFilterPattern(ValueError):
    """A pattern CloudWatch would refuse; ``str(exc)`` is the InvalidParameterException message to return."""

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(f"Invalid filter pattern: {detail}" if detail else "Invalid filter pattern")


def compile_pattern(text: str) -> Matcher:
    """The predicate ``message -> bool`` for ``text``, parsed once; raises ``InvalidFilterPattern``."""
    stripped = text.strip()
    if not stripped:
        return _everything
    if stripped[0] == "{":
        if stripped[-1] != "}":
            raise InvalidFilterPattern("If a filter pattern starts with '{' it must end with '}'")
        return _JsonParser(stripped[1:-1]).compile()
    if stripped[0] == "[":
        if stripped[-1] != "]":
            raise InvalidFilterPattern("If a filter pattern starts with '[' it must end with ']'")
        return _DelimitedParser(stripped[1:-1]).compile()
    if len(stripped) >= 2 and stripped[0] == "%" and stripped[-1] == "%":
        found = _compile_regex(stripped[1:-1])
        # a Lambda line's final newline is not part of the text a regex sees ("$" is the end of the text in RE2)
        return lambda message: found(message[:-1] if message.endswith("\n") else message)
    return _compile_terms(stripped)


def _everything(message: str) -> bool:
    return True


# --- unstructured terms ------------------------------------------------------------------------------------------

_TERM = re.compile(r'([?-]?)(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))(?=\s|$)')


def required_substrings(text: str) -> tuple[str, ...]:
    """Substrings every message that ``text`` matches contains (the plain terms of an unstructured pattern; none
    for other kinds): what the store can look for itself, so that FilterLogEvents reads only the events that may
    match (the predicate still decides). ``text`` has compiled."""
    stripped = text.strip()
    if not stripped or stripped[0] in "{[" or (len(stripped) >= 2 and stripped[0] == stripped[-1] == "%"):
        return ()
    return tuple(_parse_terms(stripped)[0])


def _compile_terms(text: str) -> Matcher:
    required, excluded, optional = _parse_terms(text)
    if required or excluded:
        # "?" terms beside plain or "-" terms are ignored (the page's ?ERROR ?ARGUMENTS REQUEST)
        must, never = tuple(required), tuple(excluded)
        return lambda message: all(t in message for t in must) and not any(t in message for t in never)
    if optional:
        either = tuple(optional)
        return lambda message: any(t in message for t in either)
    return _everything


def _parse_terms(text: str) -> tuple[list[str], list[str], list[str]]:
    """The plain, "-" and "?" terms of an unstructured pattern."""
    required: list[str] = []
    excluded: list[str] = []
    optional: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        found = _TERM.match(text, pos)
        if found is None:
            raise InvalidFilterPattern(f"Invalid character(s) in term '{text[pos:].split()[0]}'")
        prefix, quoted, bare = found.groups()
        if bare is not None:
            if not all(c.isalnum() or c == "_" for c in bare):
                raise InvalidFilterPattern(f"Invalid character(s) in term '{found.group(0)}'")
            term = bare
        else:
            term = re.sub(r"\\(.)", r"\1", quoted)
            if not term:
                raise InvalidFilterPattern(f"Invalid character(s) in term '{found.group(0)}'")
        pos = found.end()
        if not term.strip():
            continue  # " " matches everything
        {"": required, "-": excluded, "?": optional}[prefix].append(term)
    return required, excluded, optional


# --- regular expressions -----------------------------------------------------------------------------------------

_REGEX_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_#=@/;,- ")
_REGEX_OPERATORS = frozenset("^$?[]{}|\\*+.")
_REGEX_CLASS_ESCAPES = frozenset("dDsSwW")
_BOUNDS = re.compile(r"(?<!\\)\{(\d*) *, *(\d*)\}")


def _compile_regex(body: str) -> Callable[[str], bool]:
    """The regex between ``%`` signs, limited to what the page lists (see the module docstring)."""
    if not body:
        raise InvalidFilterPattern("Invalid regex: empty")
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt in _REGEX_CLASS_ESCAPES and nxt:
                i += 2
            elif nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", body[i + 2:i + 4]):
                i += 4
            elif nxt and (nxt in _REGEX_OPERATORS or (nxt in _REGEX_PLAIN and not nxt.isalnum() and nxt != " ")):
                i += 2
            else:
                raise InvalidFilterPattern(f"Invalid character(s) in term '%{body}%'")
            continue
        if c not in _REGEX_PLAIN and c not in _REGEX_OPERATORS:
            raise InvalidFilterPattern(f"Invalid character(s) in term '%{body}%'")
        i += 1
    if not _REGEX_OPERATORS.intersection(body):  # plain text (%AUTHORIZED%): a substring test does it faster
        return lambda text: body in text
    # the page writes bounds "{m, n}" and lets m go: RE2 reads "{3, 5}" and "{,5}" as text
    translated = _BOUNDS.sub(lambda m: "{%s,%s}" % (m.group(1) or "0", m.group(2)), body)
    import re2  # google-re2: linear-time matching, so no pattern can hold the event loop (see "Regex engine")

    options = re2.Options()
    options.log_errors = False  # a refused pattern is the client's error, not a line on the server's stderr
    try:
        compiled = re2.compile(translated, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidFilterPattern(f"Invalid regex '%{body}%': {reason}") from exc
    search = compiled.search

    def found(text: str) -> bool:
        return search(text) is not None
    return found


# --- values: the right-hand side of a JSON or space-delimited condition ------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _as_text(value: object) -> str | None:
    """A value node's text: a string, or a number as Python writes it; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return str(value)


def _wildcard(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _value_test(op: str, kind: str, literal: str) -> ValueTest:
    """The test ``node op literal``; ``kind`` is the literal's token kind (QUOTED, BARE or REGEX)."""
    if kind == "REGEX":
        if op not in ("=", "!="):
            raise InvalidFilterPattern(f"Operator '{op}' cannot take a regex")
        found = _compile_regex(literal)
        want = op == "="

        def regex_test(node: object) -> bool:
            text = _as_text(node)
            return text is not None and found(text) == want
        return regex_test
    if kind == "BARE" and _NUMBER.fullmatch(literal):
        number, compare = float(literal), _NUMERIC_OPS[op]

        def number_test(node: object) -> bool:
            value = _as_number(node)
            if value is None:
                return op == "!=" and _as_text(node) is not None
            return compare(value, number)
        return number_test
    if op not in ("=", "!="):
        raise InvalidFilterPattern(f"Operator '{op}' needs a number, not '{literal}'")
    fullmatch = _wildcard(literal).fullmatch if "*" in literal else None
    equal = op == "="

    def string_test(node: object) -> bool:
        text = _as_text(node)
        if text is None:
            return False
        same = fullmatch(text) is not None if fullmatch is not None else text == literal
        return same == equal
    return string_test


# --- tokens shared by the JSON and space-delimited parsers -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # OP, LPAREN, RPAREN, AND, OR, COMMA, ELLIPSIS, SELECTOR, QUOTED, REGEX, BARE, END
    text: str


_TOKENS = re.compile(r"""
    (?P<ws>\s+)
  | (?P<AND>&&) | (?P<OR>\|\|) | (?P<OP>!=|<=|>=|=|<|>) | (?P<LPAREN>\() | (?P<RPAREN>\)) | (?P<COMMA>,)
  | (?P<ELLIPSIS>\.\.\.(?![\w.*+-]))
  | (?P<SELECTOR>\$(?:\.[\w-]+|\.\*|\.?\[(?:\d+|\*|'[^']*')\])*)
  | "(?P<QUOTED>(?:[^"\\]|\\.)*)"
  | %(?P<REGEX>[^%]*)%
  | (?P<BARE>[\w.*+-]+)
""", re.VERBOSE)


_AFTER_SELECTOR = frozenset(" \t\r\n=!<>()&|")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        found = _TOKENS.match(text, pos)
        if found is None or found.lastgroup is None:
            rest = text[pos:].split()
            raise InvalidFilterPattern(f"Invalid character(s) in term '{rest[0] if rest else text[pos]}'")
        kind = found.lastgroup
        if kind == "SELECTOR" and found.end() < len(text) and text[found.end()] not in _AFTER_SELECTOR:
            raise InvalidFilterPattern(f"Invalid character(s) in term '{text[pos:found.end() + 1]}'")
        if kind != "ws":
            value = found.group(kind)
            if kind == "QUOTED":
                value = re.sub(r"\\(.)", r"\1", value)
            tokens.append(_Token(kind, value))
        pos = found.end()
    tokens.append(_Token("END", ""))
    return tokens


class _Parser:
    """Recursive descent over tokens: ``expr := and ("||" and)*``, ``and := unary ("&&" unary)*``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.regexes = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self, *kinds: str) -> _Token:
        token = self.tokens[self.pos]
        if token.kind not in kinds:
            raise InvalidFilterPattern(f"Unexpected '{token.text}'" if token.text else "Unexpected end of pattern")
        self.pos += 1
        return token

    def expression(self, condition: Callable[[], Test]) -> Test:
        alternatives = [self.conjunction(condition)]
        while self.peek().kind == "OR":
            self.pos += 1
            alternatives.append(self.conjunction(condition))
        if len(alternatives) == 1:
            return alternatives[0]
        either = tuple(alternatives)
        return lambda subject: any(test(subject) for test in either)

    def conjunction(self, condition: Callable[[], Test]) -> Test:
        parts = [self.unary(condition)]
        while self.peek().kind == "AND":
            self.pos += 1
            parts.append(self.unary(condition))
        if len(parts) == 1:
            return parts[0]
        every = tuple(parts)
        return lambda subject: all(test(subject) for test in every)

    def unary(self, condition: Callable[[], Test]) -> Test:
        if self.peek().kind == "LPAREN":
            self.pos += 1
            inner = self.expression(condition)
            self.take("RPAREN")
            return inner
        return condition()

    def value(self, op: str) -> ValueTest:
        token = self.take("QUOTED", "BARE", "REGEX")
        if token.kind == "REGEX":
            self.regexes += 1
            if self.regexes > MAX_REGEXES:
                raise InvalidFilterPattern(f"A filter pattern can hold at most {MAX_REGEXES} regular expressions")
        return _value_test(op, token.kind, token.text)


# --- JSON patterns -----------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"\.([\w-]+)|\.(\*)|\.?\[(?:(\d+)|(\*)|'([^']*)')\]")
_WILD = object()  # the wildcard segment


def _select(root: JsonValue, path: tuple[object, ...]) -> list[JsonValue]:
    nodes: list[JsonValue] = [root]
    for step in path:
        found: list[JsonValue] = []
        for node in nodes:
            if step is _WILD:
                if isinstance(node, dict):
                    found.extend(node.values())
                elif isinstance(node, list):
                    found.extend(node)
            elif isinstance(step, int):
                if isinstance(node, list) and step < len(node):
                    found.append(node[step])
            elif isinstance(node, dict) and step in node:
                found.append(node[step])
        nodes = found
    return nodes


class _JsonParser(_Parser):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.wildcards = 0

    def compile(self) -> Matcher:
        if self.peek().kind == "END":
            raise InvalidFilterPattern("Empty JSON filter pattern")
        test = self.expression(self.condition)
        self.take("END")

        def match(message: str) -> bool:
            if not message or message.lstrip()[:1] not in ("{", "["):
                return False
            try:
                root = json.loads(message)
            except ValueError:
                return False
            return test(root)
        return match

    def selector(self) -> tuple[object, ...]:
        text = self.take("SELECTOR").text
        path: list[object] = []
        for found in _SEGMENT.finditer(text, 1):
            name, dot_star, index, bracket_star, key = found.groups()
            if dot_star or bracket_star:
                path.append(_WILD)
            elif index is not None:
                path.append(int(index))
            else:
                path.append(name if name is not None else key)
        if not path:
            raise InvalidFilterPattern("A selector must name a property: '$'")
        wild = sum(step is _WILD for step in path)
        self.wildcards += wild
        if wild > MAX_WILDCARDS_PER_SELECTOR or self.wildcards > MAX_WILDCARDS:
            raise InvalidFilterPattern(f"Too many wildcard selectors in '{text}'")
        return tuple(path)

    def condition(self) -> Test:
        path = self.selector()
        token = self.take("OP", "BARE")
        if token.kind == "OP":
            test = self.value(token.text)
            return lambda root: any(test(node) for node in _select(root, path))
        word = token.text.upper()
        if word == "IS":
            what = self.take("BARE").text.upper()
            expected = {"NULL": None, "TRUE": True, "FALSE": False}
            if what not in expected:
                raise InvalidFilterPattern(f"Unsupported 'IS {what}'")
            want = expected[what]
            return lambda root: any(node is want for node in _select(root, path))
        if word == "NOT" and self.take("BARE").text.upper() == "EXISTS":
            return lambda root: not _select(root, path)
        raise InvalidFilterPattern(f"Unexpected '{token.text}'")


# --- space-delimited patterns ------------------------------------------------------------------------------------

_FIELD = re.compile(r'"([^"]*)"|\[([^\]]*)\]|(\S+)')


def _fields(message: str) -> list[str]:
    """The message's fields: blank-separated, a ``"..."`` or ``[...]`` run one field without its quotes or brackets."""
    return [found.group(found.lastindex or 0) for found in _FIELD.finditer(message)]


def _fields_rest_to_last(message: str, count: int) -> list[str]:
    """Up to ``count`` fields, the last one taking the rest of the line (as it stands, if it holds several)."""
    fields: list[str] = []
    for found in _FIELD.finditer(message):
        if len(fields) == count - 1:
            rest = message[found.start():].rstrip()
            fields.append(found.group(found.lastindex or 0) if found.end() >= found.start() + len(rest) else rest)
            break
        fields.append(found.group(found.lastindex or 0))
    return fields


_Slot = Union[None, ValueTest]  # None: "..."; else a test on the field's text (True for a field without condition)


def _any_value(text: object) -> bool:
    return True


def _match_slots(slots: tuple[_Slot, ...], fields: list[str], i: int, j: int) -> bool:
    """Whether ``fields[j:]`` match ``slots[i:]``; an ellipsis takes any number of fields (backtracking)."""
    while i < len(slots):
        slot = slots[i]
        if slot is None:
            if i == len(slots) - 1:
                return True
            return any(_match_slots(slots, fields, i + 1, k) for k in range(j, len(fields) + 1))
        if j >= len(fields) or not slot(fields[j]):
            return False
        i, j = i + 1, j + 1
    return j == len(fields)


class _DelimitedParser(_Parser):
    def compile(self) -> Matcher:
        if self.peek().kind == "END":
            raise InvalidFilterPattern("Empty space-delimited filter pattern")
        slots: list[_Slot] = []
        while True:
            kind = self.peek().kind
            if kind == "ELLIPSIS":
                self.pos += 1
                slots.append(None)
            elif kind in ("COMMA", "END"):
                slots.append(_any_value)  # an empty slot is an unnamed field ("[..., status_code=4*,]")
            else:
                slots.append(self.slot())
            if self.peek().kind == "END":
                break
            self.take("COMMA")
        pattern = tuple(slots)
        if None in pattern:
            return lambda message: _match_slots(pattern, _fields(message), 0, 0)
        tests, count = tuple(t for t in pattern if t is not None), len(pattern)

        def match(message: str) -> bool:
            # no ellipsis: exactly these fields, the last taking the rest of the line
            fields = _fields_rest_to_last(message, count)
            return len(fields) == count and all(test(field) for test, field in zip(tests, fields))
        return match

    def slot(self) -> ValueTest:
        names: set[str] = set()

        def condition() -> Test:
            names.add(self.take("BARE").text)
            op = self.take("OP").text
            return self.value(op)

        if self.tokens[self.pos].kind == "BARE" and self.tokens[self.pos + 1].kind in ("COMMA", "END"):
            self.pos += 1
            return _any_value
        test = self.expression(condition)
        if len(names) != 1:
            raise InvalidFilterPattern(
                "Each condition in a space-delimited field must name that field: " + ", ".join(sorted(names)))
        return test

