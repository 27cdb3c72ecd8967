"""Two `legcramp-cds serve` instances behind nginx on loopback, sharing one PostgreSQL database.

The service keeps no state outside its database, so N replicas behind a load balancer behave as
one service: nginx spreads the load over both, a JWT accepted by one instance is a replay on the
other (the jti cache is in the database), and feedback posted to any of them is stored once.

Needs the `nginx` binary (Debian: nginx or nginx-light) and a PostgreSQL server
(LEGCRAMP_TEST_POSTGRES_URL). Without either the test is skipped, unless
LEGCRAMP_REQUIRE_POSTGRES=1 (CI, which installs both), where it fails. nginx runs in the
foreground from a configuration in tmp_path (its pid, logs and temp files there too): no system
service, nothing left running.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from cds_service.store.schema import card_shown, feedback
from tests.conftest import REQUIRE_POSTGRES_ENV, load_fixture
from tests.support.auth import DISCOVERY_PATH, bearer, ec_key, live_config, token, write_jwks
from tests.support.live_server import Served, free_port, serve

KEY = ec_key("scale-out-1", slot=5)
SERVICE_PATH = "/cds-services/legcramp-order-select"
FEEDBACK_PATH = f"{SERVICE_PATH}/feedback"
REQUEST = load_fixture("requests/order-select-quinine-full-prefetch.json")  # gives cards
SPREAD_REQUESTS = 40
UPSTREAM_HEADER = "X-Legcramp-Upstream"
DISCOVERY_COUNT = re.compile(
    r'^legcramp_cds_http_request_duration_seconds_count\{(?=[^}]*endpoint="discovery")'
    r'(?=[^}]*status="200")[^}]*\}\s+([0-9.e+]+)\s*$', re.MULTILINE)


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)),
        None)
    if found is None:
        message = "nginx is not installed (Debian: apt-get install nginx-light)"
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {message}", pytrace=False)
        pytest.skip(message)
    return found


def nginx_conf(prefix: Path, port: int, upstreams: list[int]) -> str:
    servers = "".join(f"        server 127.0.0.1:{upstream};\n" for upstream in upstreams)
    # As root the master would hand the workers to `nobody`, who cannot enter pytest's 0700
    # tmp directories: keep them as the user who runs the test (a throwaway on loopback).
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {prefix / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{
    worker_connections 256;
}}
http {{
    access_log {prefix / "access.log"};
{temp}    upstream legcramp {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://legcramp;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            add_header {UPSTREAM_HEADER} $upstream_addr always;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(prefix: Path, port: int, upstreams: list[int]) -> Iterator[str]:
    """nginx in the foreground on 127.0.0.1:`port` proxying to `upstreams`; always stopped."""
    binary = nginx_binary()
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port, upstreams), encoding="utf-8")
    log_path = prefix / "nginx.out"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 15
            while True:
                if process.poll() is not None:
                    pytest.fail(f"nginx exited with {process.returncode}:\n"
                                f"{log_path.read_text(errors='replace')}\n"
                                f"{(prefix / 'error.log').read_text(errors='replace')}")
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not answer /health within 15 s:\n"
                                f"{(prefix / 'error.log').read_text(errors='replace')}")
                time.sleep(0.1)
            yield base
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT)  # graceful shutdown
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def write_config(path: Path, *, public_base_url: str, store_url: str, jwks_path: Path) -> Path:
    return live_config(path, server="[server]\nworkers = 1\nthreads = 4",
                       public_base_url=public_base_url, jwks_path=jwks_path, store_url=store_url,
                       issuer='algorithms = ["ES384"]',
                       store='patient_hash_key = "scale-out-test-key-shared-by-all-replicas"')


def discovery_served(instance: Served) -> float:
    """How many 200 discovery answers this instance has given (from its own /metrics)."""
    text = requests.get(f"{instance.base}/metrics", timeout=10).text
    return sum(float(value) for value in DISCOVERY_COUNT.findall(text))


def wait_for_card(postgres_url: str, card_uuid: str, seconds: float = 10.0) -> bool:
    engine = create_engine(postgres_url, poolclass=NullPool)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if connection.execute(select(func.count()).select_from(card_shown).where(
                        card_shown.c.card_uuid == card_uuid)).scalar_one():
                    return True
            time.sleep(0.05)
        return False
    finally:
        engine.dispose()


def test_two_replicas_behind_nginx_share_one_postgresql(tmp_path: Path, postgres_url: str):
    nginx_port, port_a, port_b = free_port(), free_port(), free_port()
    lb = f"http://127.0.0.1:{nginx_port}"
    jwks_path = write_jwks(tmp_path / "jwks.json", KEY)
    config = write_config(tmp_path / "replica.toml", public_base_url=lb, store_url=postgres_url,
                          jwks_path=jwks_path)
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(serve(config, port_a, tmp_path / "a.log"))
        b = stack.enter_context(serve(config, port_b, tmp_path / "b.log"))
        by_addr = {f"127.0.0.1:{port_a}": a, f"127.0.0.1:{port_b}": b}
        logs = lambda: f"--- a ---\n{a.output()[-3000:]}\n--- b ---\n{b.output()[-3000:]}"  # noqa: E731
        for instance in (a, b):  # each migrates the shared database (the second finds it done)
            assert requests.get(f"{instance.base}/ready", timeout=20).status_code == 200, logs()
        base = stack.enter_context(nginx(tmp_path / "nginx", nginx_port, [port_a, port_b]))
        assert requests.get(f"{base}/ready", timeout=10).status_code == 200

        # (a) load spread: each request on a new connection, each with its own token whose aud
        # is the load balancer's URL; every replica serves a substantial share.
        before = {addr: discovery_served(instance) for addr, instance in by_addr.items()}
        upstreams: Counter[str] = Counter()
        for _ in range(SPREAD_REQUESTS):
            response = requests.get(
                f"{base}{DISCOVERY_PATH}", timeout=20,
                headers={**bearer(token(KEY, DISCOVERY_PATH, base=lb)), "Connection": "close"})
            assert response.status_code == 200, (response.text, logs())
            upstreams[response.headers[UPSTREAM_HEADER]] += 1
        served = {addr: discovery_served(instance) - before[addr]
                  for addr, instance in by_addr.items()}
        assert sum(served.values()) == SPREAD_REQUESTS, served
        assert all(count >= SPREAD_REQUESTS / 4 for count in served.values()), served
        assert dict(upstreams) == {addr: int(count) for addr, count in served.items()}, (
            upstreams, served)

        # (b) a token accepted through the load balancer is a replay on the other replica (and
        # on the same one): the jti cache is the shared database.
        jwt = token(KEY, SERVICE_PATH, base=lb)
        response = requests.post(f"{base}{SERVICE_PATH}", json=REQUEST, timeout=20,
                                 headers={**bearer(jwt), "Connection": "close"})
        assert response.status_code == 200, (response.text, logs())
        first = by_addr[response.headers[UPSTREAM_HEADER]]
        other = b if first is a else a
        replay = requests.post(f"{other.base}{SERVICE_PATH}", json=REQUEST, timeout=20,
                               headers=bearer(jwt))
        assert replay.status_code == 401, replay.text
        assert '"check": "jti already used (replay)"' in other.output()
        again = requests.post(f"{first.base}{SERVICE_PATH}", json=REQUEST, timeout=20,
                              headers=bearer(jwt))
        assert again.status_code == 401, again.text
        through_lb = requests.post(f"{base}{SERVICE_PATH}", json=REQUEST, timeout=20,
                                   headers={**bearer(jwt), "Connection": "close"})
        assert through_lb.status_code == 401, through_lb.text
        cards = [card["uuid"] for card in response.json()["cards"]]
        assert cards, response.json()
        # Each replica writes the cards it showed from a thread, just after the answer.
        assert wait_for_card(postgres_url, cards[0]), logs()

        # (c) the same feedback batch through the load balancer several times and to each
        # replica directly: each item is stored once. The card was shown by `first`, so the
        # other replica knows it too (the cards are in the shared database).
        batch = {"feedback": [
            {"card": cards[0], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:06:00Z",
             "overrideReason": {"userComment": "scale-out"}},
            {"card": cards[0], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:07:00Z",
             "overrideReason": {"userComment": "scale-out, again"}},
            {"card": "00000000-0000-4000-8000-000000000000", "outcome": "overridden",
             "outcomeTimestamp": "2026-11-21T10:08:00Z"},
        ]}
        targets = [base] * 4 + [a.base, b.base, a.base, b.base]
        feedback_upstreams: Counter[str] = Counter()
        for target in targets:
            response = requests.post(
                f"{target}{FEEDBACK_PATH}", json=batch, timeout=20,
                headers={**bearer(token(KEY, FEEDBACK_PATH, base=lb)), "Connection": "close"})
            assert response.status_code == 200, (target, response.text, logs())
            if target == base:
                feedback_upstreams[response.headers[UPSTREAM_HEADER]] += 1
        assert set(feedback_upstreams) == set(by_addr), feedback_upstreams

    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.known_card)
                .order_by(feedback.c.outcome_at)).all()
            shown = connection.execute(
                select(func.count()).select_from(card_shown)
                .where(card_shown.c.card_uuid == cards[0])).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        (cards[0], "overridden", True),
        (cards[0], "overridden", True),
    ]  # the card nobody was shown is counted as unknown and not stored
    assert shown == 1
