"""The primary sources cards cite (`source.label` and `source.url`), in one place.

Each was looked up with the search tool (2026-12) and its claim read in the source or a
faithful copy of it; `docs/rules.md` lists them per rule. The seeds are where the rules came
from, never the evidence of record. Where only part of a claim could be verified, the card's
wording says no more than the source does, and the hazard log names the open question.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    label: str
    url: str


FDA_QUININE_2010 = Reference(
    "FDA Drug Safety Communication (2010): quinine (Qualaquin) not for leg cramps",
    "https://www.fda.gov/Drugs/DrugSafety/PostmarketDrugSafetyInformationforPatientsandProviders/"
    "ucm218202.htm",
)
CYCLOBENZAPRINE_LABEL = Reference(
    "Cyclobenzaprine prescribing information (DailyMed)",
    "https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=30ca08c7-4ee3-2f37-e063-6294a90ae31a",
)
AASM_RLS_2024 = Reference(
    "AASM clinical practice guideline: treatment of restless legs syndrome (2024)",
    "https://pubmed.ncbi.nlm.nih.gov/39324694/",
)
IRLSSG_AUGMENTATION_2016 = Reference(
    "IRLSSG guideline: first-line treatment of RLS and dopaminergic augmentation (2016)",
    "https://pubmed.ncbi.nlm.nih.gov/27448465/",
)
PAD_2024 = Reference(
    "2024 ACC/AHA multisociety guideline: lower extremity peripheral artery disease",
    "https://doi.org/10.1016/j.jacc.2024.02.013",
)
AAN_CRAMPS_2010 = Reference(
    "AAN assessment: symptomatic treatment of muscle cramps (2010)",
    "https://pubmed.ncbi.nlm.nih.gov/20177124/",
)
DRUGS_PRECEDING_CRAMPS_2012 = Reference(
    "Garrison et al., Arch Intern Med 2012: prescriptions that precede leg cramps",
    "https://pubmed.ncbi.nlm.nih.gov/22157068/",
)
KDOQI_INTRADIALYTIC_HYPOTENSION = Reference(
    "KDOQI cardiovascular guideline in dialysis: intradialytic hypotension",
    "https://kidneyfoundation.cachefly.net/professionals/KDOQI/guidelines_cvd/intradialytic.htm",
)
DRUGS_AND_STROKE_RECOVERY_1995 = Reference(
    "Goldstein et al., Neurology 1995: common drugs may influence recovery after stroke",
    "https://n.neurology.org/content/45/5/865",
)
BACLOFEN_CIRRHOSIS_RCT_2016 = Reference(
    "Elfert et al., Eur J Gastroenterol Hepatol 2016: baclofen for cramps in cirrhosis (RCT)",
    "https://pubmed.ncbi.nlm.nih.gov/27467714/",
)
FUROSEMIDE_LABEL = Reference(
    "Furosemide prescribing information: electrolyte depletion and its signs (DailyMed)",
    "https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid=2a5bcf50-6d63-463a-915e-a72ea2e5f131",
)
CRAMP_WORKUP_2015 = Reference(
    "Katzberg, J Neurol 2015: neurogenic muscle cramps, causes to look for",
    "https://link.springer.com/article/10.1007/s00415-015-7659-x",
)
FDA_GABAPENTINOIDS_BREATHING_2019 = Reference(
    "FDA Drug Safety Communication (2019): serious breathing problems with gabapentin and "
    "pregabalin with CNS depressants, in COPD and in the elderly",
    "https://www.fda.gov/drugs/drug-safety-and-availability/fda-warns-about-serious-breathing-"
    "problems-seizure-and-nerve-pain-medicines-gabapentin-neurontin",
)
RLS_PREGNANCY_2015 = Reference(
    "Picchietti et al., Sleep Med Rev 2015: consensus guidelines for RLS in pregnancy and "
    "lactation",
    "https://ouci.dntb.gov.ua/en/works/lRJV2WWl",
)
BEERS_2023 = Reference(
    "American Geriatrics Society 2023 Beers Criteria (J Am Geriatr Soc 2023)",
    "https://doi.org/10.1111/jgs.18372",
)
BACLOFEN_CKD_2014 = Reference(
    "Vlavonou et al., J Clin Pharmacol 2014: baclofen pharmacokinetics and dose reduction in "
    "chronic kidney disease",
    "https://doi.org/10.1002/jcph.247",
)
CYCLOBENZAPRINE_ER_LABEL = Reference(
    "Amrix (cyclobenzaprine extended-release capsules) prescribing information (DailyMed)",
    "https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid=3902123b-1365-ac3c-0934-afff9eeeb1bd",
)
BUPROPION_RLS_2011 = Reference(
    "Bayard et al., J Am Board Fam Med 2011: bupropion and restless legs syndrome (RCT)",
    "https://pubmed.ncbi.nlm.nih.gov/21737767/",
)
