"""Dashboard logins: sessions, CSRF tokens and failed-login rate limiting.

A user logs in with a ``predis token create --scopes dashboard`` token. The session id in
the cookie is 32 random bytes; the server keeps only its SHA-256, so a leaked session table
opens nothing, and compares digests in constant time. Each session carries its own CSRF
token, required on every state-changing request. Sessions end at their TTL, at logout, and
as soon as their token is revoked or expires.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginRateLimiter", "Session", "SessionStore", "new_csrf_token"]

_MAX_SESSIONS = 10_000
_MAX_ADDRESSES = 10_000


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


def new_csrf_token() -> str:
    """A random CSRF token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    """A logged-in user: whose data, through which token, until when, and its CSRF token."""

    customer: str
    token_id: str
    csrf: str
    expires: float


class SessionStore:
    """Live sessions, keyed by the SHA-256 of their id. Thread-safe."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[str, tuple[str, Session]] = {}
        self._lock = threading.Lock()

    def create(self, customer: str, token_id: str) -> tuple[str, Session]:
        """A new session; returns (session id for the cookie, session)."""
        sid = secrets.token_urlsafe(32)
        session = Session(customer, token_id, new_csrf_token(), self._clock() + self.ttl_s)
        digest = _digest(sid)
        with self._lock:
            self._expire()
            if len(self._sessions) >= _MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda k: self._sessions[k][1].expires)
                del self._sessions[oldest]
            self._sessions[digest[:16]] = (digest, session)
        return sid, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, forged, expired)."""
        if not session_id or len(session_id) > 128:
            return None
        digest = _digest(session_id)
        with self._lock:
            found = self._sessions.get(digest[:16])
            if found is None or not hmac.compare_digest(found[0], digest):
                return None
            if found[1].expires <= self._clock():
                del self._sessions[digest[:16]]
                return None
            return found[1]

    def delete(self, session_id: str | None) -> None:
        """End a session (logout)."""
        if not session_id or len(session_id) > 128:
            return
        digest = _digest(session_id)
        with self._lock:
            found = self._sessions.get(digest[:16])
            if found is not None and hmac.compare_digest(found[0], digest):
                del self._sessions[digest[:16]]

    def end_token(self, token_id: str) -> int:
        """End every session opened with ``token_id`` (revoked or expired); returns how many."""
        with self._lock:
            doomed = [k for k, (_, s) in self._sessions.items() if s.token_id == token_id]
            for k in doomed:
                del self._sessions[k]
            return len(doomed)

    def _expire(self) -> None:
        now = self._clock()
        for k in [k for k, (_, s) in self._sessions.items() if s.expires <= now]:
            del self._sessions[k]

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class LoginRateLimiter:
    """At most ``limit`` failed logins per client address in any ``window_s`` seconds.

    Failures are timestamps in a per-address queue; an address is blocked while ``limit``
    of them fall inside the window, and :meth:`retry_after` says for how long.
    """

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        q = self._failures.get(address)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[address]
        return q

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            q = self._recent(address, now)
            if len(q) < self.limit:
                return 0.0
            return max(0.0, q[-self.limit] + self.window_s - now)

    def fail(self, address: str) -> None:
        """Record a failed login from ``address``."""
        now = self._clock()
        with self._lock:
            if address not in self._failures and len(self._failures) >= _MAX_ADDRESSES:
                for a in list(self._failures):
                    self._recent(a, now)
            q = self._failures.setdefault(address, deque())
            q.append(now)
            while len(q) > self.limit:
                q.popleft()

    def succeed(self, address: str) -> None:
        """A successful login clears the address's failures."""
        with self._lock:
            self._failures.pop(address, None)
