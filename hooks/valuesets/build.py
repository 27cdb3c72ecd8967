"""Rebuild the value sets derived from the shared terminology reference.

    python -m hooks.valuesets.build [--terminology PATH] [--products DIR] [--check]

Only codes marked `verified-in-source` there are shipped; the others are listed under
`left_out` with the reason, so a reviewer sees what was dropped. `--check` exits 1 when the files
in this directory differ from what the reference gives (drift), which the test suite runs.
Value sets that the reference does not cover (malaria) are curated by hand beside these files
and carry their own provenance; this command never writes them.

Three kinds of value set are derived, each declared in `DERIVED` below:

- medications: ingredient, product and ATC codes plus whole-word text terms of the named
  concepts (`medications`) and of every concept of the named groups (`medication_groups`);
  concepts deliberately kept out (`left_out_medications`) are listed under `left_out` with
  their codes and the reason, and their names are not text terms;
- conditions: SNOMED CT and ICD-10-CM codes and value set members of the named concepts, and
  ICD-10-CM prefixes from an explicit table: each prefix names the reference match rule it comes
  from, and every match rule of an included concept is either used or left out with a reason;
- observations: LOINC codes, a canonical UCUM unit, and the factors that bring each accepted
  UCUM unit into it, taken from the reference's conversions (inverted where the reference gives
  the other direction, multiplied along a chain where the reference converts a unit only
  through another one). Every conversion of the reference is either used or left out.

When the reference changes so that a declaration no longer fits (a concept, rule, conversion or
excluded code disappears, or a new rule or conversion appears), the value set is not built and
the command fails, naming what changed.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.kit.code_systems import ATC, ICD10CM, LOINC, SNOMED
from cds_service.kit.code_systems import RXNORM as RX

HERE = Path(__file__).resolve().parent
DEFAULT_TERMINOLOGY = HERE.parents[1].parent / "shared" / "reference" / "terminology.json"
VERIFIED = "verified-in-source"
ATC_SYSTEM_NOTE = (
    "ATC system URI http://www.whocc.no/atc is marked from-memory in the reference; it is the "
    "URI HL7 terminology names for ATC and the one public FHIR data uses (checked with the "
    "search tool, 2026-11-21)"
)
POLICY = {
    "medication": "codes verified in source only; whole-word text terms as fallback",
    "condition": "codes verified in source only; ICD-10-CM prefixes from an explicit table of "
    "the reference's match rules; whole-word text terms as fallback",
    "observation": "LOINC codes verified in source only; unit conversion factors from the "
    "reference's conversions, each entry stating the reference's confidence",
}
CMS_FY2023 = (
    "github:arijitdasgupta543-dev/Medisathi@1f81d32abc3dc155359a6501cbfbf834353b7924:"
    "icd10cm_codes_2023.txt (CMS ICD-10-CM FY2023 code/title file)"
)
HISTORY_NOT_STROKE = (
    "Text terms are specific on purpose: 'cerebrovascular accident' and 'cerebral infarction' "
    "are left out because history and sequela displays contain them ('History of "
    "cerebrovascular accident', 'Unspecified sequelae of cerebral infarction'), and a coded "
    "history condition whose code is not here must not match by its display."
)

IPS = (
    "github:HL7/fhir-ips@57c3299fe9759f9be7c7b6976ce61f57ef9a7bd1:input/fsh/valuesets/"
    "ProblemsSnomedCtIpsFreeSet.fsh (SNOMED IPS free set expansion, SNOMED version 20220731)"
)
CANVAS = "github:canvas-medical/canvas-plugins@344f0bcb924b2be7ffafb5ac7edf19d475704259:"
VSAC_CVD = (
    f"{CANVAS}canvas_sdk/value_set/v2022/condition.py (VSAC eCQM value sets, 2022 expansion) "
    "VS 'Cerebrovascular Disease, Stroke, TIA' 2.16.840.1.113762.1.4.1047.44"
)
VSAC_NMD = (
    f"{CANVAS}canvas_sdk/value_set/v2026/no_qdm_category_assigned.py (VSAC eCQM value sets, "
    "expansion 'eCQM Update 2025-05-08') VS 'Neuromuscular Disorder' "
    "2.16.840.1.113762.1.4.1248.239"
)
HCC = f"{CANVAS}canvas_sdk/value_set/hcc2018.py (HCC 'Hemiplegia/Hemiparesis' entries)"
ICDCM_TABLE = (
    "github:medtrack-io/icd_code@4c625733f92b7b1d616e272abc3009bb8b916c0c:lib/codes/codes_{}.ex "
    "(ICD-10-CM code/title table)"
)
SYNTHEA_INJURIES = (
    "github:synthetichealth/synthea@05010714adbbb12f7d04d8513e4e38c93e61a43e:"
    "src/main/resources/modules/injuries.json (state Neurological_Damage; Synthea emits it for "
    "survivors of spinal cord damage and never ends it)"
)
I69_CAUSES = {
    "I69.05": ("nontraumatic subarachnoid hemorrhage", (VSAC_CVD,)),
    "I69.15": ("nontraumatic intracerebral hemorrhage", (VSAC_CVD,)),
    "I69.25": ("other nontraumatic intracranial hemorrhage", (VSAC_CVD,)),
    "I69.35": ("cerebral infarction", (VSAC_CVD, HCC)),
    "I69.85": ("other cerebrovascular disease", (HCC,)),
    "I69.95": ("unspecified cerebrovascular disease", (HCC,)),
}
SIDES = {
    "1": "right dominant side",
    "2": "left dominant side",
    "3": "right non-dominant side",
    "4": "left non-dominant side",
    "9": "unspecified side",
}
G81_SIDES = {
    "0": "unspecified side",
    "1": "right dominant side",
    "2": "left dominant side",
    "3": "right nondominant side",
    "4": "left nondominant side",
}


def _added(system: str, code: str, display: str, kind: str, *sources: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display, "kind": kind,
            "source": " ; ".join(sources)}


def _post_stroke_hemiplegia_icd10cm() -> list[dict[str, str]]:
    """I69.x5x: hemiplegia and hemiparesis following cerebrovascular disease, five codes a
    family (x51-x54, x59; the table lists no others under I69.x5)."""
    return [
        _added(ICD10CM, f"{prefix}{side}", f"Hemiplegia and hemiparesis following {cause} "
               f"affecting {where}", "value_set_member", ICDCM_TABLE.format("i69"), *sources)
        for prefix, (cause, sources) in I69_CAUSES.items()
        for side, where in SIDES.items()
    ]


CNS_SPASTICITY_ADDED: list[dict[str, str]] = [
    _added(SNOMED, "698754002", "Chronic paralysis due to lesion of spinal cord", "core",
           SYNTHEA_INJURIES),
    *[
        _added(SNOMED, code, display, "value_set_member", VSAC_NMD)
        for code, display in (
            ("441705005", "Complete quadriplegia due to spinal cord lesion between first and "
             "fourth cervical vertebra (disorder)"),
            ("441980007", "Complete quadriplegia due to spinal cord lesion between fifth and "
             "seventh cervical vertebra (disorder)"),
            ("698741009", "Acute complete quadriplegia due to spinal cord lesion between first "
             "and fourth cervical vertebra (disorder)"),
            ("698743007", "Acute complete quadriplegia due to spinal cord lesion between fifth "
             "and seventh cervical vertebra (disorder)"),
        )
    ],
    _added(SNOMED, "441688003", "Incomplete tetraplegia due to spinal cord lesion at C1-C4 level",
           "core", IPS),
    _added(SNOMED, "312444006", "Spastic paraparesis", "core", IPS),
    _added(SNOMED, "108691000119102", "Spasticity as sequela of stroke (disorder)",
           "value_set_member", VSAC_CVD),
    *[
        _added(SNOMED, code, display, "core", IPS, VSAC_CVD)
        for code, display in (
            ("442733008", "Hemiplegia as late effect of cerebrovascular accident"),
            ("442024001", "Hemiplegia as late effect of cerebrovascular disease"),
            ("116288000", "Paralytic stroke"),
            ("430959006", "Paralytic syndrome of dominant side as late effect of stroke"),
            ("430947007", "Paralytic syndrome of nondominant side as late effect of stroke"),
        )
    ],
    *[
        _added(SNOMED, code, display, "value_set_member", VSAC_CVD)
        for code, display in (
            ("442676003", "Hemiplegia of dominant side as late effect of cerebrovascular "
             "disease (disorder)"),
            ("442668000", "Hemiplegia of nondominant side as late effect of cerebrovascular "
             "disease (disorder)"),
            ("441991000", "Hemiparesis as late effect of cerebrovascular accident (disorder)"),
            ("140281000119108", "Hemiparesis as late effect of cerebrovascular disease "
             "(disorder)"),
            ("361000119103", "Paralytic syndrome on one side of the body as late effect of "
             "cerebrovascular accident (disorder)"),
        )
    ],
    *_post_stroke_hemiplegia_icd10cm(),
    *[
        _added(ICD10CM, f"G81.1{side}", f"Spastic hemiplegia affecting {where}",
               "value_set_member", ICDCM_TABLE.format("g81"), HCC)
        for side, where in G81_SIDES.items()
    ],
]
NOT_A_LEG_CRAMP = "not a leg cramp (clinical review, issue 15: leg, calf, thigh or foot only)"

HCTZ_G01AE10 = (
    "ATC G01AE10 is a genito-urinary sulfonamide anti-infective combination (group G01AE; "
    "sulfamethizole and trimethoprim per creative-connections/Pharmacolibrary, checked "
    "2026-11-21), not a hydrochlorothiazide product; PharmGKB's ATC list for "
    "hydrochlorothiazide carries it"
)

# Members of the reference concept 'cirrhosis / chronic liver disease' (a copy of VSAC 'Chronic
# Liver Disease') that do not assert cirrhosis, by reason. Kept are the members whose display
# names cirrhosis, and primary biliary cholangitis (the current name of primary biliary
# cirrhosis, ICD-10-CM K74.3).
NOT_CIRRHOSIS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "alcoholic liver disease that does not code cirrhosis (fatty liver, fibrosis and "
    "sclerosis, hepatic failure, unspecified); alcoholic cirrhosis is K70.3-": {
        ICD10CM: ("K70.0", "K70.2", "K70.40", "K70.41", "K70.9"),
        SNOMED: ("235880004",),
    },
    "toxic liver disease without cirrhosis (K71.7, which names cirrhosis, is kept)": {
        ICD10CM: ("K71.0", "K71.10", "K71.11", "K71.3", "K71.4", "K71.50", "K71.51"),
    },
    "hepatic failure that does not code cirrhosis": {
        ICD10CM: ("K72.10", "K72.11"),
    },
    "chronic hepatitis (viral, drug-induced, other or unspecified): not cirrhosis unless "
    "coded so": {
        ICD10CM: ("K73.0", "K73.1", "K73.2", "K73.8", "K73.9"),
        SNOMED: (
            "1116000", "10295004", "38662009", "41889008", "50167007", "57339008", "60037002",
            "61977001", "66870002", "76783007", "89789003", "128302006", "186639003",
            "186698009", "197284004", "235869004", "235870003", "235889003", "424340000",
            "450880008", "767809001", "767810006", "768006009", "768125005", "768126006",
            "768127002", "768288001", "768289009",
        ),
    },
    "hepatic fibrosis or sclerosis: fibrosis short of cirrhosis": {
        ICD10CM: ("K74.0", "K74.00", "K74.01", "K74.02", "K74.1", "K74.2"),
        SNOMED: (
            "62484002", "79607001", "123607009", "235898000", "235899008", "235900003",
            "235901004", "235902006", "737202006",
        ),
    },
    "other liver disorders and complications that do not code cirrhosis (vascular "
    "disorders, portal hypertension, hepatorenal syndrome)": {
        ICD10CM: ("K76.1", "K76.2", "K76.3", "K76.5", "K76.6", "K76.7"),
        SNOMED: ("81675001",),
    },
    "disease that can lead to cirrhosis but does not assert it (metabolic, sclerosing "
    "cholangitis)": {
        SNOMED: (
            "30188007", "88518009", "197441003", "197442005", "235917005", "281388009",
        ),
    },
    "chronic liver disease grouper: chronic liver disease is not necessarily cirrhosis": {
        SNOMED: ("328383001", "197279005", "79720007"),
    },
}


def _not_cirrhosis() -> list[tuple[str, str, str]]:
    return [
        (system, code, f"not cirrhosis: {reason}")
        for reason, by_system in NOT_CIRRHOSIS.items()
        for system, codes in by_system.items()
        for code in codes
    ]


# Which terminology concepts make up each derived value set. Medication sets name concepts
# (`medications`) and/or groups (`medication_groups`); condition sets name concepts taken whole
# (`conditions`) or single codes (`condition_codes`), with an explicit ICD-10-CM prefix table
# (prefix, concept, the reference match rule it comes from) and the match rules left out;
# observation sets name one concept, the canonical UCUM unit and, per accepted UCUM unit, the
# reference conversion (from, to) whose factor applies, or a list of them applied in turn.
# `exclude_codes` lists verified codes deliberately kept out, with the reason, and
# `left_out_medications` whole medication concepts kept out, with the reason; both are shown
# under `left_out`. A condition set may also declare codes the reference lacks
# (`verified_additions`, each with the source its code and display were read in), ICD-10-CM
# prefixes that are no reference match rule (`icd10cm_prefixes_added`: prefix, what it covers,
# source), and `out_of_scope_words` (a name carrying one never matches by text).
# Ingredients the reference has no concept for, added by hand (`added_ingredients`): the
# name is a text term that brings in the sandbox's products; the RxNorm ingredient code joins
# only where it was read in the named source.
CPIC_DRUGS = ("github:cpicpgx/cpic-schema@05f9b09c5fcdf674efe3289411994b54f979aedb:drug.sql "
              "(CPIC drug table: a row 'RxNorm:<code> <name>')")
PGKB_CHEMICALS = ("github:mtpandi/Text-Mining-for-PGx@2c86cf77bb35067f181f44f21f3df16679103dcf:"
                  "chemicals.tsv (PharmGKB chemicals export: 'RxNorm Identifiers' of the drug)")
OMTK_2020 = ("github:cqframework/opioid-cds@01b7921191c7e96aea9ff4c65e9e7eb877c96a03:input/"
             "pagecontent/cql/OMTKData2020.cql (CDC opioid tool: ingredientCode of its products)")


def _ingredient(name: str, code: str | None = None, source: str | None = None,
                brands: tuple[str, ...] = ()) -> dict[str, Any]:
    """An ingredient added by hand; brands are the names in brackets on the sandbox's branded
    products of it."""
    found: dict[str, Any] = {"name": name}
    if code:
        found.update(code=code, source=source)
    if brands:
        found["brands"] = list(brands)
    return found


OPIOID_ADDED = [
    _ingredient('fentanyl', '4337', CPIC_DRUGS),
    _ingredient('codeine', '2670', CPIC_DRUGS),
    _ingredient('hydromorphone', '3423', PGKB_CHEMICALS, brands=('dilaudid',)),
    _ingredient('buprenorphine', '1819', OMTK_2020),
    _ingredient('tapentadol', '787390', OMTK_2020, brands=('nucynta',)),
    _ingredient('oxymorphone'),
    _ingredient('meperidine', brands=('demerol',)),
]

CNS_ADDED = [
    _ingredient('zolpidem', brands=('ambien',)),
    _ingredient('zaleplon'),
    _ingredient('eszopiclone', brands=('lunesta',)),
    _ingredient('phenobarbital', '8134', PGKB_CHEMICALS),
    _ingredient('butalbital'),
]

MAOI_ADDED = [
    _ingredient('phenelzine', '8123', PGKB_CHEMICALS, brands=('nardil',)),
    _ingredient('tranylcypromine', brands=('parnate',)),
    _ingredient('isocarboxazid', '6011', PGKB_CHEMICALS, brands=('marplan',)),
    _ingredient('selegiline', brands=('zelapar', 'eldepryl')),
    _ingredient('rasagiline', brands=('azilect',)),
    _ingredient('safinamide'),
    _ingredient('linezolid', brands=('zyvox',)),
    _ingredient('methylene blue', '6878', CPIC_DRUGS),
]

ANTIHISTAMINE_ADDED = [
    _ingredient('diphenhydramine', '3498', PGKB_CHEMICALS, brands=('benadryl',)),
    _ingredient('dimenhydrinate', '3444', PGKB_CHEMICALS, brands=('dramamine',)),
    _ingredient('doxylamine', '3642', PGKB_CHEMICALS, brands=('unisom',)),
    _ingredient('hydroxyzine', '5553', PGKB_CHEMICALS, brands=('atarax', 'vistaril')),
    _ingredient('carbinoxamine', '20220', PGKB_CHEMICALS),
    _ingredient('chlorpheniramine'),
    _ingredient('dexchlorpheniramine'),
    _ingredient('brompheniramine'),
    _ingredient('cyproheptadine'),
    _ingredient('meclizine', brands=('antivert',)),
    _ingredient('clemastine'),
    _ingredient('triprolidine'),
]

SEROTONERGIC_ADDED = [
    _ingredient('fluoxetine', '4493', CPIC_DRUGS, brands=('prozac',)),
    _ingredient('sertraline', '36437', CPIC_DRUGS, brands=('zoloft',)),
    _ingredient('paroxetine', '32937', CPIC_DRUGS, brands=('paxil',)),
    _ingredient('citalopram', '2556', CPIC_DRUGS, brands=('celexa',)),
    _ingredient('escitalopram', '321988', CPIC_DRUGS, brands=('lexapro',)),
    _ingredient('fluvoxamine', '42355', CPIC_DRUGS),
    _ingredient('vilazodone', brands=('viibryd',)),
    _ingredient('vortioxetine', '1455099', CPIC_DRUGS),
    _ingredient('venlafaxine', '39786', CPIC_DRUGS, brands=('effexor',)),
    _ingredient('desvenlafaxine', brands=('pristiq',)),
    _ingredient('duloxetine', '72625', CPIC_DRUGS, brands=('cymbalta',)),
    _ingredient('levomilnacipran', brands=('fetzima',)),
    _ingredient('milnacipran', brands=('savella',)),
    _ingredient('amitriptyline', '704', CPIC_DRUGS),
    _ingredient('nortriptyline', '7531', CPIC_DRUGS, brands=('pamelor',)),
    _ingredient('imipramine', '5691', CPIC_DRUGS, brands=('tofranil',)),
    _ingredient('desipramine', '3247', CPIC_DRUGS, brands=('norpramin',)),
    _ingredient('doxepin', '3638', CPIC_DRUGS, brands=('silenor',)),
    _ingredient('clomipramine', '2597', CPIC_DRUGS, brands=('anafranil',)),
    _ingredient('protriptyline', '8886', CPIC_DRUGS),
    _ingredient('trimipramine', '10834', CPIC_DRUGS),
    _ingredient('amoxapine'),
    _ingredient('mirtazapine', '15996', CPIC_DRUGS, brands=('remeron',)),
]

SEEN_IN_PUBLIC_CODE = (
    "several independent public code bases seen with the project's search tool (2026-12-02), "
    "each pairing the code with this meaning"
)
SYNTHEA = "Synthea R4 charts in shared/data/synthea-r4 (Condition.code with this display)"
CMS_TITLES = f"{CMS_FY2023}: the billable codes under this prefix, each with its title"


DERIVED: Mapping[str, Mapping[str, Any]] = {
    "quinine": {
        "title": "Quinine, any product",
        "medications": ["quinine"],
        "purpose": "Q1 quinine-leg-cramps: any quinine order. Quinidine is a different "
        "ingredient (RxNorm 9068) and must never match.",
    },
    "cyclobenzaprine": {
        "title": "Cyclobenzaprine, any product",
        "medications": ["cyclobenzaprine"],
        "purpose": "C1 cyclobenzaprine-duration, C2 cyclobenzaprine-cns-spasticity, "
        "C3 cyclobenzaprine-dose: any cyclobenzaprine order (immediate or extended release; "
        "the rule tells them apart).",
    },
    "benzodiazepines": {
        "title": "Benzodiazepines",
        "medication_groups": ["benzodiazepine"],
        "public_sets": ["benzodiazepine-medications.json"],
        "purpose": "B1 benzodiazepine-stroke-recovery: any benzodiazepine order.",
    },
    "rls-drugs": {
        "title": "Restless legs drugs: alpha-2-delta ligands and dopaminergic drugs",
        "medication_groups": ["alpha2delta_ligand", "dopaminergic", "dopamine_agonist"],
        "public_sets": ["gabapentinoid-medications-derived.json"],
        "purpose": "Orders that bring the RLS rules (R1, R2) onto order hooks: gabapentin, "
        "gabapentin enacarbil, pregabalin, levodopa, pramipexole, ropinirole, rotigotine. "
        "It mixes first-line and dopaminergic drugs, so it cannot tell D1's dopaminergic "
        "orders apart on its own.",
        "notes": [
            "Gabapentin enacarbil has no verified ingredient code (left out below); its two "
            "verified SCDs (1101338, 1482820) and its names are in the set.",
        ],
    },
    "cramp-drugs": {
        "title": "Drugs ordered for cramps or spasm: quinine, cyclobenzaprine, baclofen, "
        "magnesium",
        "medications": ["quinine", "cyclobenzaprine", "baclofen"],
        "medication_groups": ["magnesium_supplement"],
        "single_ingredient_only": {
            "terms": ["magnesium oxide", "magnesium sulfate", "magnesium chloride",
                      "magnesium gluconate", "magnesium acetate"],
            "reason": "a combination product with a magnesium salt (a multivitamin, calcium "
            "and magnesium, a bowel preparation) is not a magnesium supplement ordered for "
            "cramps; single-ingredient magnesium products are members",
        },
        "exclude_codes": [
            (ATC, "B05XA", "class-level ATC 'electrolyte solutions' (given for magnesium "
             "chloride): it also holds potassium chloride (B05XA01 in the reference) and "
             "sodium chloride solutions"),
        ],
        "drop_text_terms": {
            "magnesium": "The bare text term 'magnesium' (concept 'magnesium', RxNorm IN 6574) "
            "is dropped: it is part of salt names of unrelated drugs ('esomeprazole "
            "magnesium', 'pitavastatin magnesium') and of excipients ('magnesium stearate'). "
            "Only the specific supplement terms are kept (magnesium oxide, sulfate, chloride, "
            "gluconate, acetate); ingredient 6574 still matches by code.",
        },
        "purpose": "E1 cramps-electrolytes-abnormal: a cramp or spasm drug being ordered "
        "(quinine, cyclobenzaprine, baclofen, magnesium supplements).",
        "notes": [
            "Baclofen and magnesium products come from the sandbox's RxNorm list (clinical and "
            "branded drugs, components, dose form groups): the reference has none verified.",
            "Combination products with a magnesium salt are left out by code (listed below); "
            "one sent by name alone still matches by the name of its magnesium salt, as "
            "before: the name alone cannot tell a supplement from a combination.",
        ],
    },
    "magnesium-supplements": {
        "title": "Magnesium supplements (single-ingredient magnesium salts)",
        "medication_groups": ["magnesium_supplement"],
        "single_ingredient_only": {
            "terms": ["magnesium oxide", "magnesium sulfate", "magnesium chloride",
                      "magnesium gluconate", "magnesium acetate"],
            "reason": "a combination product with a magnesium salt (a multivitamin, a bowel "
            "preparation) does not correct a low magnesium",
        },
        "exclude_codes": [
            (ATC, "B05XA", "class-level ATC 'electrolyte solutions': it also holds potassium "
             "and sodium chloride solutions"),
        ],
        "drop_text_terms": {
            "magnesium": "The bare term 'magnesium' is part of salt names of unrelated drugs "
            "('esomeprazole magnesium') and of excipients ('magnesium stearate').",
        },
        "purpose": "E1 cramps-electrolytes-abnormal: an order in hand that is the correction "
        "of a low magnesium (then E1 does not ask to correct it).",
    },
    "potassium-supplements": {
        "title": "Potassium supplements (potassium chloride)",
        "medications": ["potassium_chloride"],
        "single_ingredient_only": {
            "terms": ["potassium chloride"],
            "reason": "a combination product with potassium chloride (a diuretic with potassium, "
            "a bowel preparation) is not the correction of a low potassium",
        },
        "purpose": "E1 cramps-electrolytes-abnormal: an order in hand that is the correction "
        "of a low potassium (then E1 does not ask to correct it).",
    },
    "calcium-supplements": {
        "title": "Calcium supplements (calcium carbonate, calcium gluconate)",
        "medications": ["calcium_carbonate", "calcium_gluconate"],
        "single_ingredient_only": {
            "terms": ["calcium carbonate", "calcium gluconate"],
            "reason": "a combination product with a calcium salt (an antacid with magnesium, a "
            "multivitamin) is not the correction of a low calcium",
        },
        "purpose": "E1 cramps-electrolytes-abnormal: an order in hand that is the correction "
        "of a low calcium (then E1 does not ask to correct it).",
    },
    "iron-products": {
        "title": "Iron products (oral and intravenous)",
        "medication_groups": ["iron_supplement"],
        "drop_text_terms": {
            "iron": "The bare term 'iron' is part of names of multivitamins 'with iron' and of "
            "tests; the specific iron salts and products are kept.",
        },
        "purpose": "R1 and R2: an iron order is a restless legs treatment, so it brings the "
        "iron cards onto order hooks; R2 drafts no oral iron while iron is already active "
        "or being ordered.",
    },
    "loop-thiazide-diuretics": {
        "title": "Loop, thiazide and thiazide-like diuretics (potassium-wasting)",
        "medication_groups": ["loop_diuretic", "thiazide_diuretic", "thiazide_like_diuretic"],
        "exclude_codes": [(ATC, "G01AE10", HCTZ_G01AE10)],
        "purpose": "E2 diuretic-electrolytes-due (and M1): an active loop or thiazide "
        "diuretic. Potassium-sparing diuretics (spironolactone) are not members: alone they "
        "do not trigger the rule.",
        "notes": [
            "Potassium-sparing group (spironolactone, RxNorm IN 9997) deliberately not "
            "included (reference pitfall: do not use a single 'diuretic' bucket).",
            "Combination products that contain a loop or thiazide diuretic and spironolactone "
            "(e.g. 198224 hydrochlorothiazide 25 MG / spironolactone 25 MG, 392462 furosemide "
            "/ spironolactone) are members, as the reference lists them under HCTZ or "
            "furosemide: they do contain a potassium-wasting diuretic.",
        ],
    },
    "stroke": {
        "title": "Stroke, ischemic or hemorrhagic (current)",
        "conditions": ["stroke_ischemic", "stroke_hemorrhagic"],
        "icd10cm_prefixes": [
            ("I63", "stroke_ischemic", "I63 (all descendants I63.0-I63.9)"),
            ("I61", "stroke_hemorrhagic", "I61 (I61.0-I61.9)"),
            ("I60", "stroke_hemorrhagic", "I60 (I60.00-I60.9)"),
        ],
        "icd10cm_rules_left_out": [
            (
                "stroke_hemorrhagic",
                "optionally I62 (nontraumatic subdural/extradural)",
                "I62 (nontraumatic subdural/extradural hemorrhage) is not a stroke for B1 and "
                "C2 and the reference makes it optional; history of stroke (Z86.73) and "
                "sequelae (I69) are the separate value set history-of-stroke.",
            ),
        ],
        "text_terms": [
            "ischemic stroke",
            "ischaemic stroke",
            "hemorrhagic stroke",
            "haemorrhagic stroke",
            "intracerebral hemorrhage",
            "intracerebral haemorrhage",
            "subarachnoid hemorrhage",
            "subarachnoid haemorrhage",
        ],
        "purpose": "B1 benzodiazepine-stroke-recovery and C2 cyclobenzaprine-cns-spasticity: "
        "an ischemic or hemorrhagic stroke. A history-of-stroke or sequela code (Z86.73, I69) "
        "is not a member: see history-of-stroke.",
        "notes": [HISTORY_NOT_STROKE],
    },
    "history-of-stroke": {
        "title": "History of stroke, sequelae of cerebrovascular disease",
        "conditions": ["history_of_stroke"],
        "icd10cm_prefixes": [
            ("Z86.73", "history_of_stroke", "Z86.73"),
            ("I69", "history_of_stroke", "I69 (sequelae of cerebrovascular disease, I69.0-I69.9)"),
        ],
        "text_terms": [
            "history of stroke",
            "history of cerebrovascular accident",
            "sequelae of stroke",
            "sequelae of cerebral infarction",
        ],
        "purpose": "B1 benzodiazepine-stroke-recovery: an old stroke (history or sequela), "
        "told apart from a current one (value set stroke).",
    },
    "cns-spasticity-conditions": {
        "title": "CNS disease with spasticity: spinal cord injury or lesion, multiple "
        "sclerosis, cerebral palsy, post-stroke hemiplegia/hemiparesis/spasticity, spastic "
        "hemiplegia or paraparesis",
        "conditions": ["spinal_cord_injury", "multiple_sclerosis", "cerebral_palsy"],
        "verified_additions": CNS_SPASTICITY_ADDED,
        "icd10cm_prefixes_added": [
            *[
                (prefix, f"{prefix}1-{prefix}9: hemiplegia and hemiparesis following {cause}",
                 " ; ".join((ICDCM_TABLE.format("i69"), *sources)))
                for prefix, (cause, sources) in I69_CAUSES.items()
            ],
            ("G81.1", "G81.10-G81.14: spastic hemiplegia",
             f"{ICDCM_TABLE.format('g81')} ; {HCC}"),
        ],
        "icd10cm_prefixes": [
            ("G82.2", "spinal_cord_injury", "G82.2- (paraplegia G82.20-G82.22)"),
            ("G82.5", "spinal_cord_injury", "G82.5- (quadriplegia G82.50-G82.54)"),
            ("S14.1", "spinal_cord_injury", "S14.1- (cervical cord)"),
            ("S24.1", "spinal_cord_injury", "S24.1- (thoracic cord)"),
            ("S34.1", "spinal_cord_injury", "S34.1- (lumbar/sacral cord) - 7th character A/D/S"),
            ("G35", "multiple_sclerosis", "G35 (<= FY2025, billable)"),
            (
                "G35",
                "multiple_sclerosis",
                "G35.A, G35.B0-G35.B2, G35.C0-G35.C2, G35.D (FY2026+, from 2025-10-01) -> "
                "match prefix 'G35'",
            ),
            ("G80", "cerebral_palsy", "G80 (G80.0-G80.9)"),
        ],
        "icd10cm_rules_left_out": [
            (
                "spinal_cord_injury",
                "G95.x (other spinal cord disease) if desired",
                "G95 covers non-traumatic myelopathies of very different kinds (syringomyelia, "
                "vascular myelopathy, cord compression); the rule asks for spinal cord injury, "
                "and the reference makes it optional.",
            ),
        ],
        "text_terms": [
            "multiple sclerosis",
            "cerebral palsy",
            "spinal cord injury",
            "paraplegia",
            "quadriplegia",
            "tetraplegia",
            "lesion of spinal cord",
            "spastic hemiplegia",
            "spastic paraparesis",
            "spastic paraplegia",
            "hemiplegia as late effect",
            "hemiparesis as late effect",
        ],
        "purpose": "C2 cyclobenzaprine-cns-spasticity: a condition that makes spasm central, "
        "whatever its age: spinal cord injury or lesion, multiple sclerosis, cerebral palsy, "
        "hemiplegia, hemiparesis or spasticity after a stroke (I69.x5x, SNOMED late effects), "
        "spastic hemiplegia (G81.1) or paraparesis. A stroke itself is the value set stroke, "
        "which C2 counts only while recent.",
        "notes": [
            "ICD-10-CM S24.1 and S34.1 are marked from-memory in the reference; both were "
            f"checked on 2026-11-21 in {CMS_FY2023}: S24101A-S24159S are injuries and lesions "
            "of the thoracic spinal cord, S34101A-S34139S of the lumbar and sacral spinal cord. "
            "The prefixes match every 7th character (A initial, D subsequent, S sequela): a "
            "cord injury's spasticity persists.",
            "Multiple sclerosis is matched by prefix G35 so that plain G35 (to FY2025) and the "
            "FY2026 subcodes G35.A, G35.B0-B2, G35.C0-C2, G35.D all match.",
            "Codes and prefixes not in the reference (clinical review, issue 15) are declared in "
            "build.py with the source each was read in; each entry's source names it. Left for "
            "a reviewer: I69.x4x (monoplegia of lower limb) and I69.x6x (other paralytic "
            "syndrome) after stroke, G81.9 (hemiplegia, unspecified), and plain hemiplegia or "
            "hemiparesis (50582007, 20022000); flaccid hemiplegia (G81.0, 442077006) is not "
            "spasticity and stays out.",
            "There is no bare text term 'hemiplegia' or 'hemiparesis': 'Flaccid hemiplegia' "
            "would match it.",
        ],
    },
    "spasticity": {
        "title": "Spasticity",
        "condition_codes": [("muscle_spasm", SNOMED, "221360009")],
        "verified_additions": [
            _added(SNOMED, "108691000119102", "Spasticity as sequela of stroke (disorder)",
                   "value_set_member", VSAC_CVD),
        ],
        "text_terms": ["spasticity"],
        "purpose": "C2 cyclobenzaprine-cns-spasticity: the order's reason is spasticity. "
        "Spasticity is not a cramp and is not in leg-cramps.",
    },
    "restless-legs": {
        "title": "Restless legs syndrome (Willis-Ekbom disease)",
        "conditions": ["restless_legs_syndrome"],
        "icd10cm_prefixes": [("G25.81", "restless_legs_syndrome", "G25.81")],
        "exclude_codes": [
            (ICD10CM, "G47.61", "periodic limb movement disorder: related but distinct "
             "(reference note); not restless legs"),
            (SNOMED, "418763003", "periodic limb movement disorder: related but distinct "
             "(reference note); not restless legs"),
            (SNOMED, "445140006", "periodic leg movements of sleep: related but distinct "
             "(reference note); not restless legs"),
        ],
        "text_terms": ["restless legs", "restless leg", "willis-ekbom"],
        "purpose": "D1 rls-dopaminergic-augmentation, A1 rls-dopamine-antagonist, "
        "R1 rls-iron-studies-due, R2 rls-iron-low, S1: restless legs syndrome (also as an "
        "order's reason).",
    },
    "leg-cramps": {
        "title": "Leg cramps (leg, calf, thigh, foot; nocturnal; unspecified muscle cramp)",
        "conditions": ["leg_cramps", "muscle_spasm"],
        "icd10cm_prefixes": [
            ("R25.2", "leg_cramps", "R25.2"),
            ("R25.2", "muscle_spasm", "R25.2"),
            ("G47.62", "leg_cramps", "G47.62"),
            ("M62.831", "leg_cramps", "M62.831"),
        ],
        "icd10cm_rules_left_out": [
            (
                "muscle_spasm",
                "M62.83 (prefix: M62.830, M62.831, M62.838)",
                "the prefix M62.83 also holds M62.830 (muscle spasm of back) and M62.838 "
                "(other muscle spasm: every site but back and calf); only M62.831 (calf) is a "
                "prefix, from the leg_cramps rule.",
            ),
        ],
        "exclude_codes": [
            (SNOMED, "221360009", "Spasticity is not a cramp (reference pitfall); it is the "
             "value set spasticity"),
            (SNOMED, "45352006", "generic spasm of any site (its subtypes include vasospasm, "
             f"bronchospasm, bladder spasm); {NOT_A_LEG_CRAMP}"),
            (SNOMED, "203095000", f"spasm of the back; {NOT_A_LEG_CRAMP}"),
            (ICD10CM, "M62.830", f"muscle spasm of the back; {NOT_A_LEG_CRAMP}"),
            (ICD10CM, "M62.838", "residual code for muscle spasm of any site but back and calf "
             f"(neck, trunk, abdomen, arm, also thigh and foot); {NOT_A_LEG_CRAMP}"),
        ],
        "out_of_scope_words": [
            "back", "neck", "trunk", "abdominal", "abdomen", "stomach", "bladder", "menstrual",
            "uterine", "chest", "jaw", "arm", "hand", "shoulder",
        ],
        "text_terms": [
            "leg cramp",
            "leg cramps",
            "calf cramp",
            "calf cramps",
            "muscle cramp",
            "muscle cramps",
            "nocturnal leg cramps",
            "nocturnal leg cramp",
            "foot cramp",
            "foot cramps",
            "thigh cramp",
            "thigh cramps",
            "leg spasm",
            "leg spasms",
            "calf spasm",
            "calf spasms",
            "spasm of calf",
            "charley horse",
        ],
        "purpose": "E1, E2, M1, S1, L1, P1, V1: leg cramps (active condition). In scope: cramp "
        "or spasm of the leg, calf, thigh or foot, nocturnal or sleep-related leg cramps, and "
        "unspecified muscle cramp (SNOMED 55300003 'Cramp', 424647005 'Cramp in limb', "
        "90392009 'Nocturnal muscle spasm', ICD-10-CM R25.2 'Cramp and spasm'). Never spasm of "
        "the back, neck, trunk, abdomen, bladder or another site: generic 'Spasm' (45352006), "
        "back spasm (203095000, M62.830) and other muscle spasm (M62.838) are left out, and a "
        "name that mentions such a site does not match by text.",
        "notes": [
            "Leg-only in SNOMED rests on 449918009, 102549009 and 90392009, with 55300003 and "
            "424647005 as unspecified cramp; no verified SNOMED concept for calf, foot or thigh "
            "cramp was found (449917004 is unverified and not added). A thigh or foot spasm "
            "coded only M62.838 matches by its name alone ('thigh cramp', 'leg spasm').",
            "There is no text term 'muscle spasm': the matcher also reads coding displays, and "
            "'Muscle spasm of back' (M62.830) or 'Muscle spasm of head and/or neck' (95418008) "
            "would match it by display.",
        ],
    },
    "ferritin": {
        "title": "Ferritin, serum or plasma",
        "observation": "ferritin",
        "canonical_unit": "ug/L",
        "units": {"ng/mL": ("ng/mL", "ug/L"),
                  "pmol/L": [("ng/mL", "pmol/L"), ("ng/mL", "ug/L")]},
        "purpose": "R1 rls-iron-studies-due, R2 rls-iron-low: ferritin in ug/L (= ng/mL).",
        "notes": [
            "pmol/L is converted with 1 ng/mL = 2.247 pmol/L (the reference's factor, checked "
            "with the search tool against Camaschella's iron-status table, "
            "https://pmc.ncbi.nlm.nih.gov/articles/PMC3934467/table/T1: ferritin ng/mL x "
            "2.247 = pmol/L); the clinical review found a pmol/L ferritin dropped silently.",
        ],
    },
    "transferrin-saturation": {
        "title": "Transferrin (iron) saturation",
        "observation": "transferrin_saturation",
        "canonical_unit": "%",
        "units": {"1": ("fraction (0-1)", "%"), "{ratio}": ("fraction (0-1)", "%")},
        "conversions_left_out": {
            ("serum iron + TIBC", "TSAT %"): "a formula over two results, not a unit "
            "conversion; R2 computes it from serum-iron and tibc of one draw",
        },
        "purpose": "R1 rls-iron-studies-due, R2 rls-iron-low: transferrin saturation in %; a "
        "0-1 fraction (UCUM '1' or '{ratio}') is multiplied by 100.",
    },
    "serum-iron": {
        "title": "Iron, serum or plasma",
        "observation": "serum_iron",
        "canonical_unit": "ug/dL",
        "units": {"umol/L": ("ug/dL", "umol/L")},
        "purpose": "R2 rls-iron-low: serum iron, with TIBC of the same draw, gives transferrin "
        "saturation when it is not reported.",
    },
    "tibc": {
        "title": "Total iron binding capacity",
        "observation": "tibc",
        "canonical_unit": "ug/dL",
        "units": {"umol/L": ("ug/dL", "umol/L")},
        "purpose": "R2 rls-iron-low: TIBC, with serum iron of the same draw, gives transferrin "
        "saturation when it is not reported.",
    },
    "potassium": {
        "title": "Potassium, serum, plasma or blood (steady state)",
        "observation": "potassium",
        "canonical_unit": "mmol/L",
        "units": {"meq/L": ("meq/L", "mmol/L"), "mg/dL": ("mg/dL", "mmol/L")},
        "exclude_codes": [
            (LOINC, "51618-7", "pre-dialysis potassium: must not drive steady-state "
             "hypokalemia rules (reference pitfall)"),
            (LOINC, "29349-8", "post-dialysis potassium: must not drive steady-state "
             "hypokalemia rules (reference pitfall)"),
        ],
        "purpose": "E1 cramps-electrolytes-abnormal, E2 diuretic-electrolytes-due: potassium "
        "in mmol/L.",
    },
    "magnesium": {
        "title": "Magnesium, serum or plasma",
        "observation": "magnesium",
        "canonical_unit": "mmol/L",
        "units": {"mg/dL": ("mg/dL", "mmol/L"), "meq/L": ("mmol/L", "meq/L")},
        "exclude_codes": [
            (LOINC, "2597-3", "red blood cell magnesium: not a serum value (reference note)"),
        ],
        "conversions_left_out": {
            ("mg/dL", "meq/L"): "not needed: meq/L converts to mmol/L directly (x 0.5); "
            "consistent with 0.4114 x 2",
        },
        "purpose": "E1 cramps-electrolytes-abnormal, E2 diuretic-electrolytes-due: magnesium "
        "in mmol/L (normalised by unit, never by LOINC code: 2601-3 may arrive in meq/L).",
    },
    "calcium-ionized": {
        "title": "Calcium, ionised (free), blood, serum or plasma",
        "observation": "calcium_ionized",
        "canonical_unit": "mmol/L",
        "units": {"mg/dL": ("mg/dL", "mmol/L")},
        "purpose": "E1 cramps-electrolytes-abnormal: a recent ionised calcium is what calcium "
        "is judged on (it needs no correction for albumin).",
        "notes": [
            "mg/dL -> mmol/L x 0.2495 is 10 / 40.08 (the molar mass of calcium), the same "
            "factor as for total calcium.",
        ],
    },
    "albumin": {
        "title": "Albumin, serum or plasma",
        "observation": "albumin",
        "canonical_unit": "g/dL",
        "units": {"g/L": ("g/dL", "g/L")},
        "purpose": "E1 cramps-electrolytes-abnormal: total calcium is corrected for an albumin "
        "drawn within 2 days of it (corrected = total + 0.8 x (4.0 - albumin g/dL), mg/dL).",
    },
    "calcium-total": {
        "title": "Calcium, total, serum or plasma",
        "observation": "calcium_total",
        "canonical_unit": "mmol/L",
        "units": {"mg/dL": ("mg/dL", "mmol/L"), "meq/L": ("mmol/L", "meq/L")},
        "conversions_left_out": {
            ("total Ca + albumin", "albumin-corrected Ca (mg/dL)"): "a formula over two "
            "results, not a unit conversion",
        },
        "purpose": "E1 cramps-electrolytes-abnormal: total calcium in mmol/L.",
        "notes": [
            "29265-6 is albumin-corrected calcium; it is kept (the reference lists it under "
            "total calcium and its reference interval is the total calcium one), so the most "
            "recent of total and corrected calcium is the one compared.",
        ],
    },
    "dopaminergic-drugs": {
        "title": "Dopaminergic drugs: levodopa and dopamine agonists",
        "medication_groups": ["dopaminergic", "dopamine_agonist"],
        "left_out_medications": {
            "carbidopa": "carbidopa alone (group dopaminergic_adjunct) is a dopa-decarboxylase "
            "inhibitor with no dopaminergic effect of its own: it does not cause RLS "
            "augmentation, so a carbidopa-only order is not a dopaminergic order for D1. "
            "Carbidopa/levodopa products match through levodopa (ingredient 6375 and the "
            "names 'carbidopa/levodopa', 'carbidopa-levodopa', 'Sinemet', 'Rytary').",
        },
        "purpose": "D1 rls-dopaminergic-augmentation: a dopaminergic order (levodopa, "
        "pramipexole, ropinirole, rotigotine), told apart from the alpha-2-delta ligands that "
        "rls-drugs also holds.",
        "notes": [
            "The bare text term 'carbidopa' is not in the set (carbidopa is left out), so "
            "'carbidopa 25 MG Oral Tablet' or 'Lodosyn' does not match; a carbidopa/levodopa "
            "name matches by 'levodopa' or the combination terms.",
        ],
    },
    "alpha2delta-ligands": {
        "title": "Alpha-2-delta ligands: gabapentin, gabapentin enacarbil, pregabalin",
        "medication_groups": ["alpha2delta_ligand"],
        "public_sets": ["gabapentinoid-medications-derived.json"],
        "purpose": "D1 rls-dopaminergic-augmentation (first-line alternative the card "
        "suggests; an order already in place) and S1 esrd-cramps-gabapentin: gabapentin, "
        "gabapentin enacarbil or pregabalin.",
        "notes": [
            "Gabapentin enacarbil (Horizant) is a distinct RxNorm ingredient from gabapentin "
            "(25480); its ingredient code is not verified in the reference (left out below). "
            "Its two verified SCDs (1101338, 1482820) and its names ('gabapentin enacarbil', "
            "'horizant') are in the set.",
        ],
    },
    "dopamine-blockers": {
        "title": "Dopamine-blocking drugs for RLS: antipsychotics and dopamine-blocking "
        "antiemetics",
        "medication_groups": ["antipsychotic_dopamine_blocker", "antiemetic_dopamine_blocker"],
        "public_sets": ["antipsychotic-medications-derived.json"],
        "purpose": "A1 rls-dopamine-antagonist: an antipsychotic or a dopamine-blocking "
        "antiemetic (metoclopramide, prochlorperazine, promethazine, droperidol, "
        "trimethobenzamide) ordered or active with restless legs.",
        "notes": [
            "Lurasidone, asenapine, cariprazine and lumateperone have no verified ingredient "
            "code (left out below); their verified products (SCDs) and names are in the set.",
            "Metoclopramide products come from the sandbox's RxNorm list (the reference has "
            "none verified).",
            "The dopamine-blocking antiemetics (reference group antiemetic_dopamine_blocker) "
            "joined with the safety-gates issue: A1 covers every antiemetic that blocks "
            "dopamine D2 receptors, not metoclopramide alone.",
        ],
    },
    "diuretics": {
        "title": "Diuretics: loop, thiazide, thiazide-like and potassium-sparing",
        "medication_groups": [
            "loop_diuretic",
            "thiazide_diuretic",
            "thiazide_like_diuretic",
            "potassium_sparing_diuretic",
        ],
        "exclude_codes": [(ATC, "G01AE10", HCTZ_G01AE10)],
        "purpose": "M1 cramps-contributing-medications: any active diuretic, potassium-sparing "
        "included (the rule reviews all diuretics as a possible cause of cramps). Not for "
        "hypokalemia-risk logic: E2 uses loop-thiazide-diuretics, which leaves "
        "spironolactone alone out.",
        "notes": [
            "Spironolactone (potassium-sparing, RxNorm IN 9997) is a member here on purpose; "
            "the reference pitfall against one 'diuretic' bucket is about potassium-lowering "
            "logic, which this set is not for.",
            "The reference's potassium-sparing group holds spironolactone only: amiloride, "
            "triamterene and eplerenone alone are not members (not in the reference). Their "
            "combinations with furosemide or hydrochlorothiazide match through that "
            "ingredient.",
        ],
    },
    "statins": {
        "title": "Statins (HMG-CoA reductase inhibitors)",
        "medication_groups": ["statin"],
        "purpose": "M1 cramps-contributing-medications: any active statin.",
        "notes": [
            "Pitavastatin carries only the class-level ATC C10AA (HMG CoA reductase "
            "inhibitors); every C10AA code is a statin, so it is kept.",
            "Combination ATC codes of simvastatin (A10BH51 with sitagliptin, C10BA02 with "
            "ezetimibe, C10BA04 with fenofibrate, C10BX01/C10BX04 with acetylsalicylic acid) "
            "are kept: each product contains a statin.",
        ],
    },
    "beta-blockers": {
        "title": "Beta-blockers (systemic products)",
        "medication_groups": ["beta_blocker"],
        "exclude_forms": {
            "Ophthalmic": "an eye-drop product: topical ophthalmic beta-blockers are not the "
            "systemic beta-blocker that M1 means (little systemic effect)",
        },
        "exclude_codes": [
            (ATC, "S01ED01", "ATC S01ED01 is timolol as an ophthalmological (eye drops); "
             "topical ophthalmic beta-blockers have little systemic effect. Systemic timolol "
             "keeps C07AA06"),
            (ATC, "S01ED02", "ATC S01ED02 is betaxolol as an ophthalmological (eye drops); "
             "topical ophthalmic beta-blockers have little systemic effect. Systemic betaxolol "
             "keeps C07AB05"),
        ],
        "purpose": "M1 cramps-contributing-medications: any active beta-blocker.",
        "notes": [
            "Ophthalmic beta-blockers (timolol, levobunolol, carteolol, metipranolol, "
            "betaxolol drops) are systemic-light. The reference lists no ophthalmic product "
            "codes (its timolol and betaxolol products are oral tablets), so no product code "
            "had to be left out; the two ophthalmic ATC codes (S01ED01, S01ED02) are left out. "
            "The ingredient codes are kept, including those of the eye-drop-only ingredients "
            "carteolol (2116), levobunolol (1813) and metipranolol (10824), and of "
            "intravenous esmolol (49737), as are their names.",
            "Scope: systemic products only. A product whose RxNorm name says 'Ophthalmic' is "
            "left out, and an order named as an eye drop ('timolol ... Ophthalmic Solution') "
            "does not match by name (out-of-scope word). An eye-drop order coded only by the "
            "ingredient (timolol 10600) still matches: the ingredient code cannot tell the "
            "dose form or route.",
            "Combination products of a beta-blocker with a thiazide (e.g. metoprolol / "
            "hydrochlorothiazide, atenolol / chlorthalidone, bisoprolol / "
            "hydrochlorothiazide) are members here and in diuretics.",
        ],
    },
    "baclofen": {
        "title": "Baclofen, any product",
        "medications": ["baclofen"],
        "purpose": "L1 cirrhosis-cramps-baclofen: a baclofen order or active baclofen (the "
        "card's suggested treatment, already in place).",
        "notes": [
            "Baclofen products come from the sandbox's RxNorm list (the reference has none "
            "verified); intrathecal baclofen is not in that list and matches by name.",
        ],
    },
    "esrd": {
        "title": "End-stage renal disease / chronic kidney disease stage 5",
        "conditions": ["esrd"],
        "icd10cm_prefixes": [
            ("N18.6", "esrd", "N18.6 (ESRD)"),
            ("N18.5", "esrd", "N18.5 (CKD stage 5)"),
        ],
        "text_terms": [
            "end stage renal disease",
            "end-stage renal disease",
            "end stage kidney disease",
            "end-stage kidney disease",
            "end stage renal failure",
            "end-stage renal failure",
            "esrd",
            "chronic kidney disease stage 5",
            "chronic kidney disease, stage 5",
            "ckd stage 5",
        ],
        "purpose": "S1 esrd-cramps-gabapentin: ESRD or CKD stage 5 (dialysis dependence is "
        "the value set dialysis).",
        "notes": [
            "236436003 'End stage renal failure with renal transplant' is kept (a member of "
            "VSAC End Stage Renal Disease): it is ESRD by code, but a patient with a working "
            "graft may have a near-normal GFR; a rule that adjusts doses should look at eGFR.",
        ],
    },
    "dialysis": {
        "title": "Dependence on renal dialysis (current)",
        "conditions": ["dialysis_dependence"],
        "icd10cm_prefixes": [("Z99.2", "dialysis_dependence", "Z99.2")],
        "icd10cm_rules_left_out": [
            (
                "dialysis_dependence",
                "(encounter codes Z49.- are for dialysis encounters/catheter care, optional)",
                "Z49 codes describe an encounter (dialysis session, catheter care), not the "
                "patient's standing condition; Z99.2 is the status code, and the reference "
                "makes Z49 optional.",
            ),
        ],
        "exclude_codes": [
            (SNOMED, "161693006", "'History of renal dialysis' is past dialysis, not current "
             "dependence (reference pitfall: use 428982002 / 236435004 / Z99.2)"),
        ],
        "text_terms": [
            "dependence on renal dialysis",
            "dependence on dialysis",
            "dependence on hemodialysis",
            "dependence on haemodialysis",
            "dependence on peritoneal dialysis",
            "dialysis dependence",
            "dialysis dependent",
            "dialysis-dependent",
        ],
        "purpose": "S1 esrd-cramps-gabapentin: current dependence on dialysis.",
        "notes": [
            "There is no bare text term 'dialysis': the display of the left-out history code "
            "('History of renal dialysis') would match it, and a coded history condition "
            "whose code is not here must not match by its display.",
        ],
    },
    "cirrhosis": {
        "title": "Cirrhosis of the liver",
        "conditions": ["cirrhosis_liver_disease"],
        "icd10cm_prefixes": [
            ("K74.6", "cirrhosis_liver_disease",
             "K74.6- (K74.60, K74.69 other/unspecified cirrhosis)"),
            ("K70.3", "cirrhosis_liver_disease", "K70.3- (alcoholic cirrhosis K70.30/K70.31)"),
            ("K74.3", "cirrhosis_liver_disease", "K74.3-K74.5 (biliary cirrhosis)"),
            ("K74.4", "cirrhosis_liver_disease", "K74.3-K74.5 (biliary cirrhosis)"),
            ("K74.5", "cirrhosis_liver_disease", "K74.3-K74.5 (biliary cirrhosis)"),
        ],
        "icd10cm_rules_left_out": [
            (
                "cirrhosis_liver_disease",
                "K70-K77 broader liver disease",
                "L1 is about cirrhosis; K70-K77 also holds fatty liver (K70.0, K76.0), "
                "hepatitis, toxic liver disease and liver abscess. Only the cirrhosis "
                "categories are prefixes.",
            ),
        ],
        "exclude_codes": _not_cirrhosis(),
        "text_terms": [
            "cirrhosis of liver",
            "cirrhosis of the liver",
            "liver cirrhosis",
            "hepatic cirrhosis",
            "alcoholic cirrhosis",
            "biliary cirrhosis",
            "primary biliary cholangitis",
        ],
        "purpose": "L1 cirrhosis-cramps-baclofen: cirrhosis of the liver. The reference "
        "concept is 'cirrhosis / chronic liver disease'; this set keeps only the codes that "
        "assert cirrhosis.",
        "notes": [
            "The reference concept copies the VSAC 'Chronic Liver Disease' expansion, which "
            "also holds chronic hepatitis, fatty liver, fibrosis, sclerosing cholangitis, "
            "metabolic liver disease and complications such as portal hypertension. Those "
            "members are left out one by one (see left_out, grouped by reason); kept are the "
            "members whose display names cirrhosis, K71.7 (toxic liver disease with fibrosis "
            "and cirrhosis) and 31712002 primary biliary cholangitis (the current name of "
            "primary biliary cirrhosis, ICD-10-CM K74.3).",
            "Each prefix has verified member codes under it in the reference (K74.60, K74.69; "
            "K70.30, K70.31; K74.3; K74.4; K74.5).",
        ],
    },
    "pad": {
        "title": "Peripheral artery disease of the extremities",
        "conditions": ["peripheral_artery_disease"],
        "icd10cm_prefixes": [
            ("I73.9", "peripheral_artery_disease", "I73.9"),
            ("I70.2", "peripheral_artery_disease",
             "I70.2- (atherosclerosis of native arteries of extremities; I70.20x-I70.29x)"),
            *[
                (prefix, "peripheral_artery_disease",
                 "I70.3-I70.7 (bypass graft atherosclerosis of extremities)")
                for prefix in ("I70.3", "I70.4", "I70.5", "I70.6", "I70.7")
            ],
            ("I70.92", "peripheral_artery_disease",
             "I70.92 (chronic total occlusion of artery of extremities)"),
        ],
        "text_terms": [
            "peripheral arterial disease",
            "peripheral artery disease",
            "peripheral arterial occlusive disease",
            "peripheral vascular disease",
            "intermittent claudication",
            "atherosclerosis of native arteries of extremities",
            "atherosclerosis of native arteries of the extremities",
            "atherosclerosis of arteries of the extremities",
        ],
        "purpose": "P1 pad-claudication-exercise: peripheral artery disease of the legs "
        "(including intermittent claudication).",
        "notes": [
            "The range I70.3-I70.7 of the reference is expanded to one prefix per category "
            "(I70.3, I70.4, I70.5, I70.6, I70.7: atherosclerosis of bypass grafts of the "
            "extremities). I70.0 (aorta), I70.1 (renal artery), I70.8 and I70.90/I70.91 are "
            "not prefixes.",
            "There is no bare text term 'claudication': neurogenic claudication (spinal "
            "stenosis) is not PAD. Only 'intermittent claudication' is a term.",
        ],
    },
    "diabetes": {
        "title": "Diabetes mellitus (not diabetes in pregnancy, O24)",
        "conditions": ["diabetes_mellitus"],
        "icd10cm_prefixes": [
            ("E10", "diabetes_mellitus", "E10 (type 1)"),
            ("E11", "diabetes_mellitus", "E11 (type 2)"),
            ("E13", "diabetes_mellitus",
             "E13 (other specified); exclude O24 unless pregnancy rules"),
            ("E08", "diabetes_mellitus", "E08/E09 (secondary/drug-induced)"),
            ("E09", "diabetes_mellitus", "E08/E09 (secondary/drug-induced)"),
        ],
        "text_terms": [
            "type 1 diabetes",
            "type 2 diabetes",
            "type i diabetes",
            "type ii diabetes",
            "diabetes mellitus type 1",
            "diabetes mellitus type 2",
            "diabetes type 1",
            "diabetes type 2",
            "t1dm",
            "t2dm",
        ],
        "purpose": "V1 diabetes-spasm-b6: diabetes mellitus (type 1, type 2, other specified, "
        "secondary or drug-induced).",
        "notes": [
            "O24 (diabetes in pregnancy, childbirth and the puerperium, including gestational "
            "diabetes O24.4) is never a prefix: V1 is not a pregnancy rule and the reference "
            "excludes O24 unless a rule is about pregnancy.",
            "There is no bare text term 'diabetes' or 'diabetes mellitus': 'Gestational "
            "diabetes mellitus', 'Family history of diabetes mellitus' and 'Screening for "
            "diabetes mellitus' would match it. A condition with only the text 'Diabetes "
            "mellitus' and no code does not match; coded ones match by code. An O24.1- "
            "condition named 'Pre-existing type 2 diabetes mellitus, in pregnancy' matches by "
            "name ('type 2 diabetes'), which is right: the patient has type 2 diabetes.",
        ],
    },
    "vitamin-b6": {
        "title": "Vitamin B6 (pyridoxal 5'-phosphate, pyridoxine), serum or plasma",
        "observation": "vitamin_b6",
        "canonical_unit": "nmol/L",
        "units": {
            "ug/L": ("ug/L", "nmol/L"),
            "ng/mL": [("ng/mL", "ug/L"), ("ug/L", "nmol/L")],
        },
        "purpose": "V1 diabetes-spasm-b6: whether a vitamin B6 result exists in the lookback; "
        "values in nmol/L.",
        "notes": [
            "30552-4 is kept: the reference marks it verified-in-source at the same level as "
            "62236-5 (code exists, LOINC COMPONENT 'Pyridoxal phosphate'), but its property "
            "(mass or moles) is unverified. Values are normalised by their UCUM unit, never by "
            "LOINC code, so an unverified property cannot scale a value wrongly.",
            "The factor 4.046 is for pyridoxal 5'-phosphate (247.14 g/mol). 39786-9 is "
            "pyridoxine [Moles/volume] and arrives in nmol/L; a pyridoxine result in a mass "
            "unit would need another factor (pyridoxine 169.18 g/mol) and would be "
            "mis-scaled. V1 only asks whether a result exists, so it does not compare values.",
            "No text terms: lab value sets in this project match by LOINC code only. The "
            "reference suggests also matching text ('B6', 'pyridoxal', 'PLP') for local lab "
            "codes; that is not done here, so a B6 result with only a local code is not "
            "recognised and V1 may suggest a test that was done (an info card, not silence).",
        ],
    },
    "pregnancy": {
        "title": "Pregnancy (current)",
        "conditions": ["pregnancy"],
        # Restless legs in pregnancy is a pregnancy too: the RLS set holds it, and a gate must
        # see the pregnancy in it even when it is sent by code alone.
        "condition_codes": [("restless_legs_syndrome", SNOMED, "1052284009")],
        "icd10cm_prefixes": [
            ("O", "pregnancy", "O00-O9A (chapter 15, pregnancy/childbirth/puerperium)"),
            ("Z33.1", "pregnancy", "Z33.1 (pregnant state, incidental)"),
            ("Z34", "pregnancy", "Z34.- (supervision of normal pregnancy)"),
            ("Z3A", "pregnancy", "Z3A.- (weeks of gestation)"),
        ],
        "verified_additions": [
            _added(SNOMED, "72892002", "Normal pregnancy", "core",
                   "Synthea R4 charts in shared/data/synthea-r4 (Condition.code display "
                   "'Normal pregnancy')",
                   f"{CANVAS}canvas_sdk/value_set/v2022/condition.py (VSAC eCQM value sets, "
                   "2022 expansion) VS 'Pregnancy' 2.16.840.1.113883.3.526.3.378"),
        ],
        "text_terms": ["pregnancy", "pregnant"],
        "out_of_scope_words": ["history", "h/o", "possible", "not", "test", "screening",
                               "prevention", "unwanted"],
        "purpose": "Safety gates of D1 and S1 (no gabapentinoid suggestion in pregnancy) and of "
        "R2: an active pregnancy condition, within the rule's recency window.",
        "notes": [
            "Chapter-15 (O) codes and 'Normal pregnancy' stand for pregnancy only while the "
            "episode lasts: a rule counts them while clinically active and within its window "
            "from onset, never from a resolved condition.",
            "A positive pregnancy test is the value set pregnancy-test.",
        ],
    },
    "egfr": {
        "title": "Estimated glomerular filtration rate (eGFR)",
        "observation": "egfr",
        "canonical_unit": "mL/min/{1.73_m2}",
        "exclude_codes": [
            (LOINC, "48643-1", "the MDRD estimate 'among blacks' is one of two values a "
             "race-specific report gives for one draw; the higher one. A safety gate reads the "
             "lower, race-free or non-race value, so it never misses reduced kidney function"),
            (LOINC, "88293-6", "the CKD-EPI estimate 'among blacks' (the higher of a "
             "race-specific pair); left out for the same reason"),
        ],
        "same_quantity_units": {
            "mL/min": "every eGFR code of this set is a rate per 1.73 m2 by its LOINC "
            "definition; Synthea R4 charts (shared/data/synthea-r4) report LOINC 33914-3 with "
            "the unit 'mL/min'. Reading it as mL/min/1.73 m2 follows the code; a rule never "
            "takes a creatinine clearance (mL/min) for it, because only eGFR codes are here.",
        },
        "purpose": "Kidney-function gates of D1, S1, L1 and Q1's text: eGFR below 60 or 30 "
        "mL/min/1.73 m2 (KDIGO G3 and G4 bands) changes what the card may suggest.",
    },
    "ckd-stage-3": {
        "title": "Chronic kidney disease stage 3 (3a, 3b)",
        "conditions": [],
        "verified_additions": [
            _added(SNOMED, "433144002", "Chronic kidney disease stage 3", "core",
                   SEEN_IN_PUBLIC_CODE),
            _added(SNOMED, "700378005", "Chronic kidney disease stage 3A", "core",
                   SEEN_IN_PUBLIC_CODE),
            _added(SNOMED, "700379002", "Chronic kidney disease stage 3B", "core",
                   SEEN_IN_PUBLIC_CODE),
        ],
        "icd10cm_prefixes_added": [("N18.3", "CKD stage 3, 3a, 3b (N18.30-N18.32)",
                                    CMS_TITLES)],
        "text_terms": ["chronic kidney disease stage 3", "chronic kidney disease, stage 3",
                       "ckd stage 3", "ckd 3a", "ckd 3b"],
        "out_of_scope_words": ["history"],
        "purpose": "Kidney-function gates: CKD stage 3 stands for an eGFR of 30-59 when no "
        "recent eGFR says more (KDIGO G3).",
    },
    "ckd-stage-4": {
        "title": "Chronic kidney disease stage 4",
        "conditions": [],
        "verified_additions": [
            _added(SNOMED, "431857002", "Chronic kidney disease stage 4", "core",
                   SEEN_IN_PUBLIC_CODE),
        ],
        "icd10cm_prefixes_added": [("N18.4", "CKD stage 4 (severe)", CMS_TITLES)],
        "text_terms": ["chronic kidney disease stage 4", "chronic kidney disease, stage 4",
                       "ckd stage 4"],
        "out_of_scope_words": ["history"],
        "purpose": "Kidney-function gates: CKD stage 4 stands for an eGFR of 15-29 (KDIGO G4).",
    },
    "copd": {
        "title": "Chronic obstructive pulmonary disease, emphysema, chronic bronchitis",
        "conditions": [],
        "verified_additions": [
            _added(SNOMED, "13645005", "Chronic obstructive lung disease", "core",
                   SEEN_IN_PUBLIC_CODE),
            _added(SNOMED, "185086009", "Chronic obstructive bronchitis", "core", SYNTHEA),
        ],
        "icd10cm_prefixes_added": [
            ("J44", "COPD (J44.0, J44.1, J44.9)", CMS_TITLES),
            ("J43", "emphysema (J43.0-J43.9)", CMS_TITLES),
            ("J41", "simple and mucopurulent chronic bronchitis", CMS_TITLES),
            ("J42", "unspecified chronic bronchitis", CMS_TITLES),
        ],
        "text_terms": ["chronic obstructive", "copd", "emphysema", "chronic bronchitis"],
        "out_of_scope_words": ["history", "screening"],
        "purpose": "Breathing-risk warning of D1 and S1: the FDA (2019) names COPD and other "
        "conditions that reduce lung function among the risk factors with gabapentinoids. "
        "Chronic bronchitis and emphysema are in on purpose: the gate only adds a warning.",
    },
    "hyperthyroidism": {
        "title": "Hyperthyroidism / thyrotoxicosis",
        "conditions": [],
        "icd10cm_prefixes_added": [("E05", "thyrotoxicosis (E05.00-E05.91)", CMS_TITLES)],
        "text_terms": ["hyperthyroidism", "thyrotoxicosis", "graves disease",
                       "graves' disease", "toxic goiter", "toxic multinodular goiter"],
        "out_of_scope_words": ["history"],
        "purpose": "C5 cyclobenzaprine-contraindication: hyperthyroidism is a labelled "
        "contraindication.",
        "notes": [
            "No SNOMED CT code was verified in time; a SNOMED-coded condition matches by its "
            "display ('Hyperthyroidism', 'Thyrotoxicosis').",
        ],
    },
    "myocardial-infarction": {
        "title": "Acute myocardial infarction",
        "conditions": [],
        "verified_additions": [
            _added(SNOMED, "22298006", "Myocardial infarction", "core", SYNTHEA,
                   SEEN_IN_PUBLIC_CODE),
            _added(SNOMED, "401314000", "Acute non-ST segment elevation myocardial infarction",
                   "core", "Synthea R4 charts in shared/data/synthea-r4-v3 (Condition.code)"),
        ],
        "icd10cm_prefixes_added": [
            ("I21", "acute myocardial infarction (within 4 weeks of onset by ICD-10-CM's "
             "convention)", CMS_TITLES),
            ("I22", "subsequent myocardial infarction", CMS_TITLES),
        ],
        "text_terms": ["myocardial infarction", "heart attack", "stemi", "nstemi"],
        "out_of_scope_words": ["history", "old", "h/o", "risk", "screening"],
        "purpose": "C5 cyclobenzaprine-contraindication: the acute recovery phase after a "
        "myocardial infarction (the rule applies its window from onset).",
        "notes": [
            "'History of myocardial infarction' (399211009) and old MI (I25.2) are not members: "
            "a past infarction is not the acute recovery phase.",
        ],
    },
    "arrhythmia-conduction": {
        "title": "Cardiac arrhythmias, heart block and conduction disturbances",
        "conditions": [],
        "verified_additions": [
            _added(SNOMED, "49436004", "Atrial fibrillation", "core", SYNTHEA,
                   SEEN_IN_PUBLIC_CODE),
        ],
        "icd10cm_prefixes_added": [
            ("I44", "atrioventricular and left bundle-branch block", CMS_TITLES),
            ("I45", "other conduction disorders (right bundle-branch, bi- and trifascicular "
             "block, pre-excitation, long QT)", CMS_TITLES),
            ("I47", "paroxysmal tachycardia", CMS_TITLES),
            ("I48", "atrial fibrillation and flutter", CMS_TITLES),
            ("I49", "other cardiac arrhythmias", CMS_TITLES),
        ],
        "text_terms": ["arrhythmia", "dysrhythmia", "atrial fibrillation", "atrial flutter",
                       "ventricular tachycardia", "supraventricular tachycardia",
                       "ventricular fibrillation", "heart block", "atrioventricular block",
                       "av block", "bundle branch block", "bundle-branch block",
                       "fascicular block", "conduction disorder", "long qt",
                       "sick sinus"],
        "out_of_scope_words": ["history", "screening", "risk", "sinus arrhythmia"],
        "purpose": "C5 cyclobenzaprine-contraindication: arrhythmias, heart block or conduction "
        "disturbances are labelled contraindications.",
        "notes": [
            "Sinus arrhythmia (respiratory sinus arrhythmia) is a normal variation, not the "
            "arrhythmia the label means: a name with it never matches.",
        ],
    },
    "heart-failure": {
        "title": "Heart failure",
        "conditions": [],
        "verified_additions": [
            _added(SNOMED, "84114007", "Heart failure", "core", SEEN_IN_PUBLIC_CODE),
            _added(SNOMED, "88805009", "Chronic congestive heart failure", "core", SYNTHEA),
        ],
        "icd10cm_prefixes_added": [
            ("I50", "heart failure", CMS_TITLES),
            ("I11.0", "hypertensive heart disease with heart failure", CMS_TITLES),
            ("I13.0", "hypertensive heart and chronic kidney disease with heart failure",
             CMS_TITLES),
            ("I13.2", "hypertensive heart and chronic kidney disease with heart failure and "
             "ESRD", CMS_TITLES),
            ("I09.81", "rheumatic heart failure", CMS_TITLES),
        ],
        "text_terms": ["heart failure", "cardiac failure"],
        "out_of_scope_words": ["history", "screening", "risk"],
        "purpose": "C5 cyclobenzaprine-contraindication: congestive heart failure is a "
        "labelled contraindication.",
    },
    "cns-depressants": {
        "title": "Other CNS depressants: Z-drug hypnotics and barbiturates",
        "added_ingredients": CNS_ADDED,
        "purpose": "Breathing-risk warning of D1 and S1 (FDA 2019: gabapentinoids with other "
        "CNS depressants). Opioids and benzodiazepines are their own value sets.",
    },
    "mao-inhibitors": {
        "title": "Monoamine oxidase inhibitors",
        "added_ingredients": MAOI_ADDED,
        "single_ingredient_only": {
            "terms": ["methylene blue"],
            "reason": "a urinary antiseptic combination with a few milligrams of methylene blue "
            "(methenamine, sodium phosphate, phenyl salicylate, hyoscyamine) is not the "
            "MAO-inhibiting dose; methylene blue alone (the intravenous product) is a member",
        },
        "exclude_forms": {
            "Methenamine": "the methenamine urinary antiseptic combinations: a name with it "
            "never matches by text either, so one sent by name alone is not taken for an MAO "
            "inhibitor",
        },
        "purpose": "C5 cyclobenzaprine-contraindication: an MAO inhibitor active or stopped "
        "within 14 days (label contraindication; critical).",
        "notes": [
            "Linezolid and methylene blue are MAO inhibitors by action and are members: the "
            "label's contraindication names MAO inhibitors as a class.",
            "Ingredient codes are verified for phenelzine, isocarboxazid and methylene blue only; "
            "tranylcypromine, selegiline, rasagiline, safinamide and linezolid match by their "
            "products' codes (SCD, SBD and the rest from the sandbox list) and by name.",
        ],
    },
    "sedating-antihistamines": {
        "title": "First-generation (sedating) antihistamines, systemic",
        "added_ingredients": ANTIHISTAMINE_ADDED,
        "exclude_forms": {
            "Topical": "a skin product: little systemic antihistamine effect",
            "Ophthalmic": "an eye product: little systemic antihistamine effect",
        },
        "purpose": "A2 rls-worsening-drugs: sedating antihistamines worsen restless legs. "
        "Promethazine is left to A1 (a dopamine-blocking antiemetic), so it is not here.",
    },
    "serotonergic-antidepressants": {
        "title": "Serotonergic antidepressants: SSRIs, SNRIs, tricyclics, mirtazapine",
        "added_ingredients": SEROTONERGIC_ADDED,
        "exclude_forms": {
            "Topical": "a skin product (doxepin cream): not an antidepressant dose",
        },
        "purpose": "A2 rls-worsening-drugs: serotonergic antidepressants can worsen restless "
        "legs; bupropion is the alternative the card names (not a member).",
    },
    "opioids": {
        "title": "Opioids (systemic)",
        "medication_groups": ["opioid", "opioid_other"],
        "added_ingredients": OPIOID_ADDED,
        "purpose": "Breathing-risk warning of D1 and S1: an active or co-ordered opioid beside "
        "a gabapentinoid suggestion (FDA 2019).",
    },
}


class ReferenceChanged(ValueError):
    """The reference no longer fits a value set's declaration."""


