"""Contract tests for the JSON Schemas in cds_service/schemas/ and for openapi.yaml.

The schemas encode CDS Hooks 2.0 sections 1-2 (request, response, feedback, discovery) and the
hook contexts of the CDS Hooks Library (section 5), including the 3.0-ballot invariants that are
already implied by 2.0 (cds-r-1, cds-resp-1..6, cds-fb-1..3). Each invalid example is a valid
example with exactly one thing broken, and the test checks where and why it fails.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "cds_service" / "schemas"
OPENAPI_PATH = REPO_ROOT / "openapi.yaml"
SANDBOX_CAPTURED_DIR = REPO_ROOT.parent / "shared" / "data" / "sandbox-captured"

EXPECTED_SCHEMA_FILES = {
    "common.schema.json",
    "request.schema.json",
    "context-patient-view.schema.json",
    "context-order-select.schema.json",
    "context-order-sign.schema.json",
    "context-medication-refill.schema.json",
    "feedback.schema.json",
    "discovery.schema.json",
    "response.schema.json",
    "operation-outcome.schema.json",
}
CONTEXT_SCHEMA_BY_HOOK = {
    "patient-view": "context-patient-view.schema.json",
    "order-select": "context-order-select.schema.json",
    "order-sign": "context-order-sign.schema.json",
    "medication-refill": "context-medication-refill.schema.json",
}
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

Json = dict[str, Any]


# --- loader -------------------------------------------------------------------------------


def _load_schema(name: str) -> Json:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@cache
def schema_registry() -> Registry:
    """Every schema file registered under its bare file name, as the service loader does."""
    resources = [
        (path.name, Resource.from_contents(_load_schema(path.name), DRAFT202012))
        for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
    ]
    return Registry().with_resources(resources)


@cache
def validator_for(target: str) -> Draft202012Validator:
    """Validator for a schema file or one $def, e.g. "common.schema.json#/$defs/Card"."""
    return Draft202012Validator({"$ref": target}, registry=schema_registry())


def failures(target: str, instance: Any) -> list[tuple[str, str]]:
    """(JSON path, failing keyword) for every error; [] when the instance is valid."""
    return sorted(
        (error.json_path, str(error.validator))
        for error in validator_for(target).iter_errors(instance)
    )


CARD = "common.schema.json#/$defs/Card"
LINK = "common.schema.json#/$defs/Link"
RESPONSE = "response.schema.json"
REQUEST = "request.schema.json"
FEEDBACK = "feedback.schema.json"
DISCOVERY = "discovery.schema.json"
OPERATION_OUTCOME = "operation-outcome.schema.json"
ORDER_SELECT_CONTEXT = "context-order-select.schema.json"
PATIENT_VIEW_CONTEXT = "context-patient-view.schema.json"
MEDICATION_REFILL_CONTEXT = "context-medication-refill.schema.json"


# --- valid examples (fresh copies, mutated by the invalid cases) --------------------------


def good_card() -> Json:
    return {
        "uuid": "8b0c0f5e-3a57-4b7e-9d3c-2f1a6c1e4b20",
        "summary": "Quinine is not recommended for leg cramps: risk of serious blood disorders.",
        "detail": "FDA (2010) warns against **off-label** quinine for nocturnal leg cramps.",
        "indicator": "warning",
        "source": {
            "label": "legcramp-cds",
            "url": "https://example.org/legcramp-cds",
            "topic": {"system": "http://example.org/topics", "code": "quinine-leg-cramps"},
        },
        "suggestions": [
            {
                "label": "Cancel the quinine order",
                "uuid": "0f7f2b6e-9d4a-4c1e-8a57-1f6f1b8d7e11",
                "isRecommended": True,
                "actions": [
                    {
                        "type": "delete",
                        "description": "Remove the draft quinine order",
                        "resourceId": "MedicationRequest/request-123",
                    }
                ],
            },
            {
                "label": "Order a stretching programme instead",
                "actions": [
                    {
                        "type": "create",
                        "description": "Create a referral to physiotherapy",
                        "resource": {"resourceType": "ServiceRequest", "status": "draft"},
                    }
                ],
            },
        ],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [
            {
                "system": "http://example.org/override-reasons",
                "code": "malaria",
                "display": "Prescribed for malaria",
            }
        ],
        "links": [
            {
                "label": "FDA safety communication",
                "url": "https://www.fda.gov/",
                "type": "absolute",
            },
            {
                "label": "Cramp diary app",
                "url": "https://apps.example.org/launch",
                "type": "smart",
                "appContext": '{"view":"diary"}',
                "autolaunchable": False,
            },
        ],
    }


def minimal_card() -> Json:
    return {
        "summary": "No leg cramp concerns found.",
        "indicator": "info",
        "source": {"label": "legcramp-cds"},
    }


def good_feedback_item() -> Json:
    return {
        "card": "8b0c0f5e-3a57-4b7e-9d3c-2f1a6c1e4b20",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "0f7f2b6e-9d4a-4c1e-8a57-1f6f1b8d7e11"}],
        "outcomeTimestamp": "2021-12-11T10:05:31Z",
    }


def good_request() -> Json:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://fhir.example.org/r4",
        "fhirAuthorization": {
            "access_token": "some-opaque-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Observation.read",
            "subject": "legcramp-cds",
        },
        "context": {"userId": "Practitioner/example", "patientId": "1288992"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "1288992"}, "potassium": None},
    }


def good_order_select_context() -> Json:
    return {
        "userId": "PractitionerRole/123",
        "patientId": "1288992",
        "selections": ["MedicationRequest/request-123"],
        "draftOrders": {
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "MedicationRequest", "id": "request-123"}}],
        },
    }


def good_medication_refill_context() -> Json:
    """The CDS Hooks Library's R4 example, abridged: no user or encounter is required."""
    return {
        "patientId": "1288992",
        "medications": {
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "MedicationRequest",
                                    "id": "smart-MedicationRequest-104", "status": "draft",
                                    "intent": "order"}}],
        },
    }


