"""One validator per kind of untrusted input. Each returns the clean value or raises
:class:`predis.InvalidArgumentError` saying what was wrong; none of them guesses or repairs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path

from predis.errors import InvalidArgumentError

__all__ = [
    "parse_size",
    "safe_path",
    "validate_customer_id",
    "validate_host",
    "validate_image_ref",
    "validate_name",
    "validate_port",
]

# Lower-case letters, digits and inner hyphens, 3 to 63 characters: valid as a DNS label, a
# Kubernetes namespace, a file name and a Prometheus label value, so it can go anywhere
# without quoting.
_CUSTOMER_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# An OCI image reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path
# components as the distribution spec defines them.
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?/)?"
    rf"{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
_SIZE = re.compile(r"(\d+)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a string, got {type(value).__name__}")
    return value


def validate_customer_id(value: object) -> str:
    """A customer id: 3-63 characters of ``a-z``, ``0-9`` and inner ``-``.

    Example:
        >>> validate_customer_id("acme-eu-1")
        'acme-eu-1'
    """
    text = _text(value, "customer id")
    if not _CUSTOMER_ID.fullmatch(text):
        raise InvalidArgumentError(
            f"invalid customer id {text[:80]!r}: use 3-63 characters of a-z, 0-9 and '-' "
            "(not first or last)"
        )
    return text


def validate_name(value: object, what: str = "name") -> str:
    """A name (model, metric, file stem): letters, digits, ``_.-``, not starting with one of
    ``_.-``, at most 128 characters. No separators, so it can never leave a folder."""
    text = _text(value, what)
    if not _NAME.fullmatch(text) or ".." in text:
        raise InvalidArgumentError(
            f"invalid {what} {text[:80]!r}: use 1-128 characters of A-Z, a-z, 0-9, '_', '.', "
            "'-', starting with a letter or digit, without '..'"
        )
    return text


def validate_port(value: object) -> int:
    """A TCP port number, 1-65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"port must be an int, got {type(value).__name__}")
    if not 1 <= value <= 65535:
        raise InvalidArgumentError(f"port must be in 1..65535, got {value}")
    return value


def validate_host(value: object) -> str:
    """A host to bind or connect to: an IPv4/IPv6 literal or a DNS name (no scheme, port,
    path, user or spaces)."""
    text = _text(value, "host")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if not text or len(text) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in labels):
        raise InvalidArgumentError(
            f"invalid host {text[:80]!r}: expected an IP address or a DNS name"
        )
    return text


def validate_image_ref(value: object) -> str:
    """A container image reference: ``[registry[:port]/]path[:tag][@sha256:digest]``.

    Example:
        >>> validate_image_ref("registry.example.com:5000/predis/runtime:0.1.0")
        'registry.example.com:5000/predis/runtime:0.1.0'
    """
    text = _text(value, "image reference")
    if len(text) > 255 or not _IMAGE_REF.fullmatch(text):
        raise InvalidArgumentError(
            f"invalid image reference {text[:80]!r}: expected [registry[:port]/]name[:tag]"
            "[@sha256:digest] with a lower-case name"
        )
    return text


def parse_size(value: object, maximum: int = 2**62) -> int:
    """A size in bytes from an int or a string such as ``"512"``, ``"64MiB"`` or ``"2GB"``."""
    if isinstance(value, bool):
        raise InvalidArgumentError("size must be an int or a string like '64MiB', not bool")
    if isinstance(value, int):
        size = value
    else:
        text = _text(value, "size").strip()
        m = _SIZE.fullmatch(text) if len(text) <= 40 else None
        if m is None:
            raise InvalidArgumentError(
                f"invalid size {text[:40]!r}: expected e.g. 4096, '64MiB', '2GB'"
            )
        size = int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]
    if not 0 <= size <= maximum:
        raise InvalidArgumentError(f"size must be in 0..{maximum} bytes, got {size}")
    return size


def safe_path(root: str | os.PathLike[str], candidate: str | os.PathLike[str]) -> Path:
    """``candidate`` (relative to ``root``, or absolute) resolved, if it stays under ``root``.

    Symbolic links are followed before the check, so a link that points out of ``root`` is
    refused; ``..`` cannot climb out; an existing path must be a regular file or folder (no
    devices, sockets or pipes). The path need not exist yet.
    """
    text = os.fspath(candidate)
    if not isinstance(text, str):
        raise InvalidArgumentError("path must be a str or a PathLike of str")
    if "\x00" in text:
        raise InvalidArgumentError("path contains a NUL byte")
    try:
        root_path = Path(root).resolve(strict=True)
        full = (root_path / text).resolve(strict=False)
    except FileNotFoundError as exc:
        raise InvalidArgumentError(f"root folder {os.fspath(root)!r} does not exist") from exc
    except (RuntimeError, OSError) as exc:  # a symlink loop, a file used as a folder, ...
        raise InvalidArgumentError(f"path {text[:200]!r} cannot be resolved: {exc}") from exc
    if full != root_path and root_path not in full.parents:
        raise InvalidArgumentError(f"path {text[:200]!r} leaves {root_path}")
    try:
        mode = full.stat().st_mode
    except FileNotFoundError:
        return full
    except OSError as exc:
        shown = text[:200]
        raise InvalidArgumentError(f"path {shown!r} cannot be examined: {exc.strerror}") from exc
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InvalidArgumentError(f"path {text[:200]!r} is not a regular file or folder")
    return full
