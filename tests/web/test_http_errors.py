"""Every error is an OperationOutcome with the right status, and never a stack trace."""

from __future__ import annotations

import json
from dataclasses import replace

from cds_service.config import load_config
from cds_service.kit import RuleSettings, ServiceDeclaration
from cds_service.kit.cards import Card
from tests.conftest import assert_operation_outcome, load_request

SIGN = "/cds-services/legcramp-order-sign"


def test_malformed_json_is_400(client):
    response = client.post(SIGN, data='{"hook": "order-sign",', content_type="application/json")
    body = assert_operation_outcome(response, 400)
    assert "not valid JSON" in body["issue"][0]["diagnostics"]


def test_schema_violations_are_400_with_each_json_path(client):
    request = load_request("order-sign-quinine-malaria")
    del request["hookInstance"]
    request["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": {}}]}
    request["prefetch"]["conditions"] = "not a resource"
    body = assert_operation_outcome(client.post(SIGN, json=request), 400)
    paths = {expr for issue in body["issue"] for expr in issue.get("expression", [])}
    assert "$" in paths  # missing hookInstance at the top level
    assert "$.prefetch.conditions" in paths
    missing = [i["diagnostics"] for i in body["issue"] if "hookInstance" in i["diagnostics"]]
    assert missing


def test_context_violation_names_the_context_path(client):
    request = load_request("order-select-quinine-full-prefetch")
    request["context"]["selections"] = []
    response = client.post("/cds-services/legcramp-order-select", json=request)
    body = assert_operation_outcome(response, 400)
    assert any("$.context.selections" in i.get("expression", []) for i in body["issue"])


def test_body_that_is_not_an_object_is_400(client):
    assert_operation_outcome(client.post(SIGN, json=["order-sign"]), 400)


def test_unknown_service_is_404(client):
    body = assert_operation_outcome(
        client.post(
            "/cds-services/no-such-service", json=load_request("order-sign-quinine-malaria")
        ),
        404,
    )
    assert body["issue"][0]["code"] == "not-found"
    assert_operation_outcome(client.post("/cds-services/no-such-service/feedback", json={}), 404)
    assert_operation_outcome(client.get("/no/such/path"), 404)


def test_hook_not_matching_the_service_is_400(client):
    request = load_request("order-sign-quinine-malaria")
    response = client.post("/cds-services/legcramp-patient-view", json=request)
    body = assert_operation_outcome(response, 400)
    assert body["issue"][0]["expression"] == ["$.hook"]


def test_fhir_authorization_without_fhir_server_is_400(client):
    request = load_request("order-select-quinine-full-prefetch")
    del request["fhirServer"]
    response = client.post("/cds-services/legcramp-order-select", json=request)
    body = assert_operation_outcome(response, 400)
    assert "fhirServer" in json.dumps(body)
    assert request["fhirAuthorization"]["access_token"] not in response.get_data(as_text=True)


def test_wrong_content_type_is_415(client):
    body = json.dumps(load_request("order-sign-quinine-malaria"))
    assert_operation_outcome(client.post(SIGN, data=body, content_type="text/plain"), 415)
    assert_operation_outcome(client.post(SIGN, data=body), 415)


def test_fhir_json_content_type_is_accepted(client):
    body = json.dumps(load_request("order-sign-quinine-malaria"))
    response = client.post(SIGN, data=body, content_type="application/fhir+json; charset=utf-8")
    assert response.status_code == 200


def test_body_over_the_configured_limit_is_413(make_app):
    app = make_app(load_config(None, overrides={"server": {"max_body_bytes": 2048}}))
    request = load_request("order-sign-quinine-malaria")
    request["extension"] = {"org.example.padding": "x" * 4096}
    response = app.test_client().post(SIGN, json=request)
    body = assert_operation_outcome(response, 413)
    assert "2048" in body["issue"][0]["diagnostics"]


def test_no_prefetch_and_no_fhir_server_is_412_naming_each_key(client):
    declared = next(s for s in client.get("/cds-services").get_json()["services"]
                    if s["id"] == "legcramp-order-sign")["prefetch"]
    assert {"patient", "conditions"} <= set(declared)
    request = load_request("order-sign-quinine-malaria")
    del request["prefetch"]
    body = assert_operation_outcome(client.post(SIGN, json=request), 412)
    keys = sorted(expr for issue in body["issue"] for expr in issue["expression"])
    assert keys == sorted(f"prefetch.{key}" for key in declared)


def test_method_not_allowed_is_405_outcome(client):
    response = client.get(SIGN)
    assert_operation_outcome(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unexpected_failure_is_500_outcome_without_trace(make_app, config):
    service = ServiceDeclaration(
        id="boom", hook="order-sign", title="t", description="d", usage_requirements=""
    )
    app = make_app(replace(config, rules={}), services=[service])
    app.extensions["legcramp_engine"].call = lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("secret patient detail")
    )
    response = app.test_client().post(
        "/cds-services/boom", json=load_request("order-sign-quinine-malaria")
    )
    body = assert_operation_outcome(response, 500)
    assert "secret patient detail" not in json.dumps(body)


def test_a_failing_rule_does_not_take_other_rules_cards_with_it(make_app):
    from hooks.services import catalog

    class Exploding:
        rule_id = "exploding"
        catalog_code = "X9"
        title = "An exploding check"
        Settings = RuleSettings

        def reads(self, hook):
            return ()

        def evaluate(self, context):
            raise RuntimeError("bug")

    service = ServiceDeclaration(
        id="mixed",
        hook="order-sign",
        title="t",
        description="d",
        usage_requirements="",
        rules=(Exploding(), *catalog()),  # every rule, so the configured rule ids all exist
    )
    app = make_app(services=[service])
    request = load_request("order-select-quinine-full-prefetch", hook="order-sign")
    response = app.test_client().post("/cds-services/mixed", json=request)
    assert response.status_code == 200

    def gist(cards):
        return [(c["indicator"], c["summary"], c["source"].get("topic", {}).get("code"))
                for c in cards]

    cards = gist(response.get_json()["cards"])
    # the quinine draft's critical card is there ...
    assert ("critical", "quinine-leg-cramps") in [(c[0], c[2]) for c in cards]
    # ... the failed check says it did not run, naming the check, never the error (fail
    # closed: no silent all-clear) ...
    not_checked = [c for c in cards if c[2] == "exploding"]
    assert not_checked == [
        ("warning", "Not checked: An exploding check (X9); review this yourself", "exploding")]
    assert "bug" not in json.dumps(response.get_json())
    # ... and so is every card the real service gives without the exploding rule
    real = make_app().test_client().post(SIGN, json=request)
    assert real.status_code == 200
    assert [c for c in cards if c[2] != "exploding"] == gist(real.get_json()["cards"])


def test_cards_are_never_built_with_empty_members():
    from cds_service.kit.cards import Source

    card = Card(summary="s", indicator="info", source=Source(label="l"), detail="")
    assert card.to_json() == {"summary": "s", "indicator": "info", "source": {"label": "l"}}
