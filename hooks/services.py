"""The four CDS services: which rules each runs. Discovery, prefetch and dispatch are generated
from these declarations; each rule declares its own value sets, settings and data needs."""

from __future__ import annotations

from collections.abc import Iterable

from cds_service.kit import (
    MEDICATION_REFILL,
    ORDER_SELECT,
    ORDER_SIGN,
    PATIENT_VIEW,
    Rule,
    ServiceDeclaration,
)
from hooks import data
from hooks.rules.benzodiazepine_stroke_recovery import BenzodiazepineStrokeRecovery
from hooks.rules.cirrhosis_cramps_baclofen import CirrhosisCrampsBaclofen
from hooks.rules.cramps_contributing_medications import CrampsContributingMedications
from hooks.rules.cramps_electrolytes_abnormal import CrampsElectrolytesAbnormal
from hooks.rules.cyclobenzaprine_cns_spasticity import CyclobenzaprineCnsSpasticity
from hooks.rules.cyclobenzaprine_contraindication import CyclobenzaprineContraindication
from hooks.rules.cyclobenzaprine_dose import CyclobenzaprineDose
from hooks.rules.cyclobenzaprine_duration import CyclobenzaprineDuration
from hooks.rules.cyclobenzaprine_older_adult import CyclobenzaprineOlderAdult
from hooks.rules.diabetes_spasm_b6 import DiabetesSpasmB6
from hooks.rules.diuretic_electrolytes_due import DiureticElectrolytesDue
from hooks.rules.esrd_cramps_gabapentin import EsrdCrampsGabapentin
from hooks.rules.pad_claudication_exercise import PadClaudicationExercise
from hooks.rules.quinine_leg_cramps import QuinineLegCramps
from hooks.rules.rls_dopamine_antagonist import RlsDopamineAntagonist
from hooks.rules.rls_dopaminergic_augmentation import RlsDopaminergicAugmentation
from hooks.rules.rls_iron_low import RlsIronLow
from hooks.rules.rls_iron_studies_due import RlsIronStudiesDue
from hooks.rules.rls_worsening_drugs import RlsWorseningDrugs


def catalog() -> tuple[Rule, ...]:
    """Every rule, in the order of the catalog (docs/rules.md)."""
    return (
        QuinineLegCramps(),
        CyclobenzaprineDuration(),
        CyclobenzaprineCnsSpasticity(),
        CyclobenzaprineDose(),
        CyclobenzaprineOlderAdult(),
        CyclobenzaprineContraindication(),
        BenzodiazepineStrokeRecovery(),
        RlsDopaminergicAugmentation(),
        RlsDopamineAntagonist(),
        RlsWorseningDrugs(),
        RlsIronStudiesDue(),
        RlsIronLow(),
        CrampsElectrolytesAbnormal(),
        DiureticElectrolytesDue(),
        CrampsContributingMedications(),
        EsrdCrampsGabapentin(),
        CirrhosisCrampsBaclofen(),
        PadClaudicationExercise(),
        DiabetesSpasmB6(),
    )


USAGE_ORDER = (
    "Send draft MedicationRequests (FHIR R4) in context.draftOrders. Prefetch, or fhirServer "
    "access that can read the patient's Conditions, MedicationRequests and Observations."
)

USAGE_REFILL = (
    "Send the refill requests (draft MedicationRequests, FHIR R4, each with its id) in "
    "context.medications; userId and encounterId may be left out. Prefetch, or fhirServer "
    "access that can read what the prefetch templates name."
)

# A refill is judged as a new order of the same drug is: the order-safety rules only. The
# chart-level guidance (iron, electrolytes, conditions) belongs to the chart and to new orders,
# not to a refill queue worked through without the patient. Selected by catalog code, so a
# rule listed here runs on refills once its line is in catalog(), and a code not yet there is
# skipped.
REFILL_RULE_CODES = ("Q1", "C1", "C2", "C3", "C4", "C5", "B1", "D1", "A1", "A2")


def refill_rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """The rules of REFILL_RULE_CODES among `rules`, in catalog order."""
    return tuple(rule for rule in rules if rule.catalog_code in REFILL_RULE_CODES)


def build_services() -> list[ServiceDeclaration]:
    rules = catalog()
    return [
        ServiceDeclaration(
            id="legcramp-order-select",
            hook=ORDER_SELECT,
            title="Leg cramp and restless legs medication check (order select)",
            description=(
                "Checks the medication orders a prescriber has just selected against leg cramp, "
                "leg spasm and restless legs guidance: quinine for cramps; cyclobenzaprine "
                "course, dose, CNS spasticity, older adults and contraindications; "
                "benzodiazepines after stroke; drugs that worsen restless legs; and iron and "
                "electrolytes when an RLS or cramp drug is ordered."
            ),
            usage_requirements=USAGE_ORDER,
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
        ServiceDeclaration(
            id="legcramp-order-sign",
            hook=ORDER_SIGN,
            title="Leg cramp and restless legs medication check (order sign)",
            description=(
                "Checks every draft medication order at signing against leg cramp, leg spasm and "
                "restless legs guidance (the same checks as at order select)."
            ),
            usage_requirements=USAGE_ORDER,
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
        ServiceDeclaration(
            id="legcramp-patient-view",
            hook=PATIENT_VIEW,
            title="Leg cramp and restless legs medication review (chart open)",
            description=(
                "Reviews the patient's active medications, conditions and recent labs when the "
                "chart opens against leg cramp, leg spasm and restless legs guidance."
            ),
            usage_requirements=(
                "Prefetch, or fhirServer access that can read the patient's active "
                "MedicationRequests, Conditions and Observations (FHIR R4)."
            ),
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
        ServiceDeclaration(
            id="legcramp-medication-refill",
            hook=MEDICATION_REFILL,
            title="Leg cramp and restless legs medication check (refill request)",
            description=(
                "Checks each medication refill request in the refill queue against the "
                "order-safety checks of the leg cramp, leg spasm and restless legs guidance "
                "(quinine for cramps; cyclobenzaprine course, dose, CNS spasticity, older "
                "adults and label contraindications; benzodiazepines after stroke; dopaminergic "
                "drugs, dopamine blockers, sedating antihistamines and serotonergic "
                "antidepressants in restless legs), as if the drug were ordered anew."
            ),
            usage_requirements=USAGE_REFILL,
            rules=refill_rules(rules),
            base_requirements=(data.PATIENT,),
        ),
    ]


def service_for_hook() -> dict[str, str]:
    """Which service answers each hook: the one map, derived from the declarations above."""
    return {service.hook: service.id for service in build_services()}
