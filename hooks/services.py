"""The three CDS services: declared here, beside the rules they run; discovery is generated."""

from __future__ import annotations

from cds_service.services import ServiceDeclaration
from hooks import data
from hooks.rules.quinine_leg_cramps import QuinineLegCramps
from hooks.valuesets import library


def order_rules() -> tuple:
    value_sets = library()
    return (QuinineLegCramps(quinine=value_sets["quinine"], malaria=value_sets["malaria"]),)


def build_services() -> list[ServiceDeclaration]:
    rules = order_rules()
    return [
        ServiceDeclaration(
            id="legcramp-order-select",
            hook="order-select",
            title="Leg cramp and restless legs medication check (order select)",
            description=(
                "Checks the medication orders a prescriber has just selected against leg cramp, "
                "leg spasm and restless legs guidance, e.g. quinine ordered for leg cramps."
            ),
            usage_requirements=(
                "Send draft MedicationRequests (FHIR R4) in context.draftOrders. Prefetch, or "
                "fhirServer access that can read the patient's Conditions."
            ),
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
        ServiceDeclaration(
            id="legcramp-order-sign",
            hook="order-sign",
            title="Leg cramp and restless legs medication check (order sign)",
            description=(
                "Checks every draft medication order at signing against leg cramp, leg spasm and "
                "restless legs guidance, e.g. quinine ordered for leg cramps."
            ),
            usage_requirements=(
                "Send draft MedicationRequests (FHIR R4) in context.draftOrders. Prefetch, or "
                "fhirServer access that can read the patient's Conditions."
            ),
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
        ServiceDeclaration(
            id="legcramp-patient-view",
            hook="patient-view",
            title="Leg cramp and restless legs medication review (chart open)",
            description=(
                "Reviews the patient's active medications when the chart opens against leg "
                "cramp, leg spasm and restless legs guidance, e.g. active quinine."
            ),
            usage_requirements=(
                "Prefetch, or fhirServer access that can read the patient's active "
                "MedicationRequests and Conditions (FHIR R4)."
            ),
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
    ]
