"""The other side of the monitoring benchmark, in its own process: loopback receivers for
the push exporters (a UDP sink for DogStatsD, an HTTP sink for New Relic and OTLP, a TCP sink
for CloudWatch EMF) and a Prometheus stand-in that scrapes a URL every ARGV[1] seconds
(default 1).

Protocol: prints one JSON line {"udp": port, "http": port, "tcp": port}; then reads the
/metrics URL from stdin and scrapes it every second until stdin closes; then prints
{"scrapes": n, "scrape_errors": n, "posts": n, "datagrams": n, "emf_lines": n} and exits.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counts = {"scrapes": 0, "scrape_errors": 0, "posts": 0, "datagrams": 0, "emf_lines": 0}


class Post(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        counts["posts"] += 1
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Lines(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for _ in self.rfile:
            counts["emf_lines"] += 1


def main() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    http = ThreadingHTTPServer(("127.0.0.1", 0), Post)
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Lines)
    tcp.daemon_threads = True

    def drain_udp() -> None:
        while True:
            udp.recv(65536)
            counts["datagrams"] += 1

    for target in (drain_udp, http.serve_forever, tcp.serve_forever):
        threading.Thread(target=target, daemon=True).start()
    ports = {
        "udp": udp.getsockname()[1],
        "http": http.server_address[1],
        "tcp": tcp.server_address[1],
    }
    print(json.dumps(ports), flush=True)
    url = sys.stdin.readline().strip()
    every = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    done = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not done.wait(every):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
                resp.read()
            counts["scrapes"] += 1
        except OSError as exc:
            counts["scrape_errors"] += 1
            print(f"scrape failed: {exc}", file=sys.stderr, flush=True)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
