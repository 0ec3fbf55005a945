"""Optional access control on ``/metrics``: a bearer token, HTTP basic auth, or tokens of
a :class:`~predis.security.tokens.TokenStore` with the ``read`` scope.

Secrets come from the environment or from a file that only its owner can read (mode 0600);
never from the command line, where ``ps`` would show them. Every comparison is constant-time.

Environment:

- ``PREDIS_METRICS_TOKEN`` or ``PREDIS_METRICS_TOKEN_FILE``: a static bearer token.
- ``PREDIS_METRICS_USER`` with ``PREDIS_METRICS_PASSWORD`` or ``PREDIS_METRICS_PASSWORD_FILE``:
  basic auth.
- ``PREDIS_METRICS_TOKEN_STORE``: a token store file; any live token with the ``read``
  scope may scrape.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from predis.errors import InvalidArgumentError, PredisError

__all__ = ["MetricsAuth", "read_secret_file"]

_MAX_SECRET = 4096


def read_secret_file(path: str | os.PathLike[str]) -> str:
    """The secret in ``path`` (surrounding whitespace stripped). The file must be a regular
    file (not a link), readable by its owner only, and non-empty."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise InvalidArgumentError(
            f"secret file {p} cannot be opened ({exc.strerror}); it must be a regular file, "
            "not a symbolic link"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgumentError(f"secret file {p} is not a regular file")
        if st.st_mode & 0o077:
            raise InvalidArgumentError(
                f"secret file {p} is readable or writable by others "
                f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
            )
        raw = os.read(fd, _MAX_SECRET + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX_SECRET:
        raise InvalidArgumentError(f"secret file {p} is longer than {_MAX_SECRET} bytes")
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"secret file {p} is not UTF-8 text") from None
    if not secret:
        raise InvalidArgumentError(f"secret file {p} is empty")
    return secret


def _secret(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_SECRET:
        raise InvalidArgumentError(f"{what} must be a non-empty string of at most 4096 chars")
    if any(c in value for c in "\r\n\0"):
        raise InvalidArgumentError(f"{what} must not contain line breaks or NUL")
    return value


class MetricsAuth:
    """Who may read ``/metrics``. Build one with :meth:`bearer`, :meth:`basic`,
    :meth:`token_store` or :meth:`from_env`; :meth:`check` takes the request's
    ``Authorization`` header."""

    def __init__(
        self,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        store: object | None = None,
    ) -> None:
        if token is None and user is None and store is None:
            raise InvalidArgumentError("MetricsAuth needs a token, a user and password, or a store")
        if (user is None) != (password is None):
            raise InvalidArgumentError("basic auth needs both a user and a password")
        if user is not None and ":" in user:
            raise InvalidArgumentError("a basic-auth user name cannot contain ':'")
        self._token = None if token is None else _secret(token, "token").encode()
        self._basic = (
            None
            if user is None or password is None
            else f"{_secret(user, 'user')}:{_secret(password, 'password')}".encode()
        )
        self._store = store

    @classmethod
    def bearer(cls, token: str) -> MetricsAuth:
        """Require ``Authorization: Bearer <token>``."""
        return cls(token=token)

    @classmethod
    def basic(cls, user: str, password: str) -> MetricsAuth:
        """Require HTTP basic auth with ``user`` and ``password``."""
        return cls(user=user, password=password)

    @classmethod
    def token_store(cls, path: str | os.PathLike[str]) -> MetricsAuth:
        """Accept any live token of the store at ``path`` that has the ``read`` scope."""
        from predis.security.tokens import TokenStore  # noqa: PLC0415

        return cls(store=TokenStore(path))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MetricsAuth | None:
        """Auth configured by the ``PREDIS_METRICS_*`` variables (see the module docs), or
        None when none is set."""
        e = os.environ if env is None else env
        token = e.get("PREDIS_METRICS_TOKEN")
        if e.get("PREDIS_METRICS_TOKEN_FILE"):
            if token:
                raise InvalidArgumentError(
                    "set PREDIS_METRICS_TOKEN or PREDIS_METRICS_TOKEN_FILE, not both"
                )
            token = read_secret_file(e["PREDIS_METRICS_TOKEN_FILE"])
        user = e.get("PREDIS_METRICS_USER") or None
        password = e.get("PREDIS_METRICS_PASSWORD")
        if e.get("PREDIS_METRICS_PASSWORD_FILE"):
            password = read_secret_file(e["PREDIS_METRICS_PASSWORD_FILE"])
        if user is None and password:
            raise InvalidArgumentError("PREDIS_METRICS_PASSWORD is set without PREDIS_METRICS_USER")
        if user is not None and not password:
            raise InvalidArgumentError("PREDIS_METRICS_USER is set without a password")
        store = None
        if e.get("PREDIS_METRICS_TOKEN_STORE"):
            from predis.security.tokens import TokenStore  # noqa: PLC0415

            store = TokenStore(e["PREDIS_METRICS_TOKEN_STORE"])
        if not token and user is None and store is None:
            return None
        return cls(token=token or None, user=user, password=password, store=store)

    def check(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value grants access."""
        if not header or len(header) > 2 * _MAX_SECRET:
            return False
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer":
            given = value.encode("utf-8", "replace")
            if self._token is not None and hmac.compare_digest(given, self._token):
                return True
            if self._store is not None:
                try:
                    self._store.verify(value, "read")  # type: ignore[attr-defined]
                except PredisError:
                    return False
                return True
            return False
        if scheme == "basic" and self._basic is not None:
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(decoded, self._basic)
        return False

    @property
    def schemes(self) -> tuple[str, ...]:
        """The schemes accepted, for the ``WWW-Authenticate`` header."""
        out = []
        if self._token is not None or self._store is not None:
            out.append("Bearer")
        if self._basic is not None:
            out.append("Basic")
        return tuple(out)
