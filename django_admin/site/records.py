"""The admin's reading of the records the APIs answer, checked once where they come in.

An API may answer a record with a field missing, null or of another type (an older or a
newer API, a row written by hand). Django's templates raise on some of these (a missing
variable given to a filter, a link to an empty name) and a list page shows every record,
so one bad record would answer 500 to everyone who opens the page. Each module that
reads records therefore declares the fields its pages use; `complete` gives every one a
value (None when absent or unusable) and says, in words, what is missing or wrong, for
the page to show beside what is there. The checks themselves are in `checks`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django_admin.apis import BadAnswer

SHOWN_CHARS = 40  # of a wrong value, quoted in the page

Check = Callable[[Any], Any]  # the value to keep, or ValueError saying why it is unusable


class Partial(ValueError):
    """A value partly usable: `kept` can be shown, `problems` say what is wrong in it;
    `nested` when the problems are already "field: why" of an inner record."""

    def __init__(self, kept: Any, problems: list[str], *, nested: bool = False) -> None:
        super().__init__("; ".join(problems))
        self.kept = kept
        self.problems = problems
        self.nested = nested


@dataclass(frozen=True)
class Field:
    """A field a page uses. `required`: a record without it is incomplete; `nullable`:
    null is a meaning of its own (a version that is gone), but the key must be there."""

    name: str
    check: Check
    required: bool = True
    nullable: bool = False


def complete(record: Any, fields: Sequence[Field]) -> dict[str, Any]:
    """The record with every one of `fields` present: its value when it passes its
    check, else None. Its `problems` list each required field that is missing and each
    field whose value is unusable, as "field: why". Other keys are kept as they are."""
    if not isinstance(record, dict):
        out: dict[str, Any] = {field.name: None for field in fields}
        out["problems"] = [f"not a record: {shown(record)}"]
        return out
    out = dict(record)
    problems: list[str] = []
    for field in fields:
        value = record.get(field.name)
        out[field.name] = None
        if value is None:
            absent = field.name not in record
            if field.required and (absent or not field.nullable):
                problems.append(f"{field.name}: missing")
            continue
        try:
            out[field.name] = field.check(value)
        except Partial as part:
            out[field.name] = part.kept
            joint = "." if part.nested else ": "
            problems += [f"{field.name}{joint}{problem}" for problem in part.problems]
        except (ValueError, TypeError) as exc:
            problems.append(f"{field.name}: {exc}")
    out["problems"] = problems
    return out


def listed(answer: Any, *, api: str) -> list[Any]:
    """An API's answer that should be a list of records; `BadAnswer` when it is not (the
    page says so, 502, instead of showing an empty list)."""
    if not isinstance(answer, list):
        raise BadAnswer(f"{api} answered {shown(answer)} where a list was expected")
    return answer


def shown(value: Any) -> str:
    """A wrong value as a page quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
