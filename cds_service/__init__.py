"""legcramp-cds protocol engine: HTTP, prefetch, FHIR access, cards. It never names a drug."""

__version__ = "0.1.0"
