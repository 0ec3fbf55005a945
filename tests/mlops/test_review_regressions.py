"""Failure modes found in review of the collector, registry and token store; each test pins
the fixed behaviour."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import predis
from predis import InvalidArgumentError
from predis.mlops import Collector, ModelRegistry, write_segment
from predis.mlops.collector import _contained_dir
from predis.security import parse_size, safe_path
from predis.security.crypto import KeyRing, generate_key_line
from predis.security.tokens import AuthError, TokenStore


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing.parse(generate_key_line("k1"))


def make_cache() -> predis.Cache:
    return predis.Cache(1 << 22, clock="manual", access_log_capacity=1024)


CREATOR = textwrap.dedent(
    """
    import sys
    from predis.security.tokens import TokenStore
    store = TokenStore(sys.argv[1])
    for _ in range(150):
        store.create("acme", ["read"])
    """
)


def test_a_revoke_survives_a_concurrent_create_in_another_process(tmp_path):
    path = tmp_path / "tokens.json"
    store = TokenStore(path)
    token, info = store.create("acme", ["read"])
    proc = subprocess.Popen([sys.executable, "-c", CREATOR, str(path)])
    store.revoke(info.id)
    assert proc.wait(timeout=120) == 0
    with pytest.raises(AuthError, match="revoked"):
        store.verify(token, "read")
    assert len(store.list_tokens()) == 151


def test_another_customers_segment_in_the_folder_is_never_touched(tmp_path, keys):
    folder = tmp_path / "seg"
    folder.mkdir()
    foreign = folder / "acme-eu-0000000000.pseg"
    write_segment(foreign, "acme-eu", np.zeros(3, dtype=predis.EVENT_DTYPE), keys)
    c = make_cache()
    col = Collector(c, folder, "acme", keys, min_free_bytes=0, segment_events=10, retention_bytes=1)
    for i in range(3):
        c.mget(np.arange(i * 10, (i + 1) * 10, dtype=np.uint64))
        col.drain_once()
    col.flush()
    assert foreign.exists()
    assert foreign not in col.segments()
    assert [p.name for p in col.segments()] == ["acme-0000000002.pseg"]
    col.close()


def test_one_collector_per_folder(tmp_path, keys):
    col = Collector(make_cache(), tmp_path, "acme", keys)
    with pytest.raises(InvalidArgumentError, match="another collector"):
        Collector(make_cache(), tmp_path, "acme", keys)
    col.close()
    Collector(make_cache(), tmp_path, "acme", keys).close()


def test_events_left_unwritten_at_stop_and_ring_drops_are_counted(tmp_path, keys, monkeypatch):
    c = make_cache()
    col = Collector(c, tmp_path, "acme", keys, min_free_bytes=0)
    import predis.mlops.collector as mod

    def failing(*_a: object, **_k: object) -> int:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(mod, "write_segment", failing)
    c.mget(np.arange(3000, dtype=np.uint64))  # the ring holds 1024
    col.stop()
    s = col.stats()
    assert s.events_drained == 1024
    assert s.events_unwritten_at_stop == 1024
    assert s.ring_events_dropped == 3000 - 1024
    assert s.write_errors >= 1


def test_export_refuses_a_folder_swapped_for_a_symlink_after_the_check(tmp_path):
    root = tmp_path / "exports"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "drop").symlink_to(outside)
    with (
        pytest.raises(InvalidArgumentError, match="not a plain folder"),
        _contained_dir(root.resolve(), Path("drop")),
    ):
        pass
    assert list(outside.iterdir()) == []


def test_promoting_an_alias_name_is_refused(tmp_path):
    r = ModelRegistry(tmp_path, "acme")
    r.register(b"m", feature_schema=["f"], training_window=(0, 1))
    r.promote(1, "challenger", actor="a", reason="b")
    with pytest.raises(InvalidArgumentError, match="version is an int"):
        r.promote("challenger", actor="a", reason="b")  # type: ignore[arg-type]
    assert r.aliases()["champion"] is None
    (r.dir / "aliases.json").write_text('{"champion": "challenger"}')
    with pytest.raises(predis.mlops.ModelIntegrityError, match="corrupt"):
        r.get("champion")


def test_a_torn_history_line_is_cut_before_the_next_append(tmp_path):
    r = ModelRegistry(tmp_path, "acme")
    r.register(b"m", feature_schema=["f"], training_window=(0, 1))
    with open(r.dir / "history.jsonl", "ab") as f:
        f.write(b'{"action": "prom')  # a crash mid-append
    assert len(r.history()) == 1
    r.promote(1, actor="a", reason="b")
    assert [h["action"] for h in r.history()] == ["register", "promote-champion"]


def test_version_numbers_are_never_reused(tmp_path):
    r = ModelRegistry(tmp_path, "acme")
    for i in range(3):
        r.register(bytes([i + 1]), feature_schema=["f"], training_window=(0, 1))
    r.promote(1, actor="a", reason="b")
    assert r.gc() == [2, 3]
    assert r.register(b"new", feature_schema=["f"], training_window=(0, 1)).version == 4
    (r.dir / "versions" / "4").rename(r.dir / "versions" / ".deleting-4-1")  # a crashed gc
    assert r.register(b"newer", feature_schema=["f"], training_window=(0, 1)).version == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"feature_schema": "abc", "training_window": (0, 1)},
        {"feature_schema": ["f"], "training_window": (0, 1, 2)},
        {"feature_schema": ["f"], "training_window": (True, 1)},
        {"feature_schema": ["f"], "training_window": (0, 1), "metrics": {"auc": "high"}},
        {"feature_schema": ["f"], "training_window": (0, 1), "metrics": {"auc": float("nan")}},
        {"feature_schema": ["f"], "training_window": (0, 1), "parent": True},
    ],
)
def test_registry_input_errors_are_predis_errors(tmp_path, kwargs):
    with pytest.raises(InvalidArgumentError):
        ModelRegistry(tmp_path, "acme").register(b"m", **kwargs)


def test_path_and_size_errors_are_predis_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for bad in ("file/x", "loop/x"):
        with pytest.raises(InvalidArgumentError):
            safe_path(tmp_path, bad)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        safe_path(tmp_path / "missing", "x")
    with pytest.raises(InvalidArgumentError):
        safe_path(tmp_path, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        parse_size("9" * 5000)
    with pytest.raises(InvalidArgumentError, match="cannot be read"):
        KeyRing.from_file(tmp_path / "no-such-key-file")
