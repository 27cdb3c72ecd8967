"""Cards shown are written off the request path: batched per commit, visible to the repeat check
and to feedback before they reach the store, retried, bounded, dropped only with a count, and
written at close."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from cds_service.store.card_log import CardLog
from cds_service.store.database import CardRecord, LazyStore, ShownCards, Store, StoreError
from tests.conftest import load_request
from tests.support.card_policy import quiet_guidance_client, view

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


class FakeStore:
    """A store whose writes can be held at a gate, made to fail, and are counted."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failures = 0
        self.writes: list[list[ShownCards]] = []

    def get(self) -> FakeStore:
        return self

    def patient_hash(self, patient_id: str) -> str:
        return f"hash-of-{patient_id}"

    def record_shown(self, batches: Iterable[ShownCards]) -> None:
        self.entered.set()
        assert self.gate.wait(10)
        if self.failures:
            self.failures -= 1
            raise StoreError("OperationalError")
        self.writes.append(list(batches))

    def uuids(self) -> list[str]:
        return [card.card_uuid for write in self.writes for batch in write
                for card in batch.cards]


def add(log: CardLog, *uuids: str, patient: str = "p1") -> None:
    log.add(service_id="s", hook="order-sign", hook_instance="h", patient_id=patient,
            cards=[CardRecord(uuid, "quinine-leg-cramps", "critical") for uuid in uuids],
            shown_at=T0)


def not_recorded(reason: str) -> float:
    return REGISTRY.get_sample_value("legcramp_cds_cards_not_recorded_total",
                                     {"reason": reason}) or 0.0


@pytest.fixture
def fake() -> FakeStore:
    return FakeStore()


@pytest.fixture
def card_log(fake: FakeStore) -> Iterator[CardLog]:
    log = CardLog(fake, retry_delay=0.0, close_timeout=5)  # type: ignore[arg-type]
    yield log
    fake.gate.set()
    log.close()


def test_an_answer_is_pending_until_written_and_flush_waits_for_it(card_log, fake):
    fake.gate.clear()
    add(card_log, "a", "b")
    assert fake.entered.wait(5)
    assert card_log.pending(["a", "b", "c"]) == {"a", "b"}
    assert not card_log.flush(timeout=0.05)  # the write is held
    fake.gate.set()
    assert card_log.flush(timeout=5)
    assert fake.uuids() == ["a", "b"]
    assert fake.writes[0][0].patient_hash == "hash-of-p1"  # the queue never holds the id
    assert card_log.pending(["a", "b"]) == set()


def test_answers_that_gather_during_a_commit_share_the_next_one(card_log, fake):
    fake.gate.clear()
    add(card_log, "first")
    assert fake.entered.wait(5)
    for n in range(5):
        add(card_log, f"later-{n}")
    fake.gate.set()
    assert card_log.flush(timeout=5)
    assert [len(write) for write in fake.writes] == [1, 5]
    assert fake.uuids() == ["first", *(f"later-{n}" for n in range(5))]


def test_a_failed_write_is_retried(card_log, fake):
    fake.failures = 2
    before = not_recorded("store")
    add(card_log, "a")
    assert card_log.flush(timeout=5)
    assert fake.uuids() == ["a"]
    assert not_recorded("store") == before


def test_a_write_that_keeps_failing_is_dropped_and_counted(card_log, fake, caplog):
    fake.failures = 100
    before = not_recorded("store")
    add(card_log, "a", "b")
    assert card_log.flush(timeout=5)
    assert fake.uuids() == []
    assert not_recorded("store") == before + 2
    assert "cards not recorded" in caplog.text
    assert card_log.pending(["a", "b"]) == set()
    fake.failures = 0
    add(card_log, "c")  # the writer is still there for the next answer
    assert card_log.flush(timeout=5)
    assert fake.uuids() == ["c"]


