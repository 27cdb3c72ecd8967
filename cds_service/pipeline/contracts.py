"""The JSON Schemas of `cds_service/schemas/`, compiled once, and violations with their paths.

The same files are referenced by `openapi.yaml`, so the contract the tests hold the code to is
the one the service enforces on input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_FILES = (
    "common.schema.json",
    "request.schema.json",
    "context-patient-view.schema.json",
    "context-order-select.schema.json",
    "context-order-sign.schema.json",
    "context-medication-refill.schema.json",
    "feedback.schema.json",
    "discovery.schema.json",
    "response.schema.json",
    "operation-outcome.schema.json",
)

@dataclass(frozen=True)
class Violation:
    path: str
    message: str


def _load(name: str) -> dict[str, Any]:
    text = resources.files("cds_service").joinpath("schemas", name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _documents() -> dict[str, dict[str, Any]]:
    """Every schema file, read once for both validators."""
    return {name: _load(name) for name in SCHEMA_FILES}


@cache
def _registry() -> Registry:
    return Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT202012))
        for name, doc in _documents().items()
    )


@cache
def validator(name: str) -> Draft202012Validator:
    schema = _registry()[name].contents
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def _message(error: Any) -> str:
    """A message that names the rule broken without quoting the offending value (it may be PHI)."""
    keyword = error.validator
    if keyword == "required":
        # jsonschema reports one error per missing member; its message names only the member.
        return f"missing required member: {error.message.split(' is a required')[0]}"
    if keyword == "dependentRequired":
        return f"member(s) required alongside: {error.validator_value}"
    if keyword == "type":
        return f"must be of type {error.validator_value}"
    if keyword in ("enum", "const"):
        return f"must be one of {error.validator_value!r}"
    if keyword in ("minLength", "minItems", "minProperties"):
        return f"must not be empty ({keyword} {error.validator_value})"
    if keyword in ("maxLength", "maxItems"):
        return f"is too long ({keyword} {error.validator_value})"
    if keyword == "pattern":
        return f"does not match the pattern {error.validator_value}"
    if keyword == "additionalProperties":
        return "has members that are not allowed here"
    return f"violates '{keyword}'"


@cache
def compiled(name: str) -> Any:
    """The schema compiled to native code (jsonschema-rs): the fast yes/no every request takes.
    Its answer must agree with `validator`'s, which writes the messages of a refusal; a test
    holds the two to the same verdict on the fuzzer's mutated requests."""
    return jsonschema_rs.validator_for(_documents()[name], registry=_rs_registry())


@cache
def _rs_registry() -> Any:
    return jsonschema_rs.Registry(list(_documents().items()))


def violations(schema_name: str, instance: Any, base_path: str = "$") -> list[Violation]:
    """Every rule `instance` breaks, with its path. A valid instance (nearly every request) is
    told apart by the compiled schema in microseconds; only a refusal is walked by jsonschema,
    whose errors name the path and the rule broken."""
    if compiled(schema_name).is_valid(instance):
        return []
    found = []
    for error in validator(schema_name).iter_errors(instance):
        path = base_path + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        found.append(Violation(path, _message(error)))
    return sorted(set(found), key=lambda v: (v.path, v.message))


def is_valid(schema_name: str, instance: Any) -> bool:
    return bool(compiled(schema_name).is_valid(instance))
