"""The checks of `records.Field`: each answers the value a page may use, or raises
ValueError saying in words why the value is unusable (`records.Partial` when part of it
is)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from django_admin.site.records import Check, Field, Partial, complete, shown
from gits_common.registry import NAME_PATTERN

# queue_manager's names: they become file names, RabbitMQ queue names and the admin's URLs.
_NAME = re.compile(NAME_PATTERN)


def text(value: Any) -> str:
    """Any string."""
    if not isinstance(value, str):
        raise ValueError(f"not a text: {shown(value)}")
    return value


def name(value: Any) -> str:
    """A name queue_manager accepts, so that a page can link to it."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"not a valid name: {shown(value)}")
    return value


def whole(value: Any) -> int:
    """An integer (not a boolean, which Python counts as one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a whole number: {shown(value)}")
    return value


def count(value: Any) -> int:
    """A whole number, zero or more."""
    if whole(value) < 0:
        raise ValueError(f"negative: {value}")
    return int(value)


def ident(value: Any) -> int:
    """A whole number from 1: an id or a version number, which URLs carry."""
    if whole(value) < 1:
        raise ValueError(f"not a positive whole number: {value}")
    return int(value)


def version_ref(value: Any) -> int | str:
    """A version number or "latest"."""
    if value == "latest":
        return "latest"
    try:
        return ident(value)
    except ValueError:
        raise ValueError(f"not a version number or 'latest': {shown(value)}") from None


def number(value: Any) -> float:
    """A finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number: {shown(value)}")
    return float(value)


def flag(value: Any) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise ValueError(f"not true or false: {shown(value)}")
    return value


def time(value: Any) -> datetime:
    """An ISO 8601 time (a zone-less one is taken as UTC)."""
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a time: {shown(value)}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def mapping(value: Any) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise ValueError(f"not an object: {shown(value)}")
    return value


def texts(value: Any) -> list[str]:
    """A list of strings; other items are left out and named."""
    return _list_of(value, lambda item: isinstance(item, str), "not texts")


def names(value: Any) -> list[str]:
    """A list of valid names; other items are left out and named."""
    return _list_of(
        value, lambda item: isinstance(item, str) and bool(_NAME.match(item)), "not valid names"
    )


def objects(value: Any) -> list[dict[str, Any]]:
    """A list of JSON objects; other items are left out and named."""
    return _list_of(value, lambda item: isinstance(item, dict), "not objects")


def one_of(*choices: str) -> Check:
    """One of the given strings."""

    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"not one of {', '.join(choices)}: {shown(value)}")
        return str(value)

    return check


def nested(fields: Sequence[Field]) -> Check:
    """An inner record, completed with its own fields; its problems are the outer's."""

    def check(value: Any) -> dict[str, Any]:
        inner = complete(mapping(value), fields)
        if inner["problems"]:
            raise Partial(inner, inner["problems"], nested=True)
        return inner

    return check


def _list_of(value: Any, fits: Callable[[Any], bool], wrong: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"not a list: {shown(value)}")
    kept = [item for item in value if fits(item)]
    if len(kept) < len(value):
        left_out = [shown(item) for item in value if not fits(item)]
        raise Partial(kept, [f"{wrong}, left out: {', '.join(left_out)}"])
    return kept