def _code_record(code: Mapping[str, Any], kind: str, rule: str | None = None) -> dict[str, Any]:
    record = {
        "system": code["system"],
        "code": code.get("code"),
        "display": code.get("display"),
        "kind": kind,
        "source": code.get("source"),
    }
    if rule:
        record["rule"] = rule
    return record


class _Collector:
    """Codes and left-out codes of one value set, each (system, code) once, in reference order."""

    def __init__(self, exclude: Iterable[tuple[str, str, str]] = ()):
        self.codes: list[dict[str, Any]] = []
        self.left_out: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()
        self._exclude = {(system, code): reason for system, code, reason in exclude}
        self._excluded: set[tuple[str, str]] = set()

    def add(self, code: Mapping[str, Any], kind: str, rule: str | None = None) -> None:
        system, value = code["system"], code.get("code")
        if value is not None and (system, value) in self._seen:
            return
        record = _code_record(code, kind, rule)
        if value is None:
            self.left_out.append({**record, "reason": f"confidence: {code.get('confidence')}"})
            return
        self._seen.add((system, value))
        if (system, value) in self._exclude:
            self._excluded.add((system, value))
            self.left_out.append({**record, "reason": self._exclude[(system, value)]})
        elif code.get("confidence") != VERIFIED:
            self.left_out.append({**record, "reason": f"confidence: {code.get('confidence')}"})
        else:
            self.codes.append(record)

    def leave_out(self, code: Mapping[str, Any], kind: str, reason: str,
                  rule: str | None = None) -> None:
        """A code of a concept deliberately kept out of the set, listed with the reason (once;
        never when the set already holds it)."""
        system, value = code["system"], code.get("code")
        if value is not None and (system, value) in self._seen:
            return
        if value is not None:
            self._seen.add((system, value))
        if code.get("confidence") != VERIFIED:
            reason = f"{reason}; confidence: {code.get('confidence')}"
        self.left_out.append({**_code_record(code, kind, rule), "reason": reason})

    def name(self, system: str, code: str, name: str) -> bool:
        """Give a code the set already holds its RxNorm name (the reference's display may be
        annotated); False when the set does not hold it."""
        for record in self.codes:
            if (record["system"], record["code"]) == (system, code):
                record.setdefault("name", name)
                return True
        return (system, code) in self._seen

    @property
    def seen(self) -> frozenset[tuple[str, str]]:
        return frozenset(self._seen)

    def check_exclusions(self) -> None:
        missing = sorted(set(self._exclude) - self._excluded)
        if missing:
            raise ReferenceChanged(f"excluded codes no longer in the reference: {missing}")


