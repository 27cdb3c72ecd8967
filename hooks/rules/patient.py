"""Who the patient is, read one way for every rule: age from Patient.birthDate, and which
conditions stand for the present (history-of codes and names never do)."""

from __future__ import annotations

import re
from datetime import date
from datetime import datetime
from typing import Any

from cds_service.kit import SNOMED
from cds_service.kit import ConditionMatch
from cds_service.kit import PatientRecord

HISTORY_OF = re.compile(r"\b(history|h/o)\b", re.IGNORECASE)
# 'History of renal dialysis' is a past procedure, not current dialysis.
HISTORY_OF_DIALYSIS = frozenset({(SNOMED, "161693006")})


def _birth_date(value: Any) -> date | None:
    """Patient.birthDate as a date. A partial date ('1961', '1961-07'), which FHIR allows and
    the models keep as text, is read as the first day of its period: the oldest the patient can
    be, so the older-adult gates err toward caution (off by less than a year)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", value.strip())
        if match:
            year, month, day = match.groups()
            try:
                return date(int(year), int(month or 1), int(day or 1))
            except ValueError:
                return None
    return None


def age_years(record: PatientRecord, now: datetime) -> int | None:
    """Whole years from Patient.birthDate to `now`; None without a (readable) birth date."""
    patient = record.patient
    birth = _birth_date(patient.birthDate) if patient is not None else None
    if birth is None:
        return None
    today = now.date()
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def is_history(found: ConditionMatch) -> bool:
    """A history-of condition (a past procedure or episode), never a current one."""
    codings = getattr(found.condition.code, "coding", None) or []
    if any((c.system, c.code) in HISTORY_OF_DIALYSIS for c in codings):
        return True
    return bool(HISTORY_OF.search(found.label))


def current(found: list[ConditionMatch]) -> list[ConditionMatch]:
    """Conditions that stand for the present, history-of codes and names left out."""
    return [c for c in found if not is_history(c)]
