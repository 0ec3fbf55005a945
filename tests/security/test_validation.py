"""Validators against hostile input."""

from __future__ import annotations

import os

import pytest

from predis import InvalidArgumentError
from predis.security import (
    parse_size,
    safe_path,
    validate_customer_id,
    validate_host,
    validate_image_ref,
    validate_name,
    validate_port,
)


@pytest.mark.parametrize("good", ["acme", "acme-eu-1", "a1b", "x" * 63, "123"])
def test_good_customer_ids(good):
    assert validate_customer_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ab",
        "x" * 64,
        "Acme",
        "-acme",
        "acme-",
        "acme_eu",
        "acme eu",
        "../acme",
        "acme/../../etc",
        "acme;rm -rf /",
        "$(id)",
        "`id`",
        "acme\n",
        "acme\x00x",
        "ac\u0301me",
        "\u0430cme",  # Cyrillic a
        "acme'--",
        None,
        42,
        b"acme",
    ],
)
def test_hostile_customer_ids_are_refused(bad):
    with pytest.raises(InvalidArgumentError, match="customer id"):
        validate_customer_id(bad)


@pytest.mark.parametrize(
    "bad", ["", ".hidden", "..", "a/b", "a\\b", "a..b", "x" * 129, "a b", "-x"]
)
def test_bad_names(bad):
    with pytest.raises(InvalidArgumentError):
        validate_name(bad)


def test_good_name():
    assert validate_name("model_v2.ubj") == "model_v2.ubj"


@pytest.mark.parametrize("bad", [0, 65536, -1, True, "80", 80.0])
def test_bad_ports(bad):
    with pytest.raises(InvalidArgumentError):
        validate_port(bad)


@pytest.mark.parametrize("good", ["127.0.0.1", "::1", "localhost", "prometheus.svc.local", "a-b.c"])
def test_good_hosts(good):
    assert validate_host(good)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "http://x",
        "x:80",
        "a b",
        "user@host",
        "-x.com",
        "x..com",
        "a/b",
        "x" * 64 + ".com",
        "é.com",
    ],
)
def test_bad_hosts(bad):
    with pytest.raises(InvalidArgumentError, match="host"):
        validate_host(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [(4096, 4096), ("512", 512), ("64MiB", 64 << 20), ("2GB", 2_000_000_000), ("1 KiB", 1024)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", [-1, "-5MB", "5XB", "1e9", "", True, 2**70, "lots"])
def test_bad_sizes(bad):
    with pytest.raises(InvalidArgumentError):
        parse_size(bad)


class TestSafePath:
    def test_inside_paths_resolve(self, tmp_path):
        (tmp_path / "a").mkdir()
        assert safe_path(tmp_path, "a/b.bin") == tmp_path.resolve() / "a" / "b.bin"
        assert safe_path(tmp_path, tmp_path / "a") == tmp_path.resolve() / "a"
        assert safe_path(tmp_path, "a/../c") == tmp_path.resolve() / "c"

    @pytest.mark.parametrize(
        "escape", ["..", "../x", "a/../../x", "/etc/passwd", "//etc/passwd", "./../../../../etc"]
    )
    def test_traversal_is_refused(self, tmp_path, escape):
        (tmp_path / "a").mkdir()
        with pytest.raises(InvalidArgumentError, match="leaves"):
            safe_path(tmp_path / "a", escape)

    def test_symlink_out_is_refused_and_in_is_allowed(self, tmp_path):
        root = tmp_path / "root"
        root.mkdir()
        outside = tmp_path / "secret.txt"
        outside.write_text("x")
        (root / "link").symlink_to(outside)
        (root / "dirlink").symlink_to(tmp_path)
        (root / "inner.txt").write_text("y")
        (root / "ok").symlink_to(root / "inner.txt")
        with pytest.raises(InvalidArgumentError, match="leaves"):
            safe_path(root, "link")
        with pytest.raises(InvalidArgumentError, match="leaves"):
            safe_path(root, "dirlink/secret.txt")
        assert safe_path(root, "ok") == (root / "inner.txt").resolve()

    def test_devices_and_nul_bytes_are_refused(self, tmp_path):
        with pytest.raises(InvalidArgumentError, match="regular file"):
            safe_path("/dev", "null")
        with pytest.raises(InvalidArgumentError, match="NUL"):
            safe_path(tmp_path, "a\x00b")

    def test_fifo_is_refused(self, tmp_path):
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(InvalidArgumentError, match="regular file"):
            safe_path(tmp_path, "pipe")


@pytest.mark.parametrize(
    "good",
    [
        "predis/runtime:0.1.0",
        "ubuntu",
        "localhost:5000/predis/exporter",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/predis/runtime:2026-11-28",
        "ghcr.io/acme/predis_runtime__x@sha256:" + "a" * 64,
        "[::1]:5000/p:t",
    ],
)
def test_good_image_refs(good):
    assert validate_image_ref(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Predis/Runtime",
        "predis/runtime:0.1.0; rm -rf /",
        "predis/runtime:$(id)",
        "predis/runtime:`id`",
        "predis runtime",
        "predis/runtime:tag\nx",
        "-predis/runtime",
        "predis//runtime",
        "predis/runtime:" + "t" * 129,
        "predis/runtime@sha256:abc",
        "a/" * 200 + "b",
        7,
    ],
)
def test_bad_image_refs(bad):
    with pytest.raises(InvalidArgumentError):
        validate_image_ref(bad)
