"""Feedback through the HTTP endpoint into the store, on both back ends: validated item by item,
idempotent, all or nothing per batch, taken only for cards this service showed to the same
caller (others counted as unknown and not stored), 503 when the database fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cds_service.store.database import CardRecord, Store
from tests.conftest import assert_operation_outcome, load_request

SERVICE = "legcramp-order-select"
FEEDBACK = f"/cds-services/{SERVICE}/feedback"
SHOWN = "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # shown by this service to anonymous callers
SHOWN_2 = "0b8a4f3c-2d1e-4c5b-9a6f-7e8d9c0b1a2f"
NEVER_SHOWN = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
SUGGESTION = "97155928-53e6-52af-b7d5-79fbfabbb3d5"
REASON_SYSTEM = "https://legcramp-cds.example.org/fhir/CodeSystem/override-reason"


@dataclass
class Env:
    client: Any
    store: Store
    url: str

    def post(self, *items: dict[str, Any]) -> Any:
        return self.client.post(FEEDBACK, json={"feedback": list(items)})

    def rows(self) -> list[dict[str, Any]]:
        return sorted(self.store.feedback_for(), key=lambda r: r["id"])

    def shown_cards(self) -> list[dict[str, Any]]:
        """Cards the service returned for the quinine request (recorded as shown)."""
        response = self.client.post(f"/cds-services/{SERVICE}",
                                    json=load_request("order-select-quinine-full-prefetch"))
        assert response.status_code == 200
        cards = response.get_json()["cards"]
        assert cards
        return cards


@pytest.fixture
def env(make_app, store_config) -> Iterator[Env]:
    store = Store(store_config.store.url)  # migrated before the app opens it
    store.record_cards(service_id=SERVICE, hook="order-select", hook_instance="h",
                       patient_id="p", cards=[CardRecord(SHOWN, "quinine-leg-cramp", "critical"),
                                              CardRecord(SHOWN_2, "quinine-leg-cramp", "info")],
                       shown_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC))
    try:
        yield Env(make_app(store_config).test_client(), store, store_config.store.url)
    finally:
        store.close()


def overridden(card: str = SHOWN, at: str = "2026-11-21T10:06:00Z", **reason: Any) -> dict:
    item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": at}
    if reason:
        item["overrideReason"] = reason
    return item


def accepted(card: str = SHOWN, at: str = "2026-11-21T10:05:31Z",
             suggestions: tuple[str, ...] = (SUGGESTION,)) -> dict:
    return {"card": card, "outcome": "accepted", "outcomeTimestamp": at,
            "acceptedSuggestions": [{"id": s} for s in suggestions]}


# --- validation: all or nothing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"card": SHOWN, "outcome": "ignored", "outcomeTimestamp": "2026-11-21T10:05:31Z"},
        {"card": SHOWN, "outcome": "overridden", "outcomeTimestamp": "yesterday"},
        {"card": SHOWN, "outcome": "overridden", "outcomeTimestamp": "2026-02-30T10:00:00Z"},
        {"card": "not-a-uuid", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:05Z"},
        {"card": SHOWN, "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:05:31Z"},
        {"outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:05:31Z"},
    ],
    ids=["outcome", "timestamp-text", "timestamp-no-such-day", "card-not-uuid",
         "accepted-without-suggestions", "no-card"],
)
def test_a_batch_with_one_invalid_item_stores_nothing(env, bad):
    response = env.post(overridden(), accepted(SHOWN_2), bad)
    outcome = assert_operation_outcome(response, 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert any(e.startswith("$.feedback[2]") for e in expressions), outcome
    assert env.rows() == []


def test_an_empty_batch_is_400_and_stores_nothing(env):
    assert_operation_outcome(env.client.post(FEEDBACK, json={"feedback": []}), 400)
    assert_operation_outcome(env.client.post(FEEDBACK, json={}), 400)
    assert env.rows() == []


def test_feedback_for_an_unknown_service_is_404_and_stores_nothing(env):
    response = env.client.post("/cds-services/no-such-service/feedback",
                               json={"feedback": [overridden()]})
    assert_operation_outcome(response, 404)
    assert env.rows() == []


# --- idempotency --------------------------------------------------------------------------------


def test_the_same_item_twice_in_one_batch_is_one_row(env):
    response = env.post(overridden(), overridden())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"received": 2, "stored": 1, "duplicates": 1, "unknownCards": 0}
    assert len(env.rows()) == 1


def test_the_same_item_in_two_batches_is_one_row(env):
    first = env.post(overridden(), accepted())
    assert first.get_json() == {"received": 2, "stored": 2, "duplicates": 0, "unknownCards": 0}
    # Sent again (a retry), with its keys in another order, beside a new item.
    again = dict(reversed(list(overridden().items())))
    second = env.post(again, overridden(at="2026-11-21T10:07:00Z"))
    assert second.status_code == 200
    assert second.get_json() == {"received": 2, "stored": 1, "duplicates": 1, "unknownCards": 0}
    third = env.post(overridden(), accepted())
    assert third.get_json() == {"received": 2, "stored": 0, "duplicates": 2, "unknownCards": 0}
    assert len(env.rows()) == 3
    assert len({row["item_key"] for row in env.rows()}) == 3


def test_items_that_differ_in_anything_are_different_rows(env):
    response = env.post(
        overridden(),
        overridden(at="2026-11-21T10:06:01Z"),
        overridden(SHOWN_2),
        accepted(),
        overridden(userComment="no longer needed"),
    )
    assert response.get_json()["stored"] == 5
    # The same item sent to another service is about a card that service never showed.
    other = env.client.post("/cds-services/legcramp-order-sign/feedback",
                            json={"feedback": [overridden()]})
    assert other.get_json() == {"received": 1, "stored": 0, "duplicates": 0, "unknownCards": 1}
    assert [r["service_id"] for r in env.rows()] == ["legcramp-order-select"] * 5


# --- what is kept -------------------------------------------------------------------------------


def test_feedback_on_a_card_never_shown_is_counted_and_not_stored(env):
    shown = env.shown_cards()[0]["uuid"]
    response = env.post(overridden(shown), overridden(NEVER_SHOWN), accepted(shown.upper()))
    assert response.status_code == 200
    assert response.get_json() == {"received": 3, "stored": 2, "duplicates": 0, "unknownCards": 1}
    kept = {(r["card_uuid"], r["outcome"]): r["known_card"] for r in env.rows()}
    assert kept == {
        (shown, "overridden"): True,
        (shown, "accepted"): True,  # uuids compare case-insensitively
    }
    assert all(isinstance(value, bool) for value in kept.values())


def test_accepted_suggestions_and_override_reason_are_kept(env):
    card = env.shown_cards()[0]["uuid"]
    response = env.post(
        accepted(card, suggestions=(SUGGESTION, "5a4c7c1d-3f8b-4e2a-9d6c-1b0e2f3a4b5c")),
        overridden(card, at="2026-11-21T10:07:00.5+01:00",
                   reason={"system": REASON_SYSTEM, "code": "treating-malaria",
                           "display": "Treating malaria"},
                   userComment="confirmed P. falciparum; ünïcödé ✓"),
        overridden(card, at="2026-11-21T10:08:00Z", userComment="comment only"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = {r["outcome_at"].isoformat(): r for r in env.rows()}
    assert set(rows) == {"2026-11-21T10:05:31+00:00", "2026-11-21T09:07:00.500000+00:00",
                         "2026-11-21T10:08:00+00:00"}
    take = rows["2026-11-21T10:05:31+00:00"]
    assert take["outcome"] == "accepted"
    assert json.loads(take["accepted_suggestions"]) == [
        SUGGESTION, "5a4c7c1d-3f8b-4e2a-9d6c-1b0e2f3a4b5c"]
    assert take["override_code"] is None and take["user_comment"] is None
    refuse = rows["2026-11-21T09:07:00.500000+00:00"]
    assert refuse["outcome"] == "overridden" and refuse["accepted_suggestions"] is None
    assert (refuse["override_system"], refuse["override_code"], refuse["override_display"]) == (
        REASON_SYSTEM, "treating-malaria", "Treating malaria")
    assert refuse["user_comment"] == "confirmed P. falciparum; ünïcödé ✓"
    comment = rows["2026-11-21T10:08:00+00:00"]
    assert comment["override_code"] is None and comment["user_comment"] == "comment only"
    for row in rows.values():
        assert row["service_id"] == SERVICE and row["known_card"] is True
        assert row["received_at"].tzinfo is not None


def test_a_legacy_bare_coding_override_reason_is_kept_as_the_reason(env):
    item = overridden()
    item["overrideReason"] = {"system": REASON_SYSTEM, "code": "not-indicated"}
    assert env.post(item).status_code == 200
    [row] = env.rows()
    assert (row["override_system"], row["override_code"]) == (REASON_SYSTEM, "not-indicated")


# --- database failures --------------------------------------------------------------------------


def _fail_inserts_for(store: Store, card: str) -> None:
    """A trigger that makes the database refuse the feedback row for one card, so a batch
    fails part way through its insert."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(text(
                "CREATE TRIGGER fail_feedback BEFORE INSERT ON feedback "
                f"WHEN NEW.card_uuid = '{card}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"))
        else:
            connection.execute(text(
                "CREATE FUNCTION fail_feedback() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.card_uuid = '{card}' THEN RAISE EXCEPTION 'disk on fire'; END IF; "
                "RETURN NEW; END $$"))
            connection.execute(text(
                "CREATE TRIGGER fail_feedback BEFORE INSERT ON feedback "
                "FOR EACH ROW EXECUTE FUNCTION fail_feedback()"))


