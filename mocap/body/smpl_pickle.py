"""Read SMPL ``.pkl`` model files safely, without chumpy.

A pickle is a program: loading one with :mod:`pickle` runs whatever callables it names. SMPL releases are
pickles written by Python 2, some holding ``chumpy`` arrays and a ``scipy.sparse`` ``J_regressor``. This
loader resolves only an allowlist of names (numpy's array reconstruction, ``_codecs.encode``,
``copyreg._reconstructor`` and ``object``); chumpy classes and scipy sparse matrices become inert stand-ins that merely record their state,
converted to numpy afterwards. Any other name is refused before anything runs.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
from pathlib import Path

import numpy as np

from mocap.errors import InputDataError

_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store the bytes of an array
}
_SPARSE_FORMATS = {"csc_matrix": "csc", "csr_matrix": "csr", "coo_matrix": "coo"}


class _Recorded:
    """An inert stand-in for a chumpy/scipy object: keeps the unpickled state, runs nothing."""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}


class _Chumpy(_Recorded):
    def to_numpy(self) -> np.ndarray:
        x = self.state.get("x")
        if isinstance(x, _Chumpy):
            return x.to_numpy()
        if isinstance(x, np.ndarray):
            return x
        arrays = [v for v in self.state.values() if isinstance(v, np.ndarray)]
        if not arrays:
            raise ValueError("a chumpy object without array data (only plain chumpy arrays are supported)")
        return max(arrays, key=np.size)


def _sparse_class(fmt: str) -> type:
    class _Sparse(_Recorded):
        format = fmt

        def to_numpy(self) -> np.ndarray:
            import scipy.sparse

            s = self.state
            shape = tuple(s.get("_shape") or s.get("shape"))
            if fmt == "coo":
                return scipy.sparse.coo_matrix((s["data"], (s["row"], s["col"])), shape=shape).toarray()
            make = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
            return make((s["data"], s["indices"], s["indptr"]), shape=shape).toarray()

    return _Sparse


_SPARSE = {fmt: _sparse_class(fmt) for fmt in _SPARSE_FORMATS.values()}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return copyreg._reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "chumpy" or module.startswith("chumpy."):
            return _Chumpy
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _SPARSE[_SPARSE_FORMATS[name]]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not an SMPL model data type)")


def _to_numpy(value):
    if isinstance(value, _Recorded):
        return value.to_numpy()
    return value


def load_smpl_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load an SMPL ``.pkl`` into plain numpy arrays (chumpy arrays and sparse matrices made dense).

    Keys as in the file (``v_template``, ``f``, ``J_regressor``, ``weights``, ``shapedirs``, ``posedirs``,
    ``kintree_table``, ...); non-array entries (strings, nested info) are kept as they are.
    Raises InputDataError for unreadable files and for pickles naming anything outside the allowlist.
    """
    path = Path(path)
    try:
        data = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except OSError as e:
        raise InputDataError(f"{path}: cannot read the SMPL model file ({e.strerror or e})") from None
    except pickle.UnpicklingError as e:
        raise InputDataError(f"{path}: not a safe SMPL model pickle ({e}); use the files from smpl.is.tue.mpg.de") from None
    except Exception as e:  # noqa: BLE001 - any decoding failure of a foreign file is a user input problem
        raise InputDataError(f"{path}: not a readable SMPL model pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise InputDataError(f"{path}: an SMPL model pickle holds a dict, found {type(data).__name__}")
    try:
        return {str(k): _to_numpy(v) for k, v in data.items()}
    except (KeyError, TypeError, ValueError) as e:
        raise InputDataError(f"{path}: unsupported array data in the SMPL pickle ({e})") from None
