"""Hostile request bodies: each input limit is a clear 400 naming the limit, never a 5xx.

Small limits are configured so that requests at exactly the limit (which must pass, with the
quinine card) and one past it (a 400 OperationOutcome naming the limit and its value, pointing at
where it was exceeded, without echoing the request) are cheap to build.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cds_service.config import load_config
from cds_service.errors import InvalidRequest
from cds_service.web import limits
from cds_service.web.errors import status_of
from cds_service.web.limits import Limits, check_limits, check_parsed_limits, json_path
from tests.conftest import assert_operation_outcome, load_fixture, load_request
from tests.support.documents import depth

SELECT = "/cds-services/legcramp-order-select"
ENDPOINTS = [
    "/cds-services/legcramp-order-select",
    "/cds-services/legcramp-order-sign",
    "/cds-services/legcramp-patient-view",
    "/cds-services/legcramp-medication-refill",
    "/cds-services/legcramp-order-select/feedback",
    "/cds-services/legcramp-order-sign/feedback",
    "/cds-services/legcramp-patient-view/feedback",
    "/cds-services/legcramp-medication-refill/feedback",
]
QUININE_SUMMARY_START = "Quinine is not recommended for leg cramps"
SECRET = "SECRET-PATIENT-TEXT"

DEPTH, ENTRIES, KEYS, LENGTH = 16, 5, 10, 200


@pytest.fixture
def small(make_app: Any) -> Any:
    cfg = load_config(
        None,
        overrides={
            "server": {
                "max_json_depth": DEPTH,
                "max_bundle_entries": ENTRIES,
                "max_prefetch_keys": KEYS,
                "max_string_length": LENGTH,
            }
        },
    )
    return make_app(cfg).test_client()


def quinine() -> dict[str, Any]:
    return load_request("order-select-quinine-full-prefetch")


def post_raw(client: Any, path: str, data: bytes | str, **kwargs: Any) -> Any:
    return client.post(path, data=data, content_type="application/json", **kwargs)


def assert_quinine_card(response: Any) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    summaries = [card["summary"] for card in response.get_json()["cards"]]
    assert any(s.startswith(QUININE_SUMMARY_START) for s in summaries), summaries


def assert_limit_400(response: Any, setting: str, value: int, where: str | None = None) -> None:
    body = assert_operation_outcome(response, 400)
    issue = body["issue"][0]
    assert setting in issue["diagnostics"] and str(value) in issue["diagnostics"], issue
    assert issue["code"] in ("too-costly", "structure")
    if where is not None:
        assert issue["expression"] == [where], issue
    assert SECRET not in response.get_data(as_text=True)


def nested_lists(levels: int, leaf: Any = SECRET) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# --- nesting depth ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ten_thousand_deep_nesting_is_400_not_a_crash(client, path):
    for body in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        response = post_raw(client, path, body)
        assert_limit_400(response, "server.max_json_depth", 64)
        assert "nested deeper" in response.get_json()["issue"][0]["diagnostics"]


def test_nesting_at_the_depth_limit_passes_and_one_deeper_is_400(small):
    request = quinine()
    request["extension"] = {"deep": nested_lists(DEPTH - 2)}  # $ 1, extension 2, lists 3..
    assert depth(request) == DEPTH
    assert_quinine_card(small.post(SELECT, json=request))

    request["extension"] = {"deep": nested_lists(DEPTH - 1)}
    assert depth(request) == DEPTH + 1
    where = "$.extension.deep" + "[0]" * (DEPTH - 2)
    assert_limit_400(small.post(SELECT, json=request), "server.max_json_depth", DEPTH, where)


def test_nesting_the_decoder_accepts_but_the_limit_refuses_is_400(client):
    response = post_raw(client, SELECT, json.dumps({"extension": {"x": nested_lists(500)}}))
    assert_limit_400(response, "server.max_json_depth", 64)


# --- Bundle entries ---------------------------------------------------------------------------


def _pad_draft_orders(request: dict[str, Any], count: int) -> None:
    entries = request["context"]["draftOrders"]["entry"]
    template = next(e for e in entries if e["resource"]["id"] != "draft-quinine-1")
    while len(entries) < count:
        extra = copy.deepcopy(template)
        extra["resource"]["id"] = f"draft-extra-{len(entries)}"
        entries.append(extra)


def test_draft_orders_at_the_entry_limit_pass_and_one_more_is_400(small):
    request = quinine()
    _pad_draft_orders(request, ENTRIES)
    assert_quinine_card(small.post(SELECT, json=request))

    _pad_draft_orders(request, ENTRIES + 1)
    assert_limit_400(
        small.post(SELECT, json=request),
        "server.max_bundle_entries",
        ENTRIES,
        "$.context.draftOrders.entry",
    )


def test_refill_medications_at_the_entry_limit_pass_and_one_more_is_400(small):
    request = load_request("medication-refill-quinine")
    entries = request["context"]["medications"]["entry"]
    while len(entries) < ENTRIES:
        extra = copy.deepcopy(entries[0])
        extra["resource"]["id"] = f"refill-extra-{len(entries)}"
        entries.append(extra)
    response = small.post("/cds-services/legcramp-medication-refill", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)

    entries.append(copy.deepcopy(entries[-1]))
    assert_limit_400(
        small.post("/cds-services/legcramp-medication-refill", json=request),
        "server.max_bundle_entries",
        ENTRIES,
        "$.context.medications.entry",
    )


def test_refill_bundles_within_the_entry_limit_are_proved_from_the_bytes(monkeypatch):
    """The medications Bundle is where CDS Hooks puts a refill's orders, as draftOrders is on
    the order hooks: a refill request within the limits is shown so without walking it."""
    request = load_fixture("requests/medication-refill-quinine.json")
    raw = json.dumps(request).encode()
    entry_limit = 5
    assert raw.count(b",") >= entry_limit  # not shown by counting commas alone

    def walk(*args: Any) -> None:
        raise AssertionError("the whole document was walked")

    monkeypatch.setattr(limits, "check_limits", walk)
    check_parsed_limits(request, Limits(max_bundle_entries=entry_limit), raw)


def test_prefetch_bundle_past_the_entry_limit_is_400(small):
    request = quinine()
    bundle = request["prefetch"]["conditions"]
    first = bundle["entry"][0]
    bundle["entry"] = [copy.deepcopy(first) for _ in range(ENTRIES)]
    assert_quinine_card(small.post(SELECT, json=request))

    bundle["entry"].append(copy.deepcopy(first))
    assert_limit_400(
        small.post(SELECT, json=request),
        "server.max_bundle_entries",
        ENTRIES,
        "$.prefetch.conditions.entry",
    )


# --- prefetch keys ----------------------------------------------------------------------------


def test_prefetch_at_the_key_limit_passes_and_one_more_key_is_400(small):
    request = quinine()
    for index in range(KEYS - len(request["prefetch"])):
        request["prefetch"][f"unused{index}"] = None
    assert len(request["prefetch"]) == KEYS
    assert_quinine_card(small.post(SELECT, json=request))

    request["prefetch"]["oneTooMany"] = None
    assert_limit_400(
        small.post(SELECT, json=request), "server.max_prefetch_keys", KEYS, "$.prefetch"
    )


# --- string length ----------------------------------------------------------------------------


def test_string_at_the_length_limit_passes_and_one_longer_is_400(small):
    request = quinine()
    request["extension"] = {"note": SECRET + "x" * (LENGTH - len(SECRET))}
    assert_quinine_card(small.post(SELECT, json=request))

    request["extension"]["note"] += "x"
    assert_limit_400(
        small.post(SELECT, json=request), "server.max_string_length", LENGTH, "$.extension.note"
    )


def test_overlong_object_key_is_400_without_echoing_it(small):
    request = quinine()
    request["extension"] = {SECRET + "k" * LENGTH: 1}
    response = small.post(SELECT, json=request)
    assert_limit_400(response, "server.max_string_length", LENGTH, "$.extension")
    assert "member name" in response.get_json()["issue"][0]["diagnostics"]


def test_overlong_string_in_a_hook_instance_is_400(small):
    request = load_request("order-select-quinine-full-prefetch", hookInstance=SECRET * 20)
    assert_limit_400(
        small.post(SELECT, json=request), "server.max_string_length", LENGTH, "$.hookInstance"
    )


def test_limits_apply_to_feedback_too(small):
    feedback = {
        "feedback": [
            {
                "card": SECRET + "c" * LENGTH,
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-21T12:00:00Z",
            }
        ]
    }
    response = small.post(f"{SELECT}/feedback", json=feedback)
    assert_limit_400(response, "server.max_string_length", LENGTH, "$.feedback[0].card")
    deep = {"feedback": [], "extension": {"x": nested_lists(DEPTH)}}
    assert_limit_400(small.post(f"{SELECT}/feedback", json=deep), "server.max_json_depth", DEPTH)


# --- numbers and text that JSON does not have -------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_400(client, literal):
    body = json.dumps(quinine()).replace('"expires_in": 300', f'"expires_in": {literal}')
    assert literal in body
    response = post_raw(client, SELECT, body)
    issue = assert_operation_outcome(response, 400)["issue"][0]
    assert "NaN and Infinity" in issue["diagnostics"]


def test_number_beyond_a_double_is_400(client):
    body = json.dumps(quinine()).replace('"expires_in": 300', '"expires_in": 1e999')
    response = post_raw(client, SELECT, body)
    assert "out of the range" in assert_operation_outcome(response, 400)["issue"][0]["diagnostics"]


def test_integer_with_too_many_digits_is_400(client):
    body = json.dumps(quinine()).replace('"expires_in": 300', '"expires_in": ' + "9" * 5000)
    response = post_raw(client, SELECT, body)
    assert "too long" in assert_operation_outcome(response, 400)["issue"][0]["diagnostics"]


def test_unpaired_surrogate_escape_is_400(client):
    """Before the limit check, "\\ud800" in hookInstance reached uuid5() and gave a 500."""
    body = json.dumps(quinine()).replace(
        '"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"', '"\\ud800-instance"'
    )
    response = post_raw(client, SELECT, body)
    issue = assert_operation_outcome(response, 400)["issue"][0]
    assert "surrogate" in issue["diagnostics"]
    assert issue["expression"] == ["$.hookInstance"]


def test_escaped_surrogate_pair_is_fine(client):
    request = quinine()
    request["extension"] = {"note": "\U0001f600"}
    body = json.dumps(request, ensure_ascii=True)
    assert "\\ud83d\\ude00" in body
    assert_quinine_card(post_raw(client, SELECT, body))


# --- bodies that are not a JSON object --------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\xfa{}", b'{"hook": "\xc3\x28"}', b"", b'"order-select"', b"42", b"null", b"true"],
    ids=["invalid-utf8", "invalid-utf8-in-string", "empty", "string", "number", "null", "bool"],
)
def test_bodies_that_are_not_a_json_object_are_400(client, path, body):
    assert_operation_outcome(post_raw(client, path, body), 400)


def test_content_length_far_over_the_limit_is_413(client):
    response = post_raw(client, SELECT, b"{}", environ_overrides={"CONTENT_LENGTH": str(10**15)})
    assert_operation_outcome(response, 413)


@pytest.mark.parametrize("length", ["1000", "-5", "not-a-number"])
def test_content_length_that_lies_is_400(client, length):
    response = post_raw(client, SELECT, b"{}", environ_overrides={"CONTENT_LENGTH": length})
    assert_operation_outcome(response, 400)


# --- the walk itself --------------------------------------------------------------------------


def test_the_check_does_not_recurse_on_very_deep_documents():
    document = nested_lists(200_000, leaf=[])  # built and checked without any recursion
    with pytest.raises(InvalidRequest) as raised:
        check_limits(document, Limits())
    assert status_of(raised.value) == 400
    assert "server.max_json_depth" in raised.value.issues[0].diagnostics


def test_json_path_shows_only_identifier_keys():
    link = ((((None, "prefetch"), "has space"), "entry"), 3)
    assert json_path(link) == "$.prefetch[*].entry[3]"
    assert json_path(None) == "$"
