"""No resource is validated twice in one request (issue 19), across every golden request: each
validation costs ~0.05-0.1 ms, and a second one of the same JSON would be pure waste."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from cds_service.pipeline import record_builder
from tests.conftest import FIXTURES

GOLDEN = sorted((FIXTURES / "golden").glob("*.request.json"))
SERVICE = {"order-select": "legcramp-order-select", "order-sign": "legcramp-order-sign",
           "patient-view": "legcramp-patient-view",
           "medication-refill": "legcramp-medication-refill"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name.removesuffix(".request.json"))
def test_each_resource_of_a_request_is_validated_at_most_once(client, monkeypatch, path):
    validated: Counter[int] = Counter()
    real = record_builder.parse_resource

    def counting(raw: dict[str, Any], report: Any = None) -> Any:
        validated[id(raw)] += 1
        return real(raw, report)

    monkeypatch.setattr(record_builder, "parse_resource", counting)
    request = json.loads(path.read_text(encoding="utf-8"))
    answer = client.post(f"/cds-services/{SERVICE[request['hook']]}", json=request)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert validated, "the rules read nothing: the count proves nothing"
    assert [n for n in validated.values() if n > 1] == []
