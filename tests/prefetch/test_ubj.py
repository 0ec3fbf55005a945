"""The strict UBJ reader and model check that stand before XGBoost's loader (which crashed
the process on damaged bytes): decoding agrees with XGBoost's own JSON, inconsistent trees
are refused, and damaged model bytes only ever raise ModelFormatError."""

from __future__ import annotations

import copy
import functools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predis.prefetch import FEATURE_NAMES, ModelFormatError, PrefetchModel, TrainConfig, train_model
from predis.prefetch.ubj import check_model_doc, decode, to_jsonable
from predis.workloads import CorrelatedSessions


@functools.cache
def model_bytes() -> bytes:
    keys = CorrelatedSessions(50_000, 100, 10, noise=0.05, seed=3).take(8000)
    return train_model(keys, TrainConfig(num_trees=5, max_depth=4, threads=1)).to_bytes()


def reference() -> dict:
    booster = PrefetchModel.from_bytes(model_bytes()).booster
    return json.loads(bytes(booster.save_raw(raw_format="json")))


def close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.float32(a) == np.float32(b))
    return a == b


def test_decoding_agrees_with_xgboosts_json():
    assert close(to_jsonable(decode(model_bytes())), reference())


def tree0(doc: dict) -> dict:
    return doc["learner"]["gradient_booster"]["model"]["trees"][0]


def detached_cycle(doc: dict) -> None:
    t = tree0(doc)
    # Turn two leaves into internal nodes pointing at each other: still n-1 child links,
    # each node one parent, but a cycle the root never reaches.
    leaves = [i for i, c in enumerate(t["left_children"]) if c == -1]
    a, b = leaves[-2], leaves[-1]
    parent_a, parent_b = t["parents"][a], t["parents"][b]
    for p in (parent_a, parent_b):
        t["left_children"][p] = t["right_children"][p] = -1
    t["left_children"][a], t["right_children"][a] = b, leaves[0]
    t["left_children"][b], t["right_children"][b] = a, leaves[1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: tree0(d)["left_children"].__setitem__(0, 999), "out of range"),
        (
            lambda d: tree0(d)["left_children"].__setitem__(0, tree0(d)["right_children"][0]),
            "two parents",
        ),
        (lambda d: tree0(d)["split_indices"].__setitem__(0, len(FEATURE_NAMES)), "feature"),
        (lambda d: tree0(d)["sum_hessian"].pop(), "entries"),
        (
            lambda d: d["learner"]["gradient_booster"]["model"]["gbtree_model_param"].update(
                num_trees="9"
            ),
            "num_trees",
        ),
        (lambda d: tree0(d)["split_conditions"].__setitem__(0, float("inf")), "finite"),
        (lambda d: tree0(d)["parents"].__setitem__(1, 5), "parent links"),
        (detached_cycle, "reached|unreachable|two parents|parent links|out of range"),
    ],
)
def test_inconsistent_trees_are_refused(edit, message):
    doc = copy.deepcopy(reference())
    check_model_doc(doc, len(FEATURE_NAMES))  # the untouched model passes
    edit(doc)
    with pytest.raises(ValueError, match=message):
        check_model_doc(doc, len(FEATURE_NAMES))


@pytest.mark.parametrize(
    "data",
    [b"{", b"{}", b"[", b"{L\x00\x00\x00\x00\x00\x00\x00\x05abc", b"{i\x03abcZ}junk", b"\xff" * 64],
)
def test_malformed_ubj_is_a_format_error(data):
    with pytest.raises(ModelFormatError):
        PrefetchModel.from_bytes(data)


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    cut=st.floats(0.5, 1.0),
)
def test_damaged_model_bytes_never_crash(edits, cut):
    raw = bytearray(model_bytes())
    for where, byte in edits:
        raw[int(where * len(raw))] = byte
    try:
        model = PrefetchModel.from_bytes(bytes(raw[: int(cut * len(raw))]))
    except ModelFormatError:
        return
    # What loads is a usable model.
    assert model.predict(np.zeros((3, len(FEATURE_NAMES)), np.float32)).shape == (3,)
