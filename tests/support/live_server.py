"""A real `legcramp-cds serve` (gunicorn) for the tests that need one, started and stopped in
one place: the console script, a free loopback port, readiness polling, and termination."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def console_script() -> str:
    beside = Path(sys.executable).parent / "legcramp-cds"
    if beside.exists():
        return str(beside)
    found = shutil.which("legcramp-cds")
    if found is None:
        pytest.skip("the legcramp-cds console script is not installed")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class Served:
    base: str
    port: int
    log_path: Path
    process: subprocess.Popen

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def serve(
    config_path: Path, port: int, log_path: Path, ready_path: str = "/health", cwd: Path = ROOT
) -> Iterator[Served]:
    """`legcramp-cds serve` on 127.0.0.1:`port` with `config_path`, its stdout and stderr in
    `log_path`; ready once `ready_path` (which needs no token) answers; always terminated."""
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "LEGCRAMP_CDS_CONFIG"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                console_script(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--config",
                str(config_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"serve exited with {process.returncode}:\n"
                        f"{log_path.read_text(errors='replace')}"
                    )
                try:
                    if requests.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                        break
                except requests.RequestException:  # refused, or accepted before a worker is up
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"serve did not answer {ready_path} within 20 s:\n"
                        f"{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.1)
            yield Served(base, port, log_path, process)
        finally:
            stop(process)
