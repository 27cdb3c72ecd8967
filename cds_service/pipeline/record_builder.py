"""Builds the `PatientRecord` from what the request resolved: prefetch, draft orders and the
Medications read from the FHIR server.

Resources for another patient are dropped (and counted): mixing two charts is worse than missing
one resource. DSTU2 and STU3 orders are mapped onto R4 first (`versions`); a resource the models
reject is skipped and counted, never fatal. Only the draft orders are validated here; the rest
is kept raw and validated when a rule reads it (`kit.lazy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cds_service.errors import ResourceRejected
from cds_service.kit.lazy import LazyResources
from cds_service.kit.parsing import ParseReport, parse_resource
from cds_service.kit.record import (
    MedicationOrder,
    PatientRecord,
    reference_key,
    referenced_id,
)
from cds_service.pipeline.versions import ORDER_TYPES, medication_to_r4, to_r4

# Resource types the rules read; anything else in a prefetch Bundle is ignored unparsed.
# MedicationOrder is DSTU2's MedicationRequest (mapped to R4 before parsing: see versions).
READ_TYPES = frozenset(
    {"Patient", "Condition", "MedicationRequest", "MedicationOrder", "Medication", "Observation"}
)


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

    def __init__(self, patient_id: str, as_of: datetime,
                 product_names: Mapping[tuple[str, str], str] | None = None):
        self.patient_id = patient_id
        self.as_of = as_of
        self.product_names = product_names or {}
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

        def order(medication: Any, origin: str, resource: Any = None) -> MedicationOrder:
            return MedicationOrder(model, raw, medication, origin, resource,
                                   source_type=mapped.source_type,
                                   fhir_version=mapped.fhir_version,
                                   known_name=self._known_name(medication))

        if model.medicationCodeableConcept is not None:
            return order(model.medicationCodeableConcept, "codeableConcept")
        reference = medication_reference(raw)
        if reference is None:
            return order(None, "absent")
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
            return order(None, "unresolved")
        return order(medication.code, origin, medication)

    def _known_name(self, medication: Any) -> str | None:
        """The value sets' name for the first coding of `medication` they name."""
        for coding in (medication.coding or []) if medication is not None else []:
            if coding.system and coding.code:
                name = self.product_names.get((coding.system, coding.code.strip()))
                if name:
                    return name
        return None

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


def unresolved_reason_conditions(chart: Sequence[dict[str, Any]],
                                 drafts: Sequence[tuple[dict[str, Any], str | None]]) -> list[str]:
    """Conditions the draft orders give as their reason (`reasonReference`) that neither the
    chart nor the drafts hold: to read from the server. A rule that judges an order by its
    reason (quinine for malaria) must see the reason, not guess it."""
    held = {f"Condition/{raw.get('id')}" for raw in chart
            if raw.get("resourceType") == "Condition" and isinstance(raw.get("id"), str)}
    held |= {full_url for raw, full_url in drafts if full_url}
    wanted: list[str] = []
    for raw, _ in drafts:
        if not _is_order(raw):
            continue
        for reason in raw.get("reasonReference") or []:
            reference = reason.get("reference") if isinstance(reason, dict) else None
            if not isinstance(reference, str) or reference.startswith("#"):
                continue
            key = reference_key(reference)
            if key and key.startswith("Condition/") and key not in held \
                    and reference not in held and reference not in wanted:
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
