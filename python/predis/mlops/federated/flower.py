"""The Flower transport: a ``ClientApp`` adapter around :class:`FederatedSite` and a
``ServerApp`` running :class:`PredisTreeStrategy` (bagging or cyclic), for Flower's
Deployment Runtime (SuperLink and SuperNodes; see docs/federated.md).

Messages carry model bytes as one uint8 array in an ``ArrayRecord`` and the
:class:`FederationSpec` as JSON in a ``ConfigRecord``. A site's data and privacy settings
are its own: they come from the SuperNode's ``--node-config`` and environment, never from
the server.

SuperNode ``--node-config`` keys:

- ``keys-file``: a ``.npy`` file of uint64 demand keys, oldest first; or
  ``segments-dir``: the collector's sealed segments (the data keys from
  ``PREDIS_DATA_KEYS`` / ``PREDIS_DATA_KEY_FILE``), newest ``window`` keys;
- ``window`` (default 200000), ``cache-items`` (the serving cache's size), ``policy``;
- ``dp-epsilon`` (turns differential privacy on), ``dp-delta``, ``dp-clip``,
  ``dp-max-trees``, ``dp-mechanism``.

The federation secret comes from ``PREDIS_FEDERATION_SECRET`` or the 0600 file
``PREDIS_FEDERATION_SECRET_FILE`` in the SuperNode's environment.

ServerApp run config keys (``[tool.flwr.app.config]`` or ``flwr run --run-config``):
``num-rounds``, ``trees-per-round``, ``mode`` (``bagging`` or ``cyclic``), ``min-nodes``,
``round-timeout``, ``max-update-bytes``, ``output-dir`` (where the final model
``federated-model.ubj`` and ``federated-summary.json`` are written, atomically).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from predis.errors import InvalidArgumentError
from predis.fileio import atomic_write_bytes, atomic_write_text
from predis.mlops.federated.privacy import DPConfig, FederationSecret
from predis.mlops.federated.site import FederatedSite
from predis.mlops.federated.updates import (
    FederatedUpdateError,
    FederationSpec,
    bag,
    check_update,
    cyclic_step,
    initial_model,
)

__all__ = [
    "MODEL_FILE",
    "SUMMARY_FILE",
    "PredisTreeStrategy",
    "client_app",
    "model_bytes",
    "model_record",
    "server_app",
]

log = logging.getLogger("predis.federated")

MODEL_FILE = "federated-model.ubj"
SUMMARY_FILE = "federated-summary.json"
_ARRAYS, _CONFIG, _METRICS = "arrays", "config", "metrics"


def model_record(data: bytes) -> ArrayRecord:
    """Model bytes as an ``ArrayRecord`` (one uint8 array)."""
    return ArrayRecord([np.frombuffer(bytes(data), dtype=np.uint8)])


def model_bytes(content: RecordDict, max_bytes: int) -> bytes:
    """The model bytes of a message's content; :class:`FederatedUpdateError` when the
    record is not one array of at most ``max_bytes`` bytes."""
    try:
        record = content.array_records[_ARRAYS]
    except KeyError:
        raise FederatedUpdateError("the message carries no model (no 'arrays' record)") from None
    if len(record) != 1:
        raise FederatedUpdateError(f"the model record must hold one array, it holds {len(record)}")
    array = next(iter(record.values()))
    try:
        nbytes = int(np.prod(array.shape)) * np.dtype(array.dtype).itemsize
    except (TypeError, ValueError) as exc:
        raise FederatedUpdateError(f"the model array has no valid shape or dtype: {exc}") from exc
    # The serialized array adds a small .npy header to the model's bytes.
    if nbytes > max_bytes or len(array.data) > max_bytes + 4096:
        raise FederatedUpdateError(
            f"update of {max(nbytes, len(array.data)):,} bytes, over the federation's limit "
            f"of {max_bytes:,} (max_update_bytes)"
        )
    try:
        data = array.numpy()
    except Exception as exc:  # a malformed array record: any decoding error
        raise FederatedUpdateError(f"the model array cannot be decoded: {exc}") from exc
    if data.dtype != np.uint8 or data.ndim != 1:
        raise FederatedUpdateError(
            f"the model array must be 1-D uint8, got {data.dtype}{data.shape}"
        )
    return data.tobytes()


def _spec_from(content: RecordDict) -> FederationSpec:
    try:
        raw = content.config_records[_CONFIG]["spec"]
        if not isinstance(raw, str):
            raise TypeError("spec is not a string")
        return FederationSpec.from_dict(json.loads(raw))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the server sent no valid federation spec: {exc}") from exc


# ---- client side -------------------------------------------------------------------------

_SITES: dict[tuple[str, str], FederatedSite] = {}  # per process: rows are prepared once


def _site_keys(cfg: dict[str, Any]) -> np.ndarray:
    window = int(cfg.get("window", 200_000))
    if "keys-file" in cfg:
        path = Path(str(cfg["keys-file"])).resolve()
        if not path.is_file():
            raise InvalidArgumentError(f"node config keys-file {path} is not a file")
        keys = np.load(path, allow_pickle=False)
        if keys.ndim != 1 or keys.dtype.kind not in "ui":
            raise InvalidArgumentError("keys-file must hold a 1-D integer array of demand keys")
        return np.ascontiguousarray(keys[-window:], dtype=np.uint64)
    if "segments-dir" in cfg:
        from predis.mlops.retraining import SegmentWindow  # noqa: PLC0415 - heavy
        from predis.security.crypto import KeyRing  # noqa: PLC0415

        root = Path(str(cfg["segments-dir"])).resolve()
        if not root.is_dir():
            raise InvalidArgumentError(f"node config segments-dir {root} is not a directory")
        ring = KeyRing.from_environment()
        return SegmentWindow(lambda: sorted(root.glob("*.seg")), ring).latest(window)
    raise InvalidArgumentError(
        "the SuperNode needs --node-config keys-file=... or segments-dir=..."
    )


def _site_dp(cfg: dict[str, Any]) -> DPConfig | None:
    if "dp-epsilon" not in cfg:
        return None
    return DPConfig(
        epsilon=float(cfg["dp-epsilon"]),
        delta=float(cfg.get("dp-delta", 1e-6)),
        clip=float(cfg.get("dp-clip", 1.0)),
        max_trees=int(cfg.get("dp-max-trees", 60)),
        mechanism=str(cfg.get("dp-mechanism", "gaussian")),
    )


def _site(context: Context, spec: FederationSpec) -> FederatedSite:
    cfg = dict(context.node_config)
    key = (json.dumps(cfg, sort_keys=True, default=str), json.dumps(spec.to_dict(), sort_keys=True))
    site = _SITES.get(key)
    if site is None:
        cache_items = cfg.get("cache-items")
        site = FederatedSite(
            _site_keys(cfg),
            spec,
            FederationSecret.from_environment(),
            cache_items=None if cache_items is None else int(cache_items),
            policy=str(cfg.get("policy", "lru")),
            dp=_site_dp(cfg),
        )
        _SITES[key] = site
    return site


client_app = ClientApp()


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    spec = _spec_from(msg.content)
    site = _site(context, spec)
    update = site.train_round(model_bytes(msg.content, 1 << 30))
    content = RecordDict(
        {_ARRAYS: model_record(update), _METRICS: MetricRecord({"trees": spec.trees_per_round})}
    )
    return Message(content=content, reply_to=msg)


@client_app.evaluate()
def _evaluate(msg: Message, context: Context) -> Message:
    spec = _spec_from(msg.content)
    site = _site(context, spec)
    figures = site.evaluate(model_bytes(msg.content, 1 << 30))
    metrics = MetricRecord({k: float(v) for k, v in figures.items()})  # type: ignore[misc]
    return Message(content=RecordDict({_METRICS: metrics}), reply_to=msg)


# ---- server side -------------------------------------------------------------------------


class PredisTreeStrategy(Strategy):
    """Tree bagging (every site boosts on the global model, their trees are appended,
    averaged) or cyclic training (one site per round, in turn).

    Every update is checked (:func:`check_update`) and a bad one is rejected with its
    reason, logged and recorded in :attr:`rounds`; the round goes on with the others. A
    site that sends an error or no reply within the round timeout (it disconnected) is
    recorded as lost and sits out the rest of the run.
    """

    def __init__(
        self,
        spec: FederationSpec,
        *,
        mode: str = "bagging",
        min_nodes: int = 2,
        wait_s: float = 120.0,
    ) -> None:
        if mode not in ("bagging", "cyclic"):
            raise InvalidArgumentError(f"mode must be 'bagging' or 'cyclic', got {mode!r}")
        if isinstance(min_nodes, bool) or not isinstance(min_nodes, int) or min_nodes < 1:
            raise InvalidArgumentError(f"min_nodes must be an int >= 1, got {min_nodes!r}")
        if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or not wait_s > 0:
            raise InvalidArgumentError(f"wait_s must be > 0 seconds, got {wait_s!r}")
        if not isinstance(spec, FederationSpec):
            raise InvalidArgumentError("spec must be a FederationSpec")
        self.spec = spec
        self.mode = mode
        self.min_nodes = min_nodes
        self.wait_s = wait_s
        self.lost: set[int] = set()
        self.rounds: list[dict[str, Any]] = []
        self._base = b""
        self.model = b""  # the latest global model
        self._sent: list[int] = []
        self._config = ConfigRecord({"spec": json.dumps(spec.to_dict())})

    def summary(self) -> None:
        """Log the configuration (Flower calls this at the start)."""
        log.info("predis %s: %s", self.mode, self.spec)

    def _nodes(self, grid: Grid) -> list[int]:
        deadline = time.monotonic() + self.wait_s
        while True:
            nodes = sorted(n for n in grid.get_node_ids() if n not in self.lost)
            enough = len(nodes) >= (self.min_nodes if not self.rounds else 1)
            if enough or time.monotonic() > deadline:
                return nodes
            time.sleep(0.5)

    def _messages(
        self, nodes: list[int], arrays: ArrayRecord, kind: str, rnd: int
    ) -> list[Message]:
        config = ConfigRecord({**dict(self._config), "server-round": rnd})
        return [
            Message(
                content=RecordDict({_ARRAYS: arrays, _CONFIG: config}),
                message_type=kind,
                dst_node_id=n,
            )
            for n in nodes
        ]

    def configure_train(
        self,
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,  # noqa: ARG002 - Flower's signature; the spec is ours
        grid: Grid,
    ) -> Iterable[Message]:
        """Send the global model to every available site (bagging) or the next one (cyclic)."""
        nodes = self._nodes(grid)
        if self.mode == "cyclic" and nodes:
            nodes = [nodes[(server_round - 1) % len(nodes)]]
        self.start_round(model_bytes(RecordDict({_ARRAYS: arrays}), 1 << 30), nodes)
        log.info("round %d: training on %d sites", server_round, len(nodes))
        return self._messages(nodes, arrays, MessageType.TRAIN, server_round)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Check every update, then bag (or cycle) the accepted ones."""
        items: list[tuple[int, RecordDict | str]] = []
        for msg in replies:
            node = int(msg.metadata.src_node_id)
            content: RecordDict | str = str(msg.error.reason) if msg.has_error() else msg.content
            items.append((node, content))
        new = self.aggregate_updates(server_round, items)
        accepted = MetricRecord({"accepted": self.rounds[-1]["accepted"]})
        return (None if new is None else model_record(new)), accepted

    def aggregate_updates(
        self, server_round: int, replies: Iterable[tuple[int, RecordDict | str]]
    ) -> bytes | None:
        """The next global model from ``(node, content or error reason)`` replies to the
        sites this round was sent to (None: no update accepted, the model stays). Rejected,
        failed and missing sites are recorded in :attr:`rounds`."""
        record: dict[str, Any] = {
            "round": server_round,
            "sent": len(self._sent),
            "accepted": 0,
            "rejected": [],
            "errors": [],
            "lost": [],
        }
        self.rounds.append(record)
        answered: set[int] = set()
        updates: list[bytes] = []
        for node, content in replies:
            if isinstance(content, str):
                # An error reply: the site's ClientApp failed, or the SuperLink gave up on
                # the site (such replies may come from the SuperLink's own node id).
                record["errors"].append({"node": node, "reason": content})
                log.warning("round %d: error for site %d: %s", server_round, node, content)
                continue
            answered.add(node)
            try:
                data = model_bytes(content, self.spec.max_update_bytes)
                check_update(data, self.spec, self._base, f"update from site {node}")
            except FederatedUpdateError as exc:
                record["rejected"].append({"node": node, "reason": str(exc)})
                log.warning("round %d: rejected: %s", server_round, exc)
                continue
            updates.append(data)
        # A site that sent no model (an error, or no reply within the round timeout: it
        # disconnected) sits out the rest of the run.
        record["lost"] = sorted(set(self._sent) - answered)
        self.lost.update(record["lost"])
        for node in record["lost"]:
            log.warning("round %d: site %d sent no update (disconnected?)", server_round, node)
        record["accepted"] = len(updates)
        if not updates:
            return None
        if self.mode == "cyclic":
            new = cyclic_step(self._base, updates[0], self.spec)
        else:
            new = bag(self._base, updates, self.spec)
        self.model = new
        return new

    def start_round(self, base: bytes, nodes: list[int]) -> None:
        """Record the global model and the sites a round is sent to (configure_train does
        this; exposed for aggregation without a Flower grid)."""
        self._base = bytes(base)
        self.model = self._base
        self._sent = list(nodes)

    def configure_evaluate(
        self,
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,  # noqa: ARG002 - Flower's signature; the spec is ours
        grid: Grid,
    ) -> Iterable[Message]:
        """Ask every available site for its held-out figures of the global model."""
        nodes = sorted(n for n in grid.get_node_ids() if n not in self.lost)
        return self._messages(nodes, arrays, MessageType.EVALUATE, server_round)

    def aggregate_evaluate(
        self,
        server_round: int,  # noqa: ARG002 - Flower's signature
        replies: Iterable[Message],
    ) -> MetricRecord | None:
        """Held-out log loss and AUC, averaged over sites weighted by their held-out rows."""
        total, loss, auc = 0.0, 0.0, 0.0
        for msg in replies:
            if msg.has_error():
                continue
            try:
                m = msg.content.metric_records[_METRICS]
                rows = float(m["valid_rows"])  # type: ignore[arg-type]
                loss += rows * float(m["valid_logloss"])  # type: ignore[arg-type]
                auc += rows * float(m["valid_auc"])  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError):
                continue
            total += rows
        if total <= 0:
            return None
        figures: dict[str, Any] = {"valid_logloss": loss / total, "valid_auc": auc / total}
        if self.rounds:
            self.rounds[-1]["evaluation"] = figures
        return MetricRecord(figures)


