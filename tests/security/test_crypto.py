"""AES-GCM sealing with key rotation: tampering, truncation and wrong keys are refused."""

from __future__ import annotations

import base64
import os

import pytest

from predis import InvalidArgumentError
from predis.security.crypto import DecryptionError, KeyRing, generate_key_line


def ring(*ids: str) -> KeyRing:
    return KeyRing.parse("\n".join(generate_key_line(i) for i in ids))


def test_round_trip_with_associated_data():
    r = ring("k1")
    blob = r.seal(b"segment bytes", b"header")
    assert blob[:4] == b"PDK1"
    assert b"segment bytes" not in blob
    assert r.open(blob, b"header") == b"segment bytes"


def test_rotation_old_key_decrypts_new_key_encrypts():
    k1, k2 = generate_key_line("k1"), generate_key_line("k2")
    old = KeyRing.parse(k1)
    sealed_old = old.seal(b"old")
    rotated = KeyRing.parse(f"{k2},{k1}")
    assert rotated.current == "k2"
    assert rotated.open(sealed_old) == b"old"
    sealed_new = rotated.seal(b"new")
    with pytest.raises(DecryptionError, match="lacks"):
        old.open(sealed_new)


@pytest.mark.parametrize("position", [0, 5, 9, 20, -1])
def test_any_flipped_byte_is_detected(position):
    r = ring("k1")
    blob = bytearray(r.seal(b"x" * 100, b"aad"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError):
        r.open(bytes(blob), b"aad")


def test_wrong_associated_data_truncation_and_wrong_key():
    r = ring("k1")
    blob = r.seal(b"payload", b"customer=acme")
    with pytest.raises(DecryptionError, match="altered"):
        r.open(blob, b"customer=globex")
    for cut in (0, 4, 10, len(blob) - 1):
        with pytest.raises(DecryptionError):
            r.open(blob[:cut], b"customer=acme")
    impostor = ring("k1")  # same id, different key material
    with pytest.raises(DecryptionError, match="altered"):
        impostor.open(blob, b"customer=acme")


@pytest.mark.parametrize(
    "text",
    ["", "k1", "k1:notbase64!!", "k1:" + base64.b64encode(b"short").decode(), "../x:" + "A" * 44],
)
def test_bad_key_material(text):
    with pytest.raises(InvalidArgumentError):
        KeyRing.parse(text)


def test_duplicate_ids_are_refused():
    line = generate_key_line("k1")
    with pytest.raises(InvalidArgumentError, match="twice"):
        KeyRing.parse(f"{line},{line}")


def test_key_file_permissions_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    path.write_text(generate_key_line("k9") + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(InvalidArgumentError, match="chmod 600"):
        KeyRing.from_file(path)
    os.chmod(path, 0o600)
    assert KeyRing.from_file(path).current == "k9"
    monkeypatch.delenv("PREDIS_DATA_KEYS", raising=False)
    monkeypatch.setenv("PREDIS_DATA_KEY_FILE", str(path))
    assert KeyRing.from_environment().current == "k9"
    monkeypatch.setenv("PREDIS_DATA_KEYS", generate_key_line("env"))
    assert KeyRing.from_environment().current == "env"
    monkeypatch.delenv("PREDIS_DATA_KEYS")
    monkeypatch.delenv("PREDIS_DATA_KEY_FILE")
    with pytest.raises(InvalidArgumentError, match="no data key"):
        KeyRing.from_environment()