def good_discovery() -> Json:
    return {
        "services": [
            {
                "hook": "patient-view",
                "id": "legcramp-patient-view",
                "title": "Leg cramp review",
                "description": "Reviews causes and treatment of leg cramps for the open patient.",
                "prefetch": {"patient": "Patient/{{context.patientId}}"},
                "usageRequirements": "Needs read access to Observation.",
            },
            {
                "hook": "order-sign",
                "id": "legcramp-order-sign",
                "description": "Checks quinine orders for leg cramps at signing.",
            },
        ]
    }


# --- the schema files themselves ----------------------------------------------------------


def test_schema_directory_holds_exactly_the_expected_files() -> None:
    assert {path.name for path in SCHEMA_DIR.glob("*.schema.json")} == EXPECTED_SCHEMA_FILES


@pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMA_FILES))
def test_schema_file_is_valid_draft_2020_12_without_id(name: str) -> None:
    schema = _load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DRAFT_2020_12
    assert "$id" not in schema, "files are registered under their bare name; $id would override it"
    assert schema["title"] and schema["description"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


@pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMA_FILES))
def test_every_ref_is_a_relative_file_name_that_resolves(name: str) -> None:
    resolver = schema_registry().resolver(base_uri=name)
    refs = _refs(_load_schema(name))
    for ref in refs:
        file_part = ref.partition("#")[0]
        assert file_part == "" or file_part in EXPECTED_SCHEMA_FILES, ref
        resolver.lookup(ref)  # raises Unresolvable if the pointer or file is missing
    if name != "common.schema.json":
        assert any(ref.startswith("common.schema.json#") for ref in refs)


# --- openapi.yaml -------------------------------------------------------------------------


def _openapi() -> Json:
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


def test_openapi_is_valid_3_1_with_schema_files_resolved() -> None:
    spec = _openapi()
    assert spec["openapi"] == "3.1.0"
    assert spec["jsonSchemaDialect"] == DRAFT_2020_12
    assert spec["info"]["title"] == "legcramp-cds"
    validate_openapi(spec, base_uri=OPENAPI_PATH.resolve().as_uri())


def test_openapi_references_every_body_schema_file() -> None:
    text = OPENAPI_PATH.read_text(encoding="utf-8")
    contexts = [name.removesuffix(".schema.json") for name in CONTEXT_SCHEMA_BY_HOOK.values()]
    for name in ("discovery", "request", "response", "feedback", "operation-outcome", *contexts):
        ref = f"./cds_service/schemas/{name}.schema.json"
        assert ref in text
        assert (OPENAPI_PATH.parent / ref).is_file()


