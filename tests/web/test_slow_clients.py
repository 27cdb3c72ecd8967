"""Slow clients and slow FHIR servers cannot take the service's liveness or its hook answers,
served as `legcramp-cds serve` and the container serve it (the default worker class).

These are liveness checks, not timings: each call gets a few seconds to answer, and under the
old thread-per-connection server every one of them hung until the slow sockets closed.
`bench/slow_clients.py` prints the figures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.live_server import ROOT, Served, free_port, serve

REQUEST = ROOT / "fixtures" / "golden" / "rls-pramipexole.order-sign.request.json"
SERVICE = "/cds-services/legcramp-order-sign"
SLOW_CLIENTS = 64
ANSWER_WITHIN_S = 5.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The embedded defaults, one worker (the easiest to starve), an sqlite store in tmp."""
    config = tmp_path / "serve.toml"
    config.write_text(
        "[server]\nworkers = 1\n\n"
        f"[store]\nurl = {json.dumps(f'sqlite:///{tmp_path}/s.sqlite3')}\n", encoding="utf-8")
    with serve(config, free_port(), tmp_path / "serve.log") as live:
        yield live


class Tricklers:
    """`count` connections that send a request a few bytes at a time and never finish it:
    half trickle header lines, half send complete headers then trickle the declared body."""

    def __init__(self, port: int, count: int, every_s: float = 1.0) -> None:
        self.stop = threading.Event()
        self.connected = threading.Barrier(count + 1, timeout=30)
        self.threads = [threading.Thread(target=self._trickle, args=(port, i % 2 == 1, every_s),
                                         daemon=True) for i in range(count)]

    def _trickle(self, port: int, body: bool, every_s: float) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            if body:
                sock.sendall(f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                             "application/json\r\nContent-Length: 100000\r\n\r\n{".encode())
            else:
                sock.sendall(f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\n".encode())
            self.connected.wait()
            line = 0
            while not self.stop.wait(every_s):
                line += 1
                try:
                    sock.sendall(b' "a": 1,' if body else f"X-Slow-{line}: a\r\n".encode())
                except OSError:
                    return

    def __enter__(self) -> Tricklers:
        for thread in self.threads:
            thread.start()
        self.connected.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


def test_health_and_a_hook_call_answer_while_64_connections_trickle(served):
    body = REQUEST.read_bytes()
    with Tricklers(served.port, SLOW_CLIENTS):
        for _ in range(3):
            health = requests.get(f"{served.base}/health", timeout=ANSWER_WITHIN_S)
            assert health.status_code == 200
            hook = requests.post(f"{served.base}{SERVICE}", data=body, timeout=ANSWER_WITHIN_S,
                                 headers={"Content-Type": "application/json"})
            assert hook.status_code == 200
            assert hook.json()["cards"], "the golden request's card"
    # gevent patched the standard library before anything imported ssl (a late patch can end
    # in RecursionError on the first https FHIR call, and gevent says so in the log)
    assert "MonkeyPatchWarning" not in served.output()


class SilentFhirServer:
    """A listener on another port that accepts connections and never answers: every FHIR read
    sent to it waits for the service's own deadline."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.accepted = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.accepted.release()

    def __enter__(self) -> SilentFhirServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_health_does_not_wait_behind_hook_calls_blocked_on_a_silent_fhir_server(served):
    """More hook calls than the old server had threads, each waiting on FHIR reads that never
    answer: `/health` still answers at once (it used to wait 8.6 s)."""
    request = json.loads(REQUEST.read_text(encoding="utf-8"))
    request.pop("prefetch", None)
    calls = 12  # the old server had 2 x 4 threads
    fetch_slots = 16  # fhir.max_parallel_fetches_per_server: reads beyond it wait in the worker
    with SilentFhirServer() as fhir, ThreadPoolExecutor(max_workers=calls) as pool:
        request["fhirServer"] = f"http://127.0.0.1:{fhir.port}/fhir"
        pending = [pool.submit(requests.post, f"{served.base}{SERVICE}", json=request,
                               timeout=60) for _ in range(calls)]
        for _ in range(fetch_slots):  # the calls are inside the service, waiting on FHIR reads
            assert fhir.accepted.acquire(timeout=30)
        health = requests.get(f"{served.base}/health", timeout=ANSWER_WITHIN_S)
        assert health.status_code == 200
        assert all(not call.done() for call in pending), "the hook calls are still waiting"
        fhir.sock.close()
        for held in fhir.held:
            held.close()
        answers = [call.result() for call in pending]
    assert {answer.status_code for answer in answers} == {412}
