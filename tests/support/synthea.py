"""Synthea R4 transaction bundles as a tiny FHIR server: a resource store, the service's own
prefetch templates answered from it, a paging loopback server, and the "as of" date.

Only what the services ask for is implemented: Patient and Medication reads; Medication?_id=;
Condition?patient=; MedicationRequest?patient=&status=&code=;
Observation?patient=&code=system|code,...&_sort=-date; plus `_count` and this server's own
paging parameter `_offset`. Anything else is answered 400, so a
new search parameter in a template shows up as a failing test, not as silently wrong data.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.kit.hook_names import ORDER_BUNDLES

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SYNTHEA_R4 = DATA / "synthea-r4"
SYNTHEA_R4_V3 = DATA / "synthea-r4-v3"
FHIR_JSON = "application/fhir+json"
PATIENT_TOKEN = "{{context.patientId}}"
DEFAULT_COUNT = 20
NOT_PATIENTS = {"hospitalInformation.json", "practitionerInformation.json"}


def bundle_paths() -> list[Path]:
    """Every patient bundle: the 60 Synthea 2.4 ones, then the 3 Synthea 3.x ones."""
    return [
        *sorted(SYNTHEA_R4.glob("*.json")),
        *sorted(p for p in SYNTHEA_R4_V3.glob("*.json") if p.name not in NOT_PATIENTS),
    ]


def bundle_id(path: Path) -> str:
    """A short test id: 'v3/Alvin56_Jerde200' or 'Addie_Tremblay'."""
    name = "_".join(path.stem.split("_")[:2])
    return f"v3/{name}" if path.parent.name.endswith("v3") else name


class AsOfClock:
    """A FixedClock whose instant a test moves to each bundle's evaluation date (one app serves
    every bundle; each request is evaluated as of its own bundle's last date)."""

    def __init__(self, instant: datetime):
        self.instant = instant

    def now(self) -> datetime:
        return self.instant


# --- (a) the store --------------------------------------------------------------------------


@dataclass
class Store:
    """One patient's bundle, urn:uuid references rewritten to 'Type/id', resources by type."""

    name: str
    patient_id: str
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    unresolved_references: int = 0

    def get(self, key: str) -> dict[str, Any] | None:
        return self.by_key.get(key)

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return self.by_type.get(resource_type, [])

    @property
    def patient(self) -> dict[str, Any]:
        return self.by_key[f"Patient/{self.patient_id}"]

    def total(self) -> int:
        return sum(len(v) for v in self.by_type.values())


