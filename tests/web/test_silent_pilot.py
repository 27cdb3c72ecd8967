"""A silent pilot and test traffic: what the EHR gets and what the governance data records.

`[cards] silent` (or a rule's own `silent` setting) runs the rules and records their cards as
shown silently, while the EHR gets none of them; the report counts them apart. Calls marked as
conformance-kit traffic are answered as usual and never recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cds_service.config import Config
from tests.conftest import load_request

SELECT = "/cds-services/legcramp-order-select"
QUININE = "quinine-leg-cramps"


def _app(make_app: Any, config: Config, **cards: Any) -> Any:
    cfg = replace(config, cards=replace(config.cards, **cards),
                  store=replace(config.store, record_cards_in_background=False))
    return make_app(cfg)


def _rules(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]


def _recorded(app: Any) -> list[dict[str, Any]]:
    engine = app.extensions["legcramp_engine"]
    engine.card_log.flush(timeout=5)
    return engine.store.get().cards_since(None)


def test_a_silent_pilot_records_every_card_and_shows_none(make_app, config):
    request = load_request("order-select-quinine-full-prefetch")
    shown = _app(make_app, config)
    assert QUININE in _rules(shown.test_client().post(SELECT, json=request))

    pilot = _app(make_app, config, silent=True)
    assert _rules(pilot.test_client().post(SELECT, json=request)) == []
    rows = _recorded(pilot)
    assert QUININE in [r["rule_id"] for r in rows]
    assert all(r["silent"] for r in rows)


def test_one_rule_in_silent_pilot_leaves_the_others_shown(make_app, config):
    request = load_request("order-select-quinine-full-prefetch")
    cfg = replace(config, rules={QUININE: {"silent": True}},
                  store=replace(config.store, record_cards_in_background=False))
    app = make_app(cfg)
    shown = _rules(app.test_client().post(SELECT, json=request))
    assert QUININE not in shown
    rows = {r["rule_id"]: r["silent"] for r in _recorded(app)}
    assert rows[QUININE] is True
    assert all(rows[rule] is False for rule in shown)


def test_a_silent_card_does_not_quiet_the_first_real_showing(make_app, config):
    """Quiet repeats count what a clinician saw: a card recorded silently during the pilot is
    shown at go-live, not held back as 'shown recently'."""
    request = load_request("patient-view-full-prefetch")
    pilot = _app(make_app, config, silent=True)
    client = pilot.test_client()
    assert _rules(client.post("/cds-services/legcramp-patient-view", json=request)) == []
    silent = [r for r in _recorded(pilot) if r["silent"]]
    assert silent, "the fixture must give a card on patient-view"
    engine = pilot.extensions["legcramp_engine"]
    live = replace(engine.config, cards=replace(engine.config.cards, silent=False))
    engine.config = live
    engine.card_policy.repeat_quiet_days = 30
    again = _rules(client.post("/cds-services/legcramp-patient-view", json=request))
    assert {r["rule_id"] for r in silent} <= set(again)


def test_conformance_traffic_is_answered_and_never_recorded(make_app, config):
    request = load_request("order-select-quinine-full-prefetch")
    app = _app(make_app, config)
    client = app.test_client()
    marked = client.post(SELECT, json=request,
                         headers={"X-Legcramp-Test-Traffic": "conformance"})
    assert QUININE in _rules(marked)
    assert _recorded(app) == []
    assert QUININE in _rules(client.post(SELECT, json=request))
    assert QUININE in [r["rule_id"] for r in _recorded(app)]
