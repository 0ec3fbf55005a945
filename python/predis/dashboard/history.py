"""The dashboard's history: scraped samples in SQLite (WAL, versioned schema, retention).

Tables::

    meta(key, value)                         schema version
    series(id, target, metric, labels)       one row per distinct series (labels: sorted JSON)
    samples(series_id, ts, value)            one row per series per scrape
    scrapes(target, ts, ok, error)           one row per scrape attempt, ok or not

A scrape that fails stores no samples, only its ``scrapes`` row, so a gap in the samples is
a gap in the charts: nothing is interpolated. Every statement is parameterised.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from predis.errors import InvalidArgumentError, PredisError

__all__ = ["SCHEMA_VERSION", "History", "HistoryError", "Point", "ScrapeStatus"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,
    UNIQUE (target, metric, labels)
);
CREATE INDEX IF NOT EXISTS series_metric ON series (metric);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL REFERENCES series (id),
    ts REAL NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_ts ON samples (ts);
CREATE TABLE IF NOT EXISTS scrapes (
    target TEXT NOT NULL,
    ts REAL NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS scrapes_target_ts ON scrapes (target, ts);
"""


class HistoryError(PredisError):
    """The history database is unusable (another program's file, a newer schema)."""


@dataclass(frozen=True)
class Point:
    """One stored sample of a series."""

    ts: float
    value: float
    labels: dict[str, str]
    target: str


@dataclass(frozen=True)
class ScrapeStatus:
    """A target's latest scrape and its latest successful one (None: never)."""

    target: str
    last_attempt: float | None
    last_ok: float | None
    last_error: str | None


def _labels_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


class History:
    """The SQLite history, shared by the scraper thread and the web handlers.

    One connection guarded by a lock: SQLite serialises writers anyway, and the dashboard's
    load is a few statements a second.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            if self.path.is_symlink():
                raise InvalidArgumentError(f"history database {self.path} is a symbolic link")
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = str(self.path)
        else:
            target = ":memory:"
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"history database {target} cannot be used ({exc}); move it away or pass "
                "another --db path"
            ) from None
        if self.path is not None:
            os.chmod(self.path, 0o600)

    def _migrate(self) -> None:
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise HistoryError(
                f"history schema version {found} is newer than this Predis ({SCHEMA_VERSION}); "
                "upgrade Predis or use another --db path"
            )
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if found == 0 and tables:
            raise HistoryError("the history database holds tables that are not Predis's")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # ---- writing ----

    def add_scrape(
        self,
        target: str,
        ts: float,
        samples: Iterable[tuple[str, dict[str, str], float]] | None,
        error: str | None = None,
    ) -> int:
        """Record one scrape of ``target`` at ``ts``: its (metric, labels, value) samples, or
        ``samples=None`` and the ``error`` for a failed one. Returns the samples stored."""
        n = 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO scrapes (target, ts, ok, error) VALUES (?, ?, ?, ?)",
                    (target, ts, int(samples is not None), None if error is None else error[:500]),
                )
                for metric, labels, value in samples or ():
                    key = _labels_key(labels)
                    row = self._db.execute(
                        "SELECT id FROM series WHERE target = ? AND metric = ? AND labels = ?",
                        (target, metric, key),
                    ).fetchone()
                    if row is None:
                        cur = self._db.execute(
                            "INSERT INTO series (target, metric, labels) VALUES (?, ?, ?)",
                            (target, metric, key),
                        )
                        sid = cur.lastrowid
                    else:
                        sid = row[0]
                    self._db.execute(
                        "INSERT OR REPLACE INTO samples (series_id, ts, value) VALUES (?, ?, ?)",
                        (sid, ts, float(value)),
                    )
                    n += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return n

    def prune(self, older_than: float) -> int:
        """Delete samples and scrape rows before ``older_than``; returns samples deleted."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                cur = self._db.execute("DELETE FROM samples WHERE ts < ?", (older_than,))
                self._db.execute("DELETE FROM scrapes WHERE ts < ?", (older_than,))
                self._db.execute(
                    "DELETE FROM series WHERE id NOT IN (SELECT DISTINCT series_id FROM samples)"
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cur.rowcount

    # ---- reading ----

    def points(
        self,
        metric: str,
        since: float,
        until: float | None = None,
        label: str | None = None,
        values: Sequence[str] = (),
    ) -> list[Point]:
        """Samples of ``metric`` in [since, until], oldest first; when ``label`` is given,
        only series whose ``label`` is one of ``values``."""
        until = time.time() if until is None else until
        with self._lock:
            rows = self._db.execute(
                "SELECT s.ts, s.value, r.labels, r.target FROM samples s "
                "JOIN series r ON r.id = s.series_id "
                "WHERE r.metric = ? AND s.ts >= ? AND s.ts <= ? ORDER BY s.ts",
                (metric, since, until),
            ).fetchall()
        out = []
        wanted = set(values)
        for ts, value, labels, target in rows:
            lab = json.loads(labels)
            if label is not None and lab.get(label) not in wanted:
                continue
            out.append(Point(ts, value, lab, target))
        return out

    def last_time(self, metric: str, label: str, values: Sequence[str]) -> float | None:
        """The newest sample time of ``metric`` among series whose ``label`` is in
        ``values`` (None: no such sample), without reading the whole history."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.labels, MAX(s.ts) FROM samples s JOIN series r ON r.id = s.series_id "
                "WHERE r.metric = ? GROUP BY r.id",
                (metric,),
            ).fetchall()
        wanted = set(values)
        times = [ts for labels, ts in rows if json.loads(labels).get(label) in wanted]
        return max(times) if times else None

    def status(self) -> list[ScrapeStatus]:
        """Every target's latest attempt and latest success."""
        with self._lock:
            rows = self._db.execute(
                "SELECT target, MAX(ts), MAX(CASE WHEN ok = 1 THEN ts END) FROM scrapes "
                "GROUP BY target ORDER BY target"
            ).fetchall()
            out = []
            for target, last, last_ok in rows:
                err = self._db.execute(
                    "SELECT error FROM scrapes WHERE target = ? AND ts = ?", (target, last)
                ).fetchone()
                out.append(ScrapeStatus(target, last, last_ok, err[0] if err else None))
        return out

    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])
