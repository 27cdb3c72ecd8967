"""The service's database (SQLAlchemy): SQLite by default, PostgreSQL by URL.

It holds what several gunicorn workers (and several instances) must share: the JWT replay
cache, and the cards shown and the feedback on them that clinical governance reports on. The
schema is created and changed by the Alembic migrations in `migrations/`. No patient data is
kept: a card is stored with a keyed hash of the patient id, a token only as a hash of its id.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, delete, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from cds_service.errors import StoreError
from cds_service.store.schema import card_shown, feedback, jwt_replay

log = logging.getLogger("legcramp_cds.store")
# Keys finding digests when no patient_hash_key is configured: made at import, never stored.
PROCESS_SECRET = secrets.token_bytes(32)

PURGE_EVERY = 200


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=10000")
        # Switching a new file to WAL needs a lock SQLite does not wait for (busy_timeout does
        # not apply): workers opening a new file together would fail at once with "database is
        # locked". Once the file is in WAL mode the switch is a no-op.
        deadline = time.monotonic() + 10
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    finally:
        cursor.close()


def _private_file(path: Path) -> None:
    """The SQLite file (and so its -wal and -shm files, which SQLite creates with the database
    file's mode) readable by the service's user only: 0600 in a directory made 0700. A file an
    earlier version left readable by others is tightened, and the log says so."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            try:
                path.chmod(mode & 0o700)
                log.warning("store file was readable by others: now %o", mode & 0o700)
            except OSError as exc:
                log.warning("store file is readable by others and cannot be tightened",
                            extra={"error": type(exc).__name__})
    else:
        os.close(descriptor)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_driver_autocommit(dbapi_connection: Any, _: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver opens no transaction of its own


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _migration_engine(engine: Engine) -> Engine:
    """The engine to migrate with: on PostgreSQL the store's own (its DDL is transactional).

    On SQLite, Python's driver runs CREATE TABLE outside any transaction, so an upgrade is not
    atomic: workers starting together on a new file trip over each other's half-built schema
    ("table ... already exists"), and a worker that dies part way leaves tables no later start
    can get past. On this engine SQLAlchemy opens every transaction with BEGIN IMMEDIATE: the
    whole upgrade is one transaction, and one worker migrates at a time (the others wait for
    the lock, then find the schema at head)."""
    # An in-memory database is one process's alone; another engine would open another one.
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine
    migrating = create_engine(engine.url, connect_args={"timeout": 30}, poolclass=NullPool)
    event.listen(migrating, "connect", _sqlite_pragmas)
    event.listen(migrating, "connect", _sqlite_driver_autocommit)
    event.listen(migrating, "begin", _sqlite_begin_immediate)
    return migrating


def _alembic_config(connection: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location",
                           str(resources.files("cds_service").joinpath("store", "migrations")))
    config.attributes["connection"] = connection
    return config


@dataclass(frozen=True)
class CardRecord:
    """What is kept of a card shown: never the patient, never the card text."""

    card_uuid: str
    rule_id: str
    indicator: str
    silent: bool = False  # recorded in a silent pilot, never shown


@dataclass(frozen=True)
class ShownCards:
    """The cards of one answer, as the store keeps them (the patient only as its keyed hash)."""

    service_id: str
    hook: str
    hook_instance: str
    patient_hash: str | None
    cards: tuple[CardRecord, ...]
    shown_at: datetime
    issuer: str = ""  # who it was shown to ("" when anonymous): feedback must come from them
    tenant: str = ""


@dataclass(frozen=True)
class FeedbackResult:
    received: int
    stored: int
    duplicates: int
    unknown_cards: int


@dataclass(frozen=True)
class PurgeResult:
    cards: int  # cards shown deleted
    feedback: int  # feedback rows deleted (past retention, or about unknown cards)
    comments: int  # userComment texts blanked


class SchemaBehind(StoreError):
    """The database is at an older schema and this process may not migrate it."""


class Store:
    def __init__(self, url: str, patient_hash_key: str = "", migrate: bool = True):
        try:
            self.engine = make_engine(url)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            raise StoreError(type(exc).__name__) from exc
        self._patient_key = patient_hash_key.encode()
        self._inserts = 0
        self._lock = threading.Lock()
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # steps that grow to 100 ms: with every thread of a worker writing at once, those
        # sleeps were the service's p99. Threads of one worker take turns here instead, so
        # SQLite only ever arbitrates between processes.
        self._sqlite_turns = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        if migrate:
            self.migrate()
        else:
            self.require_head()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._sqlite_turns is None:
            with self.engine.begin() as connection:
                yield connection
            return
        with self._sqlite_turns, self.engine.begin() as connection:
            yield connection

    # Schema -------------------------------------------------------------------------------
    def at_head(self) -> bool:
        current, head = self.revisions()
        return current == head

    def revisions(self) -> tuple[str | None, str | None]:
        """(the database's schema revision, the newest this version knows)."""
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            script = ScriptDirectory.from_config(_alembic_config(connection))
            return current, script.get_current_head()

    def require_head(self) -> None:
        """For a service that runs without DDL rights: refuse to work on an older schema, and
        say how to bring it up to date (never migrate here)."""
        try:
            current, head = self.revisions()
        except SQLAlchemyError as exc:
            raise StoreError(type(exc).__name__) from exc
        if current != head:
            raise SchemaBehind(
                f"the database schema is at revision {current or 'none'} and this version "
                f"needs {head}: run `legcramp-cds db upgrade` with a role that may change the "
                "schema ([store] migrate_on_start = false)")

    def purge(self, now: datetime, retention_days: int,
              comment_retention_days: int) -> PurgeResult:
        """The data lifecycle in one transaction: cards shown and feedback older than
        `retention_days` are deleted, feedback about cards the store never knew (kept before
        revision 0004) too, and the free-text userComment of feedback older than
        `comment_retention_days` is blanked (it may hold patient data)."""
        cutoff = now - timedelta(days=retention_days)
        comment_cutoff = now - timedelta(days=comment_retention_days)
        try:
            with self._transaction() as connection:
                feedback_gone = connection.execute(delete(feedback).where(
                    (feedback.c.received_at < cutoff) | feedback.c.known_card.is_(False)
                )).rowcount
                cards_gone = connection.execute(delete(card_shown).where(
                    card_shown.c.shown_at < cutoff)).rowcount
                blanked = connection.execute(update(feedback).where(
                    feedback.c.received_at < comment_cutoff,
                    feedback.c.user_comment.is_not(None),
                ).values(user_comment=None)).rowcount
        except SQLAlchemyError as exc:
            raise StoreError(type(exc).__name__) from exc
        return PurgeResult(cards_gone, feedback_gone, blanked)

    def migrate(self) -> None:
        """Bring the schema to the newest migration. Several workers may start together: if
        another one migrated first, its work is accepted after a second look."""
        migrating = _migration_engine(self.engine)
        try:
            if self.at_head():
                return
            # Alembic opens the transaction (migrations/env.py), and closes it, rolled back on a
            # failure, before the error reaches us: by then another worker may have finished.
            with migrating.connect() as connection:
                command.upgrade(_alembic_config(connection), "head")
        except SQLAlchemyError as exc:
            try:
                if self.at_head():
                    return
            except SQLAlchemyError:
                pass
            raise StoreError(f"migration failed ({type(exc).__name__})") from exc
        finally:
            if migrating is not self.engine:
                migrating.dispose()

    # JWT replay cache ----------------------------------------------------------------------
    def remember_token(self, iss: str, jti: str, expires_at: datetime,
                       now: datetime | None = None) -> bool:
        """Record a token id; False when it was already seen (a replay), across all workers.
        `now` is the authenticator's clock, so a replay evaluated "as of" agrees with it."""
        key = hashlib.sha256(f"{iss}\n{jti}".encode()).hexdigest()
        now = now or datetime.now(UTC)
        try:
            with self._transaction() as connection:
                existing = connection.execute(
                    select(jwt_replay.c.expires_at).where(jwt_replay.c.token_key == key)
                ).first()
                if existing is not None:
                    expires = existing[0]
                    if expires.tzinfo is None:
                        expires = expires.replace(tzinfo=UTC)
                    if expires > now:
                        return False
                    connection.execute(delete(jwt_replay).where(jwt_replay.c.token_key == key))
                connection.execute(insert(jwt_replay).values(token_key=key, expires_at=expires_at))
        except IntegrityError:
            return False  # another worker recorded the same token a moment ago
        except SQLAlchemyError as exc:
            raise StoreError(type(exc).__name__) from exc
        self._maybe_purge(now)
        return True

    def _maybe_purge(self, now: datetime) -> None:
        with self._lock:
            self._inserts += 1
            if self._inserts % PURGE_EVERY:
                return
        try:
            with self._transaction() as connection:
                connection.execute(delete(jwt_replay).where(jwt_replay.c.expires_at < now))
        except SQLAlchemyError:
            pass  # purging is housekeeping; the next attempt will catch up

    # Cards and feedback --------------------------------------------------------------------
    def patient_hash(self, patient_id: str) -> str | None:
        """HMAC of the patient id with `[store] patient_hash_key`; None (no hash kept) without
        one. The key is never stored beside the hashes it keys: a database alone cannot be
        walked back to patient ids."""
        if not self._patient_key:
            return None
        return hmac.new(self._patient_key, patient_id.encode(), hashlib.sha256).hexdigest()

    def finding_key(self, patient_id: str, rule_id: str, identity: str) -> str:
        """A keyed digest naming one finding about one patient, stable across hook calls:
        keyed with `patient_hash_key`, else with this process's own random secret (so quiet
        repeats hold within one process until it restarts, and never across replicas)."""
        message = f"{patient_id}\n{rule_id}\n{identity}".encode()
        return hmac.new(self._patient_key or PROCESS_SECRET, message, hashlib.sha256).hexdigest()

    def shown_since(self, card_uuids: Iterable[str], since: datetime) -> set[str]:
        wanted = list(card_uuids)
        if not wanted:
            return set()
        # A card recorded silently was never seen: it must not quiet the first real showing.
        query = select(card_shown.c.card_uuid).where(
            card_shown.c.card_uuid.in_(wanted), card_shown.c.shown_at >= since,
            card_shown.c.silent.is_(False))
        try:
            with self.engine.connect() as connection:
                return {row[0] for row in connection.execute(query)}
        except SQLAlchemyError as exc:
            raise StoreError(type(exc).__name__) from exc

    def _insert_ignoring_duplicates(self, connection: Connection, table: Any,
                                    rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        dialect = connection.dialect.name
        factory = pg_insert if dialect == "postgresql" else sqlite_insert
        if dialect not in ("postgresql", "sqlite"):
            raise StoreError(f"unsupported database {dialect}")
        # Count the rows RETURNING gives back (only those inserted): the driver's rowcount is
        # not to be trusted here (psycopg 3 through SQLAlchemy 2 reports -1 for this INSERT).
        statement = (factory(table).values(list(rows)).on_conflict_do_nothing()
                     .returning(*table.primary_key.columns))
        return len(connection.execute(statement).all())

    def record_cards(self, *, service_id: str, hook: str, hook_instance: str, patient_id: str,
                     cards: Iterable[CardRecord], shown_at: datetime, issuer: str = "",
                     tenant: str = "") -> None:
        self.record_shown([ShownCards(service_id, hook, hook_instance,
                                      self.patient_hash(patient_id), tuple(cards), shown_at,
                                      issuer, tenant)])

    def record_shown(self, batches: Iterable[ShownCards]) -> None:
        """Keep the cards of several answers in one transaction (one commit, one fsync)."""
        rows: dict[str, dict[str, Any]] = {}
        for batch in batches:
            for card in batch.cards:
                row = {"card_uuid": card.card_uuid, "rule_id": card.rule_id,
                       "service_id": batch.service_id, "hook": batch.hook,
                       "indicator": card.indicator, "hook_instance": batch.hook_instance[:200],
                       "shown_at": batch.shown_at, "patient_hash": batch.patient_hash,
                       "issuer": batch.issuer[:500], "tenant": batch.tenant[:200],
                       "silent": card.silent}
                earlier = rows.get(card.card_uuid)
                # One statement may not update a row twice: the same finding's card shown
                # twice in one batch is kept once, as last shown.
                if earlier is None or earlier["shown_at"] <= batch.shown_at:
                    rows[card.card_uuid] = row
        if not rows:
            return
        try:
            with self._transaction() as connection:
                dialect = connection.dialect.name
                factory = pg_insert if dialect == "postgresql" else sqlite_insert
                statement = factory(card_shown)
                # A card with a stable uuid (one finding about one patient) shown again: keep
                # when it was last shown, which is what keeps it from repeating too soon.
                # One statement, its rows as parameters: compiled once, cached after.
                connection.execute(statement.on_conflict_do_update(
                    index_elements=[card_shown.c.card_uuid],
                    set_={"shown_at": statement.excluded.shown_at,
                          "hook_instance": statement.excluded.hook_instance,
                          "silent": statement.excluded.silent},
                ), list(rows.values()))
        except SQLAlchemyError as exc:
            raise StoreError(type(exc).__name__) from exc

    def record_feedback(self, service_id: str, items: Sequence[Mapping[str, Any]],
                        received_at: datetime, issuer: str = "",
                        tenant: str = "") -> FeedbackResult:
        """Store a feedback batch all or nothing; the same item twice is one row. Only items
        about cards this service showed to this same caller (issuer and tenant) are kept: a
        card never shown, or shown to another caller, is counted as unknown and not stored,
        so nobody can write another tenant's override rate or fill the report with made-up
        uuids."""
        rows = [_feedback_row(service_id, item, received_at) for item in items]
        unique = {row["item_key"]: row for row in rows}
        try:
            with self._transaction() as connection:
                uuids = {row["card_uuid"] for row in unique.values()}
                known = {
                    r[0] for r in connection.execute(
                        select(card_shown.c.card_uuid).where(
                            card_shown.c.card_uuid.in_(uuids),
                            card_shown.c.service_id == service_id,
                            card_shown.c.issuer == issuer[:500],
                            card_shown.c.tenant == tenant[:200]))
                }
                kept = [dict(row, known_card=True) for row in unique.values()
                        if row["card_uuid"] in known]
                stored = self._insert_ignoring_duplicates(connection, feedback, kept) \
                    if kept else 0
        except SQLAlchemyError as exc:
            raise StoreError(type(exc).__name__) from exc
        unknown = sum(1 for row in unique.values() if row["card_uuid"] not in known)
        return FeedbackResult(received=len(rows), stored=stored,
                              duplicates=len(kept) - stored + len(rows) - len(unique),
                              unknown_cards=unknown)

    def cards_since(self, since: datetime | None) -> list[dict[str, Any]]:
        query = select(card_shown)
        if since is not None:
            query = query.where(card_shown.c.shown_at >= since)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def feedback_for(self, card_uuids: Iterable[str] | None = None,
                     since: datetime | None = None) -> list[dict[str, Any]]:
        query = select(feedback)
        if since is not None:
            query = query.where(feedback.c.outcome_at >= since)
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        if card_uuids is not None:
            wanted = set(card_uuids)
            rows = [row for row in rows if row["card_uuid"] in wanted]
        return rows

    def ready(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def parse_instant(text: str) -> datetime | None:
    """An RFC 3339 instant as an aware datetime; None when it names no real moment."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timestamp(text: str) -> datetime:
    parsed = parse_instant(text)
    if parsed is None:
        raise ValueError("not an instant")
    return parsed


def _feedback_row(service_id: str, item: Mapping[str, Any], received_at: datetime) -> dict:
    canonical = json.dumps({"service": service_id, "item": item}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    reason = (item.get("overrideReason") or {})
    coding = reason.get("reason") or {}
    accepted = item.get("acceptedSuggestions")
    return {
        "item_key": hashlib.sha256(canonical.encode()).hexdigest(),
        "service_id": service_id,
        "card_uuid": str(item["card"]).lower(),
        "known_card": False,
        "outcome": item["outcome"],
        "outcome_at": _timestamp(item["outcomeTimestamp"]),
        "accepted_suggestions": json.dumps([s.get("id") for s in accepted]) if accepted else None,
        "override_system": coding.get("system"),
        "override_code": coding.get("code"),
        "override_display": coding.get("display"),
        "user_comment": reason.get("userComment"),
        "received_at": received_at,
    }


class LazyStore:
    """One Store per process, opened on first use (a worker that never needs the database never
    opens it), shared by the authenticator and the engine."""

    def __init__(self, url: str, patient_hash_key: str = "", migrate: bool = True):
        self._url, self._key, self._migrate = url, patient_hash_key, migrate
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        with self._lock:
            if self._store is None:
                try:
                    self._store = Store(self._url, self._key, self._migrate)
                except (OSError, SQLAlchemyError) as exc:
                    raise StoreError(type(exc).__name__) from exc
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
