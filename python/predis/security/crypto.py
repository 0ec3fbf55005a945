"""AES-256-GCM for data at rest, with key rotation.

Keys come from the environment (``PREDIS_DATA_KEYS``) or from a key file of mode 0600
(``PREDIS_DATA_KEY_FILE``), never from the repository. Either holds one key per line (or
comma-separated in the variable) as ``<id>:<base64 of 32 bytes>``; the first key encrypts,
all of them decrypt, so rotation is: put the new key first, keep the old ones until no data
sealed with them remains. A sealed blob is::

    b"PDK1" | key id length (1 byte) | key id | 12-byte nonce | ciphertext + 16-byte tag

and the caller's associated data (for example a segment header) is authenticated with it.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from predis.errors import InvalidArgumentError, PredisError

if TYPE_CHECKING:  # imported where used: cryptography loads only when keys are used
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DecryptionError", "KeyRing", "generate_key_line", "read_owner_only_text"]

_MAGIC = b"PDK1"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _aad(kid: bytes, associated: bytes) -> bytes:
    # The key id is length-prefixed so that no (id, associated data) pair can collide.
    return _MAGIC + bytes([len(kid)]) + kid + associated


class DecryptionError(PredisError):
    """A sealed blob is truncated, tampered with, or sealed with a key the ring lacks."""


def generate_key_line(key_id: str) -> str:
    """A new random key as a ``<id>:<base64>`` line, for a key file or PREDIS_DATA_KEYS."""
    if not _KEY_ID.fullmatch(key_id):
        raise InvalidArgumentError("key id: 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def read_owner_only_text(path: str | os.PathLike[str], what: str = "secret file") -> str:
    """The ASCII text of a regular file only its owner may read or write (mode 0600 or
    stricter); anything else is an :class:`InvalidArgumentError` that says how to fix it."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise InvalidArgumentError(f"{what} {p} cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgumentError(f"{what} {p} is not a regular file")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise InvalidArgumentError(
            f"{what} {p} is readable or writable by others (mode {mode:o}); chmod 600 it"
        )
    try:
        return p.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"{what} {p} is not ASCII <id>:<base64> lines") from exc


class KeyRing:
    """The data keys: the first encrypts, all decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        if not keys:
            raise InvalidArgumentError("a key ring needs at least one key")
        self._aead: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if not _KEY_ID.fullmatch(key_id):
                raise InvalidArgumentError(f"invalid key id {key_id[:70]!r}")
            if len(key) != 32:
                raise InvalidArgumentError(
                    f"key {key_id!r} must be 32 bytes (AES-256), got {len(key)}"
                )
            if key_id in self._aead:
                raise InvalidArgumentError(f"key id {key_id!r} appears twice")
            self._aead[key_id] = AESGCM(key)
        self.current = keys[0][0]

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Keys from ``<id>:<base64>`` entries separated by newlines or commas."""
        keys = []
        for n, raw in enumerate(re.split(r"[,\n]", text), start=1):
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            key_id, sep, b64 = entry.partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError:
                key = b""
            if not sep or not key:
                raise InvalidArgumentError(f"key entry {n} is not <id>:<base64 key>")
            keys.append((key_id, key))
        return cls(keys)

    @classmethod
    def from_environment(cls) -> KeyRing:
        """Keys from PREDIS_DATA_KEYS, else from the 0600 file PREDIS_DATA_KEY_FILE."""
        text = os.environ.get("PREDIS_DATA_KEYS")
        if text:
            return cls.parse(text)
        path = os.environ.get("PREDIS_DATA_KEY_FILE")
        if not path:
            raise InvalidArgumentError(
                "no data key: set PREDIS_DATA_KEYS or PREDIS_DATA_KEY_FILE "
                "(make one with `predis keygen`)"
            )
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Keys from a file that only its owner may read or write (mode 0600 or stricter)."""
        return cls.parse(read_owner_only_text(path, "key file"))

    def seal(self, plaintext: bytes, associated: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext`` (and ``associated``) with the current key."""
        nonce = secrets.token_bytes(12)
        kid = self.current.encode()
        body = self._aead[self.current].encrypt(nonce, plaintext, _aad(kid, associated))
        return _MAGIC + bytes([len(kid)]) + kid + nonce + body

    def open(self, blob: bytes, associated: bytes = b"") -> bytes:
        """The plaintext of a sealed blob; :class:`DecryptionError` if anything is off."""
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415

        if len(blob) < 5 or blob[:4] != _MAGIC:
            raise DecryptionError("not a sealed predis blob (bad magic)")
        n = blob[4]
        kid = blob[5 : 5 + n]
        start = 5 + n
        if len(blob) < start + 12 + 16:
            raise DecryptionError("sealed blob is truncated")
        aead = self._aead.get(kid.decode("ascii", "replace"))
        if aead is None:
            raise DecryptionError(
                f"sealed with key {kid.decode('ascii', 'replace')!r}, which the key ring lacks"
            )
        try:
            return aead.decrypt(blob[start : start + 12], blob[start + 12 :], _aad(kid, associated))
        except InvalidTag:
            raise DecryptionError(
                "authentication failed: the blob or its associated data was altered"
            ) from None
