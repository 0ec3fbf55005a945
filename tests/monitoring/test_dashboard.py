"""The Grafana dashboard in deploy/grafana/ is valid JSON and queries only metrics of the
catalogue, so a renamed metric cannot leave a panel silently empty."""

from __future__ import annotations

import json
import re
from pathlib import Path

from predis.monitoring import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "predis-dashboard.json"


def exposed_names() -> set[str]:
    names = set()
    for name, m in CATALOGUE.items():
        if m.type == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def test_dashboard_queries_only_catalogue_metrics():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "predis-overview"
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 25
    used = {m for e in exprs for m in re.findall(r"\bpredis_[a-z0-9_]+", e)}
    unknown = used - exposed_names()
    assert not unknown, f"the dashboard queries metrics that do not exist: {sorted(unknown)}"
    # Every area of the catalogue has a panel.
    for prefix in (
        "predis_keyspace",
        "predis_prefetch",
        "predis_gpu",
        "predis_drift",
        "predis_abtest",
        "predis_collector",
        "predis_push",
        "predis_exporter",
    ):
        assert any(m.startswith(prefix) for m in used), prefix
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_docs_list_every_metric():
    docs = (ROOT / "docs" / "monitoring.md").read_text()
    missing = [name for name in CATALOGUE if f"`{name}`" not in docs]
    assert not missing, f"docs/monitoring.md does not list {missing}"