def _by_id(terminology: Mapping[str, Any], section: str) -> dict[str, Mapping[str, Any]]:
    if section not in terminology:
        raise ReferenceChanged(f"the reference has no '{section}' section")
    return {concept["concept_id"]: concept for concept in terminology[section]}


def _concept(concepts: Mapping[str, Mapping[str, Any]], concept_id: str) -> Mapping[str, Any]:
    if concept_id not in concepts:
        raise ReferenceChanged(f"concept '{concept_id}' is no longer in the reference")
    return concepts[concept_id]


def _add_unique(target: list[str], items: Iterable[str]) -> None:
    """Append the items not yet in `target`; blank items (the reference has an empty note) are
    skipped."""
    target.extend(item for item in items if item.strip() and item not in target)


REFERENCE_FILE = "shared/reference/terminology.json"
SANDBOX_FILE = "shared/reference/rxnorm-sandbox/medication-list.json"
SANDBOX_SOURCE = (
    f"{SANDBOX_FILE}: the official CDS Hooks sandbox's medication list "
    "(github.com/cds-hooks/sandbox src/assets/medication-list.js @ 3b7e255, Apache-2.0)"
)
PUBLIC_DIR = "shared/reference/valuesets-public"
# The shape of an RxNorm name: `<quantity> <ingredient> <strength> / ... <dose form> [<brand>]`,
# and the term type that shape means (RxNorm's own names, see the sandbox list's README).
_BRAND = re.compile(r"\s*\[[^\]]*\]\s*$")
_STRENGTH = re.compile(
    r"\s+\d[\d.,]*\s*(?:MG|MCG|UG|UNT|MEQ|ML|MMOL|GM|G|%|ACTUAT|HR)\b.*$", re.IGNORECASE)
