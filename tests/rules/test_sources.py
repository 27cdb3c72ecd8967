"""Every card names the primary source it applies, with a link a clinician can open: the
references in `hooks.rules.sources`, never the seeds or a made-up guidance name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hooks.rules import sources
from hooks.services import service_for_hook
from tests.conftest import ROOT

REFERENCES = [value for value in vars(sources).values()
              if isinstance(value, sources.Reference)]
GOLDEN = sorted((ROOT / "fixtures" / "golden").glob("*.request.json"))
SERVICES = service_for_hook()  # hook -> service id, from hooks/services.py


def test_each_reference_has_a_label_and_an_https_link():
    assert len(REFERENCES) >= 10
    for reference in REFERENCES:
        assert reference.label and "guidance:" not in reference.label, reference
        assert reference.url.startswith("https://"), reference
    assert len({r.url for r in REFERENCES}) == len(REFERENCES)


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_card_cites_a_primary_source_with_its_link(call, path: Path):
    request = json.loads(path.read_text(encoding="utf-8"))
    response = call(SERVICES[request["hook"]], request)
    assert response.status_code == 200, response.get_data(as_text=True)
    known = {(r.label, r.url) for r in REFERENCES}
    for card in response.get_json()["cards"]:
        cited = card["source"]
        assert cited.get("url"), (card["summary"], cited)
        assert any(label in cited["label"] and url == cited["url"] for label, url in known), cited
        assert "seed" not in cited["label"].lower()


def test_every_rule_declares_the_references_its_cards_cite():
    from hooks import build_services

    rules = {rule.rule_id: rule for service in build_services() for rule in service.rules}
    assert len(rules) == 19
    for rule_id, rule in rules.items():
        declared = getattr(rule, "references", ())
        assert declared, rule_id
        assert all(reference in REFERENCES for reference in declared), rule_id


def test_the_catalog_lists_each_citation_with_its_link():
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for reference in REFERENCES:
        assert f"<{reference.url}>" in page, reference.label
