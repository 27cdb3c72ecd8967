"""Shared test fixtures: an app evaluated as of a fixed date, fixture loaders, the contract."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import request
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from cds_service.clock import FixedClock
from cds_service.config import Config, StoreConfig, load_config
from cds_service.pipeline import contracts
from cds_service.tools.examples import complete_prefetch
from cds_service.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def load_request(name: str, **changes: Any) -> dict[str, Any]:
    """A fixture request; one that carries the chart is completed for prefetch keys declared
    after it was written (from its own resources), so adding a key edits no fixture."""
    request = complete(copy.deepcopy(load_fixture(f"requests/{name}.json")))
    request.update(changes)
    return request


def complete(request: dict[str, Any]) -> dict[str, Any]:
    """`request` with every key its hook's service declares (see tools.examples)."""
    from hooks import build_services

    service = next((s for s in build_services() if s.hook == request.get("hook")), None)
    return complete_prefetch(request, service.requirements) if service else request


def assert_valid_response(body: Any) -> None:
    found = contracts.violations("response.schema.json", body)
    assert not found, found


def assert_operation_outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert not contracts.violations("operation-outcome.schema.json", body), body
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    return body


@pytest.fixture
def config() -> Config:
    return load_config(None)


@pytest.fixture
def make_app(config: Config, tmp_path_factory: Any) -> Callable[..., Any]:
    apps = []

    broken: list[tuple[str, Any]] = []

    def factory(cfg: Config | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("clock", FixedClock(AS_OF))
        cfg = cfg or config
        # never the developer's own database (as written, or as load_config resolves it)
        if cfg.store.url in (StoreConfig().url, load_config(None).store.url):
            store_url = f"sqlite:///{tmp_path_factory.mktemp('store')}/store.sqlite3"
            cfg = replace(cfg, store=replace(cfg.store, url=store_url))
        app = create_app(cfg, **kwargs)
        app.testing = True
        app.after_request(_contract_checker(broken))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["legcramp_engine"].close()
    assert not broken, f"responses that break the contract: {broken}"


def _contract_checker(broken: list[tuple[str, Any]]) -> Callable[[Any], Any]:
    """Every response any test provokes is held to the schemas, whatever the test asserts."""

    def check(response: Any) -> Any:
        path, status = request.path, response.status_code
        body = response.get_json(silent=True) if response.is_json else None
        if status >= 400:
            schema = "operation-outcome.schema.json"
        elif request.method == "GET" and path == "/cds-services":
            schema = "discovery.schema.json"
        elif request.method == "POST" and path.count("/") == 2 and status == 200:
            schema = "response.schema.json"
        else:
            return response
        found = contracts.violations(schema, body)
        if found:
            broken.append((f"{request.method} {path} {status}", found))
        return response

    return check


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def make_caller(client: Any) -> Callable[[str, dict[str, Any]], Any]:
    """POST a hook request; a 200 body is checked against the response schema."""

    def post(service_id: str, request: dict[str, Any]) -> Any:
        response = client.post(f"/cds-services/{service_id}", json=request)
        if response.status_code == 200:
            assert_valid_response(response.get_json())
        return response

    return post


@pytest.fixture
def call(client: Any) -> Callable[[str, dict[str, Any]], Any]:
    return make_caller(client)


# --- the store's two back ends ------------------------------------------------------------------
# Tests that take `store_url` run twice: on a fresh SQLite file and on a fresh PostgreSQL database.
# The PostgreSQL server is the one LEGCRAMP_TEST_POSTGRES_URL names (scripts/postgres starts a
# throwaway one; .ci/run does so). Without it those tests are skipped, unless
# LEGCRAMP_REQUIRE_POSTGRES=1 (CI), where they fail.

POSTGRES_URL_ENV = "LEGCRAMP_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "LEGCRAMP_REQUIRE_POSTGRES"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """A connection to the test PostgreSQL server that may create and drop databases."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set "
                        "(start a server with scripts/postgres start)", pytrace=False)
        pytest.skip(f"no PostgreSQL to test against: set {POSTGRES_URL_ENV} "
                    "(scripts/postgres start prints one)")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    problem = ""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        problem = str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0]
    if problem:
        engine.dispose()
        pytest.fail(f"{POSTGRES_URL_ENV} ({make_url(url).render_as_string(hide_password=True)}) "
                    f"does not answer: {problem}", pytrace=False)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (about 0.1 s), dropped afterwards even if
    something still holds a connection to it."""
    name = f"legcramp_t_{uuid.uuid4().hex[:16]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        yield postgres_admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty store, once per back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store_config(config: Config, store_url: str) -> Config:
    """The default configuration with its store on the back end under test."""
    return replace(config, store=replace(config.store, url=store_url))