_LEADING_QUANTITY = re.compile(r"^(?:\{\d+\s*\(|\(|\d[\d.,]*\s*(?:ML|HR|ACTUAT)\s+)",
                               re.IGNORECASE)
_FORM_AFTER_STRENGTH = re.compile(
    r"\d[\d.,]*\s*(?:MG|MCG|UG|UNT|MEQ|ML|MMOL|GM|G|%)(?:/[A-Z0-9]+)*\s+[A-Za-z]", re.IGNORECASE)


@dataclass(frozen=True)
class ProductSources:
    """RxNorm products named in public lists, to expand a medication value set beyond the
    reference's ingredients: the official sandbox's medication list (what a sandbox user's
    orders are coded with) and the public CDS value sets (`valuesets-public/`)."""

    sandbox: Mapping[str, str]  # RxCUI -> RxNorm name
    public: Mapping[str, Mapping[str, Any]]  # file name -> document

    @classmethod
    def load(cls, reference_dir: Path) -> ProductSources:
        sandbox_path = reference_dir / "rxnorm-sandbox" / "medication-list.json"
        if not sandbox_path.exists():
            raise ReferenceChanged(f"no sandbox medication list at {sandbox_path}")
        sandbox = json.loads(sandbox_path.read_text(encoding="utf-8"))["cuiToName"]
        public = {path.name: json.loads(path.read_text(encoding="utf-8"))
                  for path in sorted((reference_dir / "valuesets-public").glob("*.json"))}
        return cls(sandbox=sandbox, public=public)


