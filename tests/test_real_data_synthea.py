"""Every Synthea bundle (60 Synthea 2.4 + 3 Synthea 3.x patients) through all three hooks, as of
the bundle's last date, twice: with full prefetch answered from the bundle, and with no prefetch
and fhirServer pointing at a loopback FHIR server that pages its searches (20 per page).

Both must answer 200 with schema-valid responses (the conftest contract checker sees every
response) and the same cards; no rule may fail. A summary (patients, resources parsed and
skipped by reason, cards by rule) is written to the real stdout at the end of the module.
"""

from __future__ import annotations

import logging
import math
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import flask
import pytest

from cds_service.clock import FixedClock
from cds_service.config import Config, load_config
from cds_service.web.app import create_app
from hooks.services import service_for_hook
from tests.conftest import _contract_checker
from tests.support.fhir_server import declared_prefetch
from tests.support.synthea import (
    DEFAULT_COUNT,
    PATIENT_TOKEN,
    AsOfClock,
    LoopbackFhir,
    bundle_id,
    bundle_paths,
    card_key,
    draft_copy,
    evaluation_date,
    hook_request,
    load_store,
    most_recent_order,
    prefetch_for,
    rule_ids,
    search,
    start_loopback_fhir,
    stop_loopback_fhir,
)

SERVICES = service_for_hook()  # hook -> service id, from hooks/services.py
PATHS = bundle_paths()


class Captured(logging.Handler):
    """What each service call found (on the request's one access line, or the engine's own
    'service call answered' line outside a request) and the 'rule failed' records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.answered: dict[str, dict[str, Any]] = {}
        self.failures: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "resources"):
            hook_instance = getattr(record, "hook_instance", None) or (
                flask.g.get("hook_instance") if flask.has_request_context() else None)
            self.answered[hook_instance] = record.resources  # type: ignore[attr-defined]
        elif record.getMessage() == "rule failed":
            self.failures.append(record)


@dataclass
class Summary:
    patients: int = 0
    parsed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    other_patient: Counter[str] = field(default_factory=Counter)
    cards: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    requests: int = 0
    fhir_requests: int = 0
    next_pages: int = 0

    def add_resources(self, report: dict[str, Any]) -> None:
        self.parsed.update(report["parsed"])
        self.skipped.update(report["skipped"])
        self.repaired.update(report["repaired"])
        self.other_patient.update(report["otherPatient"])

    def write(self, config: pytest.Config | None = None) -> None:
        lines = [
            "",
            "=== Synthea real-data summary (prefetch run; chart counted once, from "
            "patient-view) ===",
            f"patients: {self.patients}; hook requests: {self.requests}; loopback FHIR "
            f"requests: {self.fhir_requests} (next pages followed: {self.next_pages})",
            f"resources parsed: {dict(sorted(self.parsed.items()))}",
            "resources skipped by reason:",
        ]
        lines += [f"  {n:5d}  {reason}" for reason, n in self.skipped.most_common()] or ["  none"]
        if self.repaired:
            lines.append("resources repaired:")
            lines += [f"  {n:5d}  {reason}" for reason, n in self.repaired.most_common()]
        if self.other_patient:
            lines.append(f"other patient's resources dropped: {dict(self.other_patient)}")
        lines.append("cards by rule (patients with the card, per hook):")
        for hook in SERVICES:
            found = self.cards.get(hook) or Counter()
            shown = ", ".join(f"{rule} {n}" for rule, n in sorted(found.items())) or "none"
            lines.append(f"  {hook}: {shown}")
        write_uncaptured(config, "\n".join(lines) + "\n")


def write_uncaptured(config: pytest.Config | None, text: str) -> None:
    """To the terminal whether or not pytest captures output (-s or not)."""
    capture = config.pluginmanager.getplugin("capturemanager") if config else None
    if capture is None:
        sys.__stdout__.write(text)
        sys.__stdout__.flush()
        return
    with capture.global_and_fixture_disabled():
        sys.__stdout__.write(text)
        sys.__stdout__.flush()


@dataclass
class Harness:
    client: Any
    clock: AsOfClock
    fhir: LoopbackFhir
    captured: Captured
    broken: list[Any]
    summary: Summary


def synthea_config(fhir_base: str) -> Config:
    cfg = load_config(None)
    return replace(
        cfg,
        fhir=replace(cfg.fhir, allowed_servers=(*cfg.fhir.allowed_servers, fhir_base)),
        # the two runs of one patient must not quiet each other's patient-view guidance
        cards=replace(cfg.cards, repeat_quiet_days=0),
        store=replace(cfg.store, record_cards=False),
    )


@pytest.fixture(scope="module")
def harness(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    fhir = start_loopback_fhir()
    cfg = synthea_config(fhir.base)
    store_url = f"sqlite:///{tmp_path_factory.mktemp('synthea-store')}/store.sqlite3"
    cfg = replace(cfg, store=replace(cfg.store, url=store_url))
    clock = AsOfClock(evaluation_date(load_store(PATHS[0])))
    app = create_app(cfg, clock=clock)
    app.testing = True
    broken: list[Any] = []
    app.after_request(_contract_checker(broken))
    loggers = [logging.getLogger(f"legcramp_cds.{name}") for name in ("engine", "access")]
    captured = Captured()
    old_levels = [one.level for one in loggers]
    for one in loggers:
        one.addHandler(captured)
        one.setLevel(logging.INFO)
    summary = Summary()
    try:
        yield Harness(app.test_client(), clock, fhir, captured, broken, summary)
    finally:
        for one, level in zip(loggers, old_levels, strict=True):
            one.removeHandler(captured)
            one.setLevel(level)
        app.extensions["legcramp_engine"].close()
        stop_loopback_fhir(fhir)
        summary.write(request.config)
    assert not broken, f"responses that break the contract: {broken}"


def expected_fetches(store: Any, service_id: str) -> Counter[str]:
    """Requests the no-prefetch call must send: each declared search's pages, the Patient read."""
    expected: Counter[str] = Counter()
    for template in declared_prefetch(service_id).values():
        relative = template.replace(PATIENT_TOKEN, store.patient_id)
        path, _, query = relative.partition("?")
        if not query:
            expected[f"/fhir/{path}"] += 1
            continue
        matches = search(store, path, parse_qsl(query))
        expected[f"/fhir/{path}"] += max(1, math.ceil(len(matches) / DEFAULT_COUNT))
    return expected


