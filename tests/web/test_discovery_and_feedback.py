"""Discovery is generated from the declarations; feedback is validated; CORS lets the sandbox in."""

from __future__ import annotations

from dataclasses import replace

from cds_service.pipeline import contracts
from hooks import build_services
from hooks.services import REFILL_RULE_CODES, catalog, refill_rules
from tests.conftest import assert_operation_outcome, load_request

EXPECTED = {
    "legcramp-order-select": "order-select",
    "legcramp-order-sign": "order-sign",
    "legcramp-patient-view": "patient-view",
    "legcramp-medication-refill": "medication-refill",
}


def test_discovery_lists_the_four_services_with_their_hooks(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    body = response.get_json()
    assert not contracts.violations("discovery.schema.json", body)
    assert {s["id"]: s["hook"] for s in body["services"]} == EXPECTED
    for service in body["services"]:
        assert service["title"] and service["description"] and service["usageRequirements"]


def test_discovery_prefetch_is_exactly_what_the_rules_read(client):
    declared = {s.id: s for s in build_services()}
    for service in client.get("/cds-services").get_json()["services"]:
        declaration = declared[service["id"]]
        wanted = {r.key: r.template for r in declaration.base_requirements}
        for rule in declaration.rules:
            wanted.update({r.key: r.template for r in rule.reads(declaration.hook)})
        assert service["prefetch"] == wanted


def test_prefetch_asks_for_patient_conditions_and_active_medications(client):
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    view = services["legcramp-patient-view"]["prefetch"]
    assert view["patient"] == "Patient/{{context.patientId}}"
    assert view["activeMedications"] == (
        "MedicationRequest?patient={{context.patientId}}&status=active"
    )
    assert view["conditions"] == "Condition?patient={{context.patientId}}"
    # Order hooks judge the draft orders, and ask for the medication list only because some
    # rule reads it there (cyclobenzaprine continuous use, the active diuretic of E2); a key
    # is the same query on every service.
    sign = services["legcramp-order-sign"]["prefetch"]
    readers = [
        rule.rule_id
        for service in build_services() if service.hook == "order-sign"
        for rule in service.rules
        if "activeMedications" in {r.key for r in rule.reads("order-sign")}
    ]
    assert ("activeMedications" in sign) == bool(readers)
    for service in services.values():
        for key, template in service["prefetch"].items():
            assert template == view.get(key, template)


def test_refill_service_runs_exactly_the_order_safety_rules_the_catalog_has():
    """REFILL_RULE_CODES names rules still being written; those in the catalog run on refill,
    in catalog order, and nothing else does."""
    [refill] = [s for s in build_services() if s.hook == "medication-refill"]
    in_catalog = [rule.catalog_code for rule in catalog()]
    assert [rule.catalog_code for rule in refill.rules] == [
        code for code in in_catalog if code in REFILL_RULE_CODES]
    assert {"Q1", "C1", "C2", "C3", "B1", "D1", "A1"} <= {r.catalog_code for r in refill.rules}
    assert not {"R1", "R2", "E1", "E2", "M1", "S1", "L1", "P1", "V1"} & {
        r.catalog_code for r in refill.rules}


def test_refill_rule_codes_not_yet_in_the_catalog_are_skipped():
    quinine = next(rule for rule in catalog() if rule.catalog_code == "Q1")
    assert refill_rules([quinine]) == (quinine,)
    assert refill_rules([]) == ()


def test_refill_prefetch_asks_for_no_more_than_order_sign_and_no_iron_studies(client):
    """Its rules' reads on a non-patient-view hook, the same templates as order-sign; the iron
    studies are read only by the RLS iron rules, which refill does not run."""
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    refill = services["legcramp-medication-refill"]["prefetch"]
    sign = services["legcramp-order-sign"]["prefetch"]
    assert {"patient", "conditions"} <= set(refill)
    assert refill.items() <= sign.items()
    assert "ironStudies" in sign and "ironStudies" not in refill


def test_preflight_is_answered_without_auth_for_every_endpoint(client):
    headers = {
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for path in (
        "/cds-services",
        "/cds-services/legcramp-order-sign",
        "/cds-services/legcramp-order-sign/feedback",
        "/cds-services/legcramp-medication-refill",
        "/cds-services/legcramp-medication-refill/feedback",
    ):
        response = client.options(path, headers=headers)
        assert 200 <= response.status_code < 300
        assert response.headers["Access-Control-Allow-Origin"] in ("*", headers["Origin"])
        allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        methods = response.headers["Access-Control-Allow-Methods"]
        assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in methods.split(",")}


def test_actual_responses_carry_the_allow_origin_header(client):
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://sandbox.cds-hooks.org")


def test_allowed_origins_are_configurable(make_app):
    from cds_service.config import load_config

    app = make_app(
        load_config(None, overrides={"cors": {"allowed_origins": ["https://ehr.example"]}})
    )
    client = app.test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://ehr.example"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_health_answers_ok(client):
    assert client.get("/health").get_json() == {"status": "ok"}


FEEDBACK = "/cds-services/legcramp-order-select/feedback"
CARD = "e53f7539-b95c-5a00-a681-c473f775e2d8"


def test_feedback_accepted_and_overridden_items_are_received(client):
    shown = client.post("/cds-services/legcramp-order-select",
                        json=load_request("order-select-quinine-full-prefetch"))
    card = shown.get_json()["cards"][0]["uuid"]
    body = {
        "feedback": [
            {
                "card": CARD,
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-21T10:05:31Z",
                "acceptedSuggestions": [{"id": "97155928-53e6-52af-b7d5-79fbfabbb3d5"}],
            },
            {
                "card": CARD,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-21T10:06:00.5+01:00",
                "overrideReason": {
                    "reason": {"system": "https://x.example/cs", "code": "treating-malaria"},
                    "userComment": "confirmed P. falciparum",
                },
            },
            {"card": "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a", "outcome": "overridden",
             "outcomeTimestamp": "2026-11-21T10:07:00Z"},
        ]
    }
    for item in body["feedback"][:2]:
        item["card"] = card
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 200
    # The third is about a card this service never showed: counted, not stored.
    assert response.get_json() == {"received": 3, "stored": 2, "duplicates": 0, "unknownCards": 1}


def test_feedback_legacy_bare_coding_override_reason_is_accepted(client):
    body = {
        "feedback": [
            {
                "card": CARD,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-21T10:05:31Z",
                "overrideReason": {"code": "treating-malaria", "system": "https://x.example/cs"},
            }
        ]
    }
    assert client.post(FEEDBACK, json=body).status_code == 200


def test_feedback_accepted_without_accepted_suggestions_is_400(client):
    body = {
        "feedback": [
            {"card": CARD, "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:05:31Z"}
        ]
    }
    outcome = assert_operation_outcome(client.post(FEEDBACK, json=body), 400)
    assert any(e.startswith("$.feedback[0]") for i in outcome["issue"] for e in i["expression"])


def test_feedback_with_bad_outcome_or_timestamp_is_400(client):
    for item in (
        {"card": CARD, "outcome": "ignored", "outcomeTimestamp": "2026-11-21T10:05:31Z"},
        {"card": CARD, "outcome": "overridden", "outcomeTimestamp": "yesterday"},
        {"card": "not-a-uuid", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:05:31Z"},
    ):
        assert_operation_outcome(client.post(FEEDBACK, json={"feedback": [item]}), 400)
    assert_operation_outcome(client.post(FEEDBACK, json={"feedback": []}), 400)


# --- headers that keep answers out of caches and browsers' guesses -------------------------------


def test_hook_feedback_and_error_answers_are_not_stored_and_not_sniffed(client):
    answers = {
        "hook": client.post("/cds-services/legcramp-patient-view",
                            json=load_request("patient-view-full-prefetch")),
        "feedback": client.post("/cds-services/legcramp-patient-view/feedback",
                                json={"feedback": []}),
        "discovery": client.get("/cds-services"),
        "error": client.post("/cds-services/legcramp-patient-view", data=b"{",
                             content_type="application/json"),
    }
    for name, response in answers.items():
        assert response.headers.get("Cache-Control") == "no-store", name
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
    assert client.get("/health").headers.get("X-Content-Type-Options") == "nosniff"


def test_with_auth_required_cors_answers_only_the_configured_origins(make_app, tmp_path):
    from tests.support.auth import auth_config

    sandbox = "https://sandbox.cds-hooks.org"
    config = auth_config(tmp_path, [], required=True)
    config = replace(config, cors=replace(config.cors, allowed_origins=("*", sandbox)))
    client = make_app(config).test_client()
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = client.options("/cds-services", headers={"Origin": sandbox, **preflight})
    assert allowed.headers.get("Access-Control-Allow-Origin") == sandbox
    other = client.options("/cds-services", headers={"Origin": "https://evil.example",
                                                     **preflight})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_metrics_and_probes_are_not_offered_to_browsers(client):
    for path in ("/metrics", "/health", "/ready"):
        response = client.get(path, headers={"Origin": "https://sandbox.cds-hooks.org"})
        assert "Access-Control-Allow-Origin" not in response.headers, path
