"""One site of a federation: trains on its own demand keys, sends only sanitized trees.

A :class:`FederatedSite` prepares its rows once, with the same pipeline as
:func:`~predis.prefetch.train_model` (:func:`~predis.prefetch.model.training_rows`), from
its keys after :meth:`FederationSecret.pseudonymize`. Each round it boosts the federation's
``trees_per_round`` trees on top of the global model it was sent and returns them as a
sanitized update (:func:`~predis.mlops.federated.updates.sanitize`); with a
:class:`DPConfig` every tree's leaves are clipped and noised before the next tree trains,
and the site refuses to release more trees than its budget covers.

The held-out rows (the newest ``validation_fraction`` of the keys) never train: they give
:meth:`evaluate`'s figures and :meth:`calibrate`'s serving threshold.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np

from predis.errors import InvalidArgumentError
from predis.mlops.federated.privacy import (
    DPConfig,
    FederationSecret,
    PrivacyBudgetError,
    add_leaf_noise,
)
from predis.mlops.federated.updates import (
    FederatedUpdateError,
    FederationSpec,
    _from_json,
    _to_json,
    _trees,
    model_digest,
    sanitize,
)
from predis.prefetch.features import FEATURE_NAMES
from predis.prefetch.model import (
    ModelFormatError,
    PrefetchModel,
    _threshold_for,
    _xgb,
    log_loss,
    roc_auc,
    training_rows,
)

__all__ = ["FederatedSite"]


class FederatedSite:
    """A site's side of federated training.

    Args:
        keys: the site's demand keys, oldest first (e.g. ``SegmentWindow.latest(n)``).
        spec: the federation's agreed configuration.
        secret: the per-federation secret (keys are pseudonymized with it first).
        cache_items: the site's serving cache size (rows its cache would hold are dropped,
            as in :func:`~predis.prefetch.train_model`).
        policy: the site's eviction policy.
        dp: differential privacy for the released trees (None: none).
        validation_fraction: the newest share of the keys, held out.
        seed: row sampling and XGBoost seed.
        rng: the noise generator (default: seeded from the OS; pass one only in tests).
    """

    def __init__(
        self,
        keys: np.ndarray,
        spec: FederationSpec,
        secret: FederationSecret,
        *,
        cache_items: int | None = None,
        policy: str = "lru",
        dp: DPConfig | None = None,
        validation_fraction: float = 0.2,
        seed: int = 0,
        threads: int = 1,
        rng: np.random.Generator | None = None,
    ) -> None:
        if not isinstance(spec, FederationSpec):
            raise InvalidArgumentError("spec must be a FederationSpec")
        if not isinstance(secret, FederationSecret):
            raise InvalidArgumentError("secret must be a FederationSecret")
        if dp is not None and not isinstance(dp, DPConfig):
            raise InvalidArgumentError("dp must be a DPConfig or None")
        self.spec = spec
        self.dp = dp
        self._config = replace(
            spec.train_config(seed=seed, threads=threads), validation_fraction=validation_fraction
        )
        pseudonyms = secret.pseudonymize(np.asarray(keys, dtype=np.uint64))
        self._rows = training_rows(
            pseudonyms, self._config, spec.tracker, cache_items=cache_items, policy=policy
        )
        xgb = _xgb()
        names = list(FEATURE_NAMES)
        r = self._rows
        self._dtrain = xgb.DMatrix(
            r.features[r.train], label=r.labels[r.train], feature_names=names
        )
        self._rng = rng if rng is not None else np.random.default_rng()
        self._lock = threading.Lock()  # one round at a time (DMatrix and budget are shared)
        self.released = 0  # trees sent so far (the DP budget counts them)

    @property
    def train_rows(self) -> int:
        """Rows this site trains on."""
        return int(self._rows.train.sum())

    def _params(self) -> dict[str, Any]:
        c = self._config
        params: dict[str, Any] = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": c.max_depth,
            "eta": c.learning_rate,
            "subsample": 0.8,
            "min_child_weight": 5.0,
            "base_score": self.spec.base_score,
            "nthread": c.threads,
            "seed": c.seed,
        }
        if self.dp is not None:
            params["max_delta_step"] = self.dp.clip
        return params

    def _global(self, data: bytes) -> PrefetchModel:
        try:
            model = PrefetchModel.from_bytes(data)
        except ModelFormatError as exc:
            raise FederatedUpdateError(f"the global model sent is malformed: {exc}") from exc
        if model.tracker != self.spec.tracker or (model.horizon, model.batch_size) != (
            self.spec.horizon,
            self.spec.batch_size,
        ):
            raise FederatedUpdateError("the global model sent is for another federation spec")
        return model

    def train_round(self, global_model: bytes) -> bytes:
        """This round's update: ``trees_per_round`` trees boosted on ``global_model`` from
        the local rows, sanitized (and noised under ``dp``)."""
        with self._lock:
            model = self._global(global_model)
            xgb = _xgb()
            k = self.spec.trees_per_round
            n_base = model.booster.num_boosted_rounds()
            params = self._params()
            if self.dp is None:
                booster = xgb.train(
                    params, self._dtrain, num_boost_round=k, xgb_model=model.booster
                )
            else:
                if self.released + k > self.dp.max_trees:
                    raise PrivacyBudgetError(
                        f"releasing {k} more trees would exceed the privacy budget "
                        f"(epsilon={self.dp.epsilon} covers {self.dp.max_trees} trees, "
                        f"{self.released} already sent)"
                    )
                bound = self.spec.learning_rate * self.dp.clip
                scale = self.dp.noise_scale(self.spec.learning_rate)
                booster = model.booster
                for i in range(k):
                    params["seed"] = self._config.seed + self.released + i
                    booster = xgb.train(params, self._dtrain, num_boost_round=1, xgb_model=booster)
                    doc = _to_json(booster)
                    add_leaf_noise(_trees(doc)[-1], bound, scale, self.dp.mechanism, self._rng)
                    booster = _from_json(doc)
            new = booster[n_base : booster.num_boosted_rounds()]
            self.released += k
            return sanitize(new, self.spec, base=model_digest(global_model))

    def evaluate(self, model_bytes: bytes) -> dict[str, float]:
        """Held-out log loss and AUC of a (global) model on this site's held-out rows."""
        model = self._global(model_bytes)
        r = self._rows
        p = model.predict(r.features[r.valid])
        y = r.labels[r.valid]
        return {
            "valid_logloss": log_loss(p, y),
            "valid_auc": roc_auc(p, y),
            "valid_rows": float(len(y)),
        }

    def calibrate(self, model_bytes: bytes, target_precision: float = 0.85) -> PrefetchModel:
        """The global model with this site's serving threshold: the lowest whose held-out
        precision reaches ``target_precision`` (as :func:`~predis.prefetch.train_model`)."""
        if not isinstance(target_precision, (int, float)) or not 0 < target_precision <= 1:
            raise InvalidArgumentError("target_precision must be in (0, 1]")
        model = self._global(model_bytes)
        r = self._rows
        p = model.predict(r.features[r.valid])
        threshold, precision, recall = _threshold_for(p, r.labels[r.valid], target_precision)
        model.threshold = threshold
        model.metrics = {
            "valid_precision": precision,
            "valid_recall": recall,
            **self.evaluate(model_bytes),
        }
        return model
