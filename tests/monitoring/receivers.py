"""Loopback receivers that decode what the push exporters send: DogStatsD datagrams over
UDP, HTTP POSTs (New Relic, OTLP) and newline-delimited EMF JSON over TCP."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll until ``check()`` holds; fail (saying what) if it never does."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


class UdpReceiver:
    """Collects datagrams on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            self.datagrams.append(data)

    def lines(self) -> list[str]:
        return [ln for d in list(self.datagrams) for ln in d.decode().split("\n") if ln]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class HttpReceiver:
    """Records POSTs; answers each with the next code of ``codes`` (then 202)."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.codes = list(codes or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = outer.codes.pop(0) if outer.codes else 202
                if code < 300:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    outer.requests.append((self.path, headers, body))
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


class TcpLineReceiver:
    """Collects newline-delimited text over TCP."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    outer.lines.append(raw.decode().rstrip("\n"))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
