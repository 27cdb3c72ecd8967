"""The CDS Hooks 2.0 hooks this service answers, named once.

Which service answers which hook is declared with the services (`hooks/services.py`); this
module only names the hooks and says which of them are about orders.
"""

from __future__ import annotations

from typing import Final

PATIENT_VIEW: Final = "patient-view"
ORDER_SELECT: Final = "order-select"
ORDER_SIGN: Final = "order-sign"

SUPPORTED_HOOKS: Final = (PATIENT_VIEW, ORDER_SELECT, ORDER_SIGN)
# Hooks whose subject is the orders being written (context.draftOrders), not the chart.
ORDER_HOOKS: Final = frozenset({ORDER_SELECT, ORDER_SIGN})
