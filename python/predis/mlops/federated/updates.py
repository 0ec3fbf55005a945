"""Federated updates and their aggregation, as plain functions on XGBoost model bytes.

A federation shares one model: a Predis prefetch model (UBJ bytes, see
:class:`~predis.prefetch.PrefetchModel`) whose ``base_score`` is fixed by the
:class:`FederationSpec`, so trees from different sites add up on one margin scale. Each
round a site boosts ``trees_per_round`` new trees on top of the current global model and
sends **only those trees** (an *update*: a prefetch model holding just the new trees, plus
the SHA-256 of the global model it boosted from). The server checks every update
(:func:`check_update`) and then either

- **bags** (:func:`bag`): appends every site's new trees, each scaled by its weight (equal
  weights by default, so the global model moves by the sites' average step), or
- **cycles** (:func:`cyclic_step`): appends one site's trees as they are; the next site
  boosts on the result.

An update carries no per-row statistics: :func:`sanitize` zeroes XGBoost's per-node hessian
sums (row counts, for the logistic loss a weighted count) and split gains and the internal
nodes' weights, and drops the training metrics (rows, positive rate) from the metadata.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from predis.errors import InvalidArgumentError, PredisError
from predis.prefetch.features import FEATURE_NAMES, TrackerConfig
from predis.prefetch.model import ModelFormatError, PrefetchModel, TrainConfig

__all__ = [
    "FederatedUpdateError",
    "FederationSpec",
    "bag",
    "check_update",
    "cyclic_step",
    "initial_model",
    "model_digest",
    "sanitize",
]

_UPDATE_ATTR = "predis_federated"  # booster attribute of an update: {"base": sha256 hex}
_META_ATTR = "predis_prefetch"


class FederatedUpdateError(PredisError):
    """An update the server refuses: too large, not a model, or not for this federation or
    this round. The message says which."""


@dataclass(frozen=True)
class FederationSpec:
    """What every site of a federation agrees on.

    Attributes:
        tracker: the candidate generator (features depend on it).
        horizon: the label horizon (requests).
        batch_size: demand requests per proposal.
        trees_per_round: trees a site adds per round (an update has 1 to this many).
        max_depth: tree depth.
        learning_rate: XGBoost's eta at every site.
        base_score: the shared starting probability (0.5: margin 0).
        max_update_bytes: an update larger than this is refused before it is parsed.
        leaf_bound: an update with a leaf value beyond +-this is refused.
    """

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    horizon: int = 32
    batch_size: int = 8
    trees_per_round: int = 10
    max_depth: int = 6
    learning_rate: float = 0.15
    base_score: float = 0.5
    max_update_bytes: int = 1 << 20
    leaf_bound: float = 8.0

    def __post_init__(self) -> None:
        if not isinstance(self.tracker, TrackerConfig):
            raise InvalidArgumentError("FederationSpec.tracker must be a TrackerConfig")
        ints = {
            "horizon": (1, 1 << 20),
            "batch_size": (1, 65536),
            "trees_per_round": (1, 1000),
            "max_depth": (1, 16),
            "max_update_bytes": (1024, 1 << 30),
        }
        for name, (lo, hi) in ints.items():
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
                raise InvalidArgumentError(
                    f"FederationSpec.{name} must be an int in [{lo}, {hi}], got {n!r}"
                )
        floats = {"learning_rate": (0.0, 1.0), "base_score": (0.0, 1.0), "leaf_bound": (0.0, 1e3)}
        for name, (flo, fhi) in floats.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not flo < v <= fhi or (name == "base_score" and v >= 1.0):
                raise InvalidArgumentError(
                    f"FederationSpec.{name} must be in ({flo}, {fhi}), got {v!r}"
                )

    def train_config(self, seed: int = 0, threads: int = 1) -> TrainConfig:
        """The :class:`TrainConfig` a site prepares its rows with."""
        return TrainConfig(
            horizon=self.horizon,
            batch_size=self.batch_size,
            num_trees=self.trees_per_round,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            threads=threads,
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for a Flower ConfigRecord or a file)."""
        d = asdict(self)
        d["tracker"] = self.tracker.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FederationSpec:
        """The inverse of :meth:`to_dict`; unknown fields are an error."""
        if not isinstance(d, dict):
            raise InvalidArgumentError("a federation spec must be a dict")
        names = set(cls.__dataclass_fields__)
        extra = set(d) - names
        if extra:
            raise InvalidArgumentError(f"unknown federation spec fields {sorted(extra)}")
        d = dict(d)
        if "tracker" in d:
            d["tracker"] = TrackerConfig.from_dict(dict(d["tracker"]))
        return cls(**d)


def _xgb() -> Any:
    from predis.prefetch.model import _xgb as load  # noqa: PLC0415 - one import helper

    return load()


def model_digest(data: bytes) -> str:
    """SHA-256 hex of model bytes (an update names the global model it boosted from)."""
    return hashlib.sha256(bytes(data)).hexdigest()


def _to_json(booster: Any) -> dict[str, Any]:
    return dict(json.loads(bytes(booster.save_raw(raw_format="json"))))


def _from_json(model: dict[str, Any]) -> Any:
    xgb = _xgb()
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    return booster


def _meta(spec: FederationSpec) -> str:
    return json.dumps(
        {
            "format": 1,
            "features": list(FEATURE_NAMES),
            "tracker": spec.tracker.to_dict(),
            "horizon": spec.horizon,
            "batch_size": spec.batch_size,
            "threshold": 1.0,  # each site calibrates its own (predis.mlops.federated.site)
            "metrics": {},
        }
    )


def _trees(model: dict[str, Any]) -> list[dict[str, Any]]:
    return list(model["learner"]["gradient_booster"]["model"]["trees"])


def _set_trees(model: dict[str, Any], trees: list[dict[str, Any]]) -> None:
    gb = model["learner"]["gradient_booster"]["model"]
    for i, t in enumerate(trees):
        t["id"] = i
    gb["trees"] = trees
    gb["tree_info"] = [0] * len(trees)
    gb["iteration_indptr"] = list(range(len(trees) + 1))
    gb["gbtree_model_param"]["num_trees"] = str(len(trees))


def sanitize(booster: Any, spec: FederationSpec, base: str | None = None) -> bytes:
    """UBJ bytes of ``booster`` with no per-row statistics: per-node hessian sums, split
    gains and internal node weights zeroed, metadata reduced to the serving configuration
    (``base``: the digest of the global model the trees were boosted from)."""
    model = _to_json(booster)
    trees = _trees(model)
    for t in trees:
        n = len(t["left_children"])
        leaf = np.asarray(t["left_children"]) == -1
        t["sum_hessian"] = [0.0] * n
        t["loss_changes"] = [0.0] * n
        weights = np.where(leaf, np.asarray(t["split_conditions"], dtype=np.float32), 0.0)
        t["base_weights"] = weights.astype(np.float32).tolist()
    _set_trees(model, trees)
    attrs = {_META_ATTR: _meta(spec)}
    if base is not None:
        attrs[_UPDATE_ATTR] = json.dumps({"base": base})
    model["learner"]["attributes"] = attrs
    return bytes(_from_json(model).save_raw(raw_format="ubj"))


def initial_model(spec: FederationSpec) -> bytes:
    """The round-0 global model: no trees, the federation's base score and metadata."""
    xgb = _xgb()
    x = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)
    d = xgb.DMatrix(x, label=np.array([0.0, 1.0]), feature_names=list(FEATURE_NAMES))
    params = {"objective": "binary:logistic", "base_score": spec.base_score, "nthread": 1}
    booster = xgb.train(params, d, num_boost_round=0)
    return sanitize(booster, spec)


def _depth(tree: dict[str, Any]) -> int:
    left, right = tree["left_children"], tree["right_children"]
    depth, frontier, seen = 0, [0], 0
    while frontier:
        nxt = [c for n in frontier for c in (left[n], right[n]) if c != -1]
        seen += len(frontier)
        if seen > len(left):
            raise FederatedUpdateError("an update's tree is not a tree (a node is reached twice)")
        if nxt:
            depth += 1
        frontier = nxt
    return depth


def _check_tree(tree: dict[str, Any], spec: FederationSpec, what: str) -> None:
    n = len(tree["left_children"])
    if n > (2 ** (spec.max_depth + 1)) - 1:
        raise FederatedUpdateError(f"{what}: a tree of {n} nodes is deeper than max_depth allows")
    if any(tree.get(k) for k in ("categories", "categories_nodes")):
        raise FederatedUpdateError(f"{what}: categorical splits are not part of this model")
    idx = np.asarray(tree["split_indices"])
    if len(idx) and (idx.min() < 0 or idx.max() >= len(FEATURE_NAMES)):
        raise FederatedUpdateError(f"{what}: a split on a feature this model does not have")
    if _depth(tree) > spec.max_depth:
        raise FederatedUpdateError(f"{what}: a tree deeper than max_depth={spec.max_depth}")
    leaf = np.asarray(tree["left_children"]) == -1
    values = np.asarray(tree["split_conditions"], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise FederatedUpdateError(f"{what}: a split or leaf value is not finite")
    if np.any(np.abs(values[leaf]) > spec.leaf_bound):
        raise FederatedUpdateError(
            f"{what}: a leaf value beyond +-{spec.leaf_bound} (the federation's leaf_bound)"
        )
    if np.any(np.asarray(tree["sum_hessian"], dtype=np.float64) != 0) or np.any(
        np.asarray(tree["loss_changes"], dtype=np.float64) != 0
    ):
        raise FederatedUpdateError(
            f"{what}: per-node row statistics are present (sanitize the update before sending)"
        )


def check_update(
    update: object, spec: FederationSpec, base: bytes, what: str = "update"
) -> list[dict[str, Any]]:
    """The new trees of an update, after every check; :class:`FederatedUpdateError` (with
    the reason) for anything else: over ``spec.max_update_bytes``, not a prefetch model,
    another federation's configuration, boosted from another global model than ``base``,
    no trees or more than ``trees_per_round``, too deep, non-finite or out-of-bound leaves,
    or per-row statistics left in."""
    if not isinstance(update, (bytes, bytearray, memoryview)):
        raise FederatedUpdateError(f"{what}: must be model bytes, got {type(update).__name__}")
    data = bytes(update)
    if len(data) > spec.max_update_bytes:
        raise FederatedUpdateError(
            f"{what}: {len(data):,} bytes, over the federation's limit of "
            f"{spec.max_update_bytes:,} (max_update_bytes); send at most "
            f"{spec.trees_per_round} trees"
        )
    try:
        model = PrefetchModel.from_bytes(data)
    except ModelFormatError as exc:
        raise FederatedUpdateError(f"{what}: malformed, {exc}") from exc
    if model.tracker != spec.tracker:
        raise FederatedUpdateError(f"{what}: a candidate generator other than the federation's")
    if (model.horizon, model.batch_size) != (spec.horizon, spec.batch_size):
        raise FederatedUpdateError(
            f"{what}: horizon {model.horizon} / batch size {model.batch_size}, the federation "
            f"uses {spec.horizon} / {spec.batch_size}"
        )
    raw = model.booster.attr(_UPDATE_ATTR)
    try:
        claimed = json.loads(raw)["base"] if raw is not None else None
    except (ValueError, TypeError, KeyError):
        claimed = None
    if claimed != model_digest(base):
        raise FederatedUpdateError(
            f"{what}: not boosted from the current global model (stale round or another "
            "federation); train on the model this round sent"
        )
    try:
        doc = _to_json(model.booster)
        params = doc["learner"]["learner_model_param"]
        objective = doc["learner"]["objective"]["name"]
        trees = _trees(doc)
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise FederatedUpdateError(f"{what}: malformed model structure ({exc})") from exc
    try:
        base_score = float(str(params["base_score"]).strip("[]"))
    except (KeyError, ValueError) as exc:
        raise FederatedUpdateError(f"{what}: no readable base_score") from exc
    if not math.isclose(base_score, spec.base_score, rel_tol=1e-6):
        raise FederatedUpdateError(
            f"{what}: base_score {base_score}, the federation's is {spec.base_score}"
        )
    if objective != "binary:logistic":
        raise FederatedUpdateError(f"{what}: objective is not binary:logistic")
    if not 1 <= len(trees) <= spec.trees_per_round:
        raise FederatedUpdateError(
            f"{what}: {len(trees)} trees; an update holds 1 to {spec.trees_per_round}"
        )
    for t in trees:
        try:
            _check_tree(t, spec, what)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise FederatedUpdateError(f"{what}: malformed tree ({exc!r})") from exc
    return trees


def _scaled(tree: dict[str, Any], w: float) -> dict[str, Any]:
    leaf = np.asarray(tree["left_children"]) == -1
    values = np.asarray(tree["split_conditions"], dtype=np.float32)
    values[leaf] *= np.float32(w)
    t = dict(tree)
    t["split_conditions"] = values.tolist()
    t["base_weights"] = np.where(leaf, values, 0.0).astype(np.float32).tolist()
    return t


def _append(base: bytes, spec: FederationSpec, new: list[dict[str, Any]]) -> bytes:
    try:
        global_model = PrefetchModel.from_bytes(base)
    except ModelFormatError as exc:
        raise InvalidArgumentError(f"the global model is not a prefetch model: {exc}") from exc
    doc = _to_json(global_model.booster)
    _set_trees(doc, _trees(doc) + new)
    doc["learner"]["attributes"] = {_META_ATTR: _meta(spec)}
    return bytes(_from_json(doc).save_raw(raw_format="ubj"))


def bag(
    base: bytes,
    updates: Sequence[bytes],
    spec: FederationSpec,
    weights: Sequence[float] | None = None,
) -> bytes:
    """The next global model: ``base`` with every update's trees appended, each update's
    leaves scaled by its weight (default ``1/len(updates)``: the sites' average step).

    Every update is checked first (:func:`check_update`); one bad update fails the call,
    naming it, so a caller can drop it and bag the rest.
    """
    if not updates:
        raise InvalidArgumentError("bagging needs at least one update")
    if weights is None:
        weights = [1.0 / len(updates)] * len(updates)
    if len(weights) != len(updates) or not all(
        isinstance(w, (int, float)) and math.isfinite(w) and 0 < w <= 1 for w in weights
    ):
        raise InvalidArgumentError("weights: one in (0, 1] per update")
    new: list[dict[str, Any]] = []
    for i, (u, w) in enumerate(zip(updates, weights, strict=True)):
        new += [_scaled(t, float(w)) for t in check_update(u, spec, base, f"update {i}")]
    return _append(base, spec, new)


def cyclic_step(base: bytes, update: bytes, spec: FederationSpec) -> bytes:
    """The next global model of cyclic training: ``base`` with one site's checked trees
    appended unscaled (the next site boosts on top of them)."""
    return _append(base, spec, check_update(update, spec, base))
