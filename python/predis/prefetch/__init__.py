"""The learned prefetcher: candidates, features, the XGBoost model and the prefetch runtime.

- :class:`TrackerConfig` and :func:`candidate_rows`: the native candidate generator
  (successors, strides, recency and frequency) and the feature rows it emits;
- :func:`train_model` / :class:`PrefetchModel`: the classifier of "requested within the
  next H requests", its calibrated threshold, UBJ bytes for the registry;
- :class:`LearnedPrefetcher`: candidates scored in batches, gated, budgeted;
- :mod:`predis.prefetch.data`: training data from access events or the collector's
  segments (imported on its own: it needs :mod:`predis.mlops`, which needs the cache);
- :class:`Prefetcher`: the interface :func:`predis.sim.replay` and the live cache drive.
"""

from predis.prefetch.base import Prefetcher
from predis.prefetch.features import FEATURE_NAMES, TrackerConfig, candidate_rows, label_within
from predis.prefetch.learned import LearnedPrefetcher
from predis.prefetch.model import ModelFormatError, PrefetchModel, TrainConfig, train_model
from predis.prefetch.stats import PrefetchStats

__all__ = [
    "FEATURE_NAMES",
    "LearnedPrefetcher",
    "ModelFormatError",
    "PrefetchModel",
    "PrefetchStats",
    "Prefetcher",
    "TrackerConfig",
    "TrainConfig",
    "candidate_rows",
    "label_within",
    "train_model",
]
