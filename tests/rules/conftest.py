"""Each rule under test, made once per test module: through the catalog where the tests were
written against its wiring, from its value sets where they name them."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.kit.terminology import ValueSet
from hooks.rules.cirrhosis_cramps_baclofen import CirrhosisCrampsBaclofen
from hooks.rules.cramps_contributing_medications import CrampsContributingMedications
from hooks.rules.diabetes_spasm_b6 import DiabetesSpasmB6
from hooks.rules.esrd_cramps_gabapentin import EsrdCrampsGabapentin
from hooks.rules.pad_claudication_exercise import PadClaudicationExercise
from hooks.rules.quinine_leg_cramps import QuinineLegCramps
from hooks.rules.rls_dopamine_antagonist import RlsDopamineAntagonist
from hooks.rules.rls_dopaminergic_augmentation import RlsDopaminergicAugmentation
from hooks.valuesets import library
from tests.support import guidance
from tests.support.rules import rule


def shipped(value_set_id: str) -> ValueSet:
    return library()[value_set_id]


# Through the catalog ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def e1() -> Any:
    return rule("cramps-electrolytes-abnormal")


@pytest.fixture(scope="module")
def e2() -> Any:
    return rule("diuretic-electrolytes-due")


@pytest.fixture(scope="module")
def r1() -> Any:
    return rule("rls-iron-studies-due")


@pytest.fixture(scope="module")
def r2() -> Any:
    return rule("rls-iron-low")


@pytest.fixture(scope="module")
def b1() -> Any:
    return rule("benzodiazepine-stroke-recovery")


@pytest.fixture(scope="module")
def c1() -> Any:
    return rule("cyclobenzaprine-duration")


@pytest.fixture(scope="module")
def c2() -> Any:
    return rule("cyclobenzaprine-cns-spasticity")


@pytest.fixture(scope="module")
def c3() -> Any:
    return rule("cyclobenzaprine-dose")


# From the shipped value sets -------------------------------------------------------------------


@pytest.fixture(scope="module")
def q1() -> QuinineLegCramps:
    value_sets = library()
    return QuinineLegCramps(quinine=value_sets["quinine"], malaria=value_sets["malaria"])


@pytest.fixture(scope="module")
def m1() -> CrampsContributingMedications:
    return CrampsContributingMedications(
        leg_cramps=shipped("leg-cramps"),
        diuretics=shipped("diuretics"),
        statins=shipped("statins"),
        beta_blockers=shipped("beta-blockers"),
    )


@pytest.fixture(scope="module")
def d1() -> RlsDopaminergicAugmentation:
    return RlsDopaminergicAugmentation(
        dopaminergic=shipped("dopaminergic-drugs"),
        restless_legs=shipped("restless-legs"),
        parkinsons=shipped("parkinsons-disease"),
        alpha2delta=shipped("alpha2delta-ligands"),
    )


@pytest.fixture(scope="module")
def a1() -> RlsDopamineAntagonist:
    return RlsDopamineAntagonist(
        dopamine_blockers=shipped("dopamine-blockers"), restless_legs=shipped("restless-legs")
    )


# From the value sets as shipped, or the reference-verified fallback ----------------------------


@pytest.fixture(scope="module")
def s1() -> EsrdCrampsGabapentin:
    return guidance.esrd_rule()


@pytest.fixture(scope="module")
def l1() -> CirrhosisCrampsBaclofen:
    return CirrhosisCrampsBaclofen(
        cirrhosis=guidance.value_set("cirrhosis"),
        leg_cramps=library()["leg-cramps"],
        baclofen=guidance.value_set("baclofen"),
        cramp_drugs=library()["cramp-drugs"],
    )


@pytest.fixture(scope="module")
def p1() -> PadClaudicationExercise:
    return PadClaudicationExercise(
        pad=guidance.value_set("pad"),
        leg_cramps=library()["leg-cramps"],
        cramp_drugs=library()["cramp-drugs"],
    )


@pytest.fixture(scope="module")
def v1() -> DiabetesSpasmB6:
    return DiabetesSpasmB6(
        diabetes=guidance.value_set("diabetes"),
        muscle_spasm=library()["leg-cramps"],
        vitamin_b6=guidance.lab_test("vitamin-b6"),
    )
