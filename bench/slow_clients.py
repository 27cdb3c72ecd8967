"""Slow clients: does the service still answer while many connections trickle their requests?

    .venv/bin/python bench/slow_clients.py [--slow 64] [--rounds 20] [--config FILE] [--tree PATH]

Starts `legcramp-cds serve` as the Dockerfile does (its own configuration file can name
another `[server] worker_class`), opens `--slow` connections that send their request a few
bytes every two seconds (half trickle the header lines, half send headers and then trickle
a declared body), and, while they hang, times `GET /health` and a valid order-sign hook call,
each on a fresh connection. Then it times the same calls with no slow clients for comparison.
Prints medians and maxima in ms and how many calls failed (no answer within 5 s); asserts
nothing. `--tree` serves another checkout (a `git worktree` of an older commit, say), for a
before/after on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUEST = ROOT / "fixtures" / "golden" / "rls-pramipexole.order-sign.request.json"
SERVICE_PATH = "/cds-services/legcramp-order-sign"
CALL_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become ready")


@contextlib.contextmanager
def served(tree: Path, config_text: str = "") -> Iterator[tuple[str, int]]:
    """`legcramp-cds serve` from `tree` on a free loopback port, with `config_text` (and a
    temporary SQLite store unless it names one), ready; terminated on exit. Yields (base, port)."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="legcramp-bench-"))
    if "[store]" not in config_text:
        config_text += f'\n[store]\nurl = "sqlite:///{workdir}/cards.db"\n'
    config = workdir / "config.toml"
    config.write_text(config_text, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port),
         "--config", str(config)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base, port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


class Trickler(threading.Thread):
    """One slow client: a few bytes every `every` seconds until stopped."""

    def __init__(self, port: int, slow_body: bool, stop: threading.Event, every: float = 2.0):
        super().__init__(daemon=True)
        self.port, self.slow_body, self.stop, self.every = port, slow_body, stop, every

    def run(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        except OSError:
            return
        try:
            if self.slow_body:
                sock.sendall(f"POST {SERVICE_PATH} HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                             .encode())
            else:
                sock.sendall(f"POST {SERVICE_PATH} HTTP/1.1\r\n".encode())
            counter = 0
            while not self.stop.wait(self.every):
                counter += 1
                piece = b' "a": 1,' if self.slow_body else f"X-Slow-{counter}: a\r\n".encode()
                sock.sendall(piece)
        except OSError:
            pass
        finally:
            sock.close()


def timed(method: str, url: str, body: bytes | None = None) -> float | None:
    """Milliseconds for one call on a fresh connection, or None when it failed."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as answer:
            answer.read()
            if answer.status != 200:
                return None
    except (OSError, urllib.error.URLError):
        return None
    return (time.perf_counter() - started) * 1000


def series(base: str, body: bytes, rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, method, url, data in (("health", "GET", base + "/health", None),
                                    ("hook", "POST", base + SERVICE_PATH, body)):
        samples = [timed(method, url, data) for _ in range(rounds)]
        ok = [s for s in samples if s is not None]
        out[name] = {"median_ms": statistics.median(ok) if ok else float("nan"),
                     "max_ms": max(ok) if ok else float("nan"),
                     "failed": float(len(samples) - len(ok))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=64, help="slow connections (default 64)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--config", type=Path, default=None,
                        help="configuration file for the service (a [server] table, say)")
    parser.add_argument("--tree", type=Path, default=ROOT)
    args = parser.parse_args()

    body = REQUEST.read_bytes()
    with served(args.tree, args.config.read_text() if args.config else "") as (base, port):
        quiet = series(base, body, args.rounds)
        stop = threading.Event()
        slow = [Trickler(port, slow_body=i % 2 == 1, stop=stop) for i in range(args.slow)]
        for client in slow:
            client.start()
        time.sleep(3)  # every slow client has connected and sent its first bytes
        loaded = series(base, body, args.rounds)
        stop.set()
    print(json.dumps({"tree": str(args.tree), "slow_connections": args.slow,
                      "rounds": args.rounds, "quiet": quiet, "with_slow_clients": loaded},
                     indent=2))


if __name__ == "__main__":
    main()