@functools.cache
def default_products() -> ProductSources:
    return ProductSources.load(DEFAULT_TERMINOLOGY.parent)


@functools.cache
def ingredient_names(name: str) -> tuple[str, ...]:
    """The ingredient part of each component of an RxNorm name, lower case:
    'Carbidopa 25 MG / Levodopa 100 MG Oral Tablet [Sinemet]' -> ['carbidopa', 'levodopa']."""
    base = _BRAND.sub("", name).removesuffix(" Pill")
    base = re.sub(r"\)\s*\}?\s*Pack$", "", base)
    names = []
    for part in base.split(" / "):
        part = _LEADING_QUANTITY.sub("", part.strip())
        names.append(_STRENGTH.sub("", part).strip().lower())
    return tuple(names)


def term_type(name: str) -> str:
    """RxNorm's term type, read from the shape of the name: SCD / SBD (drug), SCDC / SBDC
    (component), SCDG / SBDG (dose form group, the sandbox's 'Pill' concepts), GPCK / BPCK."""
    branded = bool(_BRAND.search(name))
    base = _BRAND.sub("", name)
    if base.startswith("{") or base.endswith("Pack"):
        return "BPCK" if branded else "GPCK"
    if base.endswith(" Pill"):
        return "SBDG" if branded else "SCDG"
    has_form = _FORM_AFTER_STRENGTH.search(base.split(" / ")[-1]) is not None
    return ("SBD" if branded else "SCD") if has_form else ("SBDC" if branded else "SCDC")