def test_openapi_documents_each_endpoint_with_its_status_codes() -> None:
    paths = _openapi()["paths"]
    service = "/cds-services/{service_id}"
    feedback = "/cds-services/{service_id}/feedback"
    assert set(paths) == {"/cds-services", service, feedback, "/health", "/ready", "/metrics"}
    assert set(paths["/cds-services"]) == {"get", "options"}
    assert set(paths[service]) == {"parameters", "post", "options"}
    assert set(paths[feedback]) == {"parameters", "post", "options"}
    assert set(paths["/cds-services"]["get"]["responses"]) == {"200", "401", "503"}
    assert set(paths[service]["post"]["responses"]) == {
        "200", "400", "401", "404", "412", "413", "415", "503"}
    assert set(paths[feedback]["post"]["responses"]) == {
        "200", "400", "401", "404", "413", "415", "503"}
    assert set(paths["/health"]["get"]["responses"]) == {"200"}
    assert set(paths["/metrics"]["get"]["responses"]) == {"200", "404"}


def test_openapi_error_responses_are_fhir_json_operation_outcomes() -> None:
    spec = _openapi()
    for name, response in spec["components"]["responses"].items():
        if name == "Preflight":
            assert "content" not in response
            continue
        assert set(response["content"]) == {"application/fhir+json"}
        assert response["content"]["application/fhir+json"]["schema"] == {
            "$ref": "#/components/schemas/OperationOutcome"
        }
    assert spec["components"]["schemas"]["OperationOutcome"] == {
        "$ref": "./cds_service/schemas/operation-outcome.schema.json"
    }


# --- cards --------------------------------------------------------------------------------


def test_full_card_with_suggestions_links_and_override_reasons_is_valid() -> None:
    assert failures(CARD, good_card()) == []


def test_minimal_card_is_valid() -> None:
    assert failures(CARD, minimal_card()) == []


def test_summary_of_139_characters_is_accepted() -> None:
    card = minimal_card()
    card["summary"] = "x" * 139
    assert failures(CARD, card) == []


def test_summary_of_140_characters_is_rejected() -> None:
    card = minimal_card()
    card["summary"] = "x" * 140
    assert failures(CARD, card) == [("$.summary", "maxLength")]


def test_card_with_suggestions_but_no_selection_behavior_is_rejected() -> None:
    card = minimal_card()
    card["suggestions"] = [{"label": "Stop the quinine order"}]
    assert failures(CARD, card) == [("$", "dependentRequired")]
    card["selectionBehavior"] = "any"
    assert failures(CARD, card) == []


def test_override_reason_without_display_is_rejected() -> None:
    card = good_card()
    del card["overrideReasons"][0]["display"]
    assert failures(CARD, card) == [("$.overrideReasons[0]", "required")]


def test_delete_action_carrying_resource_instead_of_resource_id_is_rejected() -> None:
    card = good_card()
    action = card["suggestions"][0]["actions"][0]
    del action["resourceId"]
    action["resource"] = {"resourceType": "MedicationRequest", "id": "request-123"}
    assert failures(CARD, card) == [
        ("$.suggestions[0].actions[0]", "not"),
        ("$.suggestions[0].actions[0]", "required"),
    ]


def test_create_action_without_resource_is_rejected() -> None:
    card = good_card()
    del card["suggestions"][1]["actions"][0]["resource"]
    assert failures(CARD, card) == [("$.suggestions[1].actions[0]", "required")]


def test_link_with_app_context_but_absolute_type_is_rejected() -> None:
    link = {
        "label": "App",
        "url": "https://apps.example.org/launch",
        "type": "absolute",
        "appContext": "x",
    }
    assert failures(LINK, link) == [("$.type", "const")]
    link["type"] = "smart"
    assert failures(LINK, link) == []


def test_empty_detail_string_is_rejected() -> None:
    card = good_card()
    card["detail"] = ""
    assert failures(CARD, card) == [("$.detail", "minLength")]


def test_empty_optional_arrays_on_a_card_are_rejected() -> None:
    card = good_card()
    card["links"] = []
    card["overrideReasons"] = []
    assert failures(CARD, card) == [("$.links", "minItems"), ("$.overrideReasons", "minItems")]


def test_pre_1_0_indicator_hard_stop_is_rejected() -> None:
    card = minimal_card()
    card["indicator"] = "hard-stop"
    assert failures(CARD, card) == [("$.indicator", "enum")]


