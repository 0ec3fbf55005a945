"""XGBoost's in-place prediction through its C API, for the prefetcher's small batches.

``Booster.inplace_predict`` spends most of a small call in Python: on every call it
JSON-encodes its configuration and the array's interface, builds a class for the
interface, and wraps the result. On the prefetcher's batches (tens of candidate rows, one
call every 16 requests) that was about 300 µs of a 500 µs call on the dev VM. This calls
the same library function that ``inplace_predict`` ends in (``XGBoosterPredictFromDense``),
with the configuration encoded once, so the numbers are XGBoost's own, bit for bit
(tests/prefetch/test_model.py compares the two on random rows).
"""

from __future__ import annotations

import ctypes
import functools
import json
from typing import Any

import numpy as np

from predis.errors import PredisError

__all__ = ["DensePredictor", "InplacePredictor", "predictor_for"]

_U64P = ctypes.POINTER(ctypes.c_uint64)
_F32P = ctypes.POINTER(ctypes.c_float)
_TYPESTR = np.dtype(np.float32).str.encode()  # native byte order, as the rows are


@functools.cache
def _functions() -> tuple[Any, Any]:
    """XGBoost's prediction and error functions, from the very library its Python
    package loaded (a booster's handle must not cross into another copy)."""
    from xgboost import core  # noqa: PLC0415 - heavy; only with a model

    lib = getattr(core, "_LIB", None)
    if not isinstance(lib, ctypes.CDLL):
        raise OSError("this xgboost's library handle is not reachable")
    predict = lib.XGBoosterPredictFromDense
    predict.argtypes = [
        ctypes.c_void_p,  # the booster
        ctypes.c_char_p,  # the data's array interface (JSON)
        ctypes.c_char_p,  # the prediction's configuration (JSON)
        ctypes.c_void_p,  # a proxy DMatrix: none
        ctypes.POINTER(_U64P),
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.POINTER(_F32P),
    ]
    predict.restype = ctypes.c_int
    error = lib.XGBGetLastError
    error.argtypes = []
    error.restype = ctypes.c_char_p
    return predict, error


class DensePredictor:
    """Predicts a booster's probabilities for C-contiguous float32 rows, as
    ``booster.inplace_predict(rows, validate_features=False)`` does."""

    __slots__ = ("_config", "_error", "_predict", "booster")

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self._predict, self._error = _functions()
        # Booster.inplace_predict's defaults: every tree (a model is cut at its best
        # iteration when it is trained), values, NaN for missing.
        self._config = json.dumps(
            {
                "type": 0,
                "training": False,
                "iteration_begin": 0,
                "iteration_end": 0,
                "strict_shape": False,
                "missing": float("nan"),
                "cache_id": 0,
            }
        ).encode()

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """One probability per row of ``rows`` (a non-empty C-contiguous float32 matrix)."""
        if rows.dtype != np.float32 or rows.ndim != 2 or not rows.flags.c_contiguous:
            raise PredisError("DensePredictor takes a C-contiguous float32 matrix")
        n, width = rows.shape
        interface = b'{"data":[%d,true],"shape":[%d,%d],"typestr":"%s","version":3}' % (
            rows.ctypes.data,
            n,
            width,
            _TYPESTR,
        )
        shape, dims, out = _U64P(), ctypes.c_uint64(), _F32P()
        rc = self._predict(
            self.booster.handle,
            interface,
            self._config,
            None,
            ctypes.byref(shape),
            ctypes.byref(dims),
            ctypes.byref(out),
        )
        if rc != 0:
            message = (self._error() or b"").decode(errors="replace")
            raise PredisError(f"XGBoost prediction failed: {message}")
        if dims.value != 1 or shape[0] != n:
            raise PredisError(f"XGBoost predicted shape {dims.value}-D, not one value per row")
        result = np.empty(n, dtype=np.float32)
        # The library's buffer is its own, reused by this thread's next prediction.
        ctypes.memmove(result.ctypes.data, out, 4 * n)
        return result


class InplacePredictor:
    """The same through ``booster.inplace_predict`` (where the library's function cannot
    be reached directly)."""

    __slots__ = ("booster",)

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """One probability per row of ``rows``."""
        return np.asarray(
            self.booster.inplace_predict(rows, validate_features=False), dtype=np.float32
        )


def predictor_for(booster: Any) -> DensePredictor | InplacePredictor:
    """A :class:`DensePredictor` for ``booster``, or an :class:`InplacePredictor` where
    this XGBoost's library cannot be reached that way."""
    try:
        return DensePredictor(booster)
    except (ImportError, OSError, AttributeError, IndexError):
        return InplacePredictor(booster)