@functools.cache
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(t.lower()) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?:{alternatives})(?![\w-])")


def _starting_term(name: str, terms: Sequence[str]) -> str | None:
    """The value set term that begins one of the name's ingredients (a whole word), if any:
    'quinine' begins 'quinine sulfate', never 'quinidine gluconate'."""
    if not terms:
        return None
    pattern = _terms_pattern(tuple(terms))
    for ingredient in ingredient_names(name):
        found = pattern.match(ingredient)
        if found:
            return next(t for t in terms if t.lower() == found.group(0))
    return None


def _add_products(collector: _Collector, definition: Mapping[str, Any], terms: Sequence[str],
                  products: ProductSources) -> None:
    """RxNorm products whose name has an ingredient the value set names (its text terms, as
    the first words of an ingredient), from the sandbox list and the declared public sets;
    dose forms the set's scope leaves out, and combinations it says do not count, are listed
    under `left_out` with the reason."""
    exclude_forms: Mapping[str, str] = definition.get("exclude_forms", {})
    single: Mapping[str, Any] = definition.get("single_ingredient_only", {})
    candidates: list[tuple[str, str, str]] = [
        (code, name, SANDBOX_SOURCE) for code, name in products.sandbox.items()]
    for file_name in definition.get("public_sets", ()):
        document = products.public.get(file_name)
        if document is None:
            raise ReferenceChanged(f"public value set {file_name} is no longer in the reference")
        origin = document["source"]
        source = (f"{PUBLIC_DIR}/{file_name}: {origin.get('title', document['name'])} "
                  f"({origin['repo']} @ {origin['commit'][:7]}, {origin['path']})")
        candidates += [(c["code"], c["display"], source) for c in document["codes"]
                       if c.get("system") == RX]
    for code, name, source in sorted(candidates, key=lambda c: (int(c[0]), c[2])):
        term = _starting_term(name, terms)
        if term is None:
            continue
        if collector.name(RX, code, name):
            continue
        record = {"system": RX, "code": code, "display": name, "source": source}
        rule = f"an ingredient of its RxNorm name begins with '{term}'"
        form = next((w for w in exclude_forms if re.search(rf"\b{re.escape(w)}\b", name, re.I)),
                    None)
        if form is not None:
            collector.leave_out(record, term_type(name), exclude_forms[form], rule)
        elif (term in single.get("terms", ()) and len(ingredient_names(name)) > 1
              and _starting_term(name, [t for t in terms if t not in single["terms"]]) is None):
            collector.leave_out(record, term_type(name), single["reason"], rule)
        else:
            collector.add({**record, "confidence": VERIFIED}, term_type(name), rule)


