"""The read-only `PatientRecord` every rule reads, built once per request from resolved data
(by `pipeline.record_builder`).

Rules never see JSON, prefetch keys or HTTP: only typed models and accessors that apply the
catalog's ground rules for which conditions and orders count. Where a raw-JSON screen spares a
validation (`_may_count`, `_may_be_active`), it sits beside the model rule it must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from cds_service.kit.dosing import (
    Strength,
    strength_from_concept,
    strength_from_medication,
    strength_from_name,
)
from cds_service.kit.lazy import LazyResources
from cds_service.kit.parsing import ParseReport
from cds_service.kit.terminology import Match, ValueSet, raw_codings

# FHIR versions an order may arrive in (`pipeline.versions` maps the older two onto R4).
R4, STU3, DSTU2 = "R4", "STU3", "DSTU2"

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION_STATUSES = frozenset({"refuted", "entered-in-error"})
# Draft orders that are no longer orders (order-sign may also carry revised, non-draft orders).
INACTIVE_ORDER_STATUSES = frozenset({"cancelled", "entered-in-error", "completed", "stopped"})
# Chart orders that were taken and have ended (a drug stopped recently may still act).
ENDED_ORDER_STATUSES = frozenset({"completed", "stopped"})
ON_HOLD = "on-hold"  # paused: taken until recently and expected to restart


def reference_key(reference: str | None) -> str | None:
    """'Type/id' from a relative, absolute or versioned reference; None for other forms."""
    if not reference or reference.startswith("#"):
        return None
    parts = [p for p in reference.split("?", 1)[0].split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2:
        return f"{parts[-2]}/{parts[-1]}"
    return None


def referenced_id(reference: str | None) -> str | None:
    if not reference:
        return None
    if reference.startswith("urn:uuid:"):
        return reference.removeprefix("urn:uuid:")
    key = reference_key(reference)
    return key.split("/", 1)[1] if key else None


def _codes(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or [])


def _status_code(concept: Any) -> str | None:
    for coding in _codes(concept):
        if coding.code:
            return str(coding.code)
    return None


def condition_counts(condition: Condition) -> bool:
    """Catalog ground rule: clinically active (or status absent) and not refuted/in error."""
    clinical = _status_code(condition.clinicalStatus)
    if clinical is not None and clinical not in ACTIVE_CLINICAL_STATUSES:
        return False
    verification = _status_code(condition.verificationStatus)
    return verification not in EXCLUDED_VERIFICATION_STATUSES


def condition_onset(condition: Condition) -> datetime | date | None:
    """Onset from onsetDateTime, onsetPeriod.start, else recordedDate (catalog ground rule)."""
    if condition.onsetDateTime is not None:
        return condition.onsetDateTime
    if condition.onsetPeriod is not None and condition.onsetPeriod.start is not None:
        return condition.onsetPeriod.start
    return condition.recordedDate


def _has_name(concept: CodeableConcept | None) -> bool:
    return concept is not None and bool(
        concept.text or any(c.display for c in concept.coding or []))


def concept_label(concept: Any) -> str | None:
    """What a clinician would call this concept: its text, else a display, else a code."""
    if concept is None:
        return None
    if getattr(concept, "text", None):
        return str(concept.text)
    for coding in _codes(concept):
        if coding.display:
            return str(coding.display)
    for coding in _codes(concept):
        if coding.code:
            return f"{coding.code} ({coding.system})" if coding.system else str(coding.code)
    return None


@dataclass(frozen=True)
class ConditionMatch:
    condition: Condition
    match: Match

    @property
    def label(self) -> str:
        return concept_label(self.condition.code) or "condition"

    @property
    def reference(self) -> str:
        return f"Condition/{self.condition.id}" if self.condition.id else "Condition"


@dataclass(frozen=True)
class MedicationOrder:
    """A MedicationRequest with its medication resolved, whichever way the client coded it.

    `raw` is R4 JSON: a DSTU2 MedicationOrder or STU3 MedicationRequest mapped onto R4 by
    `pipeline.versions`.
    `reference` names the order as the client did (`MedicationOrder/<id>` for DSTU2), so
    selections match and delete suggestions point at the client's own resource.
    """

    model: MedicationRequest
    raw: dict[str, Any]
    medication: CodeableConcept | None
    medication_origin: str  # codeableConcept | contained | bundle | server | unresolved | absent
    medication_resource: Medication | None = None  # the Medication, when the order referenced one
    source_type: str = "MedicationRequest"  # the client's resource type
    fhir_version: str = R4  # R4 | STU3 | DSTU2, as the client sent it
    # The product's name in the rules' value sets, for an order that carries a code only.
    known_name: str | None = None

    @property
    def id(self) -> str | None:
        return self.model.id

    @property
    def reference(self) -> str:
        return f"{self.source_type}/{self.model.id}" if self.model.id else self.source_type

    @property
    def is_r4(self) -> bool:
        """Whether the client sent R4: only then may a suggestion update the whole resource
        (`raw` is R4 JSON, not the client's own shape)."""
        return self.fhir_version == R4

    @property
    def status(self) -> str | None:
        return self.model.status

    @property
    def authored_on(self) -> datetime | None:
        return self.model.authoredOn

    @property
    def reason_codes(self) -> list[CodeableConcept]:
        return list(self.model.reasonCode or [])

    @property
    def reason_references(self) -> list[str]:
        return [r.reference for r in self.model.reasonReference or [] if r.reference]

    @property
    def medication_label(self) -> str:
        """What a clinician calls the drug: the order's own text or display, else the name the
        value sets give its code (an order sent by code alone), else its code."""
        if self.known_name and not _has_name(self.medication):
            return self.known_name
        return concept_label(self.medication) or "the ordered medication"

    @property
    def strength(self) -> Strength | None:
        """The product's strength: from the order's own names, else the referenced Medication,
        else the value sets' name for its code (an order sent by code alone)."""
        found = strength_from_concept(self.medication)
        if found is None and self.medication_resource is not None:
            found = strength_from_medication(self.medication_resource)
        if found is None and self.known_name and not _has_name(self.medication):
            found = strength_from_name(self.known_name)
        return found

    @property
    def ingredient_concepts(self) -> list[CodeableConcept]:
        """The referenced Medication's `ingredient[].itemCodeableConcept` codes."""
        resource = self.medication_resource
        return [i.itemCodeableConcept for i in (resource.ingredient or [])
                if i.itemCodeableConcept is not None] if resource is not None else []

    @property
    def is_identifiable(self) -> bool:
        """Whether the order names its drug at all: a coding with a code, a text or display,
        or a coded ingredient. An order that does not is never guessed at."""
        concepts = [self.medication, *self.ingredient_concepts]
        return any(concept is not None and (concept.text or any(
            c.code or c.display for c in concept.coding or [])) for concept in concepts)

    def match_medication(self, value_set: ValueSet) -> Match | None:
        """The same order for every rule: any coding of the medication (the order's concept or
        the referenced Medication's code), then the Medication's coded ingredients, then the
        whole-word text of the medication's names."""
        medication = self.medication
        by_code = value_set.match_codings(medication.coding or []) if medication else None
        for ingredient in self.ingredient_concepts:
            by_code = by_code or value_set.match_codings(ingredient.coding or [])
        return by_code or value_set.match_text(medication)


def _no_resources() -> LazyResources[Any]:
    return LazyResources((), lambda raw: None)


_UNREADABLE = object()


def _raw_status_code(concept: Any) -> Any:
    """`_status_code` read from raw JSON; `_UNREADABLE` when it is not plain JSON of the
    CodeableConcept shape (a single Coding where a list belongs is the list the parser makes)."""
    if concept is None:
        return None
    codings = raw_codings(concept)
    if codings is None:
        return _UNREADABLE
    for coding in codings:
        if not isinstance(coding, dict):
            return _UNREADABLE
        code = coding.get("code")
        if code is None or code == "":
            continue
        return code if isinstance(code, str) else _UNREADABLE
    return None


def _may_count(raw: dict[str, Any]) -> bool:
    """False only when the raw statuses already say `condition_counts` would be false (resolved,
    refuted, ...): the models read the same codes, so such a Condition need not be validated."""
    clinical = _raw_status_code(raw.get("clinicalStatus"))
    if isinstance(clinical, str) and clinical not in ACTIVE_CLINICAL_STATUSES:
        return False
    verification = _raw_status_code(raw.get("verificationStatus"))
    return not (isinstance(verification, str) and verification in EXCLUDED_VERIFICATION_STATUSES)


def _may_be_active(raw: dict[str, Any]) -> bool:
    status = raw.get("status")
    return status == "active" or not isinstance(status, str)


@dataclass(frozen=True)
class PatientRecord:
    """The chart as the rules see it. Conditions, Observations and the chart's orders are
    validated when a rule reads them (see `lazy`); draft orders, the subject of every order
    hook, are validated up front."""

    patient_id: str
    as_of: datetime
    patients: LazyResources[Patient] = field(default_factory=_no_resources)
    conditions: LazyResources[Condition] = field(default_factory=_no_resources)
    observations: LazyResources[Observation] = field(default_factory=_no_resources)
    medication_requests: LazyResources[MedicationOrder] = field(default_factory=_no_resources)
    draft_orders: tuple[MedicationOrder, ...] = ()
    report: ParseReport = field(default_factory=ParseReport)

    @property
    def patient(self) -> Patient | None:
        """The Patient resource (the last one the request carried, as a client would update)."""
        found = list(self.patients)
        return found[-1] if found else None

    @property
    def is_deceased(self) -> bool:
        patient = self.patient
        if patient is None:
            return False
        return bool(patient.deceasedBoolean) or patient.deceasedDateTime is not None

    def active_conditions(self, value_set: ValueSet) -> list[ConditionMatch]:
        found = []
        conditions = self.conditions
        candidates = conditions.models(i for i in conditions.screened_indexes(value_set)
                                       if _may_count(conditions.raws[i]))
        for condition in candidates:
            if not condition_counts(condition):
                continue
            match = value_set.match(condition.code)
            if match:
                found.append(ConditionMatch(condition, match))
        return found

    def onset(self, condition: Condition) -> datetime | date | None:
        """Onset by the catalog's ground rule; onsetAge counts from the birth date when known."""
        onset = condition_onset(condition)
        age = condition.onsetAge
        if age is not None and age.value is not None and self.patient is not None:
            birth = self.patient.birthDate
            # A partial birth date ('1961') is kept as text by the models: no day to count from.
            if isinstance(birth, date) and (age.code or age.unit) in ("a", "yr", "years", "year"):
                years = int(age.value)
                try:
                    from_age = birth.replace(year=birth.year + years)
                except ValueError:  # 29 February
                    from_age = birth.replace(year=birth.year + years, day=28)
                if condition.onsetDateTime is None and condition.onsetPeriod is None:
                    return from_age
        return onset

    def condition(self, reference: str) -> Condition | None:
        wanted = reference_key(reference)
        target_id = referenced_id(reference)

        def named(condition_id: Any) -> bool:
            return wanted == f"Condition/{condition_id}" or (
                reference.startswith("urn:uuid:") and condition_id == target_id)

        def may_be_named(raw: dict[str, Any]) -> bool:
            raw_id = raw.get("id")  # an id that is not a string: the models judge it
            return named(raw_id) if isinstance(raw_id, str) else raw_id is not None

        return next((c for c in self.conditions.select(may_be_named) if named(c.id)), None)

    def active_medications(self, value_set: ValueSet | None = None) -> list[MedicationOrder]:
        """The chart's active MedicationRequests (only those whose medication may be in
        `value_set`, when one is given: the others are not validated); a deceased patient has
        none, whatever stale orders say."""
        if self.is_deceased:
            return []
        requests = self.medication_requests
        indexes = (range(len(requests.raws)) if value_set is None
                   else requests.screened_indexes(value_set))
        orders = requests.models(i for i in indexes if _may_be_active(requests.raws[i]))
        return [order for order in orders if order.status == "active"]

    def orders_with_status(self, value_set: ValueSet,
                           statuses: frozenset[str]) -> list[MedicationOrder]:
        """The chart's MedicationRequests in one of `statuses` whose medication may be in
        `value_set` (only those are validated): for a rule that must know what was taken
        recently or is paused, such as an MAO inhibitor stopped less than 14 days ago."""
        requests = self.medication_requests
        orders = requests.models(
            i for i in requests.screened_indexes(value_set)
            if not isinstance(status := requests.raws[i].get("status"), str)
            or status in statuses)
        return [order for order in orders if order.status in statuses]

    def draft(self, reference: str) -> MedicationOrder | None:
        wanted = reference_key(reference)
        return next((o for o in self.draft_orders if o.reference == wanted), None)

    def open_drafts(self) -> list[MedicationOrder]:
        return [o for o in self.draft_orders if o.status not in INACTIVE_ORDER_STATUSES]