def test_unknown_card_member_is_rejected_but_extension_is_allowed() -> None:
    card = minimal_card()
    card["extension"] = {"org.example.legcramp": {"rule": "quinine"}}
    assert failures(CARD, card) == []
    card["severity"] = "high"
    assert failures(CARD, card) == [("$", "additionalProperties")]


def test_non_canonical_card_uuid_is_rejected() -> None:
    card = minimal_card()
    card["uuid"] = "8b0c0f5e3a574b7e9d3c2f1a6c1e4b20"
    assert failures(CARD, card) == [("$.uuid", "minLength"), ("$.uuid", "pattern")]
    card["uuid"] = "8B0C0F5E-3A57-4B7E-9D3C-2F1A6C1E4B20"
    assert failures(CARD, card) == []


def test_at_most_one_card_with_two_recommended_suggestions_is_rejected() -> None:
    card = good_card()
    card["suggestions"][1]["isRecommended"] = True
    assert failures(CARD, card) == [("$.suggestions", "maxContains")]


def test_at_most_one_card_with_no_recommended_suggestion_is_accepted() -> None:
    card = good_card()
    card["suggestions"][0]["isRecommended"] = False
    assert failures(CARD, card) == []


def test_any_card_may_recommend_several_suggestions() -> None:
    card = good_card()
    card["selectionBehavior"] = "any"
    card["suggestions"][1]["isRecommended"] = True
    assert failures(CARD, card) == []


# --- response -----------------------------------------------------------------------------


def test_response_with_no_cards_is_valid() -> None:
    assert failures(RESPONSE, {"cards": []}) == []


def test_response_with_cards_and_system_actions_is_valid() -> None:
    system_action = {
        "type": "update",
        "description": "Record the cramp screening",
        "resource": {"resourceType": "Task", "id": "t1", "status": "completed"},
    }
    body = {"cards": [good_card(), minimal_card()], "systemActions": [system_action]}
    assert failures(RESPONSE, body) == []


def test_response_without_cards_or_with_empty_system_actions_is_rejected() -> None:
    assert failures(RESPONSE, {}) == [("$", "required")]
    assert failures(RESPONSE, {"cards": [], "systemActions": []}) == [
        ("$.systemActions", "minItems")
    ]


def test_response_reports_the_invalid_card_by_position() -> None:
    bad = minimal_card()
    bad["detail"] = ""
    assert failures(RESPONSE, {"cards": [minimal_card(), bad]}) == [
        ("$.cards[1].detail", "minLength")
    ]


# --- feedback -----------------------------------------------------------------------------


def test_accepted_feedback_with_suggestions_is_valid() -> None:
    assert failures(FEEDBACK, {"feedback": [good_feedback_item()]}) == []


def test_accepted_feedback_without_accepted_suggestions_is_rejected() -> None:
    item = good_feedback_item()
    del item["acceptedSuggestions"]
    assert failures(FEEDBACK, {"feedback": [item]}) == [("$.feedback[0]", "required")]


def test_overridden_feedback_with_only_a_user_comment_is_valid() -> None:
    item = {
        "card": "8b0c0f5e-3a57-4b7e-9d3c-2f1a6c1e4b20",
        "outcome": "overridden",
        "overrideReason": {"userComment": "Patient has malaria."},
        "outcomeTimestamp": "2021-12-11T10:05:31.123+01:00",
    }
    assert failures(FEEDBACK, {"feedback": [item]}) == []


def test_overridden_feedback_as_the_sandbox_sends_it_is_valid() -> None:
    item = {
        "card": "8b0c0f5e-3a57-4b7e-9d3c-2f1a6c1e4b20",
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"code": "malaria", "system": "http://example.org/override-reasons"}
        },
        "outcomeTimestamp": "2026-11-21T09:15:00.000Z",
    }
    assert failures(FEEDBACK, {"feedback": [item]}) == []


def test_empty_override_reason_is_rejected() -> None:
    item = {
        "card": "8b0c0f5e-3a57-4b7e-9d3c-2f1a6c1e4b20",
        "outcome": "overridden",
        "overrideReason": {},
        "outcomeTimestamp": "2021-12-11T10:05:31Z",
    }
    assert failures(FEEDBACK, {"feedback": [item]}) == [("$.feedback[0].overrideReason", "anyOf")]