_TERM_TYPES = frozenset({"SCD", "SBD", "SCDC", "SBDC", "SCDF", "SBDF", "SCDG", "SBDG", "GPCK",
                         "BPCK"})


def _reference_kind(code: Mapping[str, Any], kind: str) -> str:
    """A reference product code's RxNorm term type where the reference states it ('BN/MIN'
    for a brand or multiple-ingredient name is a brand name, BN); otherwise the reference's
    own kind (ingredient, product, atc)."""
    kind = kind.removesuffix("_codes")
    stated = str(code.get("tty") or code.get("tty_inferred") or "")
    if kind != "product" or not stated:
        return kind
    if stated.startswith("BN"):
        return "BN"
    return stated if stated in _TERM_TYPES else kind


def _build_medications(definition: Mapping[str, Any], terminology: Mapping[str, Any],
                       products: ProductSources) -> dict:
    medications = _by_id(terminology, "medications")
    selected = [_concept(medications, cid) for cid in definition.get("medications", [])]
    for group in definition.get("medication_groups", []):
        members = [m for m in medications.values() if m.get("group") == group]
        if not members:
            raise ReferenceChanged(f"medication group '{group}' has no concepts in the reference")
        selected.extend(m for m in members if m not in selected)
    collector = _Collector(definition.get("exclude_codes", ()))
    terms: list[str] = []
    notes: list[str] = []
    kinds = ("ingredient_codes", "product_codes", "atc_codes")
    for concept in selected:
        for kind in kinds:
            for code in concept.get(kind, []):
                collector.add(code, _reference_kind(code, kind),
                              f"{kind.removesuffix('_codes')} code of concept "
                              f"'{concept['concept_id']}' ({REFERENCE_FILE})")
        _add_unique(terms, concept.get("text_match_terms", []))
        _add_unique(notes, concept.get("notes", []))
    for concept_id, reason in definition.get("left_out_medications", {}).items():
        concept = _concept(medications, concept_id)
        if concept in selected:
            raise ReferenceChanged(f"concept '{concept_id}' is both selected and left out")
        for kind in kinds:
            for code in concept.get(kind, []):
                collector.leave_out(code, kind.removesuffix("_codes"), reason)
    collector.check_exclusions()
    _add_ingredients(collector, terms, definition.get("added_ingredients", ()))
    for term, reason in definition.get("drop_text_terms", {}).items():
        if term not in terms:
            raise ReferenceChanged(f"text term '{term}' to drop is no longer in the reference")
        terms.remove(term)
        notes.append(reason)
    _add_products(collector, definition, terms, products)
    _add_unique(notes, definition.get("notes", []))
    if any(c["system"] == ATC for c in collector.codes):
        notes.append(ATC_SYSTEM_NOTE)
    built = {
        "codes": collector.codes,
        "text_terms": terms,
        "left_out": collector.left_out,
        "notes": notes,
    }
    if definition.get("exclude_forms"):
        built["out_of_scope_words"] = [w.lower() for w in definition["exclude_forms"]]
    return built


def _add_ingredients(collector: _Collector, terms: list[str],
                     additions: Iterable[Mapping[str, str]]) -> None:
    """Ingredients the reference lacks, declared in `DERIVED`: the name becomes a text term
    (so the sandbox's products named by it join the set), and the RxNorm ingredient code joins
    when it was read in a named source. One the set already holds fails the build."""
    for addition in additions:
        name = addition["name"]
        if name in terms:
            raise ReferenceChanged(f"added ingredient '{name}' is already a term of the set")
        terms.append(name)
        for brand in addition.get("brands", ()):
            _add_unique(terms, [brand])
        if addition.get("code"):
            if not addition.get("source"):
                raise ReferenceChanged(f"added ingredient {name} has a code but no source")
            if (RX, addition["code"]) in collector.seen:
                raise ReferenceChanged(f"added ingredient code {addition['code']} is already "
                                       "in the set: drop it from the declaration")
            collector.add({"system": RX, "code": addition["code"], "display": name,
                           "source": addition["source"], "confidence": VERIFIED},
                          "ingredient", "ingredient added by hand (the reference has no "
                          "concept for it)")


