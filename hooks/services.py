"""The three CDS services: declared here, beside the rules they run; discovery is generated."""

from __future__ import annotations

from cds_service.pipeline.services import Rule, ServiceDeclaration
from hooks import data
from hooks.rules.benzodiazepine_stroke_recovery import BenzodiazepineStrokeRecovery
from hooks.rules.cirrhosis_cramps_baclofen import CirrhosisCrampsBaclofen
from hooks.rules.cramps_contributing_medications import CrampsContributingMedications
from hooks.rules.cramps_electrolytes_abnormal import CrampsElectrolytesAbnormal
from hooks.rules.cyclobenzaprine_cns_spasticity import CyclobenzaprineCnsSpasticity
from hooks.rules.cyclobenzaprine_dose import CyclobenzaprineDose
from hooks.rules.cyclobenzaprine_duration import CyclobenzaprineDuration
from hooks.rules.diabetes_spasm_b6 import DiabetesSpasmB6
from hooks.rules.diuretic_electrolytes_due import DiureticElectrolytesDue
from hooks.rules.electrolytes import Electrolytes
from hooks.rules.esrd_cramps_gabapentin import EsrdCrampsGabapentin
from hooks.rules.iron import IronLabs
from hooks.rules.pad_claudication_exercise import PadClaudicationExercise
from hooks.rules.quinine_leg_cramps import QuinineLegCramps
from hooks.rules.rls_dopamine_antagonist import RlsDopamineAntagonist
from hooks.rules.rls_dopaminergic_augmentation import RlsDopaminergicAugmentation
from hooks.rules.rls_iron_low import RlsIronLow
from hooks.rules.rls_iron_studies_due import RlsIronStudiesDue
from hooks.valuesets import codes_named, lab, library


def catalog() -> tuple[Rule, ...]:
    """Every rule, in the order of the catalog (rules.md), wired to its value sets."""
    vs = library()
    iron = IronLabs(
        restless_legs=vs["restless-legs"], rls_drugs=vs["rls-drugs"],
        cramp_drugs=vs["cramp-drugs"], ferritin=lab("ferritin"),
        saturation=lab("transferrin-saturation"), serum_iron=lab("serum-iron"),
        tibc=lab("tibc"),
    )
    electrolytes = Electrolytes(
        leg_cramps=vs["leg-cramps"], rls_drugs=vs["rls-drugs"], cramp_drugs=vs["cramp-drugs"],
        potassium=lab("potassium"), magnesium=lab("magnesium"), calcium=lab("calcium-total"),
    )
    return (
        QuinineLegCramps(quinine=vs["quinine"], malaria=vs["malaria"]),
        CyclobenzaprineDuration(cyclobenzaprine=vs["cyclobenzaprine"]),
        CyclobenzaprineCnsSpasticity(
            cyclobenzaprine=vs["cyclobenzaprine"], cns_conditions=vs["cns-spasticity-conditions"],
            stroke=vs["stroke"], spasticity=vs["spasticity"]),
        CyclobenzaprineDose(
            cyclobenzaprine=vs["cyclobenzaprine"],
            extended_release_codes=codes_named("cyclobenzaprine", "extended release")),
        BenzodiazepineStrokeRecovery(benzodiazepines=vs["benzodiazepines"], stroke=vs["stroke"]),
        RlsDopaminergicAugmentation(
            dopaminergic=vs["dopaminergic-drugs"], restless_legs=vs["restless-legs"],
            parkinsons=vs["parkinsons-disease"], alpha2delta=vs["alpha2delta-ligands"]),
        RlsDopamineAntagonist(
            dopamine_blockers=vs["dopamine-blockers"], restless_legs=vs["restless-legs"]),
        RlsIronStudiesDue(labs=iron),
        RlsIronLow(labs=iron),
        CrampsElectrolytesAbnormal(labs=electrolytes),
        DiureticElectrolytesDue(labs=electrolytes, diuretics=vs["loop-thiazide-diuretics"]),
        CrampsContributingMedications(
            leg_cramps=vs["leg-cramps"], diuretics=vs["diuretics"], statins=vs["statins"],
            beta_blockers=vs["beta-blockers"]),
        EsrdCrampsGabapentin(
            esrd=vs["esrd"], dialysis=vs["dialysis"], restless_legs=vs["restless-legs"],
            leg_cramps=vs["leg-cramps"], alpha2delta_ligands=vs["alpha2delta-ligands"],
            rls_drugs=vs["rls-drugs"], cramp_drugs=vs["cramp-drugs"]),
        CirrhosisCrampsBaclofen(
            cirrhosis=vs["cirrhosis"], leg_cramps=vs["leg-cramps"], baclofen=vs["baclofen"],
            rls_drugs=vs["rls-drugs"], cramp_drugs=vs["cramp-drugs"]),
        PadClaudicationExercise(
            pad=vs["pad"], leg_cramps=vs["leg-cramps"], rls_drugs=vs["rls-drugs"],
            cramp_drugs=vs["cramp-drugs"]),
        DiabetesSpasmB6(
            diabetes=vs["diabetes"], muscle_spasm=vs["leg-cramps"], vitamin_b6=lab("vitamin-b6"),
            rls_drugs=vs["rls-drugs"], cramp_drugs=vs["cramp-drugs"]),
    )


def order_rules() -> tuple[Rule, ...]:
    return catalog()[:1]


USAGE_ORDER = (
    "Send draft MedicationRequests (FHIR R4) in context.draftOrders. Prefetch, or fhirServer "
    "access that can read the patient's Conditions, MedicationRequests and Observations."
)


def build_services() -> list[ServiceDeclaration]:
    rules = catalog()
    return [
        ServiceDeclaration(
            id="legcramp-order-select",
            hook="order-select",
            title="Leg cramp and restless legs medication check (order select)",
            description=(
                "Checks the medication orders a prescriber has just selected against leg cramp, "
                "leg spasm and restless legs guidance: quinine for cramps, cyclobenzaprine "
                "course, dose and CNS spasticity, benzodiazepines after stroke, and iron and "
                "electrolytes when an RLS or cramp drug is ordered."
            ),
            usage_requirements=USAGE_ORDER,
            rules=rules,
            base_requirements=(data.PATIENT,),
        ),
        ServiceDeclaration(
            id="legcramp-order-sign",
            hook="order-sign",
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
            hook="patient-view",
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
    ]
