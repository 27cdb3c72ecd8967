"""The catalog is rendered from the code; the checked-in page and defaults cannot drift."""

from __future__ import annotations

from click.testing import CliRunner

from cds_service.cli import main
from cds_service.config import default_document, load_config
from cds_service.kit import RuleSettings
from cds_service.tools import config_reference
from cds_service.tools.catalog import render_markdown
from hooks import build_services
from hooks.services import catalog
from tests.conftest import ROOT

CATALOG_IDS = [rule.rule_id for rule in catalog()]  # declared once, in hooks/services.py


def test_rules_page_is_current():
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert page == render_markdown(build_services(), load_config(None)), (
        "docs/rules.md is out of date: legcramp-cds rules --format markdown > docs/rules.md")


def test_rules_command_prints_every_rule_with_hooks_and_thresholds():
    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0, result.output
    for rule_id in CATALOG_IDS:
        assert rule_id in result.output
    assert '"ferritin_max_ng_ml": 75.0' in result.output
    assert "order-select,order-sign,patient-view" in result.output


def test_rules_command_shows_configured_thresholds(tmp_path):
    path = tmp_path / "cds.toml"
    path.write_text('[rules."rls-iron-low"]\nferritin_max_ng_ml = 100.0\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["rules", "--format", "json", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert '"ferritin_max_ng_ml": 100.0' in result.output


def test_rule_defaults_are_declared_once_on_the_rule_not_in_the_engine_defaults():
    assert "rules" not in default_document()  # defaults.toml carries engine settings only
    for rule in catalog():
        assert issubclass(rule.Settings, RuleSettings), rule.rule_id
        assert rule.Settings().enabled is True, rule.rule_id  # every setting has its default
    assert len(set(CATALOG_IDS)) == len(CATALOG_IDS) >= 16  # ids unique; none of the 16 lost
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert [page.index(f"`{rule_id}`:") for rule_id in CATALOG_IDS] == sorted(
        page.index(f"`{rule_id}`:") for rule_id in CATALOG_IDS)  # rules.md in catalog order


def test_clinical_review_page_is_current_and_shows_every_rule():
    result = CliRunner().invoke(main, ["review-page", "--examples",
                                       str(ROOT / "fixtures" / "golden")])
    assert result.exit_code == 0, result.output
    page = (ROOT / "docs" / "clinical-review.md").read_text(encoding="utf-8")
    assert page == result.output.replace(str(ROOT / "fixtures" / "golden"), "fixtures/golden"), (
        "docs/clinical-review.md is out of date: legcramp-cds review-page > "
        "docs/clinical-review.md")
    for rule_id in CATALOG_IDS:
        section = page.split(f"`{rule_id}`", 1)[1].split("\n## ", 1)[0]
        assert "**[" in section, f"no example card for {rule_id}"


def test_readme_configuration_reference_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reference = config_reference.render(build_services())
    assert reference in readme, (
        "the README's configuration reference is out of date: "
        "legcramp-cds config-reference --write README.md")


def test_configuration_reference_names_every_key_the_loader_accepts():
    reference = config_reference.render(build_services())
    for section in config_reference.SECTIONS:
        for key in default_document().get(section, {}):
            assert f"| `{section}.{key}` |" in reference, f"{section}.{key}"
    for rule in catalog():
        for key in vars(rule.Settings()):
            if key != "enabled":
                assert f'| `rules."{rule.rule_id}".{key}` |' in reference, (rule.rule_id, key)


def test_every_configuration_key_says_what_it_means():
    import dataclasses

    from cds_service import config as config_module

    for name in ("ServerConfig", "CorsConfig", "FhirConfig", "IssuerConfig", "AuthConfig",
                 "StoreConfig", "ReportConfig", "EvaluationConfig", "CardsConfig"):
        for item in dataclasses.fields(getattr(config_module, name)):
            assert item.metadata.get("doc"), f"{name}.{item.name} has no meaning written"


def test_value_set_page_is_current_and_names_every_medication_value_set():
    result = CliRunner().invoke(main, ["valuesets"])
    assert result.exit_code == 0, result.output
    page = (ROOT / "docs" / "valuesets.md").read_text(encoding="utf-8")
    assert page == result.output, (
        "docs/valuesets.md is out of date: legcramp-cds valuesets > docs/valuesets.md")
    for value_set_id in ("quinine", "cyclobenzaprine", "benzodiazepines", "dopaminergic-drugs",
                         "dopamine-blockers", "alpha2delta-ligands", "statins", "beta-blockers",
                         "diuretics", "baclofen", "cramp-drugs"):
        assert f"## `{value_set_id}`" in page, value_set_id
    assert "`ophthalmic`" in page  # the beta-blockers' scope is stated


def test_every_safety_gate_and_new_threshold_states_the_source_of_its_default():
    """Issue 16: each new threshold is a setting whose default names its source (or says it was
    chosen), printed beside it in docs/rules.md."""
    from cds_service.kit import setting_sources
    from hooks.services import catalog

    gated = {
        "quinine-leg-cramps": {"egfr_moderate_below", "egfr_severe_below", "older_adult_age"},
        "cyclobenzaprine-dose": {"max_daily_mg_extended_release",
                                 "max_doses_per_day_extended_release"},
        "cyclobenzaprine-older-adult": {"older_adult_age"},
        "cyclobenzaprine-contraindication": {"mao_washout_days", "recent_mi_days",
                                             "mao_unknown_end_lookback_days"},
        "rls-dopaminergic-augmentation": {"pregnancy_window_days", "older_adult_age",
                                          "egfr_moderate_below", "egfr_lookback_days"},
        "esrd-cramps-gabapentin": {"pregnancy_window_days", "older_adult_age"},
        "cirrhosis-cramps-baclofen": {"egfr_severe_below", "older_adult_age"},
        "rls-iron-low": {"iv_ferritin_max_ng_ml", "child_age_below",
                         "child_ferritin_below_ng_ml", "esrd_ferritin_below_ng_ml",
                         "esrd_tsat_below_percent"},
    }
    by_id = {rule.rule_id: rule for rule in catalog()}
    page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule_id, names in gated.items():
        sources = setting_sources(by_id[rule_id].Settings)
        assert names <= set(sources), (rule_id, names - set(sources))
        for name in names:
            assert sources[name].strip() and f"`{name} = " in page
            assert sources[name] in page, (rule_id, name)
