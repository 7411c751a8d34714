"""A model file never runs code while it loads: every global it names is checked
against what a model needs before it is imported (issue #11; the MLflow flaws
CVE-2024-37052/37056, and fickling's denylist bypasses CVE-2025-67747, CVE-2026-14534:
marshal, _posixsubprocess, site, atexit, cProfile, pty)."""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gits_ml import modeling, unpickling
from tests.model_files import fitted, model_bytes


class Calls:
    """A pickle that calls `module.name(*args)` when it loads."""

    def __init__(self, module: str, name: str, *args: Any) -> None:
        self.module, self.name, self.args = module, name, args

    def __reduce__(self) -> tuple[Any, ...]:
        target = sys.modules.get(self.module) or __import__(self.module, fromlist=["_"])
        return (getattr(target, self.name), self.args)


def marker_pickle(path: Path, module: str = "os", name: str = "system") -> bytes:
    """A pickle whose loading would create `path` (through os.system by default)."""
    return pickle.dumps(Calls(module, name, f"touch {path}"))


DANGEROUS = [
    ("os", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("subprocess", "Popen"),
    ("pickle", "loads"),
    ("marshal", "loads"),
    ("_posixsubprocess", "fork_exec"),
    ("site", "execsitecustomize"),
    ("atexit", "_run_exitfuncs"),
    ("cProfile", "run"),
    ("pty", "spawn"),
    ("types", "FunctionType"),
    ("numpy", "load"),
    ("numpy.lib.npyio", "load"),
    ("numpy.testing._private.utils", "runstring"),
    ("pandas", "read_pickle"),
    ("pandas.io.pickle", "read_pickle"),
    ("pandas", "eval"),
    ("joblib", "load"),
    ("joblib.numpy_pickle", "load"),
    ("numpy", "memmap"),
    ("sklearn.datasets", "fetch_openml"),
    ("pycaret.internal.persistence", "load_model"),
]


def global_pickle(module: str, name: str) -> bytes:
    """A protocol-0 pickle naming `module name` and calling it with one argument."""
    return f"c{module}\n{name}\n(S'x'\ntR.".encode()


@pytest.mark.parametrize(("module", "name"), DANGEROUS, ids=[".".join(d) for d in DANGEROUS])
def test_a_file_naming_what_no_model_needs_is_refused_before_it_is_imported(module, name):
    with pytest.raises(unpickling.UnsafeModelFile) as refused:
        unpickling.load(global_pickle(module, name))
    assert f"{module}.{name}" in str(refused.value)


def test_the_marker_is_never_written_directly_nor_through_joblib(tmp_path):
    marker = tmp_path / "marker"
    # Given a plain pickle, and a joblib file hiding the same pickle in an object array
    # (plain joblib.load reads those with an unrestricted pickle.load)
    hidden = io.BytesIO()
    joblib.dump(np.array([Calls("os", "system", f"touch {marker}")], dtype=object), hidden)

    for content in (marker_pickle(marker), hidden.getvalue()):
        with pytest.raises(modeling.ModelFailed) as refused:
            modeling.from_bytes(content)
        assert refused.value.check == "safety"
        assert "system" in refused.value.reason  # os.system pickles as posix.system
    assert not marker.exists()


def test_a_dotted_name_cannot_reach_a_module_through_an_allowed_one():
    with pytest.raises(unpickling.UnsafeModelFile):
        unpickling.load(global_pickle("numpy", "lib.npyio.load"))


@pytest.mark.parametrize("compress", [0, 3, ("lzma", 3), ("gzip", 3)])
def test_real_model_files_load_compressed_or_not(compress):
    buffer = io.BytesIO()
    joblib.dump(fitted(["a", "b"]), buffer, compress=compress)
    loaded = modeling.from_bytes(buffer.getvalue())
    assert modeling.feature_names(loaded, None) == ["a", "b"]


def test_a_classifier_with_an_object_array_of_classes_loads():
    content = model_bytes(["a", "b"], classes=["in spec", "off spec"])
    assert list(modeling.from_bytes(content).classes_) == ["in spec", "off spec"]


STANDARD_MODULES = sorted(
    name for name in sys.stdlib_module_names if not name.startswith("_") and name != "this"
)


@settings(max_examples=200, deadline=None)
@given(
    module=st.sampled_from(STANDARD_MODULES), name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True)
)
def test_no_standard_library_callable_outside_the_fixed_set_is_let_through(module, name):
    if (module, name) in unpickling.STANDARD:
        return
    with pytest.raises(unpickling.UnsafeModelFile):
        unpickling.allowed(module, name)


@pytest.mark.parametrize(
    ("raw", "label_type", "expected"),
    [
        ([0.0, 1.0], "bool", [False, True]),  # PyCaret's label encoding of a bool target
        ([0, 1], "bool", [False, True]),
        ([np.True_, np.False_], "bool", [True, False]),
        ([1.0, 2.0], "int", [1, 2]),
    ],
)
def test_labels_come_back_in_the_targets_type(raw, label_type, expected):
    from gits_common.schemas import ColumnType, Task

    class Fixed:
        def predict(self, frame):
            return np.array(raw)

    frame = __import__("pandas").DataFrame({"a": [0.0] * len(raw)})
    predictions = modeling.predict(
        Fixed(), frame, task=Task.classification, label_type=ColumnType(label_type)
    )
    assert predictions.labels == expected
    assert all(type(v) is type(e) for v, e in zip(predictions.labels, expected, strict=True))


def test_a_bool_target_does_not_take_other_numbers():
    from gits_common.schemas import ColumnType, Task

    class Fixed:
        def predict(self, frame):
            return np.array([2.0])

    with pytest.raises(modeling.ModelFailed):
        modeling.predict(
            Fixed(),
            __import__("pandas").DataFrame({"a": [0.0]}),
            task=Task.classification,
            label_type=ColumnType.bool,
        )
