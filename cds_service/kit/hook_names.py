"""The CDS Hooks 2.0 hooks this service answers, named once.

Which service answers which hook is declared with the services (`hooks/services.py`); this
module only names the hooks and says which of them are about orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

PATIENT_VIEW: Final = "patient-view"
ORDER_SELECT: Final = "order-select"
ORDER_SIGN: Final = "order-sign"
MEDICATION_REFILL: Final = "medication-refill"

SUPPORTED_HOOKS: Final = (PATIENT_VIEW, ORDER_SELECT, ORDER_SIGN, MEDICATION_REFILL)
# Hooks whose subject is the orders in hand, not the chart: the drafts being written
# (context.draftOrders), or on medication-refill the refill requests (context.medications, draft
# MedicationRequests the clinician approves or declines just as a new order is signed or not).
ORDER_HOOKS: Final = frozenset({ORDER_SELECT, ORDER_SIGN, MEDICATION_REFILL})
# The context member that carries each order hook's orders: a Bundle of MedicationRequests,
# parsed, limited and resolved the same way whichever hook sent it.
ORDER_BUNDLES: Final[Mapping[str, str]] = {
    ORDER_SELECT: "draftOrders",
    ORDER_SIGN: "draftOrders",
    MEDICATION_REFILL: "medications",
}
