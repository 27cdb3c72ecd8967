"""Every rule has a should-not-fire example on the clinical review page, and it is quiet: the
page reports what the service did with it, and this test holds it to silence."""

from __future__ import annotations

import pytest

from cds_service.tools.review import quiet_outcome
from hooks import build_services
from hooks.review_examples import QUIET_EXAMPLES
from tests.conftest import ROOT

GOLDEN = ROOT / "fixtures" / "golden"


def test_every_rule_has_a_should_not_fire_example():
    rules = {rule.rule_id for service in build_services() for rule in service.rules}
    assert {example.rule_id for example in QUIET_EXAMPLES} == rules


@pytest.mark.parametrize("example", QUIET_EXAMPLES, ids=[e.rule_id for e in QUIET_EXAMPLES])
def test_the_should_not_fire_example_is_quiet_for_its_rule(make_app, example):
    engine = make_app().extensions["legcramp_engine"]
    _, fired = quiet_outcome(build_services(), engine, GOLDEN, example)
    assert example.rule_id not in fired, (example.why, fired)
    # The change is what keeps it quiet: the unchanged example gets the rule's card.
    unchanged = type(example)(example.rule_id, example.base, example.why, lambda r: None)
    _, before = quiet_outcome(build_services(), engine, GOLDEN, unchanged)
    assert example.rule_id in before, (example.base, before)
