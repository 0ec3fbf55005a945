"""The customer model manager: versioned models, aliases, history, per customer.

Layout under the registry root, one folder per customer (the id checked by
:func:`predis.security.validate_customer_id`)::

    <customer>/versions/<n>/model.ubj   the model bytes (XGBoost UBJ), mode 0600
    <customer>/versions/<n>/meta.json   version, parent, training window, metrics,
                                        feature schema, sha256, size, created
    <customer>/aliases.json             {"champion": n, "challenger": n, "previous": n, ...}
    <customer>/history.jsonl            one JSON line per change: time, actor, reason, ...
    <customer>/.lock                    serialises writers across threads and processes

A version folder is built under a temporary name and renamed into place, so it exists whole
or not at all. ``aliases.json`` is replaced atomically (temporary file, fsync, rename):
promotion and rollback are pointer swaps that a crash leaves either done or not done. The
history is appended and fsynced after the swap; a crash between the two loses at most that
line, and a torn last line is skipped when reading.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from predis.errors import InvalidArgumentError, PredisError
from predis.fileio import atomic_write_bytes, atomic_write_text, fsync_dir
from predis.security.validation import safe_path, validate_customer_id, validate_name

__all__ = ["ALIASES", "ModelIntegrityError", "ModelMeta", "ModelRegistry"]

log = logging.getLogger("predis.registry")
_NUMBERED = re.compile(r"(?:\.staging-|\.deleting-)?(\d+)(?:-\d+)?")

ALIASES = ("champion", "challenger", "previous")
_MAX_MODEL = 1 << 30


class ModelIntegrityError(PredisError):
    """A stored model does not match its checksum or the expected feature schema."""


@dataclass(frozen=True)
class ModelMeta:
    """What the registry records about a model version."""

    version: int
    parent: int | None
    training_window: tuple[int, int]
    metrics: dict[str, float]
    feature_schema: tuple[str, ...]
    sha256: str
    size: int
    created: float


def _meta_from(d: dict[str, Any]) -> ModelMeta:
    try:
        return ModelMeta(
            version=int(d["version"]),
            parent=None if d["parent"] is None else int(d["parent"]),
            training_window=(int(d["training_window"][0]), int(d["training_window"][1])),
            metrics={str(k): float(v) for k, v in d["metrics"].items()},
            feature_schema=tuple(str(x) for x in d["feature_schema"]),
            sha256=str(d["sha256"]),
            size=int(d["size"]),
            created=float(d["created"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelIntegrityError(f"model metadata is malformed: {exc}") from exc


class ModelRegistry:
    """Model versions and aliases for one customer."""

    def __init__(self, root: str | os.PathLike[str], customer: str) -> None:
        self.customer = validate_customer_id(customer)
        root_path = Path(root)
        root_path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir = safe_path(root_path, self.customer)
        if not (self.dir / "versions").is_dir():
            (self.dir / "versions").mkdir(parents=True, exist_ok=True, mode=0o700)
            fsync_dir(self.dir)
            fsync_dir(root_path)
        self._aliases = self.dir / "aliases.json"
        self._history = self.dir / "history.jsonl"

    # ---- locking and files ----

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _version_dir(self, version: int) -> Path:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgumentError(f"a version is an int >= 1, got {version!r}")
        return self.dir / "versions" / str(version)

    def _read_aliases(self) -> dict[str, int | None]:
        try:
            data = json.loads(self._aliases.read_text())
        except FileNotFoundError:
            return dict.fromkeys(ALIASES)
        except ValueError as exc:
            raise ModelIntegrityError(f"{self._aliases} is corrupt: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"{self._aliases} is corrupt: not an object")
        out: dict[str, int | None] = {}
        for a in ALIASES:
            v = data.get(a)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ModelIntegrityError(f"{self._aliases} is corrupt: {a} = {v!r}")
            out[a] = v
        return out

    def _write_aliases(self, aliases: dict[str, int | None]) -> None:
        atomic_write_text(self._aliases, json.dumps(aliases, sort_keys=True), mode=0o600)

    def _append_history(self, record: dict[str, Any]) -> None:
        """Append one line (caller holds the lock), first cutting a line torn by a crash so
        that it cannot end up in the middle of the file."""
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(self._history, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                keep = os.pread(fd, size, 0).rfind(b"\n") + 1
                os.ftruncate(fd, keep)
                log.warning(
                    "cut a torn history line (%d bytes) from %s", size - keep, self._history
                )
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    # ---- versions ----

    def _next_version(self) -> int:
        """One past every number ever used here: live versions, half-built or half-deleted
        ones, and the persisted counter, so that gc never lets a number be reused."""
        highest = 0
        for p in (self.dir / "versions").iterdir():
            m = _NUMBERED.fullmatch(p.name)
            if m:
                highest = max(highest, int(m.group(1)))
        with suppress(FileNotFoundError, ValueError):
            highest = max(highest, int((self.dir / "next_version").read_text()) - 1)
        return highest + 1

    def list_versions(self) -> list[int]:
        """Stored versions, ascending."""
        out = []
        for p in (self.dir / "versions").iterdir():
            if p.is_dir() and p.name.isdigit() and (p / "meta.json").is_file():
                out.append(int(p.name))
        return sorted(out)

    def register(
        self,
        model: bytes,
        *,
        feature_schema: Sequence[str],
        training_window: tuple[int, int],
        metrics: dict[str, float] | None = None,
        parent: int | None = None,
        actor: str = "predis",
    ) -> ModelMeta:
        """Store a new model version (not yet aliased) and return its metadata."""
        if not isinstance(model, (bytes, bytearray)) or not model or len(model) > _MAX_MODEL:
            raise InvalidArgumentError("model must be non-empty bytes of at most 1 GiB")
        if isinstance(feature_schema, (str, bytes)):
            raise InvalidArgumentError("feature_schema must be a list of names, not one string")
        schema = tuple(validate_name(f, "feature name") for f in feature_schema)
        if not schema or len(set(schema)) != len(schema):
            raise InvalidArgumentError("feature_schema must be a non-empty list of distinct names")
        window = tuple(training_window) if isinstance(training_window, (tuple, list)) else ()
        ints = all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in window)
        if len(window) != 2 or not ints or window[0] > window[1]:
            raise InvalidArgumentError(
                "training_window must be (start_ns, end_ns) with start <= end"
            )
        start, end = window
        clean_metrics = {}
        for k, v in (metrics or {}).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidArgumentError(f"metric {k!r} must be a finite number, got {v!r}")
            clean_metrics[validate_name(k, "metric name")] = float(v)
        if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int)):
            raise InvalidArgumentError(f"parent must be a version number, got {parent!r}")
        with self._locked():
            versions = self.list_versions()
            if parent is not None and parent not in versions:
                raise InvalidArgumentError(f"parent version {parent} does not exist")
            version = self._next_version()
            atomic_write_text(self.dir / "next_version", str(version + 1), mode=0o600)
            meta = ModelMeta(
                version=version,
                parent=parent,
                training_window=(start, end),
                metrics=clean_metrics,
                feature_schema=schema,
                sha256=hashlib.sha256(model).hexdigest(),
                size=len(model),
                created=time.time(),
            )
            final = self._version_dir(version)
            staging = self.dir / "versions" / f".staging-{version}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(mode=0o700)
            atomic_write_bytes(staging / "model.ubj", bytes(model), mode=0o600)
            atomic_write_text(staging / "meta.json", json.dumps(asdict(meta)), mode=0o600)
            try:
                os.rename(staging, final)  # the version appears whole or not at all
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise PredisError(f"cannot publish version {version}: {exc}") from exc
            fsync_dir(self.dir / "versions")
            self._append_history(
                {"time": meta.created, "actor": actor, "action": "register", "version": version}
            )
            return meta

    def get(
        self, ref: int | str, expected_schema: Sequence[str] | None = None
    ) -> tuple[ModelMeta, bytes]:
        """(metadata, model bytes) of a version or an alias, after checking the sha256 and,
        when given, that the feature schema is exactly ``expected_schema``."""
        version = self.resolve(ref)
        vdir = self._version_dir(version)
        try:
            meta = _meta_from(json.loads((vdir / "meta.json").read_text()))
            model = (vdir / "model.ubj").read_bytes()
        except FileNotFoundError as exc:
            raise InvalidArgumentError(f"version {version} does not exist") from exc
        except ValueError as exc:
            raise ModelIntegrityError(f"version {version}: metadata is not JSON") from exc
        if meta.version != version or hashlib.sha256(model).hexdigest() != meta.sha256:
            raise ModelIntegrityError(f"version {version}: the model does not match its checksum")
        if expected_schema is not None and tuple(expected_schema) != meta.feature_schema:
            got, want = list(meta.feature_schema), list(expected_schema)
            raise ModelIntegrityError(f"version {version}: feature schema {got} is not {want}")
        return meta, model

    def resolve(self, ref: int | str) -> int:
        """A version number from a version or an alias name."""
        if isinstance(ref, str):
            if ref not in ALIASES:
                raise InvalidArgumentError(f"unknown alias {ref!r}; aliases are {list(ALIASES)}")
            version = self._read_aliases()[ref]
            if version is None:
                raise InvalidArgumentError(f"alias {ref!r} is not set")
            return int(version)
        self._version_dir(ref)
        return ref

    def aliases(self) -> dict[str, int | None]:
        """The current aliases."""
        return self._read_aliases()

    # ---- alias changes ----

    def promote(
        self, version: int, alias: str = "champion", *, actor: str, reason: str
    ) -> dict[str, int | None]:
        """Point ``alias`` at ``version`` (verified first). Promoting to champion moves the
        old champion to ``previous`` and clears ``challenger`` if it was this version."""
        if alias not in ("champion", "challenger"):
            raise InvalidArgumentError("promote sets 'champion' or 'challenger'")
        self._version_dir(version)  # a version number, not an alias name
        self._check_actor(actor, reason)
        with self._locked():
            self.get(version)  # a corrupt or missing model is refused; aliases stay
            before = self._read_aliases()
            after = dict(before)
            if alias == "champion":
                if before["champion"] != version:
                    after["previous"] = before["champion"]
                after["champion"] = version
                if before["challenger"] == version:
                    after["challenger"] = None
            else:
                after["challenger"] = version
            self._write_aliases(after)
            self._append_history(
                {
                    "time": time.time(),
                    "actor": actor,
                    "reason": reason,
                    "action": f"promote-{alias}",
                    "version": version,
                    "before": before,
                    "after": after,
                }
            )
            return after

    def rollback(self, *, actor: str, reason: str) -> dict[str, int | None]:
        """Make ``previous`` the champion again; the demoted champion is forgotten as an alias."""
        self._check_actor(actor, reason)
        with self._locked():
            before = self._read_aliases()
            if before["previous"] is None:
                raise InvalidArgumentError("nothing to roll back to: 'previous' is not set")
            self.get(before["previous"])
            after = dict(before, champion=before["previous"], previous=None)
            self._write_aliases(after)
            self._append_history(
                {
                    "time": time.time(),
                    "actor": actor,
                    "reason": reason,
                    "action": "rollback",
                    "version": after["champion"],
                    "before": before,
                    "after": after,
                }
            )
            return after

    def retire_challenger(self, *, actor: str, reason: str) -> dict[str, int | None]:
        """Clear the ``challenger`` alias (its test stopped); the version stays stored."""
        self._check_actor(actor, reason)
        with self._locked():
            before = self._read_aliases()
            after = dict(before, challenger=None)
            self._write_aliases(after)
            self._append_history(
                {
                    "time": time.time(),
                    "actor": actor,
                    "reason": reason,
                    "action": "retire-challenger",
                    "version": before["challenger"],
                    "before": before,
                    "after": after,
                }
            )
            return after

    def record(
        self, action: str, *, actor: str, reason: str, details: dict[str, float] | None = None
    ) -> None:
        """Append a line to the history that changes no alias (for example a challenger that
        failed validation and was dropped: ``action="validation-failed"``)."""
        self._check_actor(actor, reason)
        action = validate_name(action, "action")
        if action in ("register", "rollback", "gc", "retire-challenger") or action.startswith(
            "promote-"
        ):
            raise InvalidArgumentError(f"{action!r} is recorded by the registry itself")
        clean = {}
        for k, v in (details or {}).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidArgumentError(f"detail {k!r} must be a finite number, got {v!r}")
            clean[validate_name(k, "detail name")] = float(v)
        with self._locked():
            self._append_history(
                {
                    "time": time.time(),
                    "actor": actor,
                    "reason": reason,
                    "action": action,
                    "details": clean,
                }
            )

    @staticmethod
    def _check_actor(actor: object, reason: object) -> None:
        if not isinstance(actor, str) or not actor or len(actor) > 200:
            raise InvalidArgumentError("actor must be a non-empty string")
        if not isinstance(reason, str) or not reason or len(reason) > 2000:
            raise InvalidArgumentError("reason must be a non-empty string")

    # ---- history and housekeeping ----

    def history(self) -> list[dict[str, Any]]:
        """Every recorded change, oldest first (a torn last line, from a crash, is skipped)."""
        try:
            lines = self._history.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        out = []
        for n, line in enumerate(lines):
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                if n != len(lines) - 1:
                    raise ModelIntegrityError(f"{self._history}: line {n + 1} is corrupt") from None
        return out

    def gc(self, keep_latest: int = 0) -> list[int]:
        """Delete versions that no alias references, except the ``keep_latest`` newest."""
        if isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 0:
            raise InvalidArgumentError("keep_latest must be an int >= 0")
        with self._locked():
            referenced = {v for v in self._read_aliases().values() if v is not None}
            versions = self.list_versions()
            keep = referenced | set(versions[-keep_latest:] if keep_latest else [])
            removed = [v for v in versions if v not in keep]
            for v in removed:
                # Renamed first: a crash mid-delete leaves a .deleting folder, never a
                # half-empty version folder under its own number.
                doomed = self.dir / "versions" / f".deleting-{v}-{os.getpid()}"
                os.rename(self._version_dir(v), doomed)
                shutil.rmtree(doomed)
            if removed:
                fsync_dir(self.dir / "versions")
            # Half-built versions that a crash left behind.
            for pattern in (".staging-*", ".deleting-*"):
                for p in (self.dir / "versions").glob(pattern):
                    shutil.rmtree(p, ignore_errors=True)
            if removed:
                self._append_history(
                    {"time": time.time(), "actor": "gc", "action": "gc", "removed": removed}
                )
            return removed
