"""The target trial's protocol table follows the config."""

import yaml

from stormcohort.analyses.protocol import PROTOCOL_COLUMNS, protocol_table
from tests.config_defaults import config_schema, fill_defaults


def study(**comparison):
    c = fill_defaults(yaml.safe_load(open("config/config.yaml")), config_schema())
    c["analyses"]["comparison"].update(comparison)
    return c["cohort"], c["analyses"]["comparison"]


def test_protocol_states_the_strategies_time_zero_and_adjustment_from_the_config():
    t = protocol_table(*study()).set_index("component")
    assert list(t.reset_index().columns) == PROTOCOL_COLUMNS
    assert list(t.index) == ["Eligibility", "Treatment strategies", "Assignment", "Time zero", "Outcomes",
                             "Follow-up", "Causal contrast", "Analysis"]
    assert "within 2 day(s)" in t.loc["Treatment strategies", "target_trial"]
    assert "HScore" in t.loc["Assignment", "emulation"] and "Intensive care not used" in t.loc["Assignment",
                                                                                               "emulation"]
    assert "death by day 90" in t.loc["Outcomes", "target_trial"]
    assert "seed 20200601" in t.loc["Analysis", "emulation"]


def test_grace_zero_is_the_route_of_the_first_dose_and_overlap_weights_are_named():
    t = protocol_table(*study(grace_days=0, estimand="ATO")).set_index("component")
    assert "first dose intravenous" in t.loc["Treatment strategies", "target_trial"]
    assert "overlap weights" in t.loc["Analysis", "emulation"]


def test_the_adjustment_set_refuses_what_is_measured_after_time_zero():
    import jsonschema
    import pytest

    c = yaml.safe_load(open("config/config.yaml"))
    c.setdefault("analyses", {})["comparison"] = {"adjust_for": ["age_group", "icu"]}
    with pytest.raises(jsonschema.ValidationError, match="icu"):
        fill_defaults(c, config_schema())
