"""Paging of the list operations (ListFunctions, ListVersionsByFunction): Lambda's page size and opaque markers.

A marker encodes the key of the last item of the page before (a function name, a version number padded to sort
as text); a marker that does not decode is ``InvalidParameterValueException``, as on Lambda.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from lambdad.arn import LATEST
from lambdad.errors import InvalidParameterValueException

__all__ = ["page", "version_key", "PAGE"]

PAGE = 50  # items per page at most, as Lambda


def version_key(version: str) -> str:
    """Orders $LATEST first, then version numbers numerically, as text (for list markers)."""
    return "" if version == LATEST else f"{int(version):012d}"


def page(
    items: list[Any], marker: str | None, max_items: int | None, key: Callable[[Any], str]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` (at most 50, as Lambda) after the item whose key ``marker`` encodes."""
    start = 0
    if marker:
        after = _decode_marker(marker)
        keys = [key(item) for item in items]
        start = keys.index(after) + 1 if after in keys else next((i for i, k in enumerate(keys) if k > after), len(keys))
    limit = max(1, min(max_items or PAGE, PAGE))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, (_encode_marker(key(page[-1])) if more and page else None)


def _encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc

