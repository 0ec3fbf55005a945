"""The prefetch model: an XGBoost classifier of "requested within the next H requests".

:func:`train_model` learns it from a key sequence (a trace, or the keys of the collector's
segments) and picks the confidence threshold on a held-out tail; :class:`PrefetchModel`
scores candidate rows with XGBoost's in-place prediction (through its C API:
:mod:`predis.prefetch.xgb_predict`) and round-trips through UBJ bytes, the form
the model registry stores.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predis.errors import InvalidArgumentError, PredisError
from predis.prefetch import ubj
from predis.prefetch.features import FEATURE_NAMES, TrackerConfig, candidate_rows, label_within
from predis.prefetch.xgb_predict import DensePredictor, InplacePredictor, predictor_for

__all__ = [
    "Fit",
    "ModelFormatError",
    "PrefetchModel",
    "TrainConfig",
    "TrainingRows",
    "finish_model",
    "log_loss",
    "roc_auc",
    "train_model",
    "training_rows",
    "xgb_params",
]

_ATTR = "predis_prefetch"  # booster attribute holding the model's metadata (JSON)
_FORMAT = 1


class ModelFormatError(PredisError):
    """Model bytes that are not a Predis prefetch model (or not one this version reads)."""


def _xgb() -> Any:
    try:
        import xgboost  # noqa: PLC0415 - heavy; imported when a model is trained or loaded
    except ImportError as exc:  # pragma: no cover - xgboost is a core dependency
        raise PredisError("the prefetch model needs xgboost: pip install 'xgboost>=2.0'") from exc
    return xgboost


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`train_model` trains.

    Attributes:
        horizon: a candidate is a positive when requested within this many requests
            after the end of its batch.
        batch_size: demand requests per proposal (must match the serving prefetcher's).
        max_rows: training rows at most (a uniform sample of the candidate rows beyond it).
        num_trees: boosting rounds at most (early stopping may use fewer).
        max_depth: tree depth.
        learning_rate: XGBoost's eta.
        time_budget_s: training stops adding trees after this many seconds (None: no limit).
        target_precision: the threshold is the lowest at which held-out precision reaches
            this; if none does, the model never prefetches.
        validation_fraction: the last share of the requests, held out for early stopping
            and the threshold.
        threads: XGBoost threads (0: all cores).
        seed: sampling and XGBoost seed.
    """

    horizon: int = 32
    batch_size: int = 8
    max_rows: int = 400_000
    num_trees: int = 120
    max_depth: int = 6
    learning_rate: float = 0.15
    time_budget_s: float | None = 60.0
    target_precision: float = 0.85
    validation_fraction: float = 0.2
    threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        def positive_int(name: str, lo: int = 1) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise InvalidArgumentError(f"TrainConfig.{name} must be an int >= {lo}, got {v!r}")

        for name in ("horizon", "batch_size", "max_rows", "num_trees", "max_depth"):
            positive_int(name)
        positive_int("threads", 0)
        positive_int("seed", 0)
        checks = {
            "learning_rate": (0.0, 1.0, self.learning_rate),
            "target_precision": (0.0, 1.0, self.target_precision),
            "validation_fraction": (0.0, 0.9, self.validation_fraction),
        }
        for name, (lo, hi, v) in checks.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v <= hi:
                raise InvalidArgumentError(f"TrainConfig.{name} must be in ({lo}, {hi}], got {v!r}")
        budget = self.time_budget_s
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0
        ):
            raise InvalidArgumentError(
                f"TrainConfig.time_budget_s must be > 0 or None, got {budget!r}"
            )


