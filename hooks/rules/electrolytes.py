"""Electrolytes in leg cramps: what E1 and E2 share (the three tests and their lab orders).

Sources: seeds 003 and 004 (keep potassium, magnesium and calcium in balance; periodic
electrolytes on diuretics), seed 000 (electrolyte imbalance as a cause of spasm). Both rules run
on patient-view, and on order hooks while an RLS or cramp drug is being ordered.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.kit import ValueSet
from hooks.valuesets import LabTest
from hooks.valuesets import uses
from hooks.valuesets import uses_lab

# Basic metabolic panel: LOINC 51990-0 "Basic metabolic panel - Blood" (not in the shared
# terminology reference; checked with the search tool in several public FHIR code bases,
# 2026-11-21). It includes potassium, so E2 orders it when potassium is what is missing.
BASIC_METABOLIC_PANEL = ("51990-0", "Basic metabolic panel - Blood")
TESTS = {
    "potassium": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma"),
    "magnesium": ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma"),
    "calcium": ("17861-6", "Calcium [Mass/volume] in Serum or Plasma"),
}


@dataclass(frozen=True)
class Electrolytes:
    leg_cramps: ValueSet = uses("leg-cramps")
    cramp_drugs: ValueSet = uses("cramp-drugs")
    magnesium_products: ValueSet = uses("magnesium-supplements")
    potassium_products: ValueSet = uses("potassium-supplements")
    calcium_products: ValueSet = uses("calcium-supplements")
    potassium: LabTest = uses_lab("potassium")
    magnesium: LabTest = uses_lab("magnesium")
    calcium: LabTest = uses_lab("calcium-total")
    ionised_calcium: LabTest = uses_lab("calcium-ionized")
    albumin: LabTest = uses_lab("albumin")

    def tests(self) -> dict[str, LabTest]:
        return {"potassium": self.potassium, "magnesium": self.magnesium, "calcium": self.calcium}
