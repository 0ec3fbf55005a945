"""What keeps a site's data at the site: key pseudonyms and differentially private leaves.

**Key identities.** None of the 17 features (:data:`~predis.prefetch.FEATURE_NAMES`) is a
key: they are counts, shares, ranks, log2 ages and frequencies, a stride step, the log2
distance between the requested key and the candidate, and the batch lag. A tree splits on
those, so model bytes carry no key. Keys still enter the federated pipeline (a site's
training sequence), so a site maps every key through :meth:`FederationSecret.pseudonymize`
before its candidate generator sees it: the key's high bits (its block of ``2**block_bits``
keys) go through a keyed hash (BLAKE2b keyed with the per-federation secret), the low bits
stay. Differences between keys of one block, which the stride and distance features read,
are kept; which block a key is in is hidden from anyone without the secret. All sites of
one federation share the secret, so one key has one pseudonym across the federation.

**Differential privacy on leaf values** (:class:`DPConfig`). Each tree's leaves are
clipped to ``[-eta*C, eta*C]`` (XGBoost's ``max_delta_step = C`` bounds the Newton step,
then the learning rate ``eta`` scales it; the site clips again so the bound holds whatever
XGBoost does) and noise is added before the next tree trains, so later trees see only noisy
earlier ones. Neighbouring data sets differ by one candidate row (added or removed). Given
the tree's structure and the earlier (released, noisy) trees, one row changes one leaf of a
tree, by at most the width of the clip range, so each tree is a mechanism with L1 and L2
sensitivity ``2*eta*C``. Over ``T`` trees:

- Gaussian: zero-concentrated DP composes additively; a target ``(epsilon, delta)`` gives
  ``rho = (sqrt(epsilon + ln(1/delta)) - sqrt(ln(1/delta)))**2`` in total, ``rho/T`` per
  tree, and ``sigma = sensitivity / sqrt(2 * rho / T)`` (Bun and Steinke 2016, Prop. 1.3
  and 1.6).
- Laplace: pure ``epsilon`` by basic composition, ``b = sensitivity * T / epsilon``.

What this does not cover: split choices (which feature and threshold) are made on the raw
rows and are not privatised; one request yields several candidate rows, so a guarantee per
request is the per-row one scaled by group privacy. docs/federated.md says the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from predis.errors import InvalidArgumentError, PredisError
from predis.security.crypto import read_owner_only_text

__all__ = [
    "DPConfig",
    "FederationSecret",
    "PrivacyBudgetError",
    "add_leaf_noise",
    "gaussian_sigma",
    "laplace_scale",
]

_MIN_SECRET = 16  # bytes


class PrivacyBudgetError(PredisError):
    """A site was asked to release more noised trees than its (epsilon, delta) covers."""


class FederationSecret:
    """The per-federation secret that keys the key pseudonyms.

    Args:
        secret: at least 16 random bytes, the same at every site of the federation.
        block_bits: keys within one block of ``2**block_bits`` keep their differences.
    """

    def __init__(self, secret: bytes, block_bits: int = 16) -> None:
        if not isinstance(secret, (bytes, bytearray)) or len(secret) < _MIN_SECRET:
            raise InvalidArgumentError(
                f"a federation secret must be at least {_MIN_SECRET} bytes "
                "(make one with `predis keygen --id federation`)"
            )
        if len(secret) > 64:
            secret = hashlib.blake2b(bytes(secret), digest_size=64).digest()
        if isinstance(block_bits, bool) or not isinstance(block_bits, int):
            raise InvalidArgumentError(f"block_bits must be an int, got {block_bits!r}")
        if not 4 <= block_bits <= 32:
            raise InvalidArgumentError(f"block_bits must be in [4, 32], got {block_bits}")
        self._secret = bytes(secret)
        self.block_bits = block_bits

    def __repr__(self) -> str:  # never print the secret
        return f"FederationSecret(block_bits={self.block_bits})"

    @classmethod
    def parse(cls, text: str, block_bits: int = 16) -> FederationSecret:
        """A secret written as ``<id>:<base64>`` (``predis keygen``'s format) or bare base64."""
        entry = text.strip()
        if ":" in entry:
            entry = entry.split(":", 1)[1]
        try:
            raw = base64.b64decode(entry, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not raw:
            raise InvalidArgumentError("the federation secret must be <id>:<base64> or base64")
        return cls(raw, block_bits)

    @classmethod
    def from_environment(cls, block_bits: int = 16) -> FederationSecret:
        """PREDIS_FEDERATION_SECRET, else the 0600 file PREDIS_FEDERATION_SECRET_FILE."""
        text = os.environ.get("PREDIS_FEDERATION_SECRET")
        if text:
            return cls.parse(text, block_bits)
        path = os.environ.get("PREDIS_FEDERATION_SECRET_FILE")
        if not path:
            raise InvalidArgumentError(
                "no federation secret: set PREDIS_FEDERATION_SECRET or "
                "PREDIS_FEDERATION_SECRET_FILE (a 0600 file holding a line of "
                "`predis keygen --id federation`)"
            )
        return cls.from_file(path, block_bits)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], block_bits: int = 16) -> FederationSecret:
        """The secret from a file only its owner may read (mode 0600 or stricter)."""
        return cls.parse(read_owner_only_text(path, "federation secret file"), block_bits)

    def pseudonymize(self, keys: np.ndarray) -> np.ndarray:
        """Keyed pseudonyms of uint64 keys: a keyed hash of the block, the offset kept.

        Equal keys get equal pseudonyms; keys of one block keep their differences.
        """
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        if keys.ndim != 1:
            raise InvalidArgumentError(f"keys must be 1-D, got shape {keys.shape}")
        b = np.uint64(self.block_bits)
        high = keys >> b
        low = keys & np.uint64((1 << self.block_bits) - 1)
        blocks, inverse = np.unique(high, return_inverse=True)
        mapped = np.fromiter(
            (
                int.from_bytes(
                    hashlib.blake2b(
                        int(h).to_bytes(8, "little"), key=self._secret, digest_size=8
                    ).digest(),
                    "little",
                )
                for h in blocks
            ),
            dtype=np.uint64,
            count=len(blocks),
        )
        return ((mapped[inverse] << b) | low).astype(np.uint64)


