"""Fixtures shared by the store's tests: a store on each back end, and the report command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.store.database import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def report_command(store_url: str, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Callable[..., Any]]:
    """`legcramp-cds report` on the store, flagging an override rate above 50 % once a rule has
    `min_feedback` decisions: given `min_feedback`, a function of the command's arguments that
    runs it and returns its result (which never holds a traceback)."""
    monkeypatch.delenv("LEGCRAMP_CDS_CONFIG", raising=False)

    def with_min_feedback(min_feedback: int) -> Callable[..., Any]:
        config = tmp_path / "report.toml"
        config.write_text(f'[store]\nurl = "{store_url}"\n\n[report]\noverride_rate_flag = 0.5\n'
                          f"min_feedback = {min_feedback}\n", encoding="utf-8")

        def run(*args: str) -> Any:
            result = CliRunner().invoke(main, ["report", "--config", str(config), *args])
            assert "Traceback" not in result.output
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                repr(result.exception))
            return result

        return run

    return with_min_feedback
