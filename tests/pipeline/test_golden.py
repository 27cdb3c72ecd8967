"""Full responses for realistic patients across all three hooks, compared with golden files.

Set UPDATE_GOLDEN=1 to rewrite the expected responses after a deliberate change, then review
the diff like any other change to what clinicians see.
"""

from __future__ import annotations

import json
import os

import pytest

from cds_service.config import load_config
from hooks.services import service_for_hook
from tests.conftest import FIXTURES, complete, make_caller

GOLDEN = FIXTURES / "golden"
SERVICE_FOR_HOOK = service_for_hook()  # hook -> service id, from hooks/services.py
CASES = sorted(p.name.removesuffix(".request.json") for p in GOLDEN.glob("*.request.json"))


@pytest.fixture
def call(make_app):
    """A fixed patient-hash key, so uuids stable per patient and finding are reproducible."""
    config = load_config(None, overrides={"store": {"patient_hash_key": "golden-files-key"}})
    return make_caller(make_app(config).test_client())


@pytest.mark.parametrize("case", CASES)
def test_response_matches_golden_file(call, case):
    request = complete(json.loads((GOLDEN / f"{case}.request.json").read_text(encoding="utf-8")))
    response = call(SERVICE_FOR_HOOK[request["hook"]], request)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    expected_path = GOLDEN / f"{case}.response.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert body == expected


def test_golden_cases_cover_every_hook_and_several_patients():
    hooks = {case.rsplit(".", 1)[1] for case in CASES}
    patients = {case.rsplit(".", 1)[0] for case in CASES}
    assert hooks == set(SERVICE_FOR_HOOK)
    assert len(patients) >= 3
