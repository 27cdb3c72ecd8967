"""The jti replay cache across the worker processes of a real `legcramp-cds serve`.

gunicorn runs two workers, each with its own Authenticator; a jti is remembered in the SQLite
database they share, so a token is accepted once whichever worker gets it. Every request goes
over a fresh connection (`Connection: close`), so the kernel hands them to both workers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import load_fixture
from tests.support.auth import SERVICE_PATH, bearer, ec_key, live_config, token, write_jwks
from tests.support.live_server import Served, free_port, serve

KEY = ec_key("live-1", slot=4)
REQUEST = load_fixture("requests/order-sign-quinine-malaria.json")
ATTEMPTS = 16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("live-auth")
    port = free_port()
    config = live_config(
        tmp_path / "serve.toml", server="[server]\nworkers = 2\nthreads = 4",
        public_base_url=f"http://127.0.0.1:{port}",
        jwks_path=write_jwks(tmp_path / "jwks.json", KEY),
        store_url=f"sqlite:///{tmp_path / 'replay.sqlite3'}", issuer='algorithms = ["ES384"]')
    with serve(config, port, tmp_path / "serve.log") as served:
        # One call first, so the replay table exists before the bursts below: creating it from
        # two workers at once is a separate (known) failure, pinned down deterministically in
        # test_first_calls_racing_to_create_the_replay_table_are_not_500.
        assert post(served, token(KEY, base=served.base)) == 200, served.output()[-3000:]
        yield served


def post(served: Served, jwt: str) -> int:
    response = requests.post(
        f"{served.base}{SERVICE_PATH}", json=REQUEST, timeout=20,
        headers={**bearer(jwt), "Connection": "close"},
    )
    return response.status_code


def read_syscalls(served: Served) -> dict[int, int] | None:
    """Read system calls so far per gunicorn worker (an idle worker makes none), or None where
    /proc cannot tell."""
    pids = [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", served.output())]
    try:
        return {pid: int(re.search(r"syscr: (\d+)", Path(f"/proc/{pid}/io").read_text())[1])
                for pid in pids}
    except (OSError, TypeError):
        return None


def assert_both_workers_served(before: dict[int, int] | None, served: Served) -> None:
    after = read_syscalls(served)
    if before is None or after is None:
        return  # no /proc: the statuses alone must do
    assert len(after) == 2, after
    assert all(after[pid] > before.get(pid, 0) for pid in after), (before, after)


def burst(served: Served, tokens: list[str]) -> list[int]:
    """Send every token at once from its own thread (a barrier lines them up)."""
    gate = threading.Barrier(len(tokens))

    def send(jwt: str) -> int:
        gate.wait(timeout=30)
        return post(served, jwt)

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(send, tokens))


def both_workers_served(before: dict[int, int] | None, served: Served) -> bool:
    try:
        assert_both_workers_served(before, served)
    except AssertionError:
        return False
    return True


def bursts_until_both_workers_serve(served: Served, tokens_for_burst, check) -> None:
    """Which worker takes a connection is the kernel's choice: repeat the burst (with fresh
    tokens, checking each) until both workers took part, a handful of times at most."""
    for _ in range(5):
        before = read_syscalls(served)
        check(burst(served, tokens_for_burst()))
        if both_workers_served(before, served):
            return
    raise AssertionError("five bursts never reached both workers")


def test_distinct_tokens_sent_concurrently_are_all_accepted(server):
    def check(statuses):
        assert statuses == [200] * ATTEMPTS, (statuses, server.output()[-3000:])

    bursts_until_both_workers_serve(
        server, lambda: [token(KEY, base=server.base) for _ in range(ATTEMPTS)], check)


def test_same_token_sent_concurrently_is_accepted_exactly_once(server):
    def check(statuses):
        assert sorted(statuses) == [200] + [401] * (ATTEMPTS - 1), statuses

    # so that the 401s came from both processes in at least one burst
    bursts_until_both_workers_serve(
        server, lambda: [token(KEY, base=server.base)] * ATTEMPTS, check)


def test_same_token_sent_again_and_again_is_accepted_exactly_once(server):
    """One after another, each on a new connection (which worker takes each is the kernel's
    choice; the concurrent burst above is the one that checks both took part)."""
    jwt = token(KEY, base=server.base)
    statuses = [post(server, jwt) for _ in range(ATTEMPTS)]
    assert statuses == [200] + [401] * (ATTEMPTS - 1), statuses


def test_replays_are_logged_as_replays(server):
    jwt = token(KEY, base=server.base)
    assert [post(server, jwt) for _ in range(3)] == [200, 401, 401]
    assert server.output().count('"check": "jti already used (replay)"') >= 2



def test_workers_racing_to_migrate_the_database_both_get_a_working_store(tmp_path, monkeypatch):
    """Deterministic form of the race: another worker creates the tables while this worker
    migrates, so this worker's CREATE fails; once the other worker has recorded the schema
    version, this worker accepts its work instead of failing."""
    from alembic import command as alembic_command

    from cds_service.store import database as store_module
    from cds_service.store.schema import metadata

    url = f"sqlite:///{tmp_path}/race.sqlite3"
    real_upgrade = alembic_command.upgrade
    raced: list[bool] = []

    def upgrade_while_another_worker_migrates(alembic_config, revision):
        engine = store_module.make_engine(url)
        metadata.create_all(engine)  # the other worker's CREATE TABLEs land first
        try:
            real_upgrade(alembic_config, revision)
        except Exception:
            raced.append(True)
            with engine.begin() as connection:  # ... and then it records the version
                alembic_command.stamp(store_module._alembic_config(connection), "head")
            raise
        finally:
            engine.dispose()

    monkeypatch.setattr(store_module.command, "upgrade", upgrade_while_another_worker_migrates)
    store = store_module.Store(url)
    try:
        assert raced, "the race was not staged"
        assert store.at_head()
        assert store.remember_token("iss", "jti-1", datetime.now(UTC) + timedelta(minutes=5))
    finally:
        store.close()