def _heal(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER fail_feedback" + (
            "" if connection.dialect.name == "sqlite" else " ON feedback")))


def test_a_database_failure_mid_batch_stores_nothing_and_answers_503(env):
    kept = env.post(overridden(at="2026-11-21T09:00:00Z"))
    assert kept.get_json()["stored"] == 1
    before = env.rows()
    _fail_inserts_for(env.store, SHOWN_2)
    batch = [overridden(at="2026-11-21T10:00:00Z"), accepted(), overridden(SHOWN_2)]
    response = env.post(*batch)
    outcome = assert_operation_outcome(response, 503)
    assert outcome["issue"][0]["code"] == "transient"
    assert "disk on fire" not in response.get_data(as_text=True)
    assert env.rows() == before  # the two items inserted before the failure were rolled back
    _heal(env.store)
    retried = env.post(*batch)  # the client's retry then stores the whole batch, once
    assert retried.get_json() == {"received": 3, "stored": 3, "duplicates": 0, "unknownCards": 0}
    assert len(env.rows()) == 4


def _unusable(url: str, tmp_path: Path) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("x", encoding="utf-8")
        return f"sqlite:///{blocker}/store.sqlite3"
    return parsed.set(database=f"{parsed.database}_missing").render_as_string(hide_password=False)


