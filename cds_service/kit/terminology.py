"""Value sets as compiled matchers: codes keyed by (system, code), ICD-10-CM prefixes, text terms.

The clinical content (which codes mean quinine, which mean malaria) lives in `hooks/valuesets/`
as data with provenance; this module only knows how to match a FHIR CodeableConcept against such
data, once compiled at start-up. Text matching is whole-word and case-insensitive so that
`quinidine` never matches `quinine` (terminology pitfalls).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cds_service.kit.code_systems import ICD10CM


@dataclass(frozen=True)
class Match:
    """How a concept matched: by `code` (with the coding that matched, and the product's name
    in the value set: what a clinician calls a code-only order) or by `text`."""

    value_set: str
    how: str
    system: str | None = None
    code: str | None = None
    text: str | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.how == "code":
            return f"code {self.code} ({self.system})"
        return f"name '{self.text}'"


# The longest a drug or condition name is read: RxNorm's longest names (multi-ingredient packs)
# run to a few hundred characters; text past this is not a name, and is never scanned.
MAX_NAME_CHARS = 1000


def _normalise_icd10(code: str) -> str:
    return code.replace(".", "").strip().upper()


# How the value sets display an ATC code ("ATC for pramipexole", "... (class-level only)"):
# a clinician reads the drug's name.
_ATC_DISPLAY = re.compile(r"^ATC for\s+|\s*\(class-level only\)$", re.IGNORECASE)


@dataclass(frozen=True)
class ValueSet:
    id: str
    title: str
    codes: frozenset[tuple[str, str]]
    icd10cm_prefixes: tuple[str, ...]
    text_pattern: re.Pattern[str] | None
    provenance: Mapping[str, Any]
    # The RxNorm (or reference) name of each code, for cards about orders that carry a code only.
    names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # Words that put a name out of the set's scope (e.g. 'ophthalmic' for a systemic effect):
    # a concept matched only by its name is not a member when its name carries one.
    out_of_scope: re.Pattern[str] | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ValueSet:
        codes: set[tuple[str, str]] = set()
        names: dict[tuple[str, str], str] = {}
        for entry in document.get("codes", []):
            system, code = entry["system"], str(entry["code"])
            if system == ICD10CM:
                code = _normalise_icd10(code)
            codes.add((system, code))
            name = entry.get("name") or entry.get("display")
            if name and entry.get("kind") == "atc":  # "ATC for pramipexole": the drug's name
                name = _ATC_DISPLAY.sub("", str(name)).strip() or None
            if name:
                names[(system, code)] = name
        prefixes = tuple(_normalise_icd10(p) for p in document.get("icd10cm_prefixes", []))
        terms = sorted(
            {t.strip().lower() for t in document.get("text_terms", []) if t.strip()},
            key=len,
            reverse=True,
        )
        pattern = None
        if terms:
            alternatives = "|".join(re.escape(term).replace(r"\ ", r"\s+") for term in terms)
            pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)
        scope_words = [w.strip() for w in document.get("out_of_scope_words", []) if w.strip()]
        out_of_scope = re.compile(
            r"\b(?:" + "|".join(re.escape(w) for w in scope_words) + r")\b", re.IGNORECASE
        ) if scope_words else None
        return cls(
            id=document["id"],
            title=document.get("title", document["id"]),
            codes=frozenset(codes),
            icd10cm_prefixes=prefixes,
            text_pattern=pattern,
            provenance=document.get("provenance", {}),
            names=names,
            out_of_scope=out_of_scope,
        )

    @classmethod
    def load(cls, path: Path) -> ValueSet:
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")))

    def has_code(self, system: str | None, code: str | None) -> bool:
        if not system or not code:
            return False
        if system == ICD10CM:
            normalised = _normalise_icd10(code)
            if (system, normalised) in self.codes:
                return True
            return bool(self.icd10cm_prefixes) and normalised.startswith(self.icd10cm_prefixes)
        return (system, code.strip()) in self.codes

    def matches_text(self, text: str | None) -> bool:
        """Whole-word match within the first MAX_NAME_CHARS characters: a name is short, and a
        megabyte of free text must not be scanned once per value set."""
        return bool(text and self.text_pattern
                    and self.text_pattern.search(text, 0, MAX_NAME_CHARS))

    def match_codings(self, codings: Iterable[Any]) -> Match | None:
        for coding in codings:
            system, code = getattr(coding, "system", None), getattr(coding, "code", None)
            if self.has_code(system, code) and system and code:
                key = (system, _normalise_icd10(code) if system == ICD10CM else code.strip())
                return Match(self.id, "code", system=system, code=code, name=self.names.get(key))
        return None

    def match_text(self, concept: Any | None) -> Match | None:
        """Whole-word text of `concept.text` and each `coding.display`; a name the set's scope
        leaves out (an eye drop for a systemic set) never matches."""
        if concept is None:
            return None
        codings = list(getattr(concept, "coding", None) or [])
        texts = [getattr(concept, "text", None)] + [getattr(c, "display", None) for c in codings]
        if self.out_of_scope is not None and any(
                t and self.out_of_scope.search(t, 0, MAX_NAME_CHARS) for t in texts):
            return None
        for text in texts:
            if self.matches_text(text):
                return Match(self.id, "text", text=text)
        return None

    def match(self, concept: Any | None) -> Match | None:
        """Code first, then whole-word text of `concept.text` and each `coding.display`.
        Its raw-JSON twin is `concept_terms` below: the screen reads the same members."""
        if concept is None:
            return None
        by_code = self.match_codings(getattr(concept, "coding", None) or [])
        return by_code or self.match_text(concept)


# The raw-JSON twin of `ValueSet.match`'s reading of a concept: what the lazy record's screen
# indexes before any model is validated (held to the models by tests/kit/test_fast_paths.py).


def raw_codings(concept: Any) -> list[Any] | None:
    """The `coding` list of a raw CodeableConcept as the parser reads it (a single Coding object
    where a list belongs is the list it repairs it into); None when the concept is not a JSON
    object or its `coding` not a list."""
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding")
    if isinstance(codings, dict):
        return [codings]
    if codings is None:
        return []
    return codings if isinstance(codings, list) else None


def concept_terms(concept: Any) -> tuple[list[tuple[str | None, str | None]], list[str]] | None:
    """The (system, code) pairs and texts (text, displays) of a raw CodeableConcept, as the
    models would read them; None when it is not plain JSON of that shape (a single Coding
    object where a list belongs counts as the list the parser repairs it into).

    Run once per concept of every resource a record indexes (10,000 Observations: ~10,000
    calls), so it tests exact types (what a JSON parser makes; anything else is "not plain",
    which only makes the resource a candidate the models judge) and reads each member once."""
    if concept is None:
        return [], []
    if type(concept) is not dict:
        return None
    text = concept.get("text")
    if text is not None and type(text) is not str:
        return None
    texts = [text] if text else []
    codings = concept.get("coding")
    if codings is None:
        return [], texts
    if type(codings) is dict:
        codings = [codings]
    elif type(codings) is not list:
        return None
    pairs: list[tuple[str | None, str | None]] = []
    for coding in codings:
        if type(coding) is not dict:
            return None
        get = coding.get
        system, code, display = get("system"), get("code"), get("display")
        if ((system is not None and type(system) is not str)
                or (code is not None and type(code) is not str)
                or (display is not None and type(display) is not str)):
            return None
        pairs.append((system, code))
        if display:
            texts.append(display)
    return pairs, texts


class ValueSetLibrary:
    """All value sets of a directory, compiled once and looked up by id."""

    def __init__(self, value_sets: Iterable[ValueSet]):
        self._by_id = {vs.id: vs for vs in value_sets}

    def __getitem__(self, value_set_id: str) -> ValueSet:
        return self._by_id[value_set_id]

    def __contains__(self, value_set_id: object) -> bool:
        return value_set_id in self._by_id

    def ids(self) -> list[str]:
        return sorted(self._by_id)
