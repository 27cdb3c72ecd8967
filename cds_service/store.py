"""The service's database (SQLAlchemy): SQLite by default, PostgreSQL by URL.

Today it holds the JWT replay cache, which must be shared by every gunicorn worker of a
deployment (a jti seen by one worker is a replay for all of them), so it cannot live in process
memory. Only a hash of issuer and jti is stored, with its expiry.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

metadata = MetaData()

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("token_key", String(64), primary_key=True),  # sha256 of iss and jti
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

PURGE_EVERY = 200


class StoreError(RuntimeError):
    """The database could not be used; callers fail closed (a token is refused, not trusted)."""


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Store:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError:
            # Another worker created the tables between our check and our CREATE: check again.
            metadata.create_all(self.engine)
        self._inserts = 0
        self._lock = threading.Lock()

    def remember_token(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """Record a token id; False when it was already seen (a replay), across all workers."""
        key = hashlib.sha256(f"{iss}\n{jti}".encode()).hexdigest()
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as connection:
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
            with self.engine.begin() as connection:
                connection.execute(delete(jwt_replay).where(jwt_replay.c.expires_at < now))
        except SQLAlchemyError:
            pass  # purging is housekeeping; the next attempt will catch up

    def ready(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()
