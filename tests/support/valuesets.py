"""What the value set tests share: the shipped documents, compiled sets, concept matching and
the shared terminology reference (with a check that fails when an edit to it causes drift)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cds_service.kit.terminology import Match, ValueSet
from hooks.valuesets import DIRECTORY
from hooks.valuesets.build import main
from tests.conftest import SHARED

TERMINOLOGY = SHARED / "reference" / "terminology.json"
needs_reference = pytest.mark.skipif(
    not TERMINOLOGY.exists(), reason="shared reference not beside the project"
)
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"


@cache
def document(value_set_id: str) -> dict[str, Any]:
    return json.loads((DIRECTORY / f"{value_set_id}.json").read_text(encoding="utf-8"))


@cache
def value_set(value_set_id: str) -> ValueSet:
    return ValueSet.from_document(document(value_set_id))


def concept(*codings: tuple[str, str, str | None], text: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        coding=[SimpleNamespace(system=s, code=c, display=d) for s, c, d in codings], text=text
    )


def matches(
    value_set_id: str, *codings: tuple[str, str, str | None], text: str | None = None
) -> Match | None:
    return value_set(value_set_id).match(concept(*codings, text=text))


def reference() -> dict[str, Any]:
    return json.loads(TERMINOLOGY.read_text(encoding="utf-8"))


def check_exit_code(terminology: dict[str, Any], tmp_path: Path) -> int:
    """Run `build --check` against an edited copy of the reference."""
    changed = tmp_path / "terminology.json"
    changed.write_text(json.dumps(terminology), encoding="utf-8")
    return main(["--terminology", str(changed), "--check"])
