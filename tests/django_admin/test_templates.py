"""The admin's templates never give a filter a variable as its argument: Django renders a
missing variable as nothing, but raises (VariableDoesNotExist, a 500) when a filter's
argument is missing. That is how one explainer record without `model_name` broke the
explainer pages for everyone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.template import engines
from django.template.base import FilterExpression

import django_admin

TEMPLATE_ROOTS = sorted(Path(django_admin.__file__).parent.glob("**/templates"))


def template_names() -> list[str]:
    """Every template of the admin, by the name Django loads it with."""
    return sorted(
        str(path.relative_to(root)) for root in TEMPLATE_ROOTS for path in root.glob("**/*.html")
    )


def filter_expressions(obj: Any, seen: set[int] | None = None) -> Iterator[FilterExpression]:
    """Every filter expression in a parsed template's nodes, however deep."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, FilterExpression):
        yield obj
    elif isinstance(obj, list | tuple | set):
        for item in obj:
            yield from filter_expressions(item, seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from filter_expressions(item, seen)
    elif type(obj).__module__.startswith("django.template") and hasattr(obj, "__dict__"):
        for name, item in vars(obj).items():
            if name not in ("origin", "source", "token"):
                yield from filter_expressions(item, seen)


def test_there_are_templates_to_check() -> None:
    names = template_names()
    assert "gits/retraining/explainer.html" in names and "gits/base.html" in names


@pytest.mark.parametrize("name", template_names())
def test_no_filter_gets_a_variable_argument(name: str) -> None:
    template = engines["django"].get_template(name).template
    offending = [
        expression.token
        for expression in filter_expressions(template.nodelist)
        for _function, arguments in expression.filters
        if any(_looks_up(is_variable, argument) for is_variable, argument in arguments)
    ]
    assert offending == [], f"{name} gives filters variables: {offending}"


def test_the_check_finds_a_variable_argument() -> None:
    template = engines["django"].from_string("{% if a %}{{ x|default:job.name }}{% endif %}")
    found = list(filter_expressions(template.template.nodelist))
    assert any(_looks_up(*f.filters[0][1][0]) for f in found if f.filters)
    numbers = engines["django"].from_string("{{ x|truncatechars:17|default:'-' }}")
    [expression] = filter_expressions(numbers.template.nodelist)
    assert not any(_looks_up(*arguments[0]) for _f, arguments in expression.filters)


def _looks_up(is_variable: bool, argument: Any) -> bool:
    """Whether a filter argument is looked up in the context (a number is parsed as a
    variable, but is a literal)."""
    return is_variable and getattr(argument, "lookups", None) is not None
