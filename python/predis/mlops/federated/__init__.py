"""Federated learning across customers: each site trains on its own access logs and only
sanitized trees leave it (see docs/federated.md).

Plain functions and classes, usable without any framework:

- :class:`FederationSpec`, :func:`initial_model`, :func:`bag`, :func:`cyclic_step`,
  :func:`check_update`, :func:`sanitize`: the shared model and its aggregation
  (:mod:`predis.mlops.federated.updates`);
- :class:`FederatedSite`: a site's local training, evaluation and threshold calibration;
- :class:`FederationSecret`, :class:`DPConfig`: key pseudonyms and differentially private
  leaves (:mod:`predis.mlops.federated.privacy`).

The Flower transport (``ClientApp`` adapter, ``ServerApp`` with the bagging strategy) is
:mod:`predis.mlops.federated.flower`, which needs the ``federated`` extra.
"""

from __future__ import annotations

from predis.mlops.federated.privacy import (
    DPConfig,
    FederationSecret,
    PrivacyBudgetError,
    add_leaf_noise,
    gaussian_sigma,
    laplace_scale,
)
from predis.mlops.federated.site import FederatedSite
from predis.mlops.federated.updates import (
    FederatedUpdateError,
    FederationSpec,
    bag,
    check_update,
    cyclic_step,
    initial_model,
    model_digest,
    sanitize,
)

__all__ = [
    "DPConfig",
    "FederatedSite",
    "FederatedUpdateError",
    "FederationSecret",
    "FederationSpec",
    "PrivacyBudgetError",
    "add_leaf_noise",
    "bag",
    "check_update",
    "cyclic_step",
    "gaussian_sigma",
    "initial_model",
    "laplace_scale",
    "model_digest",
    "sanitize",
]
