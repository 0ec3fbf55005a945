"""A strict reader of the UBJSON that XGBoost writes, and a check of the model inside.

XGBoost's own loader can crash the process (segmentation fault) on damaged UBJ bytes, so
model bytes from outside (a federated site's update, a file) are decoded here first, in
Python, with bounded depth and sizes; the tree arrays are then checked for consistency
(lengths, child and parent links, feature indices). Only a model that passes is handed to
XGBoost, re-encoded as JSON from the checked document.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["check_model_doc", "decode", "to_jsonable"]

_INTS = {b"i": ">i1", b"U": ">u1", b"I": ">i2", b"l": ">i4", b"L": ">i8"}
_FLOATS = {b"d": ">f4", b"D": ">f8"}
_MAX_DEPTH = 16
_MAX_COUNT = 1 << 28


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def marker(self) -> bytes:
        return self.take(1)

    def integer(self, marker: bytes) -> int:
        fmt = _INTS.get(marker)
        if fmt is None:
            raise ValueError(f"expected an integer marker at byte {self.pos - 1}, got {marker!r}")
        return int(np.frombuffer(self.take(np.dtype(fmt).itemsize), dtype=fmt)[0])

    def length(self) -> int:
        n = self.integer(self.marker())
        if not 0 <= n <= _MAX_COUNT:
            raise ValueError(f"length {n} out of range at byte {self.pos}")
        return n

    def text(self) -> str:
        return self.take(self.length()).decode("utf-8")

    def value(self, marker: bytes, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError("nested too deep")
        if marker in _INTS:
            return self.integer(marker)
        if marker in _FLOATS:
            fmt = _FLOATS[marker]
            return float(np.frombuffer(self.take(np.dtype(fmt).itemsize), dtype=fmt)[0])
        if marker == b"S":
            return self.text()
        if marker == b"T":
            return True
        if marker == b"F":
            return False
        if marker == b"Z":
            return None
        if marker == b"{":
            return self.obj(depth + 1)
        if marker == b"[":
            return self.array(depth + 1)
        raise ValueError(f"unknown marker {marker!r} at byte {self.pos - 1}")

    def obj(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            m = self.marker()
            if m == b"}":
                return out
            key = self.take(self.length_after(m)).decode("utf-8")
            if key in out:
                raise ValueError(f"duplicate key {key[:40]!r}")
            out[key] = self.value(self.marker(), depth)

    def length_after(self, marker: bytes) -> int:
        n = self.integer(marker)
        if not 0 <= n <= _MAX_COUNT:
            raise ValueError(f"length {n} out of range at byte {self.pos}")
        return n

    def array(self, depth: int) -> Any:
        m = self.marker()
        typ = None
        if m == b"$":
            typ = self.marker()
            m = self.marker()
            if m != b"#":
                raise ValueError("a typed array needs a count")
        if m == b"#":
            n = self.length()
            if typ is not None:
                fmt = _INTS.get(typ) or _FLOATS.get(typ)
                if fmt is None:
                    raise ValueError(f"unsupported typed array of {typ!r}")
                size = np.dtype(fmt).itemsize
                return np.frombuffer(self.take(n * size), dtype=fmt).astype(fmt[1:])
            return [self.value(self.marker(), depth) for _ in range(n)]
        items = []
        while m != b"]":
            items.append(self.value(m, depth))
            if len(items) > _MAX_COUNT:
                raise ValueError("array too long")
            m = self.marker()
        return items


def decode(data: bytes) -> dict[str, Any]:
    """The document in UBJ ``data`` (typed arrays as numpy arrays); ValueError when the
    bytes are not exactly one well-formed UBJ object."""
    r = _Reader(bytes(data))
    if r.marker() != b"{":
        raise ValueError("not a UBJ object")
    try:
        doc = r.obj(1)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes")
    return doc


_TREE_ARRAYS = (
    "left_children",
    "right_children",
    "parents",
    "split_indices",
    "split_conditions",
    "default_left",
    "base_weights",
    "loss_changes",
    "sum_hessian",
    "split_type",
)


def _ints(tree: dict[str, Any], name: str) -> np.ndarray:
    a = np.asarray(tree[name])
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValueError(f"tree {name} must be integers")
    return a.astype(np.int64)


def check_model_doc(doc: dict[str, Any], num_features: int) -> None:
    """ValueError unless ``doc`` is a gbtree model whose trees are consistent: equal array
    lengths, every non-root node the child of exactly one node, parents matching, splits
    on features below ``num_features``, no categorical splits."""
    learner = doc["learner"]
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise ValueError("only gbtree models are supported")
    model = gb["model"]
    trees = model["trees"]
    if not isinstance(trees, list):
        raise ValueError("trees must be a list")
    if int(model["gbtree_model_param"]["num_trees"]) != len(trees):
        raise ValueError("num_trees does not match the trees")
    if len(model["tree_info"]) != len(trees):
        raise ValueError("tree_info does not match the trees")
    indptr = np.asarray(model.get("iteration_indptr", [0, len(trees)]), dtype=np.int64)
    if indptr.size < 1 or indptr[0] != 0 or indptr[-1] != len(trees) or np.any(np.diff(indptr) < 0):
        raise ValueError("iteration_indptr does not match the trees")
    if int(learner["learner_model_param"]["num_feature"]) != num_features:
        raise ValueError("the model has another number of features")
    if np.any(np.asarray(model["tree_info"], dtype=np.int64) != 0):
        raise ValueError("a binary model has only class-0 trees")
    for i, tree in enumerate(trees):
        n = int(tree["tree_param"]["num_nodes"])
        if not 1 <= n <= _MAX_COUNT or str(tree["tree_param"].get("size_leaf_vector", "1")) not in (
            "0",
            "1",
        ):
            raise ValueError(f"tree {i}: bad size")
        if int(tree.get("id", i)) != i:
            raise ValueError(f"tree {i}: id out of order")
        for name in _TREE_ARRAYS:
            if len(tree[name]) != n:
                raise ValueError(f"tree {i}: {name} has {len(tree[name])} entries, not {n}")
        for name in ("categories", "categories_nodes", "categories_segments", "categories_sizes"):
            if len(tree.get(name, [])):
                raise ValueError(f"tree {i}: categorical splits are not supported")
        left, right = _ints(tree, "left_children"), _ints(tree, "right_children")
        parents, feats = _ints(tree, "parents"), _ints(tree, "split_indices")
        if np.any(_ints(tree, "split_type") != 0):
            raise ValueError(f"tree {i}: only numerical splits are supported")
        leaf = left == -1
        if np.any(leaf != (right == -1)):
            raise ValueError(f"tree {i}: a node with one child")
        kids = np.concatenate([left[~leaf], right[~leaf]])
        if kids.size != n - 1 or np.any(kids < 1) or np.any(kids >= n):
            raise ValueError(f"tree {i}: child links out of range")
        if len(np.unique(kids)) != n - 1:
            raise ValueError(f"tree {i}: a node has two parents")
        internal = np.flatnonzero(~leaf)
        if np.any(parents[left[internal]] != internal) or np.any(
            parents[right[internal]] != internal
        ):
            raise ValueError(f"tree {i}: parent links do not match the children")
        if np.any(feats[~leaf] < 0) or np.any(feats[~leaf] >= num_features):
            raise ValueError(f"tree {i}: a split on a feature the model does not have")
        seen, frontier = 1, [0]
        while frontier:  # every node reachable from the root (no detached cycles)
            frontier = [c for nd in frontier if not leaf[nd] for c in (left[nd], right[nd])]
            seen += len(frontier)
            if seen > n:
                raise ValueError(f"tree {i}: a node is reached twice")
        if seen != n:
            raise ValueError(f"tree {i}: nodes unreachable from the root")
        values = np.asarray(tree["split_conditions"], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"tree {i}: a split or leaf value is not finite")


def to_jsonable(value: Any) -> Any:
    """The decoded document with numpy arrays as lists (for ``json.dumps``)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value
