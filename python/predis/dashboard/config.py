"""Dashboard settings and the customers config file.

The customers config is a JSON file, validated whole when it is loaded (an unknown key, a
bad customer id or a negative price is an error that names the place, and nothing starts)::

    {"customers": {"acme": {
        "caches": ["main"],                 # the `cache` label values that are acme's
        "abtests": ["ranker"],              # A/B tests (`test` label): the control arm
        "drift_detectors": ["hit-rate"],    # drift detectors (`detector` label)
        "no_prefetch_hit_ratio": 0.41,      # optional: measured without prefetch
        "roi": {"backend_cost_per_fetch": 4e-7, "backend_cost_per_gb": 0.09,
                "mean_fetch_bytes": 4096, "backend_latency_s": 0.012,
                "gpu_cost_per_hour": 3.4, "predis_price_per_year": 12000,
                "currency": "USD"}}}}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from predis.dashboard.roi import ROIInputs
from predis.errors import InvalidArgumentError
from predis.monitoring.shm import validate_block_name
from predis.security.validation import validate_customer_id, validate_host, validate_name

__all__ = [
    "CustomerConfig",
    "DashboardConfig",
    "load_customers",
    "parse_customers",
    "validate_scrape_url",
]

_MAX_CONFIG = 1 << 20
_CUSTOMER_KEYS = {"caches", "abtests", "drift_detectors", "no_prefetch_hit_ratio", "roi"}


@dataclass(frozen=True)
class CustomerConfig:
    """What belongs to one customer and the inputs of its ROI model."""

    id: str
    caches: tuple[str, ...]
    roi: ROIInputs
    abtests: tuple[str, ...] = ()
    drift_detectors: tuple[str, ...] = ()
    no_prefetch_hit_ratio: float | None = None


def _names(value: object, where: str, check: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(f"{where} must be a list of names")
    out = tuple(check(v) for v in value)
    if len(set(out)) != len(out):
        raise InvalidArgumentError(f"{where} names an entry twice")
    return out


def parse_customers(data: object, where: str = "customers config") -> dict[str, CustomerConfig]:
    """Validated customers from a parsed JSON document."""
    if not isinstance(data, Mapping) or set(data) != {"customers"}:
        raise InvalidArgumentError(f'{where} must be an object with one key, "customers"')
    raw = data["customers"]
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidArgumentError(f"{where}: customers must be a non-empty object")
    out: dict[str, CustomerConfig] = {}
    owner: dict[str, str] = {}
    for key, body in raw.items():
        cid = validate_customer_id(key)
        at = f"{where}: customers.{cid}"
        if not isinstance(body, Mapping):
            raise InvalidArgumentError(f"{at} must be an object")
        unknown = sorted(set(body) - _CUSTOMER_KEYS)
        if unknown:
            raise InvalidArgumentError(
                f"{at}: unknown keys {unknown}; known: {sorted(_CUSTOMER_KEYS)}"
            )
        if "caches" not in body or "roi" not in body:
            raise InvalidArgumentError(f"{at} needs 'caches' and 'roi'")
        caches = _names(body["caches"], f"{at}.caches", validate_block_name)
        if not caches:
            raise InvalidArgumentError(f"{at}.caches must name at least one cache")
        for c in caches:
            if c in owner:
                # One cache, one customer: otherwise a token of one would see the other's data.
                raise InvalidArgumentError(f"{at}: cache {c!r} already belongs to {owner[c]}")
            owner[c] = cid
        base = body.get("no_prefetch_hit_ratio")
        if base is not None and (
            isinstance(base, bool)
            or not isinstance(base, (int, float))
            or not math.isfinite(base)
            or not 0 <= base <= 1
        ):
            raise InvalidArgumentError(
                f"{at}.no_prefetch_hit_ratio must be in [0, 1], got {base!r}"
            )
        out[cid] = CustomerConfig(
            id=cid,
            caches=caches,
            roi=ROIInputs.from_mapping(body["roi"], f"{at}.roi"),
            abtests=_names(body.get("abtests", []), f"{at}.abtests", validate_block_name),
            drift_detectors=_names(
                body.get("drift_detectors", []), f"{at}.drift_detectors", validate_block_name
            ),
            no_prefetch_hit_ratio=None if base is None else float(base),
        )
    return out


def load_customers(path: str | os.PathLike[str]) -> dict[str, CustomerConfig]:
    """The customers config at ``path`` (JSON), validated."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"customers config {p} cannot be read: {exc.strerror}") from None
    if len(raw) > _MAX_CONFIG:
        raise InvalidArgumentError(f"customers config {p} is larger than 1 MiB")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgumentError(f"customers config {p} is not valid JSON: {exc}") from None
    return parse_customers(data, str(p))