@pytest.mark.parametrize(
    "timestamp",
    ["2021-12-11", "2021-12-11T10:05:31", "2021-12-11 10:05", "2021-13-11T10:05:31Z", "yesterday"],
)
def test_feedback_timestamp_that_is_not_rfc3339_date_time_is_rejected(timestamp: str) -> None:
    item = good_feedback_item()
    item["outcomeTimestamp"] = timestamp
    assert failures(FEEDBACK, {"feedback": [item]}) == [
        ("$.feedback[0].outcomeTimestamp", "pattern")
    ]


def test_feedback_with_no_items_or_unknown_outcome_is_rejected() -> None:
    assert failures(FEEDBACK, {"feedback": []}) == [("$.feedback", "minItems")]
    item = good_feedback_item()
    item["outcome"] = "ignored"
    assert failures(FEEDBACK, {"feedback": [item]}) == [("$.feedback[0].outcome", "enum")]


# --- request ------------------------------------------------------------------------------


def test_request_with_authorization_and_prefetch_is_valid() -> None:
    assert failures(REQUEST, good_request()) == []


def test_request_with_fhir_authorization_but_no_fhir_server_is_rejected() -> None:
    request = good_request()
    del request["fhirServer"]
    assert failures(REQUEST, request) == [("$", "dependentRequired")]


def test_request_tolerates_non_uuid_hook_instance_and_unknown_members() -> None:
    request = good_request()
    request["hookInstance"] = "epic-12345"
    request["user"] = "Practitioner/example"
    request["extension"] = {"org.example": True}
    assert failures(REQUEST, request) == []


def test_request_missing_hook_or_with_bad_token_type_is_rejected() -> None:
    request = good_request()
    del request["hook"]
    request["fhirAuthorization"]["token_type"] = "MAC"
    assert failures(REQUEST, request) == [
        ("$", "required"),
        ("$.fhirAuthorization.token_type", "pattern"),
    ]


def test_prefetch_value_that_is_not_a_fhir_resource_is_rejected() -> None:
    request = good_request()
    request["prefetch"]["patient"] = {
        "response": {"status": "200"},
        "resource": {"resourceType": "Patient"},
    }
    assert failures(REQUEST, request) == [("$.prefetch.patient", "anyOf")]


# --- hook contexts ------------------------------------------------------------------------


def test_order_select_context_is_valid_without_bundle_type_or_entries() -> None:
    context = good_order_select_context()
    assert failures(ORDER_SELECT_CONTEXT, context) == []
    del context["draftOrders"]["entry"]
    assert failures(ORDER_SELECT_CONTEXT, context) == []


def test_order_select_context_with_empty_selections_is_rejected() -> None:
    context = good_order_select_context()
    context["selections"] = []
    assert failures(ORDER_SELECT_CONTEXT, context) == [("$.selections", "minItems")]


def test_order_select_selection_that_is_not_type_slash_id_is_rejected() -> None:
    context = good_order_select_context()
    context["selections"] = ["request-123"]
    assert failures(ORDER_SELECT_CONTEXT, context) == [("$.selections[0]", "pattern")]


def test_order_select_context_rejects_patient_user_and_non_bundle_draft_orders() -> None:
    context = good_order_select_context()
    context["userId"] = "Patient/1288992"
    context["draftOrders"] = {"resourceType": "MedicationRequest"}
    assert failures(ORDER_SELECT_CONTEXT, context) == [
        ("$.draftOrders.resourceType", "const"),
        ("$.userId", "pattern"),
    ]


def test_every_supported_hook_has_its_context_schema_loaded_by_the_service() -> None:
    from cds_service.kit import SUPPORTED_HOOKS
    from cds_service.pipeline.contracts import SCHEMA_FILES
    from cds_service.pipeline.request import CONTEXT_SCHEMAS

    assert dict(CONTEXT_SCHEMAS) == CONTEXT_SCHEMA_BY_HOOK
    assert set(CONTEXT_SCHEMAS) == set(SUPPORTED_HOOKS)
    assert set(SCHEMA_FILES) == EXPECTED_SCHEMA_FILES


def test_medication_refill_context_needs_neither_user_nor_encounter() -> None:
    context = good_medication_refill_context()
    assert failures(MEDICATION_REFILL_CONTEXT, context) == []
    context.update(userId="Practitioner/123", encounterId="89284")
    assert failures(MEDICATION_REFILL_CONTEXT, context) == []
    del context["medications"]["entry"]
    assert failures(MEDICATION_REFILL_CONTEXT, context) == []


