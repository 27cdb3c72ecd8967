"""Realistic hook requests for the bench, built from the repository's fixtures.

One patient (cramps-001 of fixtures/requests) is padded with laboratory Observations of the
codes the prefetch templates ask for, plus Conditions (one per 10 Observations) and active
MedicationRequests (one per 20), spread back in time from the fixtures' dates.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "fixtures" / "requests"
PATIENT_ID = "cramps-001"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NEWEST = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

# prefetch key -> (LOINC, display, unit, low, high, typical low, typical high, weight)
LABS = {
    "electrolytes": [
        ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 3.3, 5.0, 5),
        (
            "2601-3",
            "Magnesium [Moles/volume] in Serum or Plasma",
            "mmol/L",
            0.70,
            1.0,
            0.65,
            0.95,
            3,
        ),
        ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.5, 10.2, 8.4, 10.0, 3),
    ],
    "ironStudies": [
        ("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL", 15, 150, 20, 300, 1),
        ("2502-3", "Iron saturation [Mass Fraction] in Serum or Plasma", "%", 20, 50, 15, 45, 1),
        ("2498-4", "Iron [Mass/volume] in Serum or Plasma", "ug/dL", 60, 170, 50, 160, 1),
        (
            "2500-7",
            "Iron binding capacity [Mass/volume] in Serum or Plasma",
            "ug/dL",
            250,
            450,
            240,
            420,
            1,
        ),
    ],
    "vitaminB6": [
        (
            "62236-5",
            "Pyridoxal phosphate [Moles/volume] in Serum or Plasma",
            "nmol/L",
            20,
            125,
            15,
            110,
            1,
        ),
    ],
}

CONDITIONS = [
    ("38341003", "Hypertensive disorder"),
    ("55822004", "Hyperlipidemia"),
    ("44054006", "Diabetes mellitus type 2"),
    ("40055000", "Chronic sinusitis"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
    ("239873007", "Osteoarthritis of knee"),
    ("267036007", "Dyspnea"),
    ("162864005", "Body mass index 30+ - obesity"),
    ("271737000", "Anemia"),
    ("35489007", "Depressive disorder"),
    ("161891005", "Backache"),
]
MEDICATIONS = [
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("617312", "atorvastatin 40 MG Oral Tablet"),
    ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("198053", "omeprazole 20 MG Delayed Release Oral Capsule"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
    ("849574", "sertraline 50 MG Oral Tablet"),
]


def load(name: str) -> dict:
    return json.loads((REQUESTS / name).read_text())


def _ref() -> dict:
    return {"reference": f"Patient/{PATIENT_ID}"}


def _when(i: int, n: int, rng: random.Random) -> str:
    # spread over ~5 years, newest first
    days = (i * 1825) // max(n, 1) + rng.randint(0, 2)
    return (NEWEST - timedelta(days=days, minutes=rng.randint(0, 600))).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def observation(key: str, i: int, n: int, rng: random.Random) -> dict:
    labs = LABS[key]
    code, display, unit, low, high, tlow, thigh, _ = rng.choices(labs, [x[7] for x in labs])[0]
    when = _when(i, n, rng)
    value = round(rng.uniform(tlow, thigh), 2)
    quantity = lambda v: {"value": v, "unit": unit, "system": UCUM, "code": unit}  # noqa: E731
    return {
        "resourceType": "Observation",
        "id": f"{PATIENT_ID}-bench-{key}-{i}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": _ref(),
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": quantity(value),
        "referenceRange": [{"low": quantity(low), "high": quantity(high)}],
    }


def condition(i: int, n: int, rng: random.Random) -> dict:
    code, display = rng.choice(CONDITIONS)
    status = rng.choice(["active", "resolved", "resolved", "inactive"])
    return {
        "resourceType": "Condition",
        "id": f"{PATIENT_ID}-bench-c{i}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": _ref(),
        "onsetDateTime": _when(i * 10, n * 10, rng),
        "recordedDate": _when(i * 10, n * 10, rng),
    }


def medication_request(i: int, n: int, rng: random.Random) -> dict:
    code, display = rng.choice(MEDICATIONS)
    return {
        "resourceType": "MedicationRequest",
        "id": f"{PATIENT_ID}-bench-m{i}",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "subject": _ref(),
        "authoredOn": _when(i * 20, n * 20, rng)[:10],
        "dosageInstruction": [
            {
                "text": "1 tablet once daily",
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": 1,
                            "unit": "tablet",
                            "system": UCUM,
                            "code": "{tablet}",
                        }
                    }
                ],
            }
        ],
    }


def bundle(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"http://fhir.example.org/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def record(n_observations: int, seed: int = 7) -> dict[str, dict]:
    """The full prefetch of cramps-001 padded to `n_observations` laboratory Observations."""
    rng = random.Random(seed)
    base = load("patient-view-full-prefetch.json")["prefetch"]
    resources = {
        k: (list(base[k]["entry"]) if isinstance(base.get(k), dict) else [])
        for k in ("conditions", "activeMedications", "ironStudies", "electrolytes", "vitaminB6")
    }
    resources = {k: [e["resource"] for e in v] for k, v in resources.items()}
    existing = sum(len(resources[k]) for k in LABS)
    weights = {"electrolytes": 0.7, "ironStudies": 0.2, "vitaminB6": 0.1}
    extra = max(0, n_observations - existing)
    counts = {k: int(extra * w) for k, w in weights.items()}
    counts["electrolytes"] += extra - sum(counts.values())
    for key, count in counts.items():
        resources[key] += [observation(key, i, count, rng) for i in range(count)]
    n_cond = max(0, n_observations // 10 - len(resources["conditions"]))
    resources["conditions"] += [condition(i, n_cond, rng) for i in range(n_cond)]
    n_med = max(0, n_observations // 20 - len(resources["activeMedications"]))
    resources["activeMedications"] += [medication_request(i, n_med, rng) for i in range(n_med)]
    prefetch = {"patient": base["patient"]}
    prefetch.update({k: bundle(v) for k, v in resources.items()})
    # The safety gates' keys (eGFR, pregnancy tests, the MAO inhibitor history): present and
    # empty, as the fixture has them, so no call is refused for a missing key.
    for key in ("kidneyFunction", "pregnancyTests", "maoInhibitorHistory"):
        prefetch[key] = base.get(key) or bundle([])
    return prefetch


def count_resources(prefetch: dict) -> int:
    return sum(
        len(v.get("entry", [])) if v.get("resourceType") == "Bundle" else 1
        for v in prefetch.values()
        if isinstance(v, dict)
    )


def hook_request(
    hook: str, prefetch: dict | None, keys: list[str], fhir_server: str | None = None
) -> dict:
    """A request for `hook` with the prefetch restricted to `keys` (the service's discovery
    prefetch); with a fhirServer, the keys left out are fetched by the service."""
    if hook == "order-select":
        request = load("order-select-quinine-full-prefetch.json")
    elif hook == "order-sign":
        request = load("order-sign-quinine-partial-prefetch.json")
    else:
        request = load("patient-view-full-prefetch.json")
    request = copy.deepcopy(request)
    if fhir_server:
        request["fhirServer"] = fhir_server
        auth = load("order-sign-quinine-partial-prefetch.json")["fhirAuthorization"]
        request["fhirAuthorization"] = auth
    else:
        request.pop("fhirServer", None)
        request.pop("fhirAuthorization", None)
    request["prefetch"] = {k: prefetch[k] for k in keys if prefetch is not None and k in prefetch}
    return request
