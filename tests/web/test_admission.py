"""Large hook requests are worked on a few at a time per worker; small ones never wait; one that
waits too long gets a 503 OperationOutcome with Retry-After."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from cds_service.errors import Unavailable
from cds_service.web.admission import LargeRequestGate
from cds_service.web.errors import error_response, status_of
from tests.conftest import assert_operation_outcome, load_request

SERVICE = "/cds-services/legcramp-order-select"


def test_only_large_or_chunked_bodies_take_a_slot():
    gate = LargeRequestGate(large_bytes=1000, slots=1, wait_seconds=0.05)
    assert not gate.is_large(999)
    assert gate.is_large(1000)
    assert gate.is_large(None)  # chunked: its size is not known before it is read
    with gate.admit(5000):
        with gate.admit(10):  # small: never waits
            pass
        with pytest.raises(Unavailable) as refused, gate.admit(5000):
            pass
        assert status_of(refused.value) == 503
        assert error_response(refused.value).headers["Retry-After"] == "1"
    with gate.admit(5000):  # the slot is free again after a refusal
        pass


def test_a_large_request_waits_for_the_slot_rather_than_failing():
    gate = LargeRequestGate(large_bytes=1000, slots=1, wait_seconds=5)
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with gate.admit(5000):
            held.set()
            threading.Event().wait(0.1)
            order.append("first")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(5)
    with gate.admit(5000):
        order.append("second")
    thread.join(5)
    assert order == ["first", "second"]


@pytest.fixture
def busy_app(make_app, config):
    request = load_request("order-select-quinine-full-prefetch")
    small = len(json.dumps(request))
    cfg = replace(config, server=replace(config.server, large_request_bytes=small + 100,
                                         large_request_wait_seconds=0.05))
    return make_app(cfg), request


def test_a_large_request_beyond_the_slots_gets_503_with_retry_after(busy_app):
    app, request = busy_app
    large = {**request, "extension": {"padding": "x" * 200}}  # past large_request_bytes
    client = app.test_client()
    with app.extensions["legcramp_gate"].admit(None):  # another large request is being worked on
        refused = client.post(SERVICE, json=large)
        small = client.post(SERVICE, json=request)
    body = assert_operation_outcome(refused, 503)
    assert refused.headers["Retry-After"] == "1"
    assert body["issue"][0]["code"] == "transient"
    assert small.status_code == 200
    answered = client.post(SERVICE, json=large)  # the slot is free again
    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["cards"]