def _run_config(context: Context) -> dict[str, Any]:
    cfg = dict(context.run_config)
    out = cfg.get("output-dir")
    if not out:
        raise InvalidArgumentError("the ServerApp needs run config output-dir (a directory)")
    output = Path(str(out)).resolve()
    if not output.is_dir():
        raise InvalidArgumentError(f"output-dir {output} is not a directory")
    try:
        return {
            "rounds": int(cfg.get("num-rounds", 3)),
            "trees": int(cfg.get("trees-per-round", 10)),
            "mode": str(cfg.get("mode", "bagging")),
            "min_nodes": int(cfg.get("min-nodes", 2)),
            "timeout": float(cfg.get("round-timeout", 300.0)),
            "max_bytes": int(cfg.get("max-update-bytes", 1 << 20)),
            "output": output,
        }
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            "run config: num-rounds, trees-per-round, min-nodes and max-update-bytes must be "
            f"integers, round-timeout a number ({exc})"
        ) from exc


server_app = ServerApp()


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    cfg = _run_config(context)
    if not 1 <= cfg["rounds"] <= 10_000 or not 1 <= cfg["timeout"] <= 86_400:
        raise InvalidArgumentError("num-rounds must be in [1, 10000], round-timeout in [1, 86400]")
    spec = FederationSpec(trees_per_round=cfg["trees"], max_update_bytes=cfg["max_bytes"])
    strategy = PredisTreeStrategy(
        spec, mode=cfg["mode"], min_nodes=cfg["min_nodes"], wait_s=cfg["timeout"]
    )
    strategy.start(
        grid,
        model_record(initial_model(spec)),
        num_rounds=cfg["rounds"],
        timeout=cfg["timeout"],
    )
    atomic_write_bytes(cfg["output"] / MODEL_FILE, strategy.model)
    summary = {
        "mode": cfg["mode"],
        "rounds": strategy.rounds,
        "lost": sorted(strategy.lost),
        "spec": spec.to_dict(),
        "pid": os.getpid(),
    }
    atomic_write_text(cfg["output"] / SUMMARY_FILE, json.dumps(summary, indent=2))
