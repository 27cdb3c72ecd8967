"""The read-only `PatientRecord` every rule reads, built once per request from resolved data.

Rules never see JSON, prefetch keys or HTTP: only typed models and accessors that apply the
catalog's ground rules for which conditions and orders count. Resources for another patient are
dropped (and counted): mixing two charts is worse than missing one resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cds_service.kit.lazy import LazyResources, raw_codings
from cds_service.kit.parsing import ParseReport, ResourceRejected, parse_resource
from cds_service.kit.terminology import Match, ValueSet
from cds_service.pipeline.versions import ORDER_TYPES, R4, medication_to_r4, to_r4

# Resource types the rules read; anything else in a prefetch Bundle is ignored unparsed.
# MedicationOrder is DSTU2's MedicationRequest (mapped to R4 before parsing: see versions).
READ_TYPES = frozenset(
    {"Patient", "Condition", "MedicationRequest", "MedicationOrder", "Medication", "Observation"}
)

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION_STATUSES = frozenset({"refuted", "entered-in-error"})
# Draft orders that are no longer orders (order-sign may also carry revised, non-draft orders).
INACTIVE_ORDER_STATUSES = frozenset({"cancelled", "entered-in-error", "completed", "stopped"})


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


def condition_counts(condition: Any) -> bool:
    """Catalog ground rule: clinically active (or status absent) and not refuted/in error."""
    clinical = _status_code(condition.clinicalStatus)
    if clinical is not None and clinical not in ACTIVE_CLINICAL_STATUSES:
        return False
    verification = _status_code(condition.verificationStatus)
    return verification not in EXCLUDED_VERIFICATION_STATUSES


def condition_onset(condition: Any) -> datetime | date | None:
    """Onset from onsetDateTime, onsetPeriod.start, else recordedDate (catalog ground rule)."""
    if condition.onsetDateTime is not None:
        return condition.onsetDateTime
    if condition.onsetPeriod is not None and condition.onsetPeriod.start is not None:
        return condition.onsetPeriod.start
    return condition.recordedDate


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
    condition: Any
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

    `raw` is R4 JSON: a DSTU2 MedicationOrder or STU3 MedicationRequest mapped by `versions`.
    `reference` names the order as the client did (`MedicationOrder/<id>` for DSTU2), so
    selections match and delete suggestions point at the client's own resource.
    """

    model: Any
    raw: dict[str, Any]
    medication: Any | None
    medication_origin: str  # codeableConcept | contained | bundle | server | unresolved | absent
    medication_resource: Any | None = None  # the Medication, when the order referenced one
    source_type: str = "MedicationRequest"  # the client's resource type
    fhir_version: str = R4  # R4 | STU3 | DSTU2, as the client sent it

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
    def reason_codes(self) -> list[Any]:
        return list(self.model.reasonCode or [])

    @property
    def reason_references(self) -> list[str]:
        return [r.reference for r in self.model.reasonReference or [] if r.reference]

    @property
    def medication_label(self) -> str:
        return concept_label(self.medication) or "the ordered medication"

    def match_medication(self, value_set: ValueSet) -> Match | None:
        return value_set.match(self.medication)


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
    patients: LazyResources[Any] = field(default_factory=_no_resources)
    conditions: LazyResources[Any] = field(default_factory=_no_resources)
    observations: LazyResources[Any] = field(default_factory=_no_resources)
    medication_requests: LazyResources[MedicationOrder] = field(default_factory=_no_resources)
    draft_orders: tuple[MedicationOrder, ...] = ()
    report: ParseReport = field(default_factory=ParseReport)

    @property
    def patient(self) -> Any | None:
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

    def onset(self, condition: Any) -> datetime | date | None:
        """Onset by the catalog's ground rule; onsetAge counts from the birth date when known."""
        onset = condition_onset(condition)
        age = condition.onsetAge
        if age is not None and age.value is not None and self.patient is not None:
            birth = self.patient.birthDate
            if birth is not None and (age.code or age.unit) in ("a", "yr", "years", "year"):
                years = int(age.value)
                try:
                    from_age = birth.replace(year=birth.year + years)
                except ValueError:  # 29 February
                    from_age = birth.replace(year=birth.year + years, day=28)
                if condition.onsetDateTime is None and condition.onsetPeriod is None:
                    return from_age
        return onset

    def condition(self, reference: str) -> Any | None:
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

    def draft(self, reference: str) -> MedicationOrder | None:
        wanted = reference_key(reference)
        return next((o for o in self.draft_orders if o.reference == wanted), None)

    def open_drafts(self) -> list[MedicationOrder]:
        return [o for o in self.draft_orders if o.status not in INACTIVE_ORDER_STATUSES]


