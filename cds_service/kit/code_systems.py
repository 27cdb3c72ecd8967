"""The code system URIs the service reads and writes, each defined once.

FHIR names a code system by URI; a misspelt URI silently matches nothing, so every module and
rule takes these names instead of writing the URI again.
"""

from __future__ import annotations

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
GTS_ABBREVIATION = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
