"""The FHIR data the rules read, as CDS Hooks 2.0 prefetch templates (tokens valid in 2.0 only).

Each service's discovery prefetch is the union of what its rules declare here, so a service
asks for exactly what its rules read.
"""

from cds_service.prefetch import DataRequirement

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