@dataclass
class PrefetchModel:
    """A trained booster plus what it needs to be served: the candidate generator's
    configuration, the label horizon and the calibrated threshold.

    ``metrics`` holds the held-out figures measured at training time.
    """

    booster: Any
    tracker: TrackerConfig
    horizon: int
    batch_size: int
    threshold: float
    metrics: dict[str, float] = field(default_factory=dict)
    # How the booster predicts (predis.prefetch.xgb_predict), made at the first prediction.
    _predictor: DensePredictor | InplacePredictor | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        # The predictor holds ctypes function pointers, which do not pickle; a copy makes
        # its own at its first prediction.
        state = self.__dict__.copy()
        state["_predictor"] = None
        return state

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probability that each row's candidate is requested within the horizon."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
            raise InvalidArgumentError(f"features must be (n, {len(FEATURE_NAMES)}), got {x.shape}")
        if len(x) == 0:
            return np.empty(0, dtype=np.float32)
        predictor = self._predictor
        if predictor is None or predictor.booster is not self.booster:
            predictor = self._predictor = predictor_for(self.booster)
        return predictor(x)

    def to_bytes(self) -> bytes:
        """UBJ bytes of the booster, with the serving metadata as a booster attribute."""
        meta = {
            "format": _FORMAT,
            "features": list(FEATURE_NAMES),
            "tracker": self.tracker.to_dict(),
            "horizon": self.horizon,
            "batch_size": self.batch_size,
            "threshold": self.threshold,
            "metrics": self.metrics,
        }
        self.booster.set_attr(**{_ATTR: json.dumps(meta)})
        return bytes(self.booster.save_raw(raw_format="ubj"))

    @classmethod
    def from_bytes(cls, data: bytes) -> PrefetchModel:
        """Load bytes written by :meth:`to_bytes`; anything else is a :class:`ModelFormatError`."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
            raise ModelFormatError("model data must be non-empty bytes")
        xgb = _xgb()
        # XGBoost's loader can crash the process on damaged bytes: decode and check the
        # document in Python first, and give XGBoost only the checked document.
        try:
            doc = ubj.decode(bytes(data))
            ubj.check_model_doc(doc, len(FEATURE_NAMES))
            text = json.dumps(ubj.to_jsonable(doc), allow_nan=False).encode()
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ModelFormatError(f"not a valid XGBoost UBJ model: {exc}") from exc
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(text))
        except (xgb.core.XGBoostError, ValueError) as exc:  # ValueError: an undecodable message
            raise ModelFormatError(f"not an XGBoost UBJ model: {exc}") from exc
        try:
            raw = booster.attr(_ATTR)
        except (ValueError, xgb.core.XGBoostError) as exc:  # undecodable attribute bytes
            raise ModelFormatError(f"unreadable Predis prefetch metadata: {exc}") from exc
        if raw is None:
            raise ModelFormatError("an XGBoost model without Predis prefetch metadata")
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict):
                raise ModelFormatError("prefetch metadata must be a JSON object")
            if meta.get("format") != _FORMAT:
                raise ModelFormatError(
                    f"prefetch model format {meta.get('format')!r}; this reads {_FORMAT}"
                )
            if tuple(meta["features"]) != FEATURE_NAMES:
                raise ModelFormatError(
                    "the model was trained on other features than this version emits"
                )
            tracker = TrackerConfig.from_dict(meta["tracker"])
            horizon = int(meta["horizon"])
            batch_size = int(meta["batch_size"])
            threshold = float(meta["threshold"])
            metrics = {str(k): float(v) for k, v in dict(meta.get("metrics", {})).items()}
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError, InvalidArgumentError) as exc:
            raise ModelFormatError(f"malformed prefetch metadata: {exc}") from exc
        if not (0.0 <= threshold <= 1.0) or horizon < 1 or not 1 <= batch_size <= 65536:
            raise ModelFormatError(
                f"threshold {threshold}, horizon {horizon} or batch size {batch_size} out of range"
            )
        booster.set_param({"nthread": 1})  # small batches: threads cost more than they save
        return cls(booster, tracker, horizon, batch_size, threshold, metrics)


def _threshold_for(p: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float, float]:
    """(threshold, precision, recall): the lowest threshold on a 0.01 grid whose rows at or
    above it have precision >= target, over at least 20 rows; 1.0 (never) if none has."""
    positives = max(1, int(y.sum()))
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(np.float64)
    tp = np.cumsum(ys)
    for t in np.round(np.arange(0.05, 1.0, 0.01), 2):
        n = int(np.searchsorted(-ps, -t, side="right"))  # rows with p >= t
        if n >= 20 and tp[n - 1] / n >= target:
            return float(t), float(tp[n - 1] / n), float(tp[n - 1] / positives)
    return 1.0, 0.0, 0.0


def _stopper(seconds: float | None, stop: threading.Event | None) -> Any:
    """An XGBoost callback that stops adding trees past a deadline or once ``stop`` is set."""
    xgb = _xgb()
    deadline = math.inf if seconds is None else time.monotonic() + seconds

    class Stop(xgb.callback.TrainingCallback):  # type: ignore[misc,name-defined]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:  # noqa: ARG002
            return time.monotonic() > deadline or (stop is not None and stop.is_set())

    return Stop()


@dataclass(frozen=True)
class TrainingRows:
    """The labelled candidate rows of a key sequence, split in time.

    Attributes:
        features: (n, len(FEATURE_NAMES)) float32 rows.
        labels: 0/1 per row (requested within the horizon).
        train: rows that train (their horizon ends before the split).
        valid: rows that are held out (at or after the split).
    """

    features: np.ndarray
    labels: np.ndarray
    train: np.ndarray
    valid: np.ndarray


def training_rows(
    keys: np.ndarray,
    config: TrainConfig,
    tracker: TrackerConfig,
    *,
    cache_items: int | None = None,
    policy: str = "lru",
) -> TrainingRows:
    """The rows :func:`train_model` learns from (see there); also used by federated sites
    and distributed training so that every path trains on the same rows."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    if keys.ndim != 1 or len(keys) < 1000:
        raise InvalidArgumentError(
            f"training needs a 1-D sequence of at least 1000 keys, got {keys.shape}"
        )
    pos, cand, feat = candidate_rows(keys, tracker, config.batch_size, cache_items, policy)
    y = label_within(keys, pos, cand, config.horizon)
    # Rows whose horizon runs past the end have unknown labels: drop them.
    keep = pos + config.horizon < len(keys)
    pos, feat, y = pos[keep], feat[keep], y[keep]
    rng = np.random.default_rng(config.seed)
    if len(y) > config.max_rows:
        pick = np.sort(rng.choice(len(y), size=config.max_rows, replace=False))
        pos, feat, y = pos[pick], feat[pick], y[pick]
    split = int(len(keys) * (1.0 - config.validation_fraction))
    # Rows within a horizon of the split are labelled with validation-time requests: they
    # belong to neither side, or the held-out figures would have seen their future.
    train, valid = pos + config.horizon < split, pos >= split
    if train.sum() < 100 or valid.sum() < 100:
        raise InvalidArgumentError("too few candidate rows to train on; give a longer key sequence")
    return TrainingRows(feat, y, train, valid)


