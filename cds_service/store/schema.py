"""The database tables (SQLAlchemy Core). Changed only through migrations in `migrations/`.

Nothing here identifies a patient: cards are kept with a keyed hash of the patient id, so
repeat findings can be counted without storing who; JWT ids only as a hash.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class Instant(TypeDecorator[datetime]):
    """A moment in time, stored in UTC and read back as an aware UTC datetime on every back end.

    SQLite has no time zone type: SQLAlchemy writes an aware datetime's wall-clock time and drops
    its offset, so 10:06+01:00 would come back as 10:06 UTC. Converting to UTC first makes both
    back ends keep the same instant (and SQLite's text comparisons order instants correctly).
    Naive datetimes are taken as UTC. The column DDL is plain DateTime(timezone=True).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("token_key", String(64), primary_key=True),  # sha256 of iss and jti
    Column("expires_at", Instant(), nullable=False, index=True),
)

card_shown = Table(
    "card_shown",
    metadata,
    Column("card_uuid", String(36), primary_key=True),
    Column("rule_id", String(100), nullable=False, index=True),
    Column("service_id", String(100), nullable=False),
    Column("hook", String(40), nullable=False),
    Column("indicator", String(10), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("shown_at", Instant(), nullable=False, index=True),
    Column("patient_hash", String(64), nullable=True),
    # Who it was shown to: feedback is taken only from the same issuer and tenant ("" for
    # anonymous calls and tokens without a tenant).
    Column("issuer", String(500), nullable=False, server_default=""),
    Column("tenant", String(200), nullable=False, server_default=""),
    # Recorded in a silent pilot, never shown: the report counts these apart.
    Column("silent", Boolean, nullable=False, server_default=false()),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_key", String(64), nullable=False, unique=True),  # idempotency: sha256 of item
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(100), nullable=False, index=True),
    Column("known_card", Boolean, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("outcome_at", Instant(), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),  # JSON list of suggestion uuids
    Column("override_system", String(500), nullable=True),
    Column("override_code", String(200), nullable=True),
    Column("override_display", String(500), nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("received_at", Instant(), nullable=False),
)
