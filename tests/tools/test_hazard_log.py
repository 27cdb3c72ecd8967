"""The hazard log's controls point at tests that exist: a renamed or deleted test must not leave
a control proved by nothing."""

from __future__ import annotations

import re

from tests.conftest import ROOT

LOG = ROOT / "docs" / "hazard-log.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`(tests/[\w/]+/)`")


def test_every_test_the_hazard_log_names_exists():
    text = LOG.read_text(encoding="utf-8")
    found = REFERENCE.findall(text)
    assert len(found) >= 15
    for path, name, folder in found:
        if folder:
            assert (ROOT / folder).is_dir(), folder
            continue
        source = (ROOT / path).read_text(encoding="utf-8")
        if name:
            assert f"def {name}(" in source, f"{path}::{name} is not a test any more"


def test_every_hazard_has_a_control_and_a_test():
    rows = [line for line in LOG.read_text(encoding="utf-8").splitlines()
            if line.startswith("| HZ-")]
    assert rows
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 7, row[:60]
        hazard_id, _, _, effect, control, test, _ = cells
        assert effect and control and "tests/" in test, hazard_id
