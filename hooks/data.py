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

CONDITIONS = DataRequirement(
    key="conditions",
    template="Condition?patient={{context.patientId}}",
    description="the problem list and diagnoses; status is filtered by the service, because a "
    "condition recorded without clinicalStatus still counts",
)


def _observations(key: str, lab_ids: tuple[str, ...], description: str) -> DataRequirement:
    """Observations of these labs by LOINC code, newest first. CDS Hooks 2.0 has no date
    token, so the template carries no date; the rules apply their look-back windows."""
    from hooks.valuesets import lab

    codes = ",".join(f"{LOINC}|{code}" for i in lab_ids for code in lab(i).loinc_codes)
    return DataRequirement(
        key=key,
        template=f"Observation?patient={{{{context.patientId}}}}&code={codes}&_sort=-date",
        description=description,
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


def order_rule_reads(hook: str) -> tuple[DataRequirement, ...]:
    """What an order-safety rule reads: conditions always, and on patient-view (where the
    chart's active medications are the subject) those medications too."""
    if hook == PATIENT_VIEW:
        return (ACTIVE_MEDICATIONS, CONDITIONS)
    return (CONDITIONS,)
