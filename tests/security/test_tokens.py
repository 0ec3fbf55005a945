"""Tokens: forged, tampered, expired, revoked and mis-scoped tokens are all refused."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from predis import InvalidArgumentError
from predis.security.tokens import AuthError, TokenStore


@pytest.fixture
def store(tmp_path):
    return TokenStore(tmp_path / "tokens.json")


def test_create_verify_and_storage_holds_no_secret(store):
    token, info = store.create("acme", "read,export")
    assert token.startswith(f"pdk_{info.id}_")
    assert info.scopes == ("export", "read")
    assert store.verify(token, "read").customer == "acme"
    assert store.verify(token, "export", customer="acme").id == info.id
    raw = store.path.read_text()
    assert token.split("_", 2)[2] not in raw
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [i.id for i in store.list_tokens()] == [info.id]


def test_wrong_scope_and_customer(store):
    token, _ = store.create("acme", ["read"])
    with pytest.raises(AuthError, match="lacks the 'export' scope"):
        store.verify(token, "export")
    with pytest.raises(AuthError, match="another customer"):
        store.verify(token, "read", customer="globex")


def test_admin_grants_every_scope(store):
    token, _ = store.create("acme", ["admin"])
    assert store.verify(token, "export")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # one character of the secret
        lambda t: t.replace("pdk_", "pdx_"),
        lambda t: t + "x",
        lambda t: t[:-1],
        lambda t: t.upper(),
        lambda t: "pdk_00000000_" + t.split("_", 2)[2],  # a real secret under another id
        lambda _t: "",
        lambda t: " " + t,
        lambda t: t + "\n",
    ],
)
def test_forged_tokens_are_refused(store, mutate):
    token, _ = store.create("acme", ["read"])
    with pytest.raises(AuthError):
        store.verify(mutate(token), "read")


def test_non_string_tokens_are_refused(store):
    for bad in (None, 123, b"pdk_", ["pdk"]):
        with pytest.raises(AuthError, match="malformed"):
            store.verify(bad, "read")


def test_expired_and_revoked(store, monkeypatch):
    token, info = store.create("acme", ["read"], ttl_s=60)
    from predis.security import tokens

    real = tokens.time.time
    monkeypatch.setattr(tokens.time, "time", lambda: real() + 61)
    with pytest.raises(AuthError, match="expired"):
        store.verify(token, "read")
    monkeypatch.undo()
    store.revoke(info.id)
    with pytest.raises(AuthError, match="revoked"):
        store.verify(token, "read")
    assert store.list_tokens()[0].revoked


def test_a_store_readable_by_others_is_refused(store):
    token, _ = store.create("acme", ["read"])
    os.chmod(store.path, 0o644)
    with pytest.raises(AuthError, match="chmod 600"):
        store.verify(token, "read")


def test_a_tampered_store_is_refused(store):
    store.create("acme", ["read"])
    store.path.write_text("{not json")
    os.chmod(store.path, 0o600)
    with pytest.raises(AuthError, match="cannot be read"):
        store.list_tokens()
    store.path.write_text(json.dumps({"format": 99, "tokens": {}}))
    with pytest.raises(AuthError, match="format"):
        store.list_tokens()


@pytest.mark.parametrize(
    ("customer", "scopes", "match"),
    [
        ("Bad Id", "read", "customer id"),
        ("acme", "root", "unknown scopes"),
        ("acme", "", "non-empty"),
    ],
)
def test_bad_create_arguments(store, customer, scopes, match):
    with pytest.raises(InvalidArgumentError, match=match):
        store.create(customer, scopes)
    assert not store.path.exists()


def test_revoke_validates_ids(store):
    with pytest.raises(InvalidArgumentError, match="8 hex"):
        store.revoke("../../x")
    with pytest.raises(InvalidArgumentError, match="no token"):
        store.revoke("deadbeef")


def test_concurrent_creation_loses_nothing(store):
    made: list[str] = []

    def worker() -> None:
        for _ in range(10):
            made.append(store.create("acme", ["read"])[0])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(store.list_tokens()) == 40
    assert all(store.verify(t, "read") for t in made)


def test_cli_create_list_revoke(tmp_path):
    path = tmp_path / "t.json"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "predis.cli", "token", *args, "--file", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    made = cli("create", "--customer", "acme", "--scopes", "read,export")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert "cannot be shown again" in made.stderr
    listed = cli("list")
    assert token.split("_")[1] in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout
    assert cli("revoke", token.split("_")[1]).returncode == 0
    with pytest.raises(AuthError, match="revoked"):
        TokenStore(path).verify(token, "read")
    bad = cli("create", "--customer", "../etc", "--scopes", "read")
    assert bad.returncode == 2
    assert "customer id" in bad.stderr
