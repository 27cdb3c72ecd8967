"""The FHIR data the rules read, as CDS Hooks 2.0 prefetch templates (tokens valid in 2.0 only).

Each service's discovery prefetch is the union of what its rules declare here, so a service
asks for exactly what its rules read.
"""

from cds_service.kit import LOINC, PATIENT_VIEW, DataRequirement

PATIENT = DataRequirement(
    key="patient",
    template="Patient/{{context.patientId}}",
    description="the patient: identity and whether deceased",
)

ACTIVE_MEDICATIONS = DataRequirement(
    key="activeMedications",
    template="MedicationRequest?patient={{context.patientId}}&status=active",
    description="active medication orders, the subject of rules on patient-view",
)


def _ended_orders_of(key: str, value_set_id: str, description: str) -> DataRequirement:
    """Completed, stopped and on-hold orders of one drug class, by RxNorm code: a drug
    stopped recently may still act, a paused one may restart. Bounded by code, because a
    patient's whole medication history can run to thousands of orders; the ingredient and
    clinical or branded drug codes are the ones an order carries."""
    from hooks.valuesets import documents

    kinds = ("ingredient", "SCD", "SBD", "GPCK", "BPCK")
    codes = ",".join(f"{c['system']}|{c['code']}" for c in documents()[value_set_id]["codes"]
                     if c.get("kind") in kinds)
    return DataRequirement(
        key=key,
        template=(f"MedicationRequest?patient={{{{context.patientId}}}}"
                  f"&status=completed,stopped,on-hold&code={codes}"),
        description=description,
    )


CONDITIONS = DataRequirement(
    key="conditions",
    template="Condition?patient={{context.patientId}}",
    description="the problem list and diagnoses; status is filtered by the service, because a "
    "condition recorded without clinicalStatus still counts",
)


def _observations(key: str, value_set_ids: tuple[str, ...], description: str) -> DataRequirement:
    """Observations of these value sets by LOINC code, newest first (labs with units and
    qualitative tests alike). CDS Hooks 2.0 has no date token, so the template carries no date;
    the rules apply their look-back windows."""
    from hooks.valuesets import documents

    codes = ",".join(f"{LOINC}|{c['code']}" for i in value_set_ids
                     for c in documents()[i]["codes"] if c["system"] == LOINC)
    return DataRequirement(
        key=key,
        template=f"Observation?patient={{{{context.patientId}}}}&code={codes}&_sort=-date",
        description=description,
    )


MAO_INHIBITOR_HISTORY = _ended_orders_of(
    "maoInhibitorHistory",
    "mao-inhibitors",
    "completed, stopped and on-hold MAO inhibitor orders (C5: cyclobenzaprine within 14 days of "
    "an MAO inhibitor)",
)

IRON_STUDIES = _observations(
    "ironStudies",
    ("ferritin", "transferrin-saturation", "serum-iron", "tibc"),
    "ferritin, transferrin saturation, serum iron and TIBC results (RLS iron rules)",
)

ELECTROLYTES = _observations(
    "electrolytes",
    ("potassium", "magnesium", "calcium-total", "calcium-ionized", "albumin"),
    "potassium, magnesium, total and ionised calcium, and albumin results (cramp electrolyte "
    "rules: calcium is judged ionised, else corrected for albumin)",
)

VITAMIN_B6 = _observations(
    "vitaminB6",
    ("vitamin-b6",),
    "vitamin B6 (pyridoxal 5'-phosphate) results (diabetes persistent spasm rule)",
)


KIDNEY_FUNCTION = _observations(
    "kidneyFunction",
    ("egfr",),
    "eGFR results (safety gates: kidney dosing of gabapentinoids, baclofen)",
)


PREGNANCY_TESTS = _observations(
    "pregnancyTests",
    ("pregnancy-test",),
    "pregnancy (hCG) test results (safety gate: no gabapentinoid switch in pregnancy)",
)


def with_reads(reads: tuple[DataRequirement, ...],
               *extra: DataRequirement) -> tuple[DataRequirement, ...]:
    """`reads` and then each of `extra` not already among them, in order."""
    return reads + tuple(r for r in dict.fromkeys(extra) if r not in reads)


def with_safety_gates(reads: tuple[DataRequirement, ...]) -> tuple[DataRequirement, ...]:
    """What a rule with gabapentinoid safety gates adds to its reads: active medications on
    every hook (opioids and other sedatives beside the suggestion), eGFR and pregnancy tests."""
    return with_reads(reads, ACTIVE_MEDICATIONS, CONDITIONS, KIDNEY_FUNCTION, PREGNANCY_TESTS)


def with_kidney_gate(reads: tuple[DataRequirement, ...]) -> tuple[DataRequirement, ...]:
    """What a rule with a kidney-function gate adds to its reads: conditions and eGFR."""
    return with_reads(reads, CONDITIONS, KIDNEY_FUNCTION)


def order_rule_reads(hook: str) -> tuple[DataRequirement, ...]:
    """What an order-safety rule reads: conditions always, and on patient-view (where the
    chart's active medications are the subject) those medications too."""
    if hook == PATIENT_VIEW:
        return (ACTIVE_MEDICATIONS, CONDITIONS)
    return (CONDITIONS,)
