"""The clinical content: CDS service declarations, rules, value sets. No HTTP here."""

from hooks.services import build_services

__all__ = ["build_services"]