def post(h: Harness, service_id: str, request: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """POST; (body, the loopback FHIR requests it caused). Anything but 200 fails the test."""
    before = len(h.fhir.handler.requests)
    response = h.client.post(f"/cds-services/{service_id}", json=request)
    h.summary.requests += 1
    assert response.status_code == 200, (
        f"{service_id} ({'prefetch' if 'prefetch' in request else 'no prefetch'}) answered "
        f"{response.status_code}: {response.get_data(as_text=True)[:2000]}"
    )
    fetched = h.fhir.handler.requests[before:]
    h.summary.fhir_requests += len(fetched)
    h.summary.next_pages += sum(1 for _, q, _ in fetched if "_offset=" in q)
    bad = [r for r in fetched if r[2] != 200]
    assert not bad, f"{service_id} sent requests the FHIR server could not answer: {bad}"
    return response.get_json(), fetched


@pytest.mark.parametrize("path", PATHS, ids=[bundle_id(p) for p in PATHS])
def test_bundle_through_every_hook_with_and_without_prefetch(harness: Harness, path: Path):
    h = harness
    store = load_store(path)
    as_of = evaluation_date(store)
    h.clock.instant = as_of
    h.fhir.handler.serve(store)
    draft = draft_copy(most_recent_order(store), as_of)
    failures_before = len(h.captured.failures)
    h.summary.patients += 1

    for hook, service_id in SERVICES.items():
        templates = declared_prefetch(service_id)
        with_prefetch = hook_request(
            hook,
            store,
            str(uuid.uuid4()),
            prefetch=prefetch_for(store, templates),
            fhir_server=h.fhir.base,
            draft=draft,
        )
        body, fetched = post(h, service_id, with_prefetch)
        # prefetch held everything: at most Medications were read (the draft's, by reference)
        assert all(p.startswith("/fhir/Medication/") for p, _, _ in fetched), fetched
        report = h.captured.answered[with_prefetch["hookInstance"]]
        if hook == "patient-view":
            h.summary.add_resources(report)
        for rule in set(rule_ids(body)):
            h.summary.cards[hook][rule] += 1

        without = hook_request(hook, store, str(uuid.uuid4()), fhir_server=h.fhir.base, draft=draft)
        body_fetched, fetched = post(h, service_id, without)
        searches = Counter(p for p, _, _ in fetched if not p.startswith("/fhir/Medication/"))
        assert searches == expected_fetches(store, service_id), (hook, fetched)

        assert sorted(map(card_key, body_fetched["cards"])) == sorted(
            map(card_key, body["cards"])
        ), (hook, rule_ids(body), rule_ids(body_fetched))
        assert h.captured.answered[without["hookInstance"]]["skipped"] == report["skipped"], hook

    failed = h.captured.failures[failures_before:]
    assert not failed, [(r.rule, r.error, r.where) for r in failed]  # type: ignore[attr-defined]


def test_next_links_with_percent_encoded_query_are_followed(make_app):
    """Avril_Hane has 40 electrolyte results: two pages; the server encodes its next links as
    urlencode does by default."""
    fhir = start_loopback_fhir(link_safe="")
    try:
        store = load_store(next(p for p in PATHS if bundle_id(p) == "Avril_Hane"))
        fhir.handler.serve(store)
        client = make_app(
            synthea_config(fhir.base), clock=FixedClock(evaluation_date(store))
        ).test_client()
        request = hook_request("patient-view", store, str(uuid.uuid4()), fhir_server=fhir.base)
        response = client.post("/cds-services/legcramp-patient-view", json=request)
        assert response.status_code == 200, response.get_data(as_text=True)
    finally:
        stop_loopback_fhir(fhir)