def _rewrite_references(node: Any, targets: dict[str, str], counter: list[int]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value.startswith("urn:uuid:"):
                if value in targets:
                    node[key] = targets[value]
                else:
                    counter[0] += 1
            else:
                _rewrite_references(value, targets, counter)
    elif isinstance(node, list):
        for item in node:
            _rewrite_references(item, targets, counter)


def store_from_bundle(bundle: dict[str, Any], name: str = "") -> Store:
    """Resolve every `urn:uuid:` reference to 'Type/id' (the id from the entry's resource, else
    the uuid) and keep the resources by type and by key. Conditional references (Synthea 3.x
    practitioners: 'Practitioner?identifier=...') are left as they are."""
    resources: list[dict[str, Any]] = []
    targets: dict[str, str] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        full_url = entry.get("fullUrl") or ""
        if not resource.get("id") and full_url.startswith("urn:uuid:"):
            resource["id"] = full_url.removeprefix("urn:uuid:")
        if full_url.startswith("urn:uuid:"):
            targets[full_url] = f"{resource['resourceType']}/{resource['id']}"
        resources.append(resource)
    counter = [0]
    _rewrite_references(resources, targets, counter)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_key: dict[str, dict[str, Any]] = {}
    for resource in resources:
        by_type[resource["resourceType"]].append(resource)
        by_key.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
    patients = by_type.get("Patient") or []
    assert len(patients) == 1, f"{name}: {len(patients)} Patient resources"
    return Store(name, patients[0]["id"], dict(by_type), by_key, counter[0])


@cache
def load_store(path: Path) -> Store:
    """The store of one bundle file (cached: treat it as read-only; copy before changing)."""
    return store_from_bundle(json.loads(path.read_text(encoding="utf-8")), bundle_id(path))


def copy_store(store: Store) -> Store:
    """A deep copy to add scenario resources to."""
    fresh = copy.deepcopy(store)
    fresh.by_key = {
        f"{r['resourceType']}/{r['id']}": r for rs in fresh.by_type.values() for r in rs
    }
    return fresh


def add_resource(store: Store, resource: dict[str, Any]) -> dict[str, Any]:
    store.by_type.setdefault(resource["resourceType"], []).append(resource)
    store.by_key[f"{resource['resourceType']}/{resource['id']}"] = resource
    return resource


# --- (b) the tiny FHIR search ---------------------------------------------------------------


class SearchError(ValueError):
    """A search this tiny server does not implement (answered 400)."""


def _refers_to_patient(resource: dict[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject") or resource.get("patient") or {}
    return isinstance(subject, dict) and subject.get("reference") in (
        f"Patient/{patient_id}",
        patient_id,
    )


def _token_matches(concept: Any, tokens: list[str]) -> bool:
    codings = (concept or {}).get("coding") or [] if isinstance(concept, dict) else []
    for token in tokens:
        system, bar, code = token.rpartition("|")
        for coding in codings:
            if coding.get("code") == code and (not bar or coding.get("system") == system):
                return True
    return False


def _effective(resource: dict[str, Any]) -> str:
    return (
        resource.get("effectiveDateTime")
        or (resource.get("effectivePeriod") or {}).get("start")
        or resource.get("effectiveInstant")
        or resource.get("issued")
        or ""
    )


SEARCH_PARAMETERS = {
    "Condition": {"patient"},
    "MedicationRequest": {"patient", "status", "code"},
    "Observation": {"patient", "code", "_sort"},
}
PAGING_PARAMETERS = {"_count", "_offset"}


def search(store: Store, resource_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every match of a search over `store`, in the order the search asks for."""
    allowed = SEARCH_PARAMETERS.get(resource_type)
    if allowed is None:
        raise SearchError(f"no search on {resource_type}")
    names = [name for name, _ in params if name not in PAGING_PARAMETERS]
    unknown = set(names) - allowed
    if unknown:
        raise SearchError(f"unsupported search parameter(s) {sorted(unknown)}")
    if names.count("patient") != 1:
        raise SearchError("exactly one patient parameter is required")
    values = dict(p for p in params if p[0] not in PAGING_PARAMETERS)
    patient = values["patient"].removeprefix("Patient/")
    found = [r for r in store.of_type(resource_type) if _refers_to_patient(r, patient)]
    if "status" in values:
        wanted = set(values["status"].split(","))
        found = [r for r in found if r.get("status") in wanted]
    if "code" in values:
        tokens = values["code"].split(",")
        field = "medicationCodeableConcept" if resource_type == "MedicationRequest" else "code"
        found = [r for r in found if _token_matches(r.get(field), tokens)]
    sort = values.get("_sort")
    if sort is not None:
        if sort not in ("-date", "date"):
            raise SearchError(f"unsupported _sort {sort}")
        found = sorted(found, key=_effective, reverse=sort == "-date")
    return found


def included_medications(store: Store, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Medications `requests` reference (what `_include=MedicationRequest:medication` adds)."""
    out: dict[str, dict[str, Any]] = {}
    for request in requests:
        reference = (request.get("medicationReference") or {}).get("reference")
        if reference and (medication := store.get(reference)) is not None:
            out[reference] = medication
    return list(out.values())


def searchset(
    matches: list[dict[str, Any]],
    includes: list[dict[str, Any]] = (),
    total: int | None = None,
    links: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches) if total is None else total,
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in matches
        ]
        + [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "include"},
            }
            for r in includes
        ],
    }
    if links:
        bundle["link"] = list(links)
    return bundle


def answer(store: Store, relative: str) -> dict[str, Any] | None:
    """The whole answer to one relative FHIR URL over `store`: a resource for a read (None when
    absent), else a searchset Bundle with every match (and, for MedicationRequest searches, the
    Medications they reference, as a server with `_include` would)."""
    path, _, query = relative.partition("?")
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2:
        return copy.deepcopy(store.get(f"{parts[0]}/{parts[1]}"))
    if len(parts) != 1:
        raise SearchError(f"unsupported path {path}")
    matches = search(store, parts[0], parse_qsl(query, keep_blank_values=True))
    includes = included_medications(store, matches) if parts[0] == "MedicationRequest" else []
    return copy.deepcopy(searchset(matches, includes))


def prefetch_for(store: Store, templates: dict[str, str]) -> dict[str, Any]:
    """Each prefetch template filled for the store's patient and answered from the store."""
    out = {}
    for key, template in templates.items():
        relative = template.replace(PATIENT_TOKEN, store.patient_id)
        assert "{{" not in relative, template
        out[key] = answer(store, relative)
    return out


