"""The data lifecycle: `legcramp-cds db upgrade` migrates on its own, so the service can run
with a role that has no DDL rights and refuses an old schema; `legcramp-cds db purge` deletes
governance data past retention and blanks old free-text comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import insert, select

from cds_service.cli import main
from cds_service.config import load_config
from cds_service.store.database import (
    CardRecord,
    SchemaBehind,
    ShownCards,
    Store,
    _alembic_config,
    make_engine,
)
from cds_service.store.schema import card_shown, feedback

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.sqlite3"


def _config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cds.toml"
    path.write_text(f'[store]\nurl = "{_url(tmp_path)}"\n{extra}', encoding="utf-8")
    return path


def _at_revision(url: str, revision: str) -> None:
    """A database migrated only as far as `revision` (an older release's schema)."""
    engine = make_engine(url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)
    engine.dispose()


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision


def _card(store: Store, uuid: str, days_ago: int) -> None:
    store.record_shown([ShownCards("svc", "order-sign", f"hook-{uuid}", None,
                                   (CardRecord(uuid, "quinine-leg-cramps", "critical"),),
                                   NOW - timedelta(days=days_ago))])


def _feedback(store: Store, key: str, days_ago: int, known: bool = True,
              comment: str | None = None) -> None:
    when = NOW - timedelta(days=days_ago)
    with store.engine.begin() as connection:
        connection.execute(insert(feedback).values(
            item_key=key, service_id="svc", card_uuid=f"card-{key}", known_card=known,
            outcome="overridden", outcome_at=when, user_comment=comment, received_at=when))


def test_purge_deletes_past_retention_and_blanks_old_comments(tmp_path):
    store = Store(_url(tmp_path))
    for uuid, days in (("new", 10), ("edge", 399), ("old", 401)):
        _card(store, uuid, days)
    _feedback(store, "recent", 10, comment="patient said the cramps stopped")
    _feedback(store, "aging", 100, comment="free text that may name someone")
    _feedback(store, "expired", 450, comment="older still")
    _feedback(store, "unknown", 5, known=False)

    result = store.purge(NOW, retention_days=400, comment_retention_days=90)

    assert (result.cards, result.feedback, result.comments) == (1, 2, 1)
    with store.engine.connect() as connection:
        cards = {r.card_uuid for r in connection.execute(select(card_shown))}
        rows = {r.item_key: r.user_comment for r in connection.execute(select(feedback))}
    assert cards == {"new", "edge"}
    assert rows == {"recent": "patient said the cramps stopped", "aging": None}


def test_db_purge_command_uses_the_configured_retention_and_takes_overrides(tmp_path):
    config = _config_file(tmp_path, "retention_days = 30\ncomment_retention_days = 5\n")
    store = Store(_url(tmp_path))
    _card(store, "a", 40)
    store.close()
    result = CliRunner().invoke(main, ["db", "purge", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "deleted 1 card(s) shown" in result.output and "older than 30 days" in result.output

    result = CliRunner().invoke(main, ["db", "purge", "--config", str(config),
                                       "--older-than", "forever"])
    assert result.exit_code != 0 and "give a number of days" in result.output


def test_db_upgrade_brings_an_old_schema_to_the_newest(tmp_path):
    url = _url(tmp_path)
    _at_revision(url, "0004")
    with pytest.raises(SchemaBehind, match="run `legcramp-cds db upgrade`"):
        Store(url, migrate=False)
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(_config_file(tmp_path))])
    assert result.exit_code == 0, result.output
    current, head = Store(url, migrate=False).revisions()
    assert current == head == "0005"


def test_without_ddl_rights_the_service_refuses_an_old_schema_and_says_what_to_run(
        tmp_path, make_app):
    url = _url(tmp_path)
    _at_revision(url, "0004")
    config = _config_file(tmp_path, "migrate_on_start = false\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    assert "run `legcramp-cds db upgrade`" in result.output
    assert "Traceback" not in result.output

    cfg = load_config(config)
    app = make_app(replace(cfg, store=replace(cfg.store, url=url)))
    assert app.test_client().get("/ready").status_code == 503
    assert _revision(url) == "0004"  # never migrated by the service
