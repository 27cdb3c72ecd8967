"""The store on both back ends (SQLite and PostgreSQL): the Alembic migrations, the JWT replay
cache, and cards recorded without patient data."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from cds_service.store.database import CardRecord, Store, make_engine
from cds_service.store.schema import card_shown, jwt_replay, metadata
from tests.conftest import load_request

TABLES = {"jwt_replay", "card_shown", "feedback"}  # no table holds a key
HEAD = "0005"
SHOWN = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Any]:
    opened: list[Store] = []

    def open_(key: str = "") -> Store:
        store = Store(store_url, key)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def _dump(store: Store) -> list[dict[str, Any]]:
    """Every row of every table, as the database holds it."""
    rows: list[dict[str, Any]] = []
    with store.engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            rows += [dict(r._mapping) for r in connection.execute(text(f"SELECT * FROM {table}"))]
    return rows


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


# --- migrations ---------------------------------------------------------------------------------


def test_migrations_create_the_schema_from_an_empty_database(store_url, open_store):
    assert _revision(store_url) is None
    store = open_store()
    with store.engine.connect() as connection:
        inspector = inspect(connection)
        assert TABLES | {"alembic_version"} == set(inspector.get_table_names())
        for name in TABLES:
            assert {c["name"] for c in inspector.get_columns(name)} == set(
                metadata.tables[name].columns.keys())
        unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("feedback")}
        unique |= {tuple(i["column_names"]) for i in inspector.get_indexes("feedback")
                   if i["unique"]}
        assert ("item_key",) in unique  # feedback idempotency rests on it
        # What the migrations built is what the code's tables declare.
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert differences == []
    assert store.at_head()
    assert _revision(store_url) == HEAD


def test_migrating_again_is_a_no_op_and_keeps_the_data(store_url, open_store):
    first = open_store()
    first.record_cards(service_id="s", hook="order-select", hook_instance="h", patient_id="p",
                       cards=[CardRecord("c0000000-0000-4000-8000-000000000001", "r", "info")],
                       shown_at=SHOWN)
    assert first.remember_token("iss", "jti-1", SHOWN + timedelta(days=3650))
    second = open_store()  # a second worker starting on the same database
    second.migrate()
    assert second.at_head() and first.at_head()
    assert _revision(store_url) == HEAD
    assert [c["card_uuid"] for c in second.cards_since(None)] == [
        "c0000000-0000-4000-8000-000000000001"]
    assert second.remember_token("iss", "jti-1", SHOWN + timedelta(days=3650)) is False
    assert second.ready()


def test_a_migration_that_fails_part_way_leaves_nothing_behind(store_url, open_store,
                                                                monkeypatch):
    """The whole upgrade is one transaction, on SQLite too (whose driver would otherwise commit
    each CREATE TABLE on its own and leave a half-built schema no later start could finish)."""
    import alembic.op

    from cds_service.store.database import StoreError

    create_table = alembic.op.create_table

    def fail_on_feedback(name: str, *columns: Any, **kwargs: Any) -> Any:
        if name == "feedback":
            raise RuntimeError("the worker died here")
        return create_table(name, *columns, **kwargs)

    monkeypatch.setattr(alembic.op, "create_table", fail_on_feedback)
    with pytest.raises((StoreError, RuntimeError)):
        open_store()
    engine = make_engine(store_url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
    finally:
        engine.dispose()
    monkeypatch.setattr(alembic.op, "create_table", create_table)
    assert open_store().at_head()  # the next start builds it all


# --- JWT replay cache ---------------------------------------------------------------------------


def test_a_token_id_is_accepted_once_then_refused_as_a_replay(open_store):
    store = open_store()
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert store.remember_token("https://ehr.example", "jti-1", expires) is True
    assert store.remember_token("https://ehr.example", "jti-1", expires) is False
    assert store.remember_token("https://ehr.example", "jti-2", expires) is True
    assert store.remember_token("https://other.example", "jti-1", expires) is True  # per issuer


def test_a_replay_is_seen_by_another_store_on_the_same_database(open_store):
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert open_store().remember_token("iss", "shared", expires) is True
    assert open_store().remember_token("iss", "shared", expires) is False


def test_an_expired_replay_entry_can_be_used_again(open_store):
    store = open_store()
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert store.remember_token("iss", "old", past) is True
    assert store.remember_token("iss", "old", datetime.now(UTC) + timedelta(minutes=5)) is True
    assert store.remember_token("iss", "old", datetime.now(UTC) + timedelta(minutes=5)) is False


def test_replay_expiry_is_compared_as_an_instant_whatever_the_offset(open_store):
    store = open_store()
    # Ten minutes from now, written in UTC+05:00: its wall-clock time is hours ahead of UTC.
    plus_five = timezone(timedelta(hours=5))
    soon = (datetime.now(UTC) + timedelta(minutes=10)).astimezone(plus_five)
    assert store.remember_token("iss", "offset", soon) is True
    assert store.remember_token("iss", "offset", soon) is False
    # And one minute ago in UTC-05:00 (wall clock hours behind): already expired, reusable.
    minus_five = timezone(timedelta(hours=-5))
    gone = (datetime.now(UTC) - timedelta(minutes=1)).astimezone(minus_five)
    assert store.remember_token("iss", "offset-gone", gone) is True
    assert store.remember_token("iss", "offset-gone", gone) is True
    with store.engine.connect() as connection:
        stored = connection.execute(select(jwt_replay.c.expires_at)).scalars().all()
    assert soon in stored


def test_replay_cache_keeps_only_a_hash_of_the_token_id(open_store):
    store = open_store()
    store.remember_token("https://ehr.example", "secret-jti-value", SHOWN + timedelta(days=3650))
    dumped = repr(_dump(store))
    assert "secret-jti-value" not in dumped and "ehr.example" not in dumped


def test_expired_replay_entries_are_purged(open_store, monkeypatch):
    from cds_service.store import database as store_module

    monkeypatch.setattr(store_module, "PURGE_EVERY", 3)
    store = open_store()
    now = datetime.now(UTC)
    store.remember_token("iss", "a", now - timedelta(minutes=1))
    store.remember_token("iss", "b", now - timedelta(minutes=1))
    store.remember_token("iss", "c", now + timedelta(minutes=5))  # the third insert purges
    with store.engine.connect() as connection:
        assert connection.execute(select(jwt_replay)).all() == [
            (hashlib.sha256(b"iss\nc").hexdigest(), (now + timedelta(minutes=5)))]


# --- cards recorded without patient data --------------------------------------------------------


def _record(store: Store, patient: str, *uuids: str, shown_at: datetime = SHOWN) -> None:
    store.record_cards(service_id="legcramp-order-select", hook="order-select",
                       hook_instance="hook-1", patient_id=patient,
                       cards=[CardRecord(u, "quinine-leg-cramps", "critical") for u in uuids],
                       shown_at=shown_at)


def _patient_hashes(store: Store) -> dict[str, str | None]:
    with store.engine.connect() as connection:
        query = select(card_shown.c.card_uuid, card_shown.c.patient_hash)
        return {uuid: digest for uuid, digest in connection.execute(query)}


def test_a_card_is_kept_with_a_keyed_hash_of_the_patient_never_the_id(open_store):
    store = open_store("a long random secret")
    _record(store, "patient-4711", "00000000-0000-4000-8000-00000000000a")
    _record(store, "patient-4711", "00000000-0000-4000-8000-00000000000b")
    _record(store, "patient-0815", "00000000-0000-4000-8000-00000000000c")
    hashes = _patient_hashes(store)
    expected = hmac.new(b"a long random secret", b"patient-4711", hashlib.sha256).hexdigest()
    assert hashes["00000000-0000-4000-8000-00000000000a"] == expected
    assert hashes["00000000-0000-4000-8000-00000000000b"] == expected  # same patient, same hash
    assert hashes["00000000-0000-4000-8000-00000000000c"] not in (expected, None)
    assert expected != hashlib.sha256(b"patient-4711").hexdigest()  # keyed, not a plain digest
    dumped = repr(_dump(store))
    assert "patient-4711" not in dumped and "patient-0815" not in dumped
    assert "a long random secret" not in dumped


def test_without_a_configured_key_no_patient_hash_is_kept_and_no_key_is_stored(open_store):
    store = open_store("")
    _record(store, "patient-4711", "00000000-0000-4000-8000-00000000000a")
    _record(store, "patient-4711", "00000000-0000-4000-8000-00000000000b")
    assert set(_patient_hashes(store).values()) == {None}
    dumped = repr(_dump(store))
    assert "patient-4711" not in dumped
    # findings are still keyed (quiet repeats within this process), by a secret never stored
    first = store.finding_key("patient-4711", "m1", "x")
    assert first == store.finding_key("patient-4711", "m1", "x")
    assert first != hashlib.sha256(b"patient-4711\nm1\nx").hexdigest()


def test_the_same_card_recorded_twice_is_one_row(open_store):
    store = open_store()
    _record(store, "p", "00000000-0000-4000-8000-00000000000a")
    _record(store, "p", "00000000-0000-4000-8000-00000000000a",
            "00000000-0000-4000-8000-00000000000b")
    assert sorted(c["card_uuid"] for c in store.cards_since(None)) == [
        "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"]


def test_the_time_a_card_was_shown_is_kept_as_an_instant(open_store):
    store = open_store()
    at = datetime(2026, 11, 21, 11, 30, tzinfo=timezone(timedelta(hours=1)))  # 10:30 UTC
    _record(store, "p", "00000000-0000-4000-8000-00000000000a", shown_at=at)
    [card] = store.cards_since(None)
    assert card["shown_at"] == at
    assert card["shown_at"].utcoffset() == timedelta(0)
    assert store.cards_since(datetime(2026, 11, 21, 10, 30, tzinfo=UTC)) == [card]
    assert store.cards_since(datetime(2026, 11, 21, 10, 31, tzinfo=UTC)) == []
    # 11:00 at +01:00 is 10:00 UTC, before the card: an instant, not a wall-clock time.
    assert store.cards_since(datetime(2026, 11, 21, 11, 0, tzinfo=timezone(timedelta(hours=1)))
                             ) == [card]


def test_cards_from_a_service_call_are_recorded_without_patient_data(make_app, store_config):
    config = replace(store_config, store=replace(store_config.store, patient_hash_key="k3y"))
    app = make_app(config)
    request = load_request("order-select-quinine-full-prefetch")
    response = app.test_client().post("/cds-services/legcramp-order-select", json=request)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards
    assert app.extensions["legcramp_engine"].card_log.flush(timeout=10)  # written off the request
    store = Store(config.store.url, "k3y")
    try:
        recorded = {c["card_uuid"]: c for c in store.cards_since(None)}
        assert set(recorded) == {c["uuid"] for c in cards}
        quinine = [c for c in recorded.values() if c["rule_id"] == "quinine-leg-cramps"]
        assert len(quinine) == 1
        assert quinine[0]["indicator"] == "critical"
        assert quinine[0]["hook"] == "order-select"
        assert quinine[0]["hook_instance"] == request["hookInstance"]
        assert quinine[0]["patient_hash"] == store.patient_hash(request["context"]["patientId"])
        dumped = repr(_dump(store))
        assert request["context"]["patientId"] not in dumped
        for card in cards:
            assert card["summary"] not in dumped  # nor the card's text
    finally:
        store.close()


def test_a_new_sqlite_store_is_readable_by_its_owner_only(tmp_path):
    import stat

    from cds_service.store.database import make_engine

    path = tmp_path / "private" / "store.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_existing_store_readable_by_others_is_tightened(tmp_path):
    import stat

    from cds_service.store.database import make_engine

    path = tmp_path / "store.sqlite3"
    path.write_bytes(b"")
    path.chmod(0o644)
    make_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_stored_key_of_an_earlier_version_is_gone_after_the_upgrade(tmp_path):
    """Up to 0002 a deployment without a configured key stored one beside the hashes; 0003
    drops it, so the hashes already kept can no longer be walked back to patient ids."""
    from alembic import command as alembic_command
    from sqlalchemy import create_engine

    from cds_service.store.database import _alembic_config

    url = f"sqlite:///{tmp_path}/old.sqlite3"
    engine = create_engine(url)
    with engine.begin() as connection:
        alembic_command.upgrade(_alembic_config(connection), "0002")
        connection.exec_driver_sql(
            "INSERT INTO service_secret (name, value) VALUES ('patient-hash-key', 'k')")
    engine.dispose()
    store = Store(url, "")
    try:
        assert store.at_head()
        assert "service_secret" not in inspect(store.engine).get_table_names()
        assert "'k'" not in repr(_dump(store))
    finally:
        store.close()
