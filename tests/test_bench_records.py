"""The bench's requests stay valid as the services grow: every key a service declares is in the
bench's prefetch, so a benchmark never measures 412s (the safety gates' new keys once broke it
without a test noticing)."""

from __future__ import annotations

import json
import sys

import pytest

from hooks import build_services
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import records


@pytest.mark.parametrize("hook", ["order-select", "order-sign", "patient-view"])
def test_the_bench_request_is_answered_with_cards_not_412(make_app, hook):
    service = next(s for s in build_services() if s.hook == hook)
    prefetch = records.record(84)
    keys = [r.key for r in service.requirements]
    assert set(keys) <= set(prefetch), set(keys) - set(prefetch)
    body = json.dumps(records.hook_request(hook, prefetch, keys))
    response = make_app().test_client().post(f"/cds-services/{service.id}", data=body,
                                             content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