def test_an_unreachable_database_answers_503(make_app, store_config, tmp_path):
    config = replace(store_config, store=replace(store_config.store,
                                                 url=_unusable(store_config.store.url, tmp_path)))
    client = make_app(config).test_client()
    outcome = assert_operation_outcome(client.post(FEEDBACK, json={"feedback": [overridden()]}),
                                       503)
    assert outcome["issue"][0]["code"] == "transient"
    assert_operation_outcome(client.get("/ready"), 503)
    # Hook calls still answer with their cards: recording them is never worth a prescriber's card.
    response = client.post(f"/cds-services/{SERVICE}",
                           json=load_request("order-select-quinine-full-prefetch"))
    assert response.status_code == 200 and response.get_json()["cards"]


def test_ready_answers_when_the_database_does(env):
    response = env.client.get("/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_a_card_another_service_showed_is_unknown_to_this_one(env):
    shown = env.shown_cards()[0]["uuid"]  # shown by SERVICE
    other = "/cds-services/legcramp-order-sign/feedback"
    response = env.client.post(other, json={"feedback": [overridden(shown)]})
    assert response.status_code == 200
    assert response.get_json()["unknownCards"] == 1
    assert env.post(overridden(shown)).get_json()["unknownCards"] == 0


def test_a_batch_past_the_item_cap_is_400_and_stores_nothing(env, make_app, store_config):
    config = replace(store_config, server=replace(store_config.server, max_feedback_items=3))
    client = make_app(config).test_client()
    items = [overridden(SHOWN, at=f"2026-11-21T10:0{i}:00Z") for i in range(4)]
    body = assert_operation_outcome(client.post(FEEDBACK, json={"feedback": items}), 400)
    assert body["issue"][0]["expression"] == ["$.feedback"]
    assert "at most 3" in body["issue"][0]["diagnostics"]
    assert client.post(FEEDBACK, json={"feedback": items[:3]}).status_code == 200
    store = Store(config.store.url)
    try:
        assert len(store.feedback_for()) == 3  # items about a card shown (the env's SHOWN)
    finally:
        store.close()


# --- feedback belongs to whoever was shown the card ---------------------------------------------


def test_only_the_issuer_and_tenant_shown_a_card_may_give_feedback_on_it(store_url):
    store = Store(store_url)
    card = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    try:
        store.record_cards(service_id=SERVICE, hook="order-select", hook_instance="h",
                           patient_id="p", cards=[CardRecord(card, "quinine-leg-cramp",
                                                             "critical")],
                           shown_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
                           issuer="https://ehr-a.example.org", tenant="north")
        at = datetime(2026, 11, 21, 10, 5, tzinfo=UTC)
        for issuer, tenant in (("https://ehr-b.example.org", "north"),  # another EHR
                               ("https://ehr-a.example.org", "south"),  # another tenant of it
                               ("https://ehr-a.example.org", ""),       # a token with no tenant
                               ("", "")):                               # anonymous
            result = store.record_feedback(SERVICE, [overridden(card)], at, issuer=issuer,
                                           tenant=tenant)
            assert (result.stored, result.unknown_cards) == (0, 1), (issuer, tenant)
        assert store.feedback_for() == []
        own = store.record_feedback(SERVICE, [overridden(card)], at,
                                    issuer="https://ehr-a.example.org", tenant="north")
        assert (own.stored, own.unknown_cards) == (1, 0)
        assert store.record_feedback("legcramp-order-sign", [accepted(card)], at,
                                     issuer="https://ehr-a.example.org",
                                     tenant="north").unknown_cards == 1  # another service
    finally:
        store.close()


def test_the_engine_keeps_who_was_shown_the_card_and_takes_feedback_only_from_them(
        make_app, store_config):
    from cds_service.pipeline.request import Principal

    app = make_app(store_config)
    engine = app.extensions["legcramp_engine"]
    tenant_a = Principal(iss="https://ehr.example.org", tenant="a")
    tenant_b = Principal(iss="https://ehr.example.org", tenant="b")
    answer = engine.call(SERVICE, load_request("order-select-quinine-full-prefetch"), tenant_a)
    card = answer["cards"][0]["uuid"]
    engine.card_log.flush(timeout=5)
    item = {"feedback": [overridden(card)]}
    assert engine.feedback(SERVICE, item, tenant_b)["unknownCards"] == 1
    assert engine.feedback(SERVICE, item)["unknownCards"] == 1  # anonymous
    assert engine.feedback(SERVICE, item, tenant_a) == {
        "received": 1, "stored": 1, "duplicates": 0, "unknownCards": 0}
    # The same request from tenant B (same hookInstance, same patient id): other card uuids.
    other = engine.call(SERVICE, load_request("order-select-quinine-full-prefetch"), tenant_b)
    assert {c["uuid"] for c in other["cards"]}.isdisjoint({c["uuid"] for c in answer["cards"]})