# --- (c) the loopback FHIR server, with paging ----------------------------------------------


def _outcome(status: int, text: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-supported" if status == 400 else "not-found",
                "diagnostics": text,
            }
        ],
    }
    return Response(json.dumps(body), status=status, content_type=FHIR_JSON)


# Characters left unencoded in the query of `next` links. With "" the links are encoded as
# Python's urlencode does by default (and as several FHIR servers echo search parameters):
# `code=http%3A%2F%2Floinc.org%7C2823-3`.
LINK_SAFE = ":/|,"


class FhirHandler:
    """Answers reads and searches over the stores it holds (keyed by patient id), in pages of
    `_count` (default 20) with `next` links back to itself. Counts what it served."""

    def __init__(
        self,
        base_url: str,
        base_path: str = "/fhir",
        page_size: int = DEFAULT_COUNT,
        link_safe: str = LINK_SAFE,
    ):
        self.link_safe = link_safe
        self.base_url = base_url.rstrip("/")
        self.base_path = base_path
        self.root_url = self.base_url.removesuffix(base_path)
        self.page_size = page_size
        self.stores: dict[str, Store] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []  # (path, query, status)
        self.pages_served = 0

    def serve(self, store: Store) -> None:
        """Serve `store` (replacing any store with the same patient id)."""
        with self.lock:
            self.stores[store.patient_id] = store

    def _merged(self, resource_key: str) -> dict[str, Any] | None:
        with self.lock:
            stores = list(self.stores.values())
        for store in stores:
            if (found := store.get(resource_key)) is not None:
                return found
        return None

    def __call__(self, request: Request) -> Response:
        query = request.query_string.decode()
        response = self._answer(request.path, query)
        with self.lock:
            self.requests.append((request.path, query, response.status_code))
        return response

    def _answer(self, path: str, query: str) -> Response:
        if not path.startswith(self.base_path + "/"):
            return _outcome(404, "unknown path")
        parts = [p for p in path[len(self.base_path) :].split("/") if p]
        if len(parts) == 2:
            found = self._merged(f"{parts[0]}/{parts[1]}")
            if found is None:
                return _outcome(404, "no such resource")
            return Response(json.dumps(found), content_type=FHIR_JSON)
        if len(parts) != 1:
            return _outcome(400, "unsupported path")
        params = parse_qsl(query, keep_blank_values=True)
        values = dict(params)
        if parts[0] == "Medication" and set(values) <= {"_id", "_count"} and "_id" in values:
            # Medication?_id=a,b: the batched read the service makes for medicationReferences.
            found = [m for i in values["_id"].split(",")
                     if (m := self._merged(f"Medication/{i}")) is not None]
            return Response(json.dumps(searchset(found)), content_type=FHIR_JSON)
        patient = values.get("patient", "").removeprefix("Patient/")
        with self.lock:
            store = self.stores.get(patient)
        try:
            count = int(values.get("_count", self.page_size))
            offset = int(values.get("_offset", 0))
            if count < 1 or offset < 0:
                raise SearchError("bad _count or _offset")
            matches = search(store, parts[0], params) if store is not None else []
            if store is None and "patient" not in values:
                raise SearchError("patient parameter required")
        except (SearchError, ValueError) as exc:
            return _outcome(400, str(exc))
        page = matches[offset : offset + count]
        links = [{"relation": "self", "url": f"{self.root_url}{path}?{query}"}]
        if offset + count < len(matches):
            rest = [(k, v) for k, v in params if k not in PAGING_PARAMETERS]
            rest += [("_count", str(count)), ("_offset", str(offset + count))]
            links.append(
                {
                    "relation": "next",
                    "url": f"{self.root_url}{path}?{urlencode(rest, safe=self.link_safe)}",
                }
            )
        with self.lock:
            self.pages_served += 1
        return Response(
            json.dumps(searchset(page, total=len(matches), links=links)), content_type=FHIR_JSON
        )


@dataclass
class LoopbackFhir:
    server: HTTPServer
    handler: FhirHandler

    @property
    def base(self) -> str:
        return self.handler.base_url


