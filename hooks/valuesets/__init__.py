"""Value sets as data files with their provenance, compiled once per process."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cds_service.kit import LOINC, UnitNormaliser, ValueSet, ValueSetLibrary

DIRECTORY = Path(__file__).resolve().parent


@cache
def documents() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(DIRECTORY.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        found[document["id"]] = document
    return found


@cache
def library() -> ValueSetLibrary:
    return ValueSetLibrary(ValueSet.from_document(doc) for doc in documents().values())


@dataclass(frozen=True)
class LabTest:
    """A laboratory value set: its codes, and how its units convert to the canonical one."""

    value_set: ValueSet
    units: UnitNormaliser
    loinc_codes: tuple[str, ...]
    title: str

    @property
    def canonical_unit(self) -> str:
        return self.units.canonical_unit


@cache
def lab(value_set_id: str) -> LabTest:
    document = documents()[value_set_id]
    return LabTest(
        value_set=library()[value_set_id],
        units=UnitNormaliser.from_document(document),
        loinc_codes=tuple(c["code"] for c in document["codes"] if c["system"] == LOINC),
        title=document.get("title", value_set_id),
    )


def codes_named(value_set_id: str, words: str) -> frozenset[tuple[str, str]]:
    """The (system, code) pairs of a value set whose display contains `words` (any case),
    e.g. the extended-release products of a drug, which a rule treats apart."""
    wanted = words.lower()
    return frozenset(
        (entry["system"], entry["code"]) for entry in documents()[value_set_id]["codes"]
        if wanted in (entry.get("display") or "").lower()
    )


def uses(value_set_id: str) -> Any:
    """A value set a rule uses, declared on the rule as a dataclass field
    (`quinine: ValueSet = uses("quinine")`): loaded from this folder when the rule is made, and
    named in the field's metadata so the catalog can list what each rule reads. A test may pass
    another value set in its place."""
    return field(default_factory=lambda: library()[value_set_id],
                 metadata={"value_set": value_set_id})


def uses_lab(value_set_id: str) -> Any:
    """A laboratory test a rule reads (codes and unit conversions), declared like `uses`."""
    return field(default_factory=lambda: lab(value_set_id), metadata={"value_set": value_set_id})


def uses_codes_named(value_set_id: str, words: str) -> Any:
    """The codes of a value set whose display contains `words`, declared like `uses` (e.g. the
    extended-release products of a drug, which a rule treats apart)."""
    return field(default_factory=lambda: codes_named(value_set_id, words),
                 metadata={"value_set": value_set_id})
