"""A user's CSV files: the use case inferred from one, the naming rule and its
normalisation, and rows read back by the use case's names or the file's own."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes

from gits_common import csv_files, errors
from gits_common.schemas import COLUMN_NAME_PATTERN, ColumnType, Task, UseCase


def write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def diabetes(tmp_path) -> Path:
    frame = load_diabetes(as_frame=True, scaled=False).frame
    return write(tmp_path, "diabetes.csv", frame)


@pytest.fixture
def breast_cancer(tmp_path) -> Path:
    frame = load_breast_cancer(as_frame=True).frame  # 'mean radius', ... with spaces
    return write(tmp_path, "cancer.csv", frame)


def test_a_regression_use_case_is_inferred_with_its_types(diabetes):
    inferred = csv_files.infer_use_case("diabetes", diabetes, target="target")

    use_case = inferred.use_case
    assert use_case.task is Task.regression
    assert use_case.target is not None and use_case.target.type is ColumnType.float
    assert use_case.feature_names == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    types = {c.name: c.type for c in use_case.features}
    assert types["age"] is ColumnType.float  # "59.0": a whole number written as a float
    assert inferred.renamed == {}


def test_names_with_spaces_are_refused_with_the_rule_and_the_mapping_on_offer(breast_cancer):
    with pytest.raises(errors.InvalidInput) as refused:
        csv_files.infer_use_case("cancer", breast_cancer, target="target")

    message = refused.value.detail
    assert "'mean radius'" in message
    assert "a letter, then up to 62 letters, digits or '_'" in message
    assert "--normalize-names" in message
    assert "'mean radius' -> mean_radius" in message


def test_normalized_names_are_kept_so_the_original_file_loads(breast_cancer):
    inferred = csv_files.infer_use_case(
        "cancer", breast_cancer, target="target", normalize_names=True
    )
    use_case = inferred.use_case

    assert use_case.task is Task.classification  # an int target with two values
    assert use_case.source_names["mean_radius"] == "mean radius"
    # The definition travels as JSON (ml_data_api stores it) and keeps the mapping
    again = UseCase.model_validate(use_case.model_dump(mode="json"))
    rows = csv_files.read_rows(again, breast_cancer, with_target=True, time_now=True)
    assert len(rows) == 569
    assert rows["mean_radius"].iloc[0] == pytest.approx(17.99)
    assert rows["message_id"].iloc[0] == "cancer-2"  # the file's line 2


def test_rows_without_ids_or_times_get_the_file_lines_and_the_time_of_reading(diabetes):
    use_case = csv_files.infer_use_case("diabetes", diabetes, target="target").use_case

    first = csv_files.read_rows(use_case, diabetes, with_target=True, time_now=True)
    again = csv_files.read_rows(use_case, diabetes, with_target=False, time_now=False)

    assert first["message_id"].tolist() == again["message_id"].tolist()
    assert first["message_id"].iloc[-1] == f"diabetes-{442 + 1}"
    assert first["timestamp"].notna().all()
    assert "timestamp" not in again and "target" not in again


@pytest.mark.parametrize(
    ("cell", "what"),
    [("abc", "'abc' is not a valid value"), ("1e400", "'1e400' is not a valid value"), ("", None)],
)
def test_a_value_that_does_not_parse_is_named_with_its_line(tmp_path, cell, what):
    frame = pd.DataFrame({"x": ["1.5", "2.5", cell], "y": ["1", "2", "3"]})
    path = write(tmp_path, "f.csv", frame)
    ok = write(tmp_path, "ok.csv", frame.iloc[:2])
    use_case = csv_files.infer_use_case("u", ok, target="y").use_case

    if what is None:  # empty: a missing value, which the use case's checks judge
        rows = csv_files.read_rows(use_case, path, with_target=True, time_now=True)
        assert len(rows) == 3
        return
    with pytest.raises(errors.InvalidInput, match=rf"f.csv, line 4: x {what}"):
        csv_files.read_rows(use_case, path, with_target=True, time_now=True)


def test_a_missing_column_is_named_as_the_file_names_it(breast_cancer, tmp_path):
    use_case = csv_files.infer_use_case(
        "cancer", breast_cancer, target="target", normalize_names=True
    ).use_case
    short = pd.read_csv(breast_cancer).drop(columns=["mean radius"])

    with pytest.raises(errors.InvalidInput, match="has no column 'mean radius'"):
        csv_files.read_rows(use_case, write(tmp_path, "short.csv", short), with_target=True,
                            time_now=True)  # fmt: skip


def test_ids_twice_in_a_file_are_refused(tmp_path):
    frame = pd.DataFrame({"message_id": ["a", "b", "a"], "x": [1.0, 2.0, 3.0], "y": [1.0] * 3})
    path = write(tmp_path, "dup.csv", frame)
    use_case = csv_files.infer_use_case("u", path, target="y").use_case

    with pytest.raises(errors.InvalidInput, match="'a' is on more than one row"):
        csv_files.read_rows(use_case, path, with_target=True, time_now=True)


def test_names_that_collide_once_normalized_are_refused(tmp_path):
    path = write(tmp_path, "c.csv", pd.DataFrame({"a b": [1.0], "a_b": [2.0], "y": [3.0]}))

    with pytest.raises(errors.InvalidInput, match="distinct"):
        csv_files.infer_use_case("u", path, target="y", normalize_names=True)


def test_a_file_that_is_not_a_csv_or_not_there_is_one_clear_error(tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\xff\xfe\x00\x00binary")

    with pytest.raises(errors.GitsError):
        csv_files.infer_use_case("u", junk, target="y")
    with pytest.raises(errors.NotFound, match="no file"):
        csv_files.infer_use_case("u", tmp_path / "none.csv", target="y")


@given(st.text(min_size=1, max_size=120))
def test_a_normalized_name_always_keeps_the_rule(header):
    name = csv_files.normalized_name(header)

    assert re.fullmatch(COLUMN_NAME_PATTERN, name)
    assert csv_files.normalized_name(header) == name
    assert name.lower() not in {"message_id", "prediction", "model_version"}


HEADERS = st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6, unique=True)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=HEADERS)
def test_any_header_row_makes_a_use_case_or_one_clear_refusal(tmp_path_factory, headers):
    columns = [h for h in headers if h.strip() and "\x00" not in h]
    if not columns:
        return
    frame = pd.DataFrame({h: [1.0, 2.0] for h in columns} | {"y": [1.0, 2.0]})
    path = tmp_path_factory.mktemp("h") / "h.csv"
    frame.to_csv(path, index=False)

    try:
        inferred = csv_files.infer_use_case("u", path, target="y", normalize_names=True)
    except errors.InvalidInput:
        return  # e.g. two headers that normalise to one name, or a reserved name
    rows = csv_files.read_rows(inferred.use_case, path, with_target=True, time_now=True)
    assert len(rows) == 2
    assert set(inferred.use_case.feature_names) <= set(rows.columns)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("a,a,y\n1,2,3\n", r"names column\(s\) \['a'\] twice"),
        ("a;b;y\n1;2;3\n", "separated by ';'"),
        ("a,b,y\n", "has no rows"),
        ("a,A,y\n1,2,3\n", r"distinct \(ignoring case\)"),
    ],
)
def test_a_header_that_cannot_make_columns_is_refused_saying_why(tmp_path, text, refusal):
    path = tmp_path / "h.csv"
    path.write_text(text)

    with pytest.raises(errors.InvalidInput, match=refusal) as refused:
        csv_files.infer_use_case("u", path, target="y", normalize_names=True)
    assert "pydantic" not in refused.value.detail


@pytest.mark.parametrize("name", ["Bad-Name", "1abc", "DIGITS", "has space", "", "a" * 41])
def test_a_use_case_name_that_breaks_the_rule_is_refused_with_the_rule(tmp_path, name):
    path = write(tmp_path, "f.csv", pd.DataFrame({"x": [1.0], "y": [2.0]}))

    with pytest.raises(errors.InvalidInput, match="breaks the rule: a lowercase letter"):
        csv_files.infer_use_case(name, path, target="y")


def test_a_reserved_name_is_mapped_like_any_other(tmp_path):
    path = write(tmp_path, "r.csv", pd.DataFrame({"prediction": [1.0], "y": [2.0]}))

    with pytest.raises(errors.InvalidInput, match="'prediction' -> prediction_col"):
        csv_files.infer_use_case("u", path, target="y")
    inferred = csv_files.infer_use_case("u", path, target="y", normalize_names=True)
    assert inferred.use_case.source_names == {"prediction_col": "prediction"}


@pytest.mark.parametrize(
    ("good", "bad"),
    [("2", "12345678901234567890"), ("2.5", "inf"), ("2.5", "-inf")],
)
def test_a_number_out_of_range_is_refused_with_its_line(tmp_path, good, bad):
    ok = write(tmp_path, "ok.csv", pd.DataFrame({"x": ["1", good], "y": ["1.5", "2.5"]}))
    use_case = csv_files.infer_use_case("u", ok, target="y").use_case
    path = write(tmp_path, "big.csv", pd.DataFrame({"x": ["1", bad], "y": ["1.5", "2.5"]}))

    with pytest.raises(errors.InvalidInput, match=f"line 3: x '{bad}' is out of range"):
        csv_files.read_rows(use_case, path, with_target=True, time_now=True)


def test_numbers_beyond_int64_or_infinite_are_not_inferred_as_ints_or_floats(tmp_path):
    frame = pd.DataFrame(
        {"big": ["12345678901234567890", "1"], "inf": ["inf", "1.5"], "y": ["1.5", "2.5"]}
    )
    use_case = csv_files.infer_use_case("u", write(tmp_path, "f.csv", frame), target="y").use_case

    types = {c.name: c.type for c in use_case.features}
    assert types == {"big": ColumnType.float, "inf": ColumnType.text}


@settings(max_examples=80)
@given(st.lists(st.text(alphabet="0123456789-+.eEinfaINF", min_size=1, max_size=25), min_size=1,
                max_size=4))  # fmt: skip
def test_any_numeric_looking_cells_load_or_are_refused_in_one_line(cells):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "n.csv"
        pd.DataFrame({"x": cells, "y": ["1.5"] * len(cells)}).to_csv(path, index=False)
        try:
            use_case = csv_files.infer_use_case("u", path, target="y").use_case
            rows = csv_files.read_rows(use_case, path, with_target=True, time_now=True)
        except errors.InvalidInput:
            return
        assert len(rows) == len(cells)
