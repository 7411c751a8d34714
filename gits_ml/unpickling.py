"""Loading a model file without letting it run code: an allow-list unpickler.

A PyCaret model file is a joblib pickle, and a pickle may name any importable callable
and call it while it loads (`os.system`, `builtins.eval`, `subprocess.Popen`): the
MLflow flaws CVE-2024-37052 and CVE-2024-37056 were exactly that. Every global a file
names is therefore checked before it is imported, against what a PyCaret, scikit-learn,
LightGBM, CatBoost, XGBoost, imbalanced-learn, category_encoders or PyOD pipeline needs:

- classes of those libraries (and of numpy, pandas and scipy), except the few whose
  construction reaches the file system (memory maps, HDF and Excel stores, joblib's
  on-disk caches);
- the functions those libraries register to rebuild their objects (numpy's `scalar` and
  `_reconstruct`, pandas' `_unpickle_block` and `_new_Index`, Cython's
  `__pyx_unpickle_*`, scikit-learn's `newObj`, PyCaret's pipeline steps), and numpy's
  ufuncs, which are arithmetic;
- a fixed set of builtins and standard-library types (set, slice, OrderedDict,
  datetime, ...).

Anything else (a module of the standard library such as os, subprocess, builtins.eval,
pickle itself, or a library's loader such as pandas.read_pickle or numpy.load) is
refused with `UnsafeModelFile` naming it, before it is imported. joblib writes arrays of
Python objects as nested pickles, which plain joblib loads with an unrestricted
`pickle.load`; here they go through the same allow-list. The list of what real
pipelines name was taken by loading models of every PyCaret 3.3 regression,
classification and anomaly family with a recording unpickler.
"""

from __future__ import annotations

import importlib
import io
import pickle
import re
from typing import Any

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler
from joblib.numpy_pickle_utils import _read_fileobject

# Libraries a model file may take classes from (their top-level package names).
LIBRARIES = frozenset(
    {
        "sklearn",
        "pycaret",
        "numpy",
        "pandas",
        "scipy",
        "lightgbm",
        "catboost",
        "xgboost",
        "imblearn",
        "category_encoders",
        "pyod",
        "joblib",
        "sktime",
        "statsmodels",
        "pmdarima",
        "tbats",
        "kmodes",
    }
)
# Parts of those libraries no model needs and that read, write or run things.
REFUSED_MODULES = re.compile(
    r"^(numpy\.(lib\.npyio|testing|f2py|distutils|ctypeslib)|pandas\.io|pandas\.util\._tester"
    r"|pandas\.core\.computation|scipy\.io|sklearn\.datasets|sklearn\.utils\._testing"
    r"|joblib\.(numpy_pickle\w*|parallel|_parallel_backends|pool|externals)"
    r"|pycaret\.internal\.persistence|pycaret\.utils|pycaret\.datasets)(\.|$)"
)
REFUSED_CLASSES = frozenset(
    {
        ("numpy", "memmap"),
        ("numpy.core.memmap", "memmap"),
        ("numpy._core.memmap", "memmap"),
        ("joblib.memory", "Memory"),
        ("joblib.memory", "MemorizedFunc"),
        ("joblib.memory", "AsyncMemorizedFunc"),
    }
)
# Functions libraries register to rebuild their own objects from a pickle.
REBUILDERS = re.compile(
    r"^(__pyx_unpickle_\w+|newObj|_unpickle\w*|_new_\w+|__\w+_ctor|_reconstruct|scalar"
    r"|_fit_one|_transform_one|_fit_transform_one|_full_transform|_fit_resample_one)$"
)
# Builtins and standard-library names a pipeline's pickle may name.
STANDARD = frozenset(
    {
        ("builtins", "slice"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "bytearray"),
        ("builtins", "bytes"),
        ("builtins", "range"),
        ("builtins", "object"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("builtins", "tuple"),
        ("builtins", "int"),
        ("builtins", "float"),
        ("builtins", "str"),
        ("builtins", "bool"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "deque"),
        ("collections", "Counter"),
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("_codecs", "encode"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("functools", "partial"),
    }
)


class UnsafeModelFile(Exception):
    """The file names something a model never needs, and that could run code when it
    is loaded; nothing of it was imported."""


def allowed(module: str, name: str) -> Any:
    """The object `module.name` names, when a model file may name it; `UnsafeModelFile`
    saying why not. Only imports `module` when its package is one of LIBRARIES (or the
    standard names), so a refused global is never even imported."""
    if (module, name) in STANDARD:
        return getattr(importlib.import_module(module), name)
    root = module.split(".", 1)[0]
    if root not in LIBRARIES or REFUSED_MODULES.match(module) or "." in name:
        raise UnsafeModelFile(f"the file imports {module}.{name}, which a model never needs")
    if (module, name) in REFUSED_CLASSES:
        raise UnsafeModelFile(f"the file imports {module}.{name}, which reaches the disk")
    found = getattr(importlib.import_module(module), name)
    if isinstance(found, type | np.ufunc) or REBUILDERS.match(name):
        return found
    raise UnsafeModelFile(
        f"the file calls the function {module}.{name}, which no model needs to be rebuilt"
    )


class _Restricted(pickle.Unpickler):
    """The standard unpickler, with every global checked (for joblib's nested pickles
    of object arrays)."""

    def find_class(self, module: str, name: str) -> Any:
        return allowed(module, name)


class _RestrictedJoblib(NumpyUnpickler):
    """joblib's unpickler (arrays stored beside the pickle), with every global checked
    and arrays of objects read through `_Restricted` instead of `pickle.load`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return NumpyArrayWrapper
        return allowed(module, name)

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        if isinstance(self.stack[-1], NumpyArrayWrapper):
            wrapper = self.stack.pop()
            if wrapper.dtype.hasobject:
                self.stack.append(_Restricted(self.file_handle).load())
            else:
                self.stack.append(wrapper.read(self))

    # The pure-Python unpickler calls opcodes through a class-level table that holds
    # joblib's own load_build: ours must be in our table, or it is never called.
    dispatch = NumpyUnpickler.dispatch.copy()
    dispatch[pickle.BUILD[0]] = load_build


def load(content: bytes) -> Any:
    """The object a joblib (or plain) pickle holds, compressed or not, loaded with every
    global checked; `UnsafeModelFile` naming the first global refused, before it is
    imported. Other errors are the file's (not a pickle, truncated, a version mismatch)."""
    # joblib's own reader of its file formats: it undoes joblib's compression (zlib,
    # gzip, bz2, lzma, lz4), as joblib.load does, before our unpickler reads.
    with _read_fileobject(io.BytesIO(content), "", None) as handle:
        if isinstance(handle, str):  # joblib < 0.10 stored arrays in companion files
            raise UnsafeModelFile(
                "the file is in joblib's pre-0.10 format, which reads other files"
            )
        return _RestrictedJoblib("", handle).load()
