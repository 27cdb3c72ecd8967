"""Shared test fixtures: an app evaluated as of a fixed date, fixture loaders, the contract."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import request

from cds_service import contracts
from cds_service.app import create_app
from cds_service.clock import FixedClock
from cds_service.config import Config, StoreConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
AS_OF = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def load_request(name: str, **changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(load_fixture(f"requests/{name}.json"))
    request.update(changes)
    return request


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
        if cfg.store.url == StoreConfig().url:  # never the developer's own database
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