@pytest.mark.parametrize("member", ["patientId", "medications"])
def test_medication_refill_context_without_patient_or_medications_is_rejected(
        member: str) -> None:
    context = good_medication_refill_context()
    del context[member]
    assert failures(MEDICATION_REFILL_CONTEXT, context) == [("$", "required")]


def test_medication_refill_context_rejects_what_the_order_hooks_reject() -> None:
    """The medications Bundle is checked as draftOrders is; the user, when given, is a
    Practitioner or PractitionerRole; the ids are non-empty strings."""
    context = good_medication_refill_context()
    context.update(userId="Patient/1288992", encounterId="", patientId=1288992)
    context["medications"] = {"resourceType": "MedicationRequest"}
    assert failures(MEDICATION_REFILL_CONTEXT, context) == [
        ("$.encounterId", "minLength"),
        ("$.medications.resourceType", "const"),
        ("$.patientId", "type"),
        ("$.userId", "pattern"),
    ]
    context = good_medication_refill_context()
    context["medications"]["entry"] = [{"fullUrl": "urn:uuid:1"}, {"resource": {}}]
    assert failures(MEDICATION_REFILL_CONTEXT, context) == [
        ("$.medications.entry[0]", "required"),
        ("$.medications.entry[1].resource", "required"),
    ]


@pytest.mark.parametrize(
    ("user_id", "valid"),
    [
        ("Practitioner/COREPRACTITIONER1", True),
        ("RelatedPerson/rp-1", True),
        ("Patient/1288992", True),
        ("Organization/org-1", False),
        ("COREPRACTITIONER1", False),
    ],
)
def test_patient_view_user_id_must_reference_an_allowed_user_type(
    user_id: str, valid: bool
) -> None:
    errors = failures(PATIENT_VIEW_CONTEXT, {"userId": user_id, "patientId": "1288992"})
    if valid:
        assert errors == []
    else:
        assert errors and set(errors) == {("$.userId", "pattern")}


def _sandbox_cases() -> list[Any]:
    if not SANDBOX_CAPTURED_DIR.is_dir():
        return [pytest.param(None, id="sandbox-captured-missing")]
    captured = sorted(SANDBOX_CAPTURED_DIR.glob("*.json"))
    return [pytest.param(path, id=path.name) for path in captured]


@pytest.mark.parametrize("captured_path", _sandbox_cases())
def test_request_captured_from_the_sandbox_is_valid(captured_path: Path | None) -> None:
    if captured_path is None:
        pytest.skip(f"{SANDBOX_CAPTURED_DIR} is not present")
    request = json.loads(captured_path.read_text(encoding="utf-8"))["request"]
    assert failures(REQUEST, request) == []
    assert request["hook"] in CONTEXT_SCHEMA_BY_HOOK
    assert failures(CONTEXT_SCHEMA_BY_HOOK[request["hook"]], request["context"]) == []


# --- discovery and errors -----------------------------------------------------------------


def test_discovery_with_services_or_none_is_valid() -> None:
    assert failures(DISCOVERY, good_discovery()) == []
    assert failures(DISCOVERY, {"services": []}) == []


def test_discovery_service_without_description_is_rejected() -> None:
    discovery = good_discovery()
    del discovery["services"][1]["description"]
    assert failures(DISCOVERY, discovery) == [("$.services[1]", "required")]


def test_discovery_rejects_legacy_name_and_empty_prefetch_template() -> None:
    discovery = good_discovery()
    discovery["services"][0]["name"] = "Leg cramp review"
    discovery["services"][0]["prefetch"]["patient"] = ""
    assert failures(DISCOVERY, discovery) == [
        ("$.services[0]", "additionalProperties"),
        ("$.services[0].prefetch.patient", "minLength"),
    ]


def test_operation_outcome_needs_at_least_one_issue_with_known_severity() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "required", "diagnostics": "Missing prefetch 'patient'"}
        ],
    }
    assert failures(OPERATION_OUTCOME, outcome) == []
    broken = copy.deepcopy(outcome)
    broken["issue"][0]["severity"] = "bad"
    assert failures(OPERATION_OUTCOME, broken) == [("$.issue[0].severity", "enum")]
    assert failures(OPERATION_OUTCOME, {"resourceType": "OperationOutcome", "issue": []}) == [
        ("$.issue", "minItems")
    ]
