"""The model registry: integrity, aliases, history, crash safety and racing promotions."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from predis import InvalidArgumentError
from predis.mlops import ModelIntegrityError, ModelRegistry

SCHEMA = ["recency", "frequency", "successor_score"]


def reg(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", "acme")


def register(r: ModelRegistry, payload: bytes, parent: int | None = None) -> int:
    meta = r.register(
        payload, feature_schema=SCHEMA, training_window=(0, 10), metrics={"auc": 0.9}, parent=parent
    )
    return meta.version


def test_register_get_and_metadata(tmp_path):
    r = reg(tmp_path)
    v1 = register(r, b"model-one")
    v2 = register(r, b"model-two", parent=v1)
    assert (v1, v2) == (1, 2)
    meta, model = r.get(2, expected_schema=SCHEMA)
    assert model == b"model-two"
    assert (meta.parent, meta.feature_schema, meta.metrics) == (1, tuple(SCHEMA), {"auc": 0.9})
    assert r.list_versions() == [1, 2]


def test_promotion_rollback_and_history(tmp_path):
    r = reg(tmp_path)
    v1, v2 = register(r, b"a"), register(r, b"b")
    r.promote(v1, actor="ci", reason="first model")
    r.promote(v2, "challenger", actor="retrainer", reason="drift")
    after = r.promote(v2, actor="abtest", reason="won with p=0.001")
    assert after == {"champion": 2, "challenger": None, "previous": 1}
    assert r.get("champion")[1] == b"b"
    back = r.rollback(actor="monitor", reason="hit rate fell")
    assert back == {"champion": 1, "challenger": None, "previous": None}
    actions = [h["action"] for h in r.history()]
    assert actions == [
        "register",
        "register",
        "promote-champion",
        "promote-challenger",
        "promote-champion",
        "rollback",
    ]
    last = r.history()[-1]
    assert (last["actor"], last["reason"], last["after"]["champion"]) == (
        "monitor",
        "hit rate fell",
        1,
    )
    with pytest.raises(InvalidArgumentError, match="nothing to roll back"):
        r.rollback(actor="monitor", reason="again")


def test_a_corrupt_model_is_refused_and_the_champion_stays(tmp_path):
    r = reg(tmp_path)
    v1, v2 = register(r, b"good"), register(r, b"about to rot")
    r.promote(v1, actor="ci", reason="init")
    (r.dir / "versions" / "2" / "model.ubj").write_bytes(b"rotten bytes")
    with pytest.raises(ModelIntegrityError, match="checksum"):
        r.promote(v2, actor="ci", reason="try")
    assert r.aliases()["champion"] == 1
    with pytest.raises(ModelIntegrityError, match="checksum"):
        r.get(2)


def test_schema_mismatch_is_refused(tmp_path):
    r = reg(tmp_path)
    register(r, b"m")
    with pytest.raises(ModelIntegrityError, match="feature schema"):
        r.get(1, expected_schema=["recency", "frequency"])


def test_gc_removes_only_unreferenced(tmp_path):
    r = reg(tmp_path)
    for i in range(5):
        register(r, bytes([i + 1]))
    r.promote(2, actor="ci", reason="x")
    r.promote(4, "challenger", actor="ci", reason="x")
    assert r.gc(keep_latest=1) == [1, 3]
    assert r.list_versions() == [2, 4, 5]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda r: r.register(b"", feature_schema=SCHEMA, training_window=(0, 1)), "non-empty"),
        (
            lambda r: r.register(b"m", feature_schema=["../x"], training_window=(0, 1)),
            "feature name",
        ),
        (lambda r: r.register(b"m", feature_schema=["a", "a"], training_window=(0, 1)), "distinct"),
        (lambda r: r.register(b"m", feature_schema=SCHEMA, training_window=(5, 1)), "window"),
        (
            lambda r: r.register(b"m", feature_schema=SCHEMA, training_window=(0, 1), parent=9),
            "parent",
        ),
        (lambda r: r.get("king"), "unknown alias"),
        (lambda r: r.get("champion"), "not set"),
        (lambda r: r.get(0), "version is an int"),
        (lambda r: r.get("../../etc/passwd"), "unknown alias"),
        (lambda r: r.promote(1, "previous", actor="a", reason="b"), "promote sets"),
        (lambda r: r.promote(1, actor="", reason="b"), "actor"),
        (lambda r: r.promote(99, actor="a", reason="b"), "does not exist"),
        (lambda r: r.gc(keep_latest=-1), "keep_latest"),
    ],
)
def test_bad_requests(tmp_path, call, match):
    r = reg(tmp_path)
    register(r, b"m")
    with pytest.raises(InvalidArgumentError, match=match):
        call(r)
    assert r.aliases() == {"champion": None, "challenger": None, "previous": None}


@pytest.mark.parametrize("customer", ["../acme", "acme/../../x", "ACME", "a", "acme;id"])
def test_hostile_customer_ids(tmp_path, customer):
    with pytest.raises(InvalidArgumentError, match="customer id"):
        ModelRegistry(tmp_path, customer)


def test_a_symlinked_customer_folder_pointing_out_is_refused(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    (root / "acme").symlink_to(tmp_path)
    with pytest.raises(InvalidArgumentError, match="leaves"):
        ModelRegistry(root, "acme")


def test_racing_promotions_from_threads(tmp_path):
    r = reg(tmp_path)
    versions = [register(r, bytes([i + 1])) for i in range(8)]
    errors: list[BaseException] = []

    def worker(v: int) -> None:
        try:
            for _ in range(10):
                ModelRegistry(tmp_path / "models", "acme").promote(v, actor=f"t{v}", reason="race")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    promotions = [h for h in r.history() if h["action"] == "promote-champion"]
    assert len(promotions) == 80
    # Each swap saw the state the previous swap left: the history is one unbroken chain.
    for a, b in itertools.pairwise(promotions):
        assert b["before"] == a["after"]
    assert r.aliases() == promotions[-1]["after"]


PROMOTER = textwrap.dedent(
    """
    import sys
    from predis.mlops import ModelRegistry
    r = ModelRegistry(sys.argv[1], "acme")
    print("ready", flush=True)
    i = 0
    while True:
        model = b"m" * 1000 + str(i).encode()
        v = r.register(model, feature_schema=["f"], training_window=(0, 1)).version
        r.promote(v, actor="loop", reason=str(i))
        if i % 3 == 0 and r.aliases()["previous"] is not None:
            r.rollback(actor="loop", reason="r")
        i += 1
    """
)


def test_sigkill_leaves_old_or_new_state(tmp_path):
    root = tmp_path / "models"
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", PROMOTER, str(root)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2 + 0.15 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        r = ModelRegistry(root, "acme")
        aliases = json.loads((r.dir / "aliases.json").read_text())  # whole JSON, never torn
        for alias, version in aliases.items():
            if version is not None:
                assert r.get(version)[0].version == version, alias
        history = r.history()  # parses (a torn final line is skipped)
        assert history
        for v in r.list_versions():
            r.get(v)  # every visible version is whole
