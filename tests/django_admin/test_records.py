"""How the admin reads an API's record: every field a page uses is there afterwards, with
its value or None, and what was missing or unusable is said in words; nothing an API
answers makes the reading itself fail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_admin.apis import BadAnswer
from django_admin.site import checks
from django_admin.site.bindings import SERVICE_FIELDS
from django_admin.site.catalog import VERSION_FIELDS
from django_admin.site.records import Field, complete, listed
from django_admin.site.retraining import (
    EXPLAINER_FIELDS,
    PROMOTION_FIELDS,
    RETRAINING_FIELDS,
    explainer_job,
    retraining_job,
)

ALL_FIELDS = [VERSION_FIELDS, SERVICE_FIELDS, RETRAINING_FIELDS, EXPLAINER_FIELDS, PROMOTION_FIELDS]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


def names_of(fields: tuple[Field, ...]) -> list[str]:
    """The names of the fields."""
    return [field.name for field in fields]


@given(
    fields=st.sampled_from(ALL_FIELDS),
    data=st.data(),
)
def test_any_answer_is_read_into_every_field(fields: tuple[Field, ...], data: Any) -> None:
    # Given a record of the right keys with any JSON values, or anything at all
    keys = st.sampled_from(names_of(fields)) | st.text(max_size=10)
    record = data.draw(st.dictionaries(keys, JSON) | JSON, label="record")

    # When it is read
    read = complete(record, fields)

    # Then every field is there, and each required one missing is said
    assert set(names_of(fields)) <= set(read)
    assert all(isinstance(problem, str) for problem in read["problems"])
    if isinstance(record, dict):
        for field in fields:
            if field.required and field.name not in record:
                assert f"{field.name}: missing" in read["problems"]


@given(record=st.dictionaries(st.text(max_size=10), JSON) | JSON)
def test_job_records_of_any_shape_are_read(record: Any) -> None:
    assert isinstance(retraining_job(record)["active"], bool)
    assert "model_label" in explainer_job(record)


def test_a_good_record_is_read_as_it_is_with_its_times() -> None:
    read = complete(
        {"name": "algo", "version": 2, "uploaded_at": "2025-03-01T12:00:00Z", "extra": 1},
        [
            Field("name", checks.name),
            Field("version", checks.ident),
            Field("uploaded_at", checks.time),
        ],
    )
    assert read["problems"] == []
    assert (read["name"], read["version"], read["extra"]) == ("algo", 2, 1)
    assert read["uploaded_at"] == datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("a b", "name: not a valid name: 'a b'"),
        (True, "name: not a valid name: True"),
        (None, "name: missing"),
    ],
)
def test_an_unusable_name_is_none_and_said(value: Any, said: str) -> None:
    read = complete({"name": value}, [Field("name", checks.name)])
    assert read["name"] is None and read["problems"] == [said]


def test_null_that_means_something_is_not_called_missing() -> None:
    fields = [Field("resolved_version", checks.ident, nullable=True)]
    assert complete({"resolved_version": None}, fields)["problems"] == []
    assert complete({}, fields)["problems"] == ["resolved_version: missing"]


def test_inner_records_say_where_their_problems_are() -> None:
    fields = [
        Field("result", checks.nested([Field("metric", checks.text), Field("rows", checks.count)]))
    ]
    read = complete({"result": {"rows": -3}}, fields)
    assert read["problems"] == ["result.metric: missing", "result.rows: negative: -3"]
    assert read["result"]["metric"] is None


def test_lists_keep_what_fits_and_name_the_rest() -> None:
    read = complete({"services": ["a", "b c", 4]}, [Field("services", checks.names)])
    assert read["services"] == ["a"]
    assert read["problems"] == ["services: not valid names, left out: 'b c', 4"]


def test_an_explainer_of_a_challenger_is_named_by_its_job() -> None:
    job = explainer_job({"id": 5, "status": "queued", "request": {"job_id": 4, "data": "testing"}})
    assert job["model_label"] == "challenger of retraining job 4"
    assert (job["challenger_of"], job["data"], job["active"]) == (4, "testing", True)


def test_a_list_answer_that_is_no_list_is_refused() -> None:
    with pytest.raises(BadAnswer) as refused:
        listed({}, api="queue_manager")
    assert refused.value.detail == "queue_manager answered {} where a list was expected"
