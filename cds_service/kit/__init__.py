"""The one door for rule authors: everything a rule may use from the engine, and nothing else.

A rule (`hooks/rules/*.py`) imports from `cds_service.kit` only. The kit cannot do any I/O: no
HTTP, no database, no configuration loading, no Flask, no `requests`. It holds the vocabulary
of a rule (its declaration, typed settings, what it reads), the read-only patient record it
judges, the cards it answers with, and the pure helpers rules share (value sets, lab results,
doses, units, code system URIs, hook names). Tests hold this boundary: see
`tests/kit/test_boundaries.py`.
"""

from __future__ import annotations

from cds_service.kit.cards import Action, Card, Coding, Indicator, Link, Source, Suggestion
from cds_service.kit.code_systems import (
    ATC,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    GTS_ABBREVIATION,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    UCUM,
)
from cds_service.kit.dosing import (
    DailyDose,
    DurationEstimate,
    Strength,
    administrations_per_day,
    daily_dose,
    duration_estimates,
    intended_duration,
    strength_from_concept,
    strength_from_medication,
)
from cds_service.kit.hook_names import (
    MEDICATION_REFILL,
    ORDER_HOOKS,
    ORDER_SELECT,
    ORDER_SIGN,
    PATIENT_VIEW,
    SUPPORTED_HOOKS,
)
from cds_service.kit.observations import (
    COUNTABLE_STATUSES,
    LabResult,
    as_instant,
    latest,
    newest,
    observation_time,
    results,
)
from cds_service.kit.record import (
    ENDED_ORDER_STATUSES,
    EXCLUDED_VERIFICATION_STATUSES,
    ON_HOLD,
    ConditionMatch,
    MedicationOrder,
    PatientRecord,
    concept_label,
    condition_counts,
    condition_onset,
)
from cds_service.kit.requirements import DataRequirement
from cds_service.kit.rules import Rule, RuleContext, RuleSettings, setting, setting_sources
from cds_service.kit.service_declaration import ServiceDeclaration
from cds_service.kit.terminology import Match, ValueSet, ValueSetLibrary
from cds_service.kit.units import UnitNormaliser, ucum_code

__all__ = [
    "ATC",
    "CONDITION_CLINICAL",
    "CONDITION_VERIFICATION",
    "COUNTABLE_STATUSES",
    "ENDED_ORDER_STATUSES",
    "EXCLUDED_VERIFICATION_STATUSES",
    "GTS_ABBREVIATION",
    "ICD10CM",
    "LOINC",
    "MEDICATION_REFILL",
    "ON_HOLD",
    "ORDER_HOOKS",
    "ORDER_SELECT",
    "ORDER_SIGN",
    "PATIENT_VIEW",
    "RXNORM",
    "SNOMED",
    "SUPPORTED_HOOKS",
    "UCUM",
    "Action",
    "Card",
    "Coding",
    "ConditionMatch",
    "DailyDose",
    "DataRequirement",
    "DurationEstimate",
    "Indicator",
    "LabResult",
    "Link",
    "Match",
    "MedicationOrder",
    "PatientRecord",
    "Rule",
    "RuleContext",
    "RuleSettings",
    "ServiceDeclaration",
    "Source",
    "Strength",
    "Suggestion",
    "UnitNormaliser",
    "ValueSet",
    "ValueSetLibrary",
    "administrations_per_day",
    "as_instant",
    "concept_label",
    "condition_counts",
    "condition_onset",
    "daily_dose",
    "duration_estimates",
    "intended_duration",
    "latest",
    "newest",
    "observation_time",
    "results",
    "setting",
    "setting_sources",
    "strength_from_concept",
    "strength_from_medication",
    "ucum_code",
]