def validate_scrape_url(url: object) -> str:
    """An exporter's ``http(s)://host:port/path`` URL (no user info, no fragment)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise InvalidArgumentError("a scrape URL must be a string of at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"scrape URL {url[:100]!r} must be http(s)://host[:port]/path")
    if parts.username or parts.password or parts.fragment:
        raise InvalidArgumentError(
            f"scrape URL {url[:100]!r} must not carry a user, password or fragment; "
            "use scrape_token_file for a bearer token"
        )
    validate_host(parts.hostname)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidArgumentError(f"scrape URL {url[:100]!r} has an invalid port") from None
    return url


def _positive(name: str, value: object, upper: float = 1e9) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= upper:
        raise InvalidArgumentError(f"{name} must be a number in (0, {upper:g}], got {value!r}")
    return float(value)


@dataclass
class DashboardConfig:
    """How the dashboard runs.

    Attributes:
        customers: the customers (see :func:`load_customers`).
        token_store: the ``predis token`` store whose ``dashboard`` tokens may log in.
        scrape_urls: exporters' ``/metrics`` URLs to scrape.
        prometheus_url: read from a Prometheus server's HTTP API instead of (or beside) the
            exporters.
        scrape_token_file: a bearer token (mode 0600) sent to the exporters and Prometheus.
        db_path: the SQLite history; None keeps it in memory (lost at exit).
        interval_s: seconds between scrapes.
        refresh_s: seconds between live updates pushed to open pages.
        retention_s: history older than this is deleted.
        window_s: the window the ROI figures and cards cover.
        stale_after_s: data older than this shows as "no data since ..." (default: 3 scrapes).
        registry_dir: a model registry root (``<root>/<customer>/aliases.json``, history).
        addr, port: where to listen (port 0: any free port).
        tls_certfile, tls_keyfile: serve HTTPS (cookies are then also ``Secure``).
        session_ttl_s: how long a login lasts.
        login_failures, login_window_s: at most this many failed logins per client address
            per window, then 429 until the window passes.
    """

    customers: dict[str, CustomerConfig]
    token_store: str | os.PathLike[str] | None = None
    scrape_urls: Sequence[str] = ()
    prometheus_url: str | None = None
    scrape_token_file: str | os.PathLike[str] | None = None
    db_path: str | os.PathLike[str] | None = None
    interval_s: float = 5.0
    refresh_s: float = 5.0
    retention_s: float = 30 * 86_400.0
    window_s: float = 3_600.0
    stale_after_s: float | None = None
    registry_dir: str | os.PathLike[str] | None = None
    addr: str = "127.0.0.1"
    port: int = 8050
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    session_ttl_s: float = 8 * 3600.0
    login_failures: int = 5
    login_window_s: float = 300.0

    def validate(self) -> DashboardConfig:
        """Check every field; returns self. Raises InvalidArgumentError naming the field."""
        if not self.customers or not all(
            isinstance(c, CustomerConfig) for c in self.customers.values()
        ):
            raise InvalidArgumentError("customers must map ids to CustomerConfig (load_customers)")
        for cid in self.customers:
            validate_customer_id(cid)
        self.scrape_urls = tuple(validate_scrape_url(u) for u in self.scrape_urls)
        if self.prometheus_url is not None:
            self.prometheus_url = validate_scrape_url(self.prometheus_url)
        self.interval_s = _positive("interval_s", self.interval_s, 86_400)
        self.refresh_s = _positive("refresh_s", self.refresh_s, 3_600)
        self.retention_s = _positive("retention_s", self.retention_s, 10 * 365 * 86_400)
        self.window_s = _positive("window_s", self.window_s, 366 * 86_400)
        self.session_ttl_s = _positive("session_ttl_s", self.session_ttl_s, 30 * 86_400)
        self.login_window_s = _positive("login_window_s", self.login_window_s, 86_400)
        if self.stale_after_s is None:
            self.stale_after_s = 3 * self.interval_s
        self.stale_after_s = _positive("stale_after_s", self.stale_after_s, 86_400)
        n = self.login_failures
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
            raise InvalidArgumentError(f"login_failures must be an int in 1..1000, got {n!r}")
        self.addr = validate_host(self.addr)
        p = self.port
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535:
            raise InvalidArgumentError(f"port must be an int in 0..65535 (0: any free), got {p!r}")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise InvalidArgumentError("TLS needs both a certificate file and a key file")
        if self.token_store is None:
            raise InvalidArgumentError(
                "the dashboard needs a token store (create tokens with "
                "`predis token create --customer ID --scopes dashboard`)"
            )
        validate_name(Path(self.token_store).name, "token store file name")
        return self

    @property
    def tls(self) -> bool:
        """Whether the dashboard serves HTTPS."""
        return self.tls_certfile is not None