def start_loopback_fhir(page_size: int = DEFAULT_COUNT, link_safe: str = LINK_SAFE) -> LoopbackFhir:
    """A started loopback FHIR server at http://127.0.0.1:<port>/fhir (stop it with
    `stop_loopback_fhir`)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    base = f"http://127.0.0.1:{server.port}/fhir"
    handler = FhirHandler(base, page_size=page_size, link_safe=link_safe)
    server.expect_request(re.compile(r"^/fhir(/.*)?$")).respond_with_handler(handler)
    return LoopbackFhir(server, handler)


def stop_loopback_fhir(fhir: LoopbackFhir) -> None:
    fhir.server.clear()
    if fhir.server.is_running():
        fhir.server.stop()


# --- (d) the evaluation date ----------------------------------------------------------------

# Where Synthea records when something happened (not planned periods: CarePlans, Claims' billing).
DATE_FIELDS = {
    "Encounter": (("period", "end"), ("period", "start")),
    "Observation": (("effectiveDateTime",), ("issued",)),
    "MedicationRequest": (("authoredOn",),),
    "Condition": (("onsetDateTime",), ("recordedDate",), ("abatementDateTime",)),
    "Procedure": (("performedPeriod", "end"), ("performedDateTime",)),
    "Immunization": (("occurrenceDateTime",),),
    "DiagnosticReport": (("effectiveDateTime",), ("issued",)),
}


def parse_fhir_datetime(text: str) -> datetime:
    """A FHIR date or dateTime as an aware UTC datetime (a date counts as its midnight UTC)."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def _dates(store: Store) -> Iterator[datetime]:
    for resource_type, paths in DATE_FIELDS.items():
        for resource in store.of_type(resource_type):
            for path in paths:
                value: Any = resource
                for step in path:
                    value = value.get(step) if isinstance(value, dict) else None
                if isinstance(value, str) and len(value) >= 10:
                    yield parse_fhir_datetime(value)


def evaluation_date(store: Store) -> datetime:
    """The bundle's last date: the latest of the dates above. Rules are evaluated as of it."""
    return max(_dates(store))


# --- requests ------------------------------------------------------------------------------


# For the few bundles without any MedicationRequest: an order nothing in the catalog is about.
FALLBACK_ORDER = {
    "resourceType": "MedicationRequest",
    "id": "no-order-in-bundle",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "313782",
                "display": "Acetaminophen 325 MG Oral Tablet",
            }
        ],
        "text": "Acetaminophen 325 MG Oral Tablet",
    },
}


def most_recent_order(store: Store) -> dict[str, Any]:
    """The patient's most recently authored MedicationRequest (FALLBACK_ORDER, for this
    patient, when the bundle has none)."""
    orders = [
        r for r in store.of_type("MedicationRequest") if _refers_to_patient(r, store.patient_id)
    ]
    if not orders:
        return {
            **copy.deepcopy(FALLBACK_ORDER),
            "subject": {"reference": f"Patient/{store.patient_id}"},
        }
    return max(
        orders, key=lambda r: (parse_fhir_datetime(r.get("authoredOn") or "1900-01-01"), r["id"])
    )


def draft_copy(order: dict[str, Any], authored: datetime) -> dict[str, Any]:
    """`order` as a new draft (status draft, a new id, authored at the evaluation date)."""
    draft = copy.deepcopy(order)
    draft["id"] = f"draft-{order['id']}"
    draft["status"] = "draft"
    draft["authoredOn"] = authored.isoformat().replace("+00:00", "Z")
    for member in ("meta", "text", "requester", "encounter"):
        draft.pop(member, None)
    return draft


def hook_request(
    hook: str,
    store: Store,
    hook_instance: str,
    *,
    prefetch: dict[str, Any] | None = None,
    fhir_server: str | None = None,
    draft: dict[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/synthea-test", "patientId": store.patient_id}
    if hook != "patient-view":
        assert draft is not None
        context[ORDER_BUNDLES[hook]] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": copy.deepcopy(draft)}],
        }
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{draft['id']}"]
    request: dict[str, Any] = {"hook": hook, "hookInstance": hook_instance, "context": context}
    if fhir_server:
        request["fhirServer"] = fhir_server
    if prefetch is not None:
        request["prefetch"] = prefetch
    return request


def card_key(card: dict[str, Any]) -> tuple[Any, ...]:
    """A card without its uuids: rule, indicator, summary and the resources its actions change."""
    targets = sorted(
        str(action.get("resourceId") or (action.get("resource") or {}).get("id"))
        for suggestion in card.get("suggestions") or []
        for action in suggestion.get("actions") or []
    )
    return (
        (card.get("source", {}).get("topic") or {}).get("code"),
        card["indicator"],
        card["summary"],
        tuple(targets),
    )


def rule_ids(body: dict[str, Any]) -> list[str]:
    return sorted(str((c.get("source", {}).get("topic") or {}).get("code")) for c in body["cards"])
