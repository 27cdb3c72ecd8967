"""The codes the sandbox puts on its orders, as the FHIR version tests and the DSTU2 sandbox
tests both send them."""

from __future__ import annotations

from cds_service.kit import RXNORM as RX
from cds_service.kit import UCUM

__all__ = ["CRAMP", "CYCLOBENZAPRINE", "QUININE", "RX", "UCUM"]

QUININE = {"coding": [{"system": RX, "code": "997010",
                       "display": "quinine sulfate 324 MG Oral Capsule"}],
           "text": "quinine sulfate 324 MG Oral Capsule"}
CYCLOBENZAPRINE = {"coding": [{"system": RX, "code": "828348",
                               "display": "cyclobenzaprine hydrochloride 10 MG Oral Tablet"}]}
CRAMP = {"coding": [{"system": "http://snomed.info/sct", "code": "449918009",
                     "display": "Cramp in lower leg"}]}