def _icd10cm_prefixes(
    definition: Mapping[str, Any], concepts: Mapping[str, Mapping[str, Any]], notes: list[str]
) -> list[str]:
    """The prefix table, checked against the reference's rule texts, with one note a prefix."""
    used: dict[tuple[str, str], list[str]] = {}
    sources: dict[str, list[str]] = {}
    for prefix, concept_id, rule in definition.get("icd10cm_prefixes", []):
        used.setdefault((concept_id, rule), []).append(prefix)
        sources.setdefault(prefix, []).append(f"{concept_id} match rule '{rule}'")
    left_out = {(cid, rule): reason for cid, rule, reason in definition.get(
        "icd10cm_rules_left_out", [])}
    for concept_id, rule in [*used, *left_out]:
        if concept_id not in definition.get("conditions", []):
            raise ReferenceChanged(f"prefix table names '{concept_id}', not a concept of the set")
        if rule not in _concept(concepts, concept_id).get("icd10cm_match_rules", []):
            raise ReferenceChanged(f"{concept_id} has no ICD-10-CM match rule '{rule}'")
    for concept_id in definition.get("conditions", []):
        for rule in concepts[concept_id].get("icd10cm_match_rules", []):
            if (concept_id, rule) not in used and (concept_id, rule) not in left_out:
                raise ReferenceChanged(f"{concept_id} ICD-10-CM match rule '{rule}' is neither "
                                       "used nor left out")
    for prefix, origins in sources.items():
        notes.append(f"ICD-10-CM prefix {prefix} from {'; '.join(origins)}.")
    for (concept_id, rule), reason in left_out.items():
        notes.append(f"ICD-10-CM match rule '{rule}' ({concept_id}) not used: {reason}")
    added = []
    for prefix, what, where in definition.get("icd10cm_prefixes_added", []):
        if prefix in sources or prefix in added or not where:
            raise ReferenceChanged(f"added ICD-10-CM prefix {prefix} is a duplicate or has no "
                                   "source")
        added.append(prefix)
        notes.append(f"ICD-10-CM prefix {prefix} ({what}) is not a reference match rule: "
                     f"added here, verified in {where}.")
    return [*sources, *added]


def _build_conditions(definition: Mapping[str, Any], terminology: Mapping[str, Any]) -> dict:
    concepts = _by_id(terminology, "conditions")
    collector = _Collector(definition.get("exclude_codes", ()))
    notes: list[str] = []
    for concept_id in definition.get("conditions", []):
        concept = _concept(concepts, concept_id)
        for code in concept.get("codes", []):
            collector.add(code, "core")
        for code in concept.get("value_set_members", []):
            collector.add(code, "value_set_member")
        _add_unique(notes, concept.get("notes", []))
    for concept_id, system, wanted in definition.get("condition_codes", []):
        concept = _concept(concepts, concept_id)
        found = [c for c in concept.get("codes", []) if (c["system"], c.get("code")) == (
            system, wanted)]
        if not found:
            raise ReferenceChanged(f"{concept_id} no longer has code {wanted} ({system})")
        collector.add(found[0], "core")
        _add_unique(notes, concept.get("notes", []))
    collector.check_exclusions()
    _add_verified(collector, definition.get("verified_additions", ()))
    prefixes = _icd10cm_prefixes(definition, concepts, notes)
    _add_unique(notes, definition.get("notes", []))
    built = {
        "codes": collector.codes,
        "icd10cm_prefixes": prefixes,
        "text_terms": list(definition.get("text_terms", [])),
        "left_out": collector.left_out,
        "notes": notes,
    }
    if definition.get("out_of_scope_words"):
        built["out_of_scope_words"] = [w.lower() for w in definition["out_of_scope_words"]]
    return built


def _add_verified(collector: _Collector, additions: Iterable[Mapping[str, str]]) -> None:
    """Codes the reference lacks, declared in `DERIVED` with the source each code and display
    were read in. One the set already holds (the reference gained it) fails the build, so the
    declaration is dropped rather than kept beside the reference's entry."""
    for addition in additions:
        system, code = addition["system"], addition["code"]
        if not addition.get("source") or not addition.get("display"):
            raise ReferenceChanged(f"added code {code} has no source or display")
        if (system, code) in collector.seen:
            raise ReferenceChanged(f"added code {code} ({system}) is already in the set: drop "
                                   "it from the declaration")
        collector.add({**addition, "confidence": VERIFIED}, addition["kind"])


def _four_significant(value: float) -> float:
    return float(f"{value:.4g}")


def _conversion_source(concept_id: str, row: Mapping[str, Any]) -> str:
    text = (
        f"terminology.json observations '{concept_id}' conversion '{row['from']}' -> "
        f"'{row['to']}' x {row['factor']}"
    )
    return f"{text} ({row['note']})" if row.get("note") else text


def _chained_conversion(
    concept_id: str,
    rows: Mapping[tuple[str, str], Mapping[str, Any]],
    unit: str,
    steps: list[tuple[str, str]],
    canonical: str,
) -> dict[str, Any]:
    """A unit the reference converts to the canonical one only through another unit: the
    product of the reference's factors, each step forward (from -> to) or inverted."""
    current, factor, sources, confidences = unit, 1.0, [], []
    for key in steps:
        row = rows.get(key)
        if row is None or not isinstance(row.get("factor"), int | float):
            raise ReferenceChanged(f"{concept_id} has no numeric conversion {key[0]} -> {key[1]}")
        source = _conversion_source(concept_id, row)
        if current == key[0]:
            factor, current = factor * float(row["factor"]), key[1]
        elif current == key[1]:
            factor, current = factor / float(row["factor"]), key[0]
            source = f"inverse of {source}"
        else:
            raise ReferenceChanged(f"{concept_id} conversion {key} does not start from {current}")
        sources.append(source)
        confidences.append(str(row.get("confidence")))
    if current != canonical:
        raise ReferenceChanged(f"{concept_id} conversions from {unit} end at {current}, "
                               f"not {canonical}")
    return {
        "from": unit,
        "to": canonical,
        "factor": _four_significant(factor),
        "confidence": " + ".join(dict.fromkeys(confidences)),
        "source": f"product, to 4 significant digits, of: {'; then '.join(sources)}",
    }


def _unit_conversions(
    definition: Mapping[str, Any], concept_id: str, concept: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    canonical = definition["canonical_unit"]
    rows = {(row["from"], row["to"]): row for row in concept.get("conversions", [])}
    conversions: list[dict[str, Any]] = [
        {"from": canonical, "to": canonical, "factor": 1.0, "confidence": "identity",
         "source": "canonical unit"},
    ]
    used: set[tuple[str, str]] = set()
    for unit, key in definition.get("units", {}).items():
        if isinstance(key, list):
            conversions.append(_chained_conversion(concept_id, rows, unit, key, canonical))
            used.update(key)
            continue
        row = rows.get(key)
        if row is None or not isinstance(row.get("factor"), int | float):
            raise ReferenceChanged(f"{concept_id} has no numeric conversion {key[0]} -> {key[1]}")
        used.add(key)
        source = _conversion_source(concept_id, row)
        if key[1] == canonical:
            factor = float(row["factor"])
        elif key[0] == canonical:
            factor = _four_significant(1 / float(row["factor"]))
            source = f"inverse of {source}, to 4 significant digits"
        else:
            raise ReferenceChanged(f"{concept_id} conversion {key} does not involve {canonical}")
        if unit not in key:
            label = key[0] if key[1] == canonical else key[1]
            source = f"UCUM '{unit}' read as '{label}': {source}"
        conversions.append({"from": unit, "to": canonical, "factor": factor,
                            "confidence": row.get("confidence"), "source": source})
    for unit, reason in definition.get("same_quantity_units", {}).items():
        conversions.append({"from": unit, "to": canonical, "factor": 1.0,
                            "confidence": "same quantity by the code's definition",
                            "source": reason})
    not_used = definition.get("conversions_left_out", {})
    left_out = []
    for key, row in rows.items():
        if key in used:
            continue
        if key not in not_used:
            raise ReferenceChanged(f"{concept_id} conversion {key} is neither used nor left out")
        left_out.append({**{k: row[k] for k in ("from", "to", "factor", "formula") if k in row},
                         "confidence": row.get("confidence"), "reason": not_used[key]})
    stale = sorted(set(not_used) - set(rows))
    if stale:
        raise ReferenceChanged(f"{concept_id} conversions to leave out no longer exist: {stale}")
    accounted = {c["from"] for c in conversions} | {u for k in not_used for u in k}
    missing = [u["code"] for u in concept.get("ucum_units", []) if u["code"] not in accounted]
    if missing:
        raise ReferenceChanged(f"{concept_id} UCUM units neither converted nor left out: {missing}")
    return conversions, left_out


def _reference_range_notes(concept: Mapping[str, Any]) -> list[str]:
    reference_range = concept.get("reference_range") or {}
    if not reference_range:
        return []
    notes = [
        f"Reference range, for the reviewer only (no code uses it): "
        f"{reference_range.get('typical_adult')} [confidence: "
        f"{reference_range.get('confidence')}; source: {reference_range.get('source', 'none')}]"
    ]
    for key, value in reference_range.items():
        if key not in ("typical_adult", "confidence", "source"):
            notes.append(f"Reference range {key}: {value}")
    return notes


def _build_observation(definition: Mapping[str, Any], terminology: Mapping[str, Any]) -> dict:
    concept_id = definition["observation"]
    concept = _concept(_by_id(terminology, "observations"), concept_id)
    collector = _Collector(definition.get("exclude_codes", ()))
    for code in concept.get("codes", []):
        collector.add(code, "loinc")
    collector.check_exclusions()
    conversions, conversions_left_out = _unit_conversions(definition, concept_id, concept)
    notes = [*_reference_range_notes(concept), *concept.get("notes", [])]
    notes.append(
        "Unit conversion factors are arithmetic from molar masses or unit definitions; the "
        "reference marks most of them from-memory, and each entry states the confidence the "
        "reference gave it. Reference UCUM codes are from-memory too (UCUM syntax)."
    )
    _add_unique(notes, definition.get("notes", []))
    return {
        "codes": collector.codes,
        "canonical_unit": definition["canonical_unit"],
        "unit_conversions": conversions,
        "text_terms": [],
        "left_out": collector.left_out,
        "unit_conversions_left_out": conversions_left_out,
        "notes": notes,
    }


def _kind(definition: Mapping[str, Any]) -> str:
    if "observation" in definition:
        return "observation"
    if "conditions" in definition or "condition_codes" in definition:
        return "condition"
    return "medication"


BUILDERS = {
    "condition": _build_conditions,
    "observation": _build_observation,
}


def build_document(
    value_set_id: str, definition: Mapping[str, Any], terminology: Mapping[str, Any],
    products: ProductSources | None = None,
) -> dict[str, Any]:
    kind = _kind(definition)
    if kind == "medication":
        parts = _build_medications(definition, terminology, products or default_products())
    else:
        parts = BUILDERS[kind](definition, terminology)
    notes = parts.pop("notes")
    return {
        "id": value_set_id,
        "title": definition["title"],
        "purpose": definition["purpose"],
        "provenance": {
            "built_from": "shared/reference/terminology.json",
            "reference_generated": terminology.get("meta", {}).get("generated"),
            "builder": "python -m hooks.valuesets.build",
            "policy": POLICY[kind],
            "notes": notes,
        },
        **parts,
    }


def build_all(
    terminology: Mapping[str, Any], products: ProductSources | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every derived value set the reference gives, and why the others could not be built."""
    built: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for value_set_id, definition in DERIVED.items():
        try:
            built[value_set_id] = build_document(value_set_id, definition, terminology,
                                                 products)
        except ReferenceChanged as error:
            problems[value_set_id] = str(error)
    return built, problems


def build(terminology: Mapping[str, Any],
          products: ProductSources | None = None) -> dict[str, dict[str, Any]]:
    """The derived value sets this (possibly partial) terminology gives; `main` fails on any
    value set it cannot build."""
    return build_all(terminology, products)[0]


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminology", type=Path, default=DEFAULT_TERMINOLOGY)
    parser.add_argument("--products", type=Path, default=DEFAULT_TERMINOLOGY.parent,
                        help="folder with rxnorm-sandbox/ and valuesets-public/ (RxNorm products)")
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    args = parser.parse_args(argv)
    terminology = json.loads(args.terminology.read_text(encoding="utf-8"))
    try:
        products = ProductSources.load(args.products)
    except ReferenceChanged as error:
        print(f"cannot build the medication value sets: {error}", file=sys.stderr)
        return 1
    built, problems = build_all(terminology, products)
    drifted = []
    for value_set_id, document in built.items():
        path = HERE / f"{value_set_id}.json"
        text = render(document)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        drifted.append(path.name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for value_set_id, problem in problems.items():
        print(f"cannot build {value_set_id}: {problem}", file=sys.stderr)
    if args.check and drifted:
        print(f"value sets out of date: {', '.join(drifted)}", file=sys.stderr)
    if problems or (args.check and drifted):
        return 1
    print(f"{'checked' if args.check else 'written'}: {len(DERIVED)} value set(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
