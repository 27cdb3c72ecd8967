"""Value sets as data files with their provenance, compiled once per process."""

from functools import cache
from pathlib import Path

from cds_service.terminology import ValueSetLibrary

DIRECTORY = Path(__file__).resolve().parent


@cache
def library() -> ValueSetLibrary:
    return ValueSetLibrary.from_directory(DIRECTORY)
