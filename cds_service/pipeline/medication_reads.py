"""The Medications orders name by `medicationReference` and no Bundle of the request holds:
read from the request's FHIR server, as few calls as the server allows, never more than a cap.

A hostile or broken request can name thousands of distinct Medications (10,000 made 1,657 reads
with the user's token before this cap). So a request may name at most
`fhir.max_medication_references` to read; past that it is answered 412 and nothing is read.
Plain ids on this server are asked for together, `fhir.medication_batch_size` at a time, with
`Medication?_id=a,b,c` (a search parameter every FHIR server has); an id the search did not
return, or any id when the search fails, is read on its own, so a server that ignores `_id` or
refuses the search still answers correctly, only with more calls.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from cds_service.errors import FhirError, MedicationsUnavailable
from cds_service.kit.record import reference_key
from cds_service.pipeline.fetching import run_bounded
from cds_service.pipeline.fhir_client import FhirServer
from cds_service.pipeline.prefetch import NotABundle, resources_of

log = logging.getLogger("legcramp_cds.medications")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

Outcome = dict[str, Any] | None


def too_many(count: int, cap: int) -> MedicationsUnavailable:
    return MedicationsUnavailable.too_many(
        f"the orders name {count} Medications by reference that the request does not carry; "
        f"this service reads at most {cap} for one request, so none was read and the orders "
        "could not be judged")


def read_medications(
    server: FhirServer, references: Sequence[str], executor: Executor, *, limit: int,
    deadline: float | None, cap: int, batch_size: int,
) -> dict[str, Outcome | Exception]:
    """Reference -> the Medication (None when the server says it does not exist), or the
    exception its read ended in (a `FhirError`, or a `FutureTimeout` at the deadline)."""
    if len(references) > cap:
        raise too_many(len(references), cap)
    by_id: dict[str, list[str]] = {}
    alone: list[str] = []
    for reference in references:
        key = reference_key(reference)
        plain_id = key.split("/", 1)[1] if key and reference == key else None
        if plain_id is not None and FHIR_ID.fullmatch(plain_id):
            by_id.setdefault(plain_id, []).append(reference)
        else:
            alone.append(reference)

    outcomes: dict[str, Outcome | Exception] = {}
    ids = list(by_id)
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)] \
        if batch_size > 1 and len(ids) > 1 else []
    if batches:
        jobs: dict[int, Callable[[], Any]] = {
            n: functools.partial(_search_batch, server, batch) for n, batch in enumerate(batches)}
        for n, result in run_bounded(executor, jobs, limit, deadline, server.slots).items():
            if isinstance(result, FutureTimeout):
                for plain_id in batches[n]:
                    for reference in by_id[plain_id]:
                        outcomes[reference] = result
            elif isinstance(result, FhirError):
                log.info("Medication search failed; reading one by one",
                         extra={"reason": result.code})
            elif isinstance(result, Exception):
                raise result
            else:
                for plain_id, medication in result.items():
                    for reference in by_id.get(plain_id, ()):
                        outcomes[reference] = medication
    for refs in by_id.values():
        alone.extend(ref for ref in refs if ref not in outcomes)
    if alone:
        reads = {ref: functools.partial(server.read, ref) for ref in alone}
        outcomes.update(run_bounded(executor, reads, limit, deadline, server.slots))
    return {reference: outcomes[reference] for reference in references}


def _search_batch(server: FhirServer, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> Medication for the ids the search returned (every page of it)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = set(ids)
    for page in server.search(f"Medication?_id={','.join(ids)}&_count={len(ids)}"):
        try:
            resources = resources_of(page)
        except NotABundle:
            raise FhirError("FHIR search answered a Bundle without an entry array",
                            code="not_a_bundle") from None
        for resource in resources:
            if resource.get("resourceType") == "Medication" and resource.get("id") in wanted:
                found[str(resource["id"])] = resource
    return found
