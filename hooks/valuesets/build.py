"""Rebuild the value sets derived from the shared terminology reference.

    python -m hooks.valuesets.build [--terminology PATH] [--check]

Only codes marked `verified-in-source` there are shipped; the others are listed under
`left_out` with the reason, so a reviewer sees what was dropped. `--check` exits 1 when the files
in this directory differ from what the reference gives (drift), which the test suite runs.
Value sets that the reference does not cover (malaria) are curated by hand beside these files
and carry their own provenance; this command never writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_TERMINOLOGY = HERE.parents[1].parent / "shared" / "reference" / "terminology.json"
VERIFIED = "verified-in-source"
ATC_SYSTEM_NOTE = (
    "ATC system URI http://www.whocc.no/atc is marked from-memory in the reference; it is the "
    "URI HL7 terminology names for ATC and the one public FHIR data uses (checked with the "
    "search tool, 2026-11-21)"
)

# Which terminology concepts make up each derived value set.
DERIVED: Mapping[str, Mapping[str, Any]] = {
    "quinine": {
        "title": "Quinine, any product",
        "medications": ["quinine"],
        "purpose": "Q1 quinine-leg-cramps: any quinine order. Quinidine is a different "
        "ingredient (RxNorm 9068) and must never match.",
    },
}


def _medication_entries(concept: Mapping[str, Any], left_out: list[dict[str, Any]]) -> list[dict]:
    entries = []
    for kind in ("ingredient_codes", "product_codes", "atc_codes"):
        for code in concept.get(kind, []):
            record = {
                "system": code["system"],
                "code": code.get("code"),
                "display": code.get("display"),
                "kind": kind.removesuffix("_codes"),
                "source": code.get("source"),
            }
            if not code.get("code") or code.get("confidence") != VERIFIED:
                left_out.append({**record, "reason": f"confidence: {code.get('confidence')}"})
                continue
            entries.append(record)
    return entries


def build(terminology: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    medications = {m["concept_id"]: m for m in terminology["medications"]}
    built = {}
    for value_set_id, definition in DERIVED.items():
        codes: list[dict[str, Any]] = []
        left_out: list[dict[str, Any]] = []
        terms: list[str] = []
        notes: list[str] = []
        for concept_id in definition["medications"]:
            concept = medications[concept_id]
            codes.extend(_medication_entries(concept, left_out))
            terms.extend(t for t in concept.get("text_match_terms", []) if t not in terms)
            notes.extend(concept.get("notes", []))
        if any(c["system"] == "http://www.whocc.no/atc" for c in codes):
            notes.append(ATC_SYSTEM_NOTE)
        built[value_set_id] = {
            "id": value_set_id,
            "title": definition["title"],
            "purpose": definition["purpose"],
            "provenance": {
                "built_from": "shared/reference/terminology.json",
                "reference_generated": terminology["meta"].get("generated"),
                "builder": "python -m hooks.valuesets.build",
                "policy": "codes verified in source only; whole-word text terms as fallback",
                "notes": notes,
            },
            "codes": codes,
            "text_terms": terms,
            "left_out": left_out,
        }
    return built


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminology", type=Path, default=DEFAULT_TERMINOLOGY)
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    args = parser.parse_args(argv)
    terminology = json.loads(args.terminology.read_text(encoding="utf-8"))
    drifted = []
    for value_set_id, document in build(terminology).items():
        path = HERE / f"{value_set_id}.json"
        text = render(document)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        drifted.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and drifted:
        print(f"value sets out of date: {', '.join(drifted)}", file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'written'}: {len(DERIVED)} value set(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
