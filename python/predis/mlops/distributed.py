"""Training on a Dask cluster with ``xgboost.dask`` (the ``distributed`` extra).

:func:`dask_fit` is a :data:`~predis.prefetch.model.Fit`: given the rows
:func:`~predis.prefetch.train_model` prepared (the same candidate rows, labels and time
split as in-process training), it ships them to the cluster as chunked ``dask.array``
arrays, trains with ``xgboost.dask.train`` (early stopping on the held-out rows, the
same time budget) and returns the booster; threshold and figures are then computed exactly
as in-process. The retraining pipeline uses it when
:attr:`~predis.mlops.retraining.RetrainConfig.dask_scheduler` is set.
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

from predis.errors import InvalidArgumentError, PredisError
from predis.prefetch.features import FEATURE_NAMES
from predis.prefetch.model import Fit, TrainingRows

__all__ = ["DistributedTrainingError", "dask_fit", "make_dask_fit", "validate_scheduler_address"]


class DistributedTrainingError(PredisError):
    """The Dask cluster could not be reached or failed the training job."""


def validate_scheduler_address(address: object) -> str:
    """A Dask scheduler address ``tcp://host:port`` (or ``tls://``, ``inproc://``), checked
    for shape; anything else is an :class:`InvalidArgumentError` that shows the form."""
    if not isinstance(address, str) or not address or len(address) > 512:
        raise InvalidArgumentError(
            "dask_scheduler must be an address like 'tcp://10.0.0.5:8786', got "
            f"{str(address)[:80]!r}"
        )
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in ("tcp", "tls", "inproc", "ucx") or not rest:
        raise InvalidArgumentError(
            f"dask_scheduler {address[:80]!r} must be scheme://host:port with scheme tcp, "
            "tls, ucx or inproc (for example 'tcp://127.0.0.1:8786')"
        )
    if scheme != "inproc":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgumentError(
                f"dask_scheduler {address[:80]!r} needs a host and a port in 1-65535"
            )
        if any(c.isspace() for c in host) or "/" in host:
            raise InvalidArgumentError(f"dask_scheduler {address[:80]!r}: invalid host")
    return address


def _modules() -> tuple[Any, Any, Any]:
    try:
        import dask.array as da  # noqa: PLC0415 - optional extra
        import distributed  # noqa: PLC0415
        import xgboost.dask as dxgb  # noqa: PLC0415
    except ImportError as exc:
        raise PredisError(
            "distributed training needs dask: pip install 'predis[distributed]'"
        ) from exc
    return da, distributed, dxgb


def _deadline_callback(seconds: float | None) -> Any:
    import xgboost as xgb  # noqa: PLC0415 - heavy

    # Defined here, pickled by value by the cluster (cloudpickle): it runs on the workers.
    deadline = math.inf if seconds is None else time.time() + seconds

    class Deadline(xgb.callback.TrainingCallback):  # type: ignore[misc,name-defined]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:  # noqa: ARG002
            return time.time() > deadline

    return Deadline()


def dask_fit(
    params: dict[str, Any],
    rows: TrainingRows,
    num_boost_round: int,
    deadline_s: float | None,
    *,
    address: str,
    chunk_rows: int = 50_000,
    connect_timeout_s: float = 30.0,
) -> Any:
    """Train on the Dask cluster at ``address`` (see the module docstring)."""
    validate_scheduler_address(address)
    da, distributed, dxgb = _modules()
    names = list(FEATURE_NAMES)
    try:
        client = distributed.Client(address, timeout=connect_timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DistributedTrainingError(
            f"cannot reach the Dask scheduler at {address}: {exc}; check the address and that "
            "the scheduler is running"
        ) from exc
    try:

        def arrays(mask: Any) -> tuple[Any, Any]:
            x = rows.features[mask]
            y = rows.labels[mask].astype("float32")
            chunks = max(1, min(chunk_rows, math.ceil(len(y) / max(1, _workers(client)))))
            return (
                da.from_array(x, chunks=(chunks, x.shape[1])),
                da.from_array(y, chunks=(chunks,)),
            )

        # xgboost.dask looks the client up as the current one in places: make it so, for
        # this job only (a process may talk to several clusters).
        with client.as_current():
            xt, yt = arrays(rows.train)
            xv, yv = arrays(rows.valid)
            dtrain = dxgb.DaskDMatrix(client, xt, yt, feature_names=names)
            dvalid = dxgb.DaskDMatrix(client, xv, yv, feature_names=names)
            # nthread is per worker there; the workers' own thread counts decide.
            cluster_params = {k: v for k, v in params.items() if k != "nthread"}
            out = dxgb.train(
                client,
                cluster_params,
                dtrain,
                num_boost_round=num_boost_round,
                evals=[(dvalid, "valid")],
                early_stopping_rounds=10,
                callbacks=[_deadline_callback(deadline_s)],
                verbose_eval=False,
            )
    except PredisError:
        raise
    except Exception as exc:  # the cluster's failures come in many types
        raise DistributedTrainingError(f"training on the Dask cluster failed: {exc!r}") from exc
    finally:
        client.close()
    return out["booster"]


def _workers(client: Any) -> int:
    try:
        return len(client.scheduler_info(n_workers=-1)["workers"])
    except TypeError:  # older distributed: no n_workers argument
        return len(client.scheduler_info()["workers"])


def make_dask_fit(address: str, chunk_rows: int = 50_000, timeout_s: float = 30.0) -> Fit:
    """A :data:`~predis.prefetch.model.Fit` that trains on the cluster at ``address``
    (``timeout_s``: how long to wait for the scheduler)."""
    validate_scheduler_address(address)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1000:
        raise InvalidArgumentError(f"chunk_rows must be an int >= 1000, got {chunk_rows!r}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise InvalidArgumentError(f"timeout_s must be > 0, got {timeout_s!r}")
    return partial(
        dask_fit, address=address, chunk_rows=chunk_rows, connect_timeout_s=float(timeout_s)
    )
