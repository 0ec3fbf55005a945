"""API tokens: random, shown once, stored only as salted hashes, compared in constant time.

A token reads ``pdk_<id>_<secret>``: ``id`` (8 hex characters) names the record, ``secret``
(32 random bytes, URL-safe base64) proves possession. The store keeps, per token, the
customer, scopes, creation and expiry times, revocation, a random salt and
``sha256(salt + secret)`` - never the secret. The store is one JSON file, mode 0600, written
atomically; a store readable by others is refused rather than trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from predis.errors import InvalidArgumentError, PredisError
from predis.fileio import atomic_write_text
from predis.security.validation import validate_customer_id

__all__ = ["SCOPES", "AuthError", "TokenInfo", "TokenStore", "default_token_file"]

SCOPES = ("read", "export", "admin", "dashboard")
_TOKEN = re.compile(r"pdk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_FORMAT = 1


class AuthError(PredisError):
    """A token is malformed, unknown, wrong, expired, revoked, or lacks the scope asked for.

    The message says which, but never echoes the token.
    """


@dataclass(frozen=True)
class TokenInfo:
    """What the store knows about a token (everything but the secret)."""

    id: str
    customer: str
    scopes: tuple[str, ...]
    created: float
    expires: float | None
    revoked: bool


def default_token_file() -> Path:
    """$PREDIS_TOKEN_FILE, else ~/.config/predis/tokens.json."""
    env = os.environ.get("PREDIS_TOKEN_FILE")
    return Path(env) if env else Path.home() / ".config" / "predis" / "tokens.json"


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode("ascii")).hexdigest()


def _check_scopes(scopes: object) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [s.strip() for s in scopes.split(",") if s.strip()]
    if not isinstance(scopes, (list, tuple)) or not scopes:
        raise InvalidArgumentError(f"scopes must be a non-empty list drawn from {SCOPES}")
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise InvalidArgumentError(f"unknown scopes {bad}; known: {list(SCOPES)}")
    return tuple(sorted(set(scopes)))


class TokenStore:
    """The token file. Thread-safe within a process; every change rewrites the file
    atomically (temporary file, fsync, rename), so a crash leaves the old store or the new."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_token_file()
        self._lock = threading.Lock()

    # ---- file ----

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialise load-change-save across threads and processes (a revoke must never be
        undone by a concurrent create that read the file before it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError(f"token store {self.path} is not a regular file")
        if st.st_mode & 0o077:
            raise AuthError(
                f"token store {self.path} is readable or writable by others "
                f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuthError(f"token store {self.path} cannot be read: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise AuthError(
                f"token store {self.path} is not a predis token store (format {_FORMAT})"
            )
        tokens = data.get("tokens")
        if not isinstance(tokens, dict):
            raise AuthError(f"token store {self.path} is malformed")
        return tokens

    def _save(self, tokens: dict[str, dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(
            self.path, json.dumps({"format": _FORMAT, "tokens": tokens}, indent=1), mode=0o600
        )

    @staticmethod
    def _info(tid: str, rec: dict[str, object]) -> TokenInfo:
        expires = rec.get("expires")
        return TokenInfo(
            id=tid,
            customer=str(rec["customer"]),
            scopes=tuple(rec["scopes"]),  # type: ignore[arg-type]
            created=float(rec["created"]),  # type: ignore[arg-type]
            expires=None if expires is None else float(expires),  # type: ignore[arg-type]
            revoked=bool(rec.get("revoked", False)),
        )

    # ---- operations ----

    def create(
        self, customer: str, scopes: object, ttl_s: float | None = None
    ) -> tuple[str, TokenInfo]:
        """A new token for ``customer`` with ``scopes``; returns (token, info). The token is
        not stored anywhere: this is the only time it is seen."""
        customer = validate_customer_id(customer)
        scope_set = _check_scopes(scopes)
        if ttl_s is not None and not (
            isinstance(ttl_s, (int, float)) and 0 < ttl_s < 10 * 365 * 86400
        ):
            raise InvalidArgumentError("ttl must be a positive number of seconds below 10 years")
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        now = time.time()
        with self._exclusive():
            tokens = self._load()
            tid = secrets.token_hex(4)
            while tid in tokens:
                tid = secrets.token_hex(4)
            tokens[tid] = {
                "customer": customer,
                "scopes": list(scope_set),
                "created": now,
                "expires": None if ttl_s is None else now + float(ttl_s),
                "revoked": False,
                "salt": salt.hex(),
                "hash": _digest(salt, secret),
            }
            self._save(tokens)
            return f"pdk_{tid}_{secret}", self._info(tid, tokens[tid])

    def list_tokens(self, customer: str | None = None) -> list[TokenInfo]:
        """Every token's info, optionally for one customer, oldest first."""
        if customer is not None:
            customer = validate_customer_id(customer)
        with self._lock:
            tokens = self._load()
        infos = [self._info(t, r) for t, r in tokens.items()]
        return sorted((i for i in infos if customer in (None, i.customer)), key=lambda i: i.created)

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token by its id; it then fails verification forever."""
        if not isinstance(token_id, str) or not re.fullmatch(r"[0-9a-f]{8}", token_id):
            raise InvalidArgumentError("a token id is 8 hex characters (see `predis token list`)")
        with self._exclusive():
            tokens = self._load()
            if token_id not in tokens:
                raise InvalidArgumentError(f"no token with id {token_id}")
            tokens[token_id]["revoked"] = True
            self._save(tokens)
            return self._info(token_id, tokens[token_id])

    def verify(self, token: object, scope: str, customer: str | None = None) -> TokenInfo:
        """The token's info if it is genuine, live and grants ``scope`` (for ``customer``,
        when given); :class:`AuthError` otherwise. The secret is compared in constant time."""
        if scope not in SCOPES:
            raise InvalidArgumentError(f"unknown scope {scope!r}; known: {list(SCOPES)}")
        m = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if m is None:
            raise AuthError("malformed token")
        tid, secret = m.groups()
        with self._lock:
            rec = self._load().get(tid)
        # Hash even when the id is unknown, so timing does not reveal which ids exist.
        salt = bytes.fromhex(str(rec["salt"])) if rec else b"\0" * 16
        expected = str(rec["hash"]) if rec else "0" * 64
        if not hmac.compare_digest(_digest(salt, secret), expected) or rec is None:
            raise AuthError("unknown or wrong token")
        info = self._info(tid, rec)
        if info.revoked:
            raise AuthError(f"token {tid} is revoked")
        if info.expires is not None and time.time() >= info.expires:
            raise AuthError(f"token {tid} has expired")
        if scope not in info.scopes and "admin" not in info.scopes:
            raise AuthError(f"token {tid} lacks the {scope!r} scope")
        if customer is not None and validate_customer_id(customer) != info.customer:
            raise AuthError(f"token {tid} belongs to another customer")
        return info

    def to_json(self, infos: list[TokenInfo]) -> str:
        """Token infos as JSON (for `predis token list --json`)."""
        return json.dumps([asdict(i) for i in infos], indent=2)
