"""One slow FHIR server and everyone else: after calls that wait on a server trickling its
answer a byte a second, are calls to a healthy server still served?

    .venv/bin/python bench/slow_fhir.py [--slow-calls 6] [--rounds 10] [--tree PATH]

Starts `legcramp-cds serve` (embedded defaults: anonymous, loopback FHIR servers allowed, a
temporary SQLite store), a loopback FHIR server that answers at once, and one that sends its
headers and then one byte a second. Times `--rounds` order-sign calls naming the healthy server
(no prefetch: every key is fetched), then fires `--slow-calls` calls naming the slow server at
once and, while they wait, times the same calls to the healthy server again. Prints status
counts, medians and maxima; asserts nothing. `--tree` serves another checkout (a
`git worktree` of an older commit) for a before/after on one machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from slow_clients import REQUEST, SERVICE_PATH, served

CALL_TIMEOUT_S = 30.0


class Healthy(BaseHTTPRequestHandler):
    """Answers every read with a Patient and every search with an empty Bundle."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if "/Patient/" in path:
            body = {"resourceType": "Patient", "id": path.rsplit("/", 1)[-1]}
        else:
            body = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Trickling:
    """Accepts, reads the request line, sends 200 headers for a large body, then a byte a
    second for as long as the client stays."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
                             b"Content-Length: 1000000\r\n\r\n{")
                while not self.stop.wait(1.0):
                    conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def call(base: str, body: dict) -> tuple[int | str, float]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(base + SERVICE_PATH, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as answer:
            answer.read()
            status: int | str = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = "no answer"
    return status, (time.perf_counter() - started) * 1000


def summary(results: list[tuple[int | str, float]]) -> dict[str, object]:
    times = [ms for _, ms in results]
    return {"statuses": dict(collections.Counter(str(s) for s, _ in results)),
            "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow-calls", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()

    healthy = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=healthy.serve_forever, daemon=True).start()
    slow = Trickling()
    template = json.loads(REQUEST.read_text(encoding="utf-8"))
    template.pop("prefetch", None)
    to_healthy = dict(template, fhirServer=f"http://127.0.0.1:{healthy.server_port}/fhir")
    to_slow = dict(template, fhirServer=f"http://127.0.0.1:{slow.port}/fhir")

    try:
        with served(args.tree) as (base, _):
            before = [call(base, to_healthy) for _ in range(args.rounds)]
            with ThreadPoolExecutor(max_workers=args.slow_calls) as pool:
                slow_calls = [pool.submit(call, base, to_slow)
                              for _ in range(args.slow_calls)]
                time.sleep(1.0)  # the slow calls are inside the service, reading the trickle
                during = [call(base, to_healthy) for _ in range(args.rounds)]
                slow_results = [f.result() for f in slow_calls]
            after = [call(base, to_healthy) for _ in range(args.rounds)]
    finally:
        slow.close()
        healthy.shutdown()
    print(json.dumps({"tree": str(args.tree), "slow_calls": args.slow_calls,
                      "healthy_before": summary(before),
                      "healthy_while_slow_calls_wait": summary(during),
                      "calls_to_the_slow_server": summary(slow_results),
                      "healthy_after": summary(after)}, indent=2))


if __name__ == "__main__":
    main()
