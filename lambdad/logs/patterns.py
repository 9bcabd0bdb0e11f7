"""CloudWatch Logs filter patterns (FilterLogEvents): for now terms and quoted phrases only, all of which must
appear (case-sensitive); any other syntax is refused as an invalid pattern rather than matched wrongly."""

from __future__ import annotations

import shlex
from typing import Callable

__all__ = ["InvalidFilterPattern", "compile_pattern"]


class InvalidFilterPattern(ValueError):
    pass


def compile_pattern(text: str) -> Callable[[str], bool]:
    try:
        terms = shlex.split(text)
    except ValueError:
        raise InvalidFilterPattern("Invalid filter pattern") from None
    if any(t[:1] in "?-{[%" for t in terms if t):
        raise InvalidFilterPattern("Invalid filter pattern: only terms and quoted phrases are supported yet")
    return lambda message: all(term in message for term in terms)