def xgb_params(config: TrainConfig) -> dict[str, Any]:
    """The XGBoost parameters :func:`train_model` uses for ``config``."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": config.max_depth,
        "eta": config.learning_rate,
        "subsample": 0.8,
        "min_child_weight": 5.0,
        "nthread": config.threads,
        "seed": config.seed,
    }


#: ``fit(params, rows, num_boost_round, deadline_s) -> booster``: trains on ``rows.train``
#: with early stopping on ``rows.valid`` (10 rounds), stopping past ``deadline_s`` seconds.
Fit = Callable[[dict[str, Any], TrainingRows, int, "float | None"], Any]


def finish_model(
    booster: Any, rows: TrainingRows, config: TrainConfig, tracker: TrackerConfig, start: float
) -> PrefetchModel:
    """Cut ``booster`` at its best iteration, calibrate the threshold on the held-out rows
    and record the held-out figures."""
    best = getattr(booster, "best_iteration", None)
    if best is not None and best + 1 < booster.num_boosted_rounds():
        booster = booster[: best + 1]
    booster.set_param({"nthread": 1})  # serving scores small batches
    model = PrefetchModel(booster, tracker, config.horizon, config.batch_size, 1.0)
    p = model.predict(rows.features[rows.valid])
    y, yv = rows.labels, rows.labels[rows.valid]
    threshold, precision, recall = _threshold_for(p, yv, config.target_precision)
    model.threshold = threshold
    model.metrics = {
        "rows": float(len(y)),
        "positive_rate": float(y.mean()),
        "valid_logloss": log_loss(p, yv),
        "valid_auc": roc_auc(p, yv),
        "valid_precision": precision,
        "valid_recall": recall,
        "trees": float(booster.num_boosted_rounds()),
        "train_seconds": time.monotonic() - start,
    }
    return model


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean binary log loss of probabilities ``p`` against 0/1 labels ``y``."""
    eps = 1e-7
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))


def roc_auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); 0.5 when one class is absent.

    Example:
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return 0.5
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=np.float64)
    sp = p[order]
    # average ranks over ties
    _, first, counts = np.unique(sp, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def _fit_in_process(
    params: dict[str, Any],
    rows: TrainingRows,
    num_boost_round: int,
    deadline_s: float | None,
    stop: threading.Event | None = None,
) -> Any:
    xgb = _xgb()
    names = list(FEATURE_NAMES)
    dtrain = xgb.DMatrix(
        rows.features[rows.train], label=rows.labels[rows.train], feature_names=names
    )
    dvalid = xgb.DMatrix(
        rows.features[rows.valid], label=rows.labels[rows.valid], feature_names=names
    )
    return xgb.train(
        params,
        dtrain,
        num_boost_round=num_boost_round,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=10,
        callbacks=[_stopper(deadline_s, stop)],
        verbose_eval=False,
    )


def train_model(
    keys: np.ndarray,
    config: TrainConfig | None = None,
    tracker: TrackerConfig | None = None,
    *,
    cache_items: int | None = None,
    policy: str = "lru",
    stop: threading.Event | None = None,
    fit: Fit | None = None,
) -> PrefetchModel:
    """Train a prefetch model on a key sequence, in time order.

    The candidate generator runs over ``keys`` in batches as it would live; every candidate
    row is labelled with whether its key came within ``config.horizon`` requests after its
    batch. With ``cache_items`` (the serving cache's ``max_items``) and ``policy``, rows
    whose candidate a shadow cache of that size holds are dropped, as serving drops them,
    so the threshold is calibrated on the rows the model will actually see. Setting
    ``stop`` ends boosting after the current tree (the model keeps what it has). The first
    requests train, the last ``validation_fraction`` of them pick the number of trees (early
    stopping) and the threshold. A sequence too short to learn from is an error.

    ``fit`` replaces the in-process booster training (for example
    :func:`predis.mlops.distributed.dask_fit`, which trains on a Dask cluster); the rows,
    parameters, threshold and figures stay the same.
    """
    config = config or TrainConfig()
    tracker = tracker or TrackerConfig()
    start = time.monotonic()
    rows = training_rows(keys, config, tracker, cache_items=cache_items, policy=policy)
    params = xgb_params(config)
    if fit is None:
        booster = _fit_in_process(params, rows, config.num_trees, config.time_budget_s, stop)
    else:
        booster = fit(params, rows, config.num_trees, config.time_budget_s)
    return finish_model(booster, rows, config, tracker, start)