def test_the_queue_is_bounded_while_the_store_is_away(fake):
    log = CardLog(fake, max_pending=3, retry_delay=0.0)  # type: ignore[arg-type]
    fake.gate.clear()
    try:
        add(log, "held")
        assert fake.entered.wait(5)
        before = not_recorded("queue_full")
        add(log, "q1", "q2")
        add(log, "q3", "q4")  # 2 + 2 > 3: dropped, the request goes on
        assert not_recorded("queue_full") == before + 2
        assert log.pending(["q1", "q3"]) == {"q1"}
    finally:
        fake.gate.set()
        log.close()
    assert fake.uuids() == ["held", "q1", "q2"]


def test_close_writes_what_is_queued(fake):
    log = CardLog(fake)  # type: ignore[arg-type]
    fake.gate.clear()
    add(log, "a")
    assert fake.entered.wait(5)
    add(log, "b")
    add(log, "c")
    threading.Timer(0.1, fake.gate.set).start()
    log.close()
    assert fake.uuids() == ["a", "b", "c"]
    before = not_recorded("closing")
    add(log, "late")
    assert not_recorded("closing") == before + 1


def test_inline_mode_writes_before_returning(fake):
    log = CardLog(fake, background=False)  # type: ignore[arg-type]
    add(log, "a")
    assert fake.uuids() == ["a"]
    fake.failures = 1
    before = not_recorded("store")
    add(log, "b")  # no retry inline, and no exception either
    assert not_recorded("store") == before + 1


def test_a_store_that_cannot_open_costs_the_cards_not_the_request(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    log = CardLog(LazyStore(f"sqlite:///{blocked}/cards.sqlite3"))
    before = not_recorded("store")
    add(log, "a")
    assert not_recorded("store") == before + 1
    log.close()


def test_the_same_finding_twice_in_one_commit_is_one_row_as_last_shown(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path}/cards.sqlite3")
    try:
        card = (CardRecord("finding-1", "rls-iron-low", "info"),)
        later = T0 + timedelta(minutes=5)
        store.record_shown([ShownCards("s", "patient-view", "h2", "x", card, later),
                            ShownCards("s", "patient-view", "h1", "x", card, T0)])
        [row] = store.cards_since(None)
        assert row["hook_instance"] == "h2"
        assert row["shown_at"].replace(tzinfo=UTC) == later
    finally:
        store.close()


# Through the engine --------------------------------------------------------------------------
def _held_engine(app: Any) -> tuple[Any, threading.Event]:
    """The app's engine, its card writes waiting at a gate as if the database were slow."""
    engine = app.extensions["legcramp_engine"]
    store = engine.store.get()
    gate = threading.Event()
    real = store.record_shown

    def held(batches: Any) -> None:
        assert gate.wait(10)
        real(batches)

    store.record_shown = held
    return engine, gate


def test_feedback_waits_for_the_cards_it_is_about(make_app):
    app = make_app()
    engine, gate = _held_engine(app)
    client = app.test_client()
    try:
        response = client.post("/cds-services/legcramp-order-select",
                               json=load_request("order-select-quinine-full-prefetch"))
        [card] = response.get_json()["cards"]
        assert engine.card_log.pending([card["uuid"]]) == {card["uuid"]}
        threading.Timer(0.2, gate.set).start()
        feedback = client.post("/cds-services/legcramp-order-select/feedback", json={
            "feedback": [{"card": card["uuid"], "outcome": "overridden",
                          "outcomeTimestamp": "2026-11-21T10:06:00Z"}]})
        assert feedback.status_code == 200, feedback.get_json()
        assert feedback.get_json()["unknownCards"] == 0
    finally:
        gate.set()


def test_patient_view_guidance_stays_quiet_while_its_first_showing_is_being_written(
        make_app, config):
    client = quiet_guidance_client(make_app, config, days=30)
    engine, gate = _held_engine(client.application)
    try:
        [first] = view(client, "11111111-1111-4111-8111-111111111111")
        assert engine.card_log.pending([first["uuid"]]) == {first["uuid"]}
        assert view(client, "22222222-2222-4222-8222-222222222222") == []
    finally:
        gate.set()
    assert engine.card_log.flush(timeout=5)
    assert engine.store.get().shown_since([first["uuid"]], T0 - timedelta(days=1)) == {
        first["uuid"]}