class ResourceIndex:
    """Raw resources by 'Type/id' and by Bundle fullUrl, for resolving references."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, Any]] = {}

    def add(self, resource: dict[str, Any], full_url: str | None = None) -> None:
        resource_type, resource_id = resource.get("resourceType"), resource.get("id")
        if isinstance(resource_type, str) and isinstance(resource_id, str):
            self._by_key.setdefault(f"{resource_type}/{resource_id}", resource)
        if isinstance(full_url, str) and full_url:
            self._by_key.setdefault(full_url, resource)

    def get(self, reference: str) -> dict[str, Any] | None:
        return self._by_key.get(reference) or self._by_key.get(reference_key(reference) or "")


def medication_reference(order: dict[str, Any]) -> str | None:
    reference = order.get("medicationReference")
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        return reference["reference"]
    return None


def contained_resource(order: dict[str, Any], reference: str) -> dict[str, Any] | None:
    wanted = reference.removeprefix("#")
    for resource in order.get("contained") or []:
        if isinstance(resource, dict) and resource.get("id") == wanted:
            return resource
    return None


def _subject_matches(raw: dict[str, Any], patient_id: str,
                     known: dict[str, bool] | None = None) -> bool:
    """Whether `raw` is about `patient_id` (or names no one); `known` remembers the answer
    per reference, as a chart repeats the same one thousands of times."""
    subject = raw.get("subject") or raw.get("patient")
    if raw.get("resourceType") == "Patient":
        return raw.get("id") in (None, patient_id)
    if not isinstance(subject, dict) or not isinstance(subject.get("reference"), str):
        return True
    reference = subject["reference"]
    if known is None:
        return referenced_id(reference) == patient_id
    answer = known.get(reference)
    if answer is None:
        answer = known[reference] = referenced_id(reference) == patient_id
    return answer


class RecordBuilder:
    """Parses what the request resolved into a PatientRecord, counting what it had to skip."""

    def __init__(self, patient_id: str, as_of: datetime):
        self.patient_id = patient_id
        self.as_of = as_of
        self.report = ParseReport()
        self.index = ResourceIndex()
        self._indexed = False

    def _parse(self, raw: dict[str, Any]) -> Any | None:
        try:
            model = parse_resource(raw, self.report)
        except ResourceRejected as exc:
            self.report.skip(exc.resource_type, exc.reason)
            return None
        self.report.parsed[_type_of(raw)] += 1
        return model

    def _order(
        self, original: dict[str, Any], fetched: dict[str, dict[str, Any]]
    ) -> MedicationOrder | None:
        mapped = to_r4(original)
        raw = mapped.resource
        model = self._parse(raw)
        if model is None:
            return None
        version = {"source_type": mapped.source_type, "fhir_version": mapped.fhir_version}
        if model.medicationCodeableConcept is not None:
            return MedicationOrder(
                model, raw, model.medicationCodeableConcept, "codeableConcept", **version
            )
        reference = medication_reference(raw)
        if reference is None:
            return MedicationOrder(model, raw, None, "absent", **version)
        origin, medication_raw = "unresolved", None
        if reference.startswith("#"):
            origin, medication_raw = "contained", contained_resource(raw, reference)
        elif (found := self.index.get(reference)) is not None:
            origin, medication_raw = "bundle", found
        elif (found := fetched.get(reference)) is not None:
            origin, medication_raw = "server", found
        medication = self._parse(medication_to_r4(medication_raw)) if medication_raw else None
        if medication is None or medication.get_resource_type() != "Medication":
            self.report.skip("MedicationRequest", "medicationReference could not be resolved")
            return MedicationOrder(model, raw, None, "unresolved", **version)
        return MedicationOrder(model, raw, medication.code, origin, medication, **version)

    def _index(
        self, chart: Sequence[dict[str, Any]], drafts: Sequence[tuple[dict[str, Any], str | None]]
    ) -> None:
        """Index the request's resources for reference lookups, once per builder. References
        are followed only to a Medication, so of the chart only Medications are indexed."""
        if self._indexed:
            return
        self._indexed = True
        for raw, full_url in drafts:
            self.index.add(raw, full_url)
        for raw in chart:
            if raw.get("resourceType") == "Medication":
                self.index.add(raw)

    def build(
        self,
        chart: Iterable[dict[str, Any]],
        drafts: Sequence[tuple[dict[str, Any], str | None]],
        fetched_medications: dict[str, dict[str, Any]] | None = None,
    ) -> PatientRecord:
        fetched = fetched_medications or {}
        chart = list(chart)
        self._index(chart, drafts)

        held: dict[str, list[dict[str, Any]]] = {
            "Patient": [], "Condition": [], "Observation": [], "order": []}
        seen: set[str] = set()
        subjects: dict[str, bool] = {}
        for raw in chart:
            resource_type = raw.get("resourceType")
            if not isinstance(resource_type, str) or resource_type not in READ_TYPES:
                continue
            if resource_type == "Medication":
                continue
            identity = f"{resource_type}/{raw.get('id')}" if raw.get("id") else None
            if identity and identity in seen:
                continue
            if identity:
                seen.add(identity)
            if not _subject_matches(raw, self.patient_id, subjects):
                self.report.other_patient[str(resource_type)] += 1
                continue
            held["order" if resource_type in ORDER_TYPES else resource_type].append(raw)
            self.report.not_read[resource_type] += 1

        draft_orders = []
        for raw, _ in drafts:
            if not _is_order(raw):
                continue
            order = self._order(raw, fetched)
            if order is not None:
                draft_orders.append(order)

        def lazy(kind: str, parse: Any, concepts: Any = lambda raw: ()) -> LazyResources[Any]:
            return LazyResources(held[kind], parse, concepts, on_read=self._read)

        return PatientRecord(
            patient_id=self.patient_id,
            as_of=self.as_of,
            patients=lazy("Patient", self._parse),
            conditions=lazy("Condition", self._parse, _code_concepts),
            observations=lazy("Observation", self._parse, _observation_concepts),
            medication_requests=lazy("order", lambda raw: self._order(raw, fetched),
                                     _medication_concepts),
            draft_orders=tuple(draft_orders),
            report=self.report,
        )

    def _read(self, raw: dict[str, Any]) -> None:
        self.report.not_read[_type_of(raw)] -= 1

    def unresolved_medication_references(
        self, chart: Iterable[dict[str, Any]], drafts: Sequence[tuple[dict[str, Any], str | None]]
    ) -> list[str]:
        """medicationReferences no prefetch or draft Bundle holds: to read from the server."""
        chart = list(chart)
        self._index(chart, drafts)
        orders = [raw for raw, _ in drafts] + chart
        wanted = []
        for raw in orders:
            if not _is_order(raw):
                continue
            reference = medication_reference(raw)
            if reference is None or reference.startswith("#") or self.index.get(reference):
                continue
            key = reference_key(reference)
            if key and key.startswith("Medication/") and reference not in wanted:
                wanted.append(reference)
        return wanted


def _is_order(raw: dict[str, Any]) -> bool:
    """A MedicationRequest, or DSTU2's MedicationOrder (resourceType may be anything here)."""
    resource_type = raw.get("resourceType")
    return isinstance(resource_type, str) and resource_type in ORDER_TYPES


def _medication_concepts(raw: dict[str, Any]) -> list[Any]:
    """An order's medicationCodeableConcept; an order naming its medication by reference is
    unreadable here (`[]`), so the models resolve and judge it."""
    if "medicationReference" in raw or "medicationCodeableConcept" not in raw:
        return [[]]
    return [raw["medicationCodeableConcept"]]


def _code_concepts(raw: dict[str, Any]) -> tuple[Any, ...]:
    return (raw.get("code"),)


def _observation_concepts(raw: dict[str, Any]) -> list[Any]:
    """`code` and every component's `code` (a single component object is read as a list, as
    the parser repairs it)."""
    components = raw.get("component")
    if isinstance(components, dict):
        components = [components]
    if components is None:
        components = []
    if not isinstance(components, list):
        return [raw.get("code"), []]  # not a list: unreadable, so the models judge it
    return [raw.get("code"), *(c.get("code") if isinstance(c, dict) else [] for c in components)]


def _type_of(raw: dict[str, Any]) -> str:
    return str(raw.get("resourceType"))