def _check(name: str, value: object, lo: float, hi: float, *, lo_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (lo < v if lo_open else lo <= v) and v <= hi
    if not ok:
        raise InvalidArgumentError(f"DPConfig.{name} must be in ({lo}, {hi}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DPConfig:
    """Differential privacy for a site's released trees.

    Attributes:
        epsilon: the total privacy loss over ``max_trees`` trees.
        delta: the total failure probability (Gaussian only; Laplace is pure epsilon-DP).
        clip: ``C``: each leaf's Newton step is bounded to ``[-C, C]`` before the learning
            rate; the sensitivity of a tree is ``2 * eta * C``.
        max_trees: the trees this site may release over the federation's life (the budget
            is split evenly over them; training past it is refused).
        mechanism: ``"gaussian"`` or ``"laplace"``.
    """

    epsilon: float
    delta: float = 1e-6
    clip: float = 1.0
    max_trees: int = 60
    mechanism: str = "gaussian"

    def __post_init__(self) -> None:
        _check("epsilon", self.epsilon, 0.0, 1e4)
        _check("clip", self.clip, 0.0, 100.0)
        if self.mechanism not in ("gaussian", "laplace"):
            raise InvalidArgumentError(
                f"DPConfig.mechanism must be 'gaussian' or 'laplace', got {self.mechanism!r}"
            )
        if self.mechanism == "gaussian":
            _check("delta", self.delta, 0.0, 0.5)
        else:
            _check("delta", self.delta, 0.0, 0.5, lo_open=False)
        t = self.max_trees
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 100_000:
            raise InvalidArgumentError(
                f"DPConfig.max_trees must be an int in [1, 100000], got {t!r}"
            )

    def sensitivity(self, learning_rate: float) -> float:
        """The L1 and L2 sensitivity of one tree's leaf values: ``2 * eta * C``."""
        return 2.0 * learning_rate * self.clip

    def noise_scale(self, learning_rate: float) -> float:
        """The Gaussian sigma or the Laplace b added to every leaf."""
        s = self.sensitivity(learning_rate)
        if self.mechanism == "gaussian":
            return gaussian_sigma(self.epsilon, self.delta, s, self.max_trees)
        return laplace_scale(self.epsilon, s, self.max_trees)


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float, compositions: int) -> float:
    """Sigma for ``compositions`` Gaussian mechanisms of L2 ``sensitivity`` that together
    are ``(epsilon, delta)``-DP, through zero-concentrated DP.

    Example:
        >>> round(gaussian_sigma(1.0, 1e-5, 1.0, 1), 3)
        4.901
    """
    if not (epsilon > 0 and 0 < delta < 1 and sensitivity > 0 and compositions >= 1):
        raise InvalidArgumentError("need epsilon > 0, 0 < delta < 1, sensitivity > 0, T >= 1")
    log_inv = math.log(1.0 / delta)
    rho = (math.sqrt(epsilon + log_inv) - math.sqrt(log_inv)) ** 2
    return sensitivity / math.sqrt(2.0 * rho / compositions)


def laplace_scale(epsilon: float, sensitivity: float, compositions: int) -> float:
    """Laplace scale ``b`` for ``compositions`` mechanisms of L1 ``sensitivity`` that
    together are ``epsilon``-DP (basic composition).

    Example:
        >>> laplace_scale(2.0, 0.3, 10)
        1.5
    """
    if not (epsilon > 0 and sensitivity > 0 and compositions >= 1):
        raise InvalidArgumentError("need epsilon > 0, sensitivity > 0, T >= 1")
    return sensitivity * compositions / epsilon


def add_leaf_noise(
    tree: dict[str, Any], bound: float, scale: float, mechanism: str, rng: np.random.Generator
) -> None:
    """Clip a tree's leaf values (XGBoost JSON tree) to ``[-bound, bound]`` and add
    Gaussian (``scale`` = sigma) or Laplace (``scale`` = b) noise, in place."""
    left = np.asarray(tree["left_children"])
    leaves = np.flatnonzero(left == -1)
    values = np.asarray(tree["split_conditions"], dtype=np.float64)
    clipped = np.clip(values[leaves], -bound, bound)
    if mechanism == "gaussian":
        noise = rng.normal(0.0, scale, len(leaves))
    elif mechanism == "laplace":
        noise = rng.laplace(0.0, scale, len(leaves))
    else:
        raise InvalidArgumentError(f"unknown noise mechanism {mechanism!r}")
    values[leaves] = clipped + noise
    out = values.astype(np.float32).tolist()
    tree["split_conditions"] = out
    base = np.asarray(tree["base_weights"], dtype=np.float32)
    base[leaves] = np.asarray(out, dtype=np.float32)[leaves]
    tree["base_weights"] = base.tolist()
