"""Chaos: the push exporters' network goes away (refused, then black-holed) and comes back.

Must hold: the host's cache keeps serving throughout; sends that fail are retried with
backoff, and batches given up are counted as dropped, never silently lost; the queue stays
bounded; when the destination returns, delivery resumes by itself, and every batch is
accounted for: sent + dropped + queued = collected.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chaos_helpers import eventually

import predis
from predis.monitoring import Monitor
from predis.monitoring.newrelic import NewRelicExporter


class Receiver:
    """A New Relic Metric API stand-in on a fixed loopback port, decoding what it gets."""

    def __init__(self, port: int) -> None:
        self.payloads: list[list[dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.payloads.append(json.loads(gzip.decompress(body)))
                self.send_response(202)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class BlackHole:
    """Accepts connections into the backlog and never answers: packets going nowhere."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def nr_key(monkeypatch):
    monkeypatch.setenv("NEW_RELIC_API_KEY", "chaos-test-key")


def test_refused_then_blackholed_then_back(nr_key):
    del nr_key
    cache = predis.Cache(1 << 20)
    cache.put(1, b"v")
    receiver = Receiver(0)
    port = receiver.server.server_address[1]
    exp = NewRelicExporter(
        Monitor().add_cache(cache, "main"),
        f"http://127.0.0.1:{port}/metric/v1",
        interval=3600.0,
        max_queue=8,
        max_retries=2,
        backoff_initial=0.01,
        backoff_max=0.05,
        timeout=0.3,
    ).start()

    def collect_once() -> None:
        before = exp.stats().collections
        exp.flush_now()
        eventually(lambda: exp.stats().collections > before, "a collection")

    def serve_some() -> None:
        for _ in range(100):
            assert cache.get(1) == b"v"

    try:
        collect_once()
        eventually(lambda: len(receiver.payloads) >= 1, "delivery while the network is up")
        receiver.close()  # refused

        for _ in range(3):
            collect_once()
            serve_some()
        eventually(lambda: exp.stats().batches_dropped >= 1, "refused batches given up")

        hole = BlackHole(port)  # black-holed: every send waits out its timeout
        for _ in range(3):
            collect_once()
            serve_some()
        errors = exp.stats().send_errors
        eventually(lambda: exp.stats().send_errors > errors + 1, "timeouts counted")
        hole.close()

        receiver = Receiver(port)  # back
        collect_once()
        eventually(lambda: exp.stats().queued == 0, "the queue drains once the network is back")
        eventually(lambda: len(receiver.payloads) >= 1, "delivery resumed")
    finally:
        exp.stop(flush=False)
        receiver.close()
    st = exp.stats()
    assert st.batches_sent + st.batches_dropped + st.queued == st.collections
    assert st.batches_sent >= 2
    assert st.batches_dropped >= 1
    assert st.retries >= 1
    # The last delivery carries live figures: New Relic counters are deltas per interval,
    # and the last one covers the 100 hits served since the collection before it.
    last = {m["name"]: m for block in receiver.payloads[-1] for m in block["metrics"]}
    hits = last["predis_keyspace_hits_total"]
    assert hits["type"] == "count"
    assert hits["value"] == 100
