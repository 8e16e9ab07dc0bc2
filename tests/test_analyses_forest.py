"""Forest: rows gathered from hand-made cox.csv / logistic.csv / rate_ratios.csv, and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stormcohort.analyses.forest import FOREST_COLUMNS, forest_analysis
from stormcohort.analyses.forest import forest_rows as rows_of
from stormcohort.figures import save
from stormcohort.labels import outcome_label
from stormcohort.plots.forest import forest_figure
from tests.config_defaults import schema_defaults

# tables/cox.csv as the contract gives it (+ the survival analysis's epv column)
COX = pd.DataFrame({
    "outcome": "death_90d",
    "model": ["unadjusted", "adjusted", "adjusted", "adjusted"],
    "term": ["route_group[IV]", "route_group[IV]", "age_group[child]", "icu"],
    "coef": [np.log(2.0), np.log(1.5), -0.3, 0.8],
    "se": [0.4, 0.5, 0.6, 0.4],
    "hr": [2.0, 1.5, 0.74, 2.2],
    "hr_lcl": [0.9, 0.6, 0.2, 1.0],
    "hr_ucl": [4.4, 3.9, 2.4, 4.9],
    "p": [0.08, 0.4, 0.6, 0.05],
    "n": [46, 46, 46, 46],
    "events": [13, 13, 13, 13],
    "epv": [13.0, 4.3, 4.3, 4.3],
    "note": [None, "events per variable 4.3 < 10", None, None],
})


def logistic_rows():
    rows = []
    for outcome, est in (("death_30d", (2.5, 0.7, 9.0)), ("response_day7", (np.nan,) * 3)):
        for model in ("unadjusted", "adjusted"):
            for method in ("firth", "ml"):
                note = "not estimable: no events among 40 evaluable patients" if np.isnan(est[0]) else None
                rows.append((outcome, model, method, "(Intercept)", 0.1, 0.3, 1.1, 0.6, 2.0, 0.7, 40, 10, note))
                o = est if method == "firth" else (est[0] * 1.1, est[1], est[2] * 1.2)
                rows.append((outcome, model, method, "route_group[IV]", np.log(o[0]), 0.5, *o, 0.2, 40, 10, note))
    return pd.DataFrame(rows, columns=["outcome", "model", "method", "term", "coef", "se", "or", "or_lcl", "or_ucl",
                                       "p", "n", "events", "note"])


RATES = pd.DataFrame({
    "outcome": ["any", "any_infection", "injection_site_reaction", "any_grade_3plus"],
    "model": "unadjusted", "term": "route_group[IV]",
    "irr": [1.2, 0.0, np.nan, np.inf],
    "irr_lcl": [0.6, 0.0, np.nan, 0.8],
    "irr_ucl": [2.3, 5.0, np.nan, np.inf],
    "p": [0.6, 0.5, np.nan, 0.1],
    "events_iv": [10, 0, np.nan, 3], "patient_days_iv": [300.0, 300.0, np.nan, 300.0],
    "events_sc": [20, 2, 6, 0], "patient_days_sc": [600.0, 600.0, 760.0, 600.0],
    "note": [None, "no events in the IV group: rate ratio 0, upper limit only",
             "not estimable: route-specific term (SC exposure only)",
             "no events in the SC group: rate ratio infinite, lower limit only"],
})


def forest_rows(cox, logistic, rate_ratios, cfg: dict | None = None, labels: dict | None = None):
    """The rows with the schema's defaults for every setting not in ``cfg``."""
    return rows_of(cox, logistic, rate_ratios, schema_defaults("forest", **(cfg or {})), labels)


def test_rows_contract_order_and_flags():
    rows = forest_rows(COX, logistic_rows(), RATES)
    assert list(rows.columns) == FOREST_COLUMNS
    assert rows[["measure", "outcome", "model"]].values.tolist() == [
        ["HR", "death_90d", "unadjusted"], ["HR", "death_90d", "adjusted"],
        ["OR", "death_30d", "unadjusted"], ["OR", "death_30d", "adjusted"],
        ["OR", "response_day7", "unadjusted"], ["OR", "response_day7", "adjusted"],
        ["IRR", "any", "unadjusted"], ["IRR", "any_grade_3plus", "unadjusted"], ["IRR", "any_infection", "unadjusted"],
    ]
    r = rows.set_index(["measure", "outcome", "model"])
    assert r.loc[("HR", "death_90d", "adjusted"), ["estimate", "lcl", "ucl"]].tolist() == [1.5, 0.6, 3.9]
    assert r.loc[("OR", "death_30d", "unadjusted"), "estimate"] == 2.5  # the Firth row, not ML
    resp = r.loc[("OR", "response_day7", "adjusted")]
    assert not resp["estimable"] and not resp["plotted"] and "no events" in resp["note"]
    assert r.loc[("IRR", "any_grade_3plus", "unadjusted"), "plotted"] == False  # noqa: E712 - infinite
    zero = r.loc[("IRR", "any_infection", "unadjusted")]
    assert zero["estimable"] and not zero["plotted"] and "not on the log axis" in zero["note"]
    assert r.loc[("IRR", "any", "unadjusted"), "events"] == 30
    assert r.loc[("HR", "death_90d", "unadjusted"), "label"] == "Death by day 90"


def test_cox_outcome_column_and_missing_tables():
    cox = COX.assign(outcome="death_90d_or_transplant")
    rows = forest_rows(cox, None, None)
    assert set(rows["outcome"]) == {"death_90d_or_transplant"} and len(rows) == 2
    assert forest_rows(None, None, None).empty
    all_rates = forest_rows(None, None, RATES, {"rate_outcomes": []})
    assert len(all_rates) == 4  # [] = every outcome, the route-specific one listed as not estimable
    assert not all_rates.set_index("outcome").loc["injection_site_reaction", "estimable"]


def test_missing_column_names_the_table():
    with pytest.raises(KeyError, match="tables/cox.csv.*hr_lcl"):
        forest_rows(COX.drop(columns="hr_lcl"), None, None)
    with pytest.raises(KeyError, match="tables/cox.csv.*outcome"):
        forest_rows(COX.drop(columns="outcome"), None, None)


def test_labels():
    labels = {"death_30d": "30-day mortality"}
    assert outcome_label("death_30d", labels) == "30-day mortality"
    assert outcome_label("death_30d") == "Death by day 30" and outcome_label("death_60d") == "Death by day 60"
    assert outcome_label("hepatotox_3xuln", labels) == "ALT or AST >3\u00d7ULN"
    assert outcome_label("bacterial_infection", labels) == "Bacterial infection"
    rows = forest_rows(COX, logistic_rows(), None, labels=labels)
    assert set(rows.loc[rows["outcome"].eq("death_30d"), "label"]) == {"30-day mortality"}


def test_figure_renders_with_non_estimable_and_infinite_rows(tmp_path):
    rows = forest_rows(COX, logistic_rows(), RATES)
    for ext in ("png", "svg"):
        fig = forest_figure(rows, synthetic=True)
        texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]
        assert any(t.startswith("Not estimable:") and "Response at day 7" in t for t in texts)
        assert any(t.startswith("2.00 (0.90\u20134.40)") for t in texts)
        assert all(ax.get_xscale() == "log" for ax in fig.axes[1::2])
        save(fig, tmp_path / f"forest.{ext}")
        assert (tmp_path / f"forest.{ext}").stat().st_size > 10_000


def test_analysis_result(tmp_path):
    r = forest_analysis(COX, logistic_rows(), RATES, schema_defaults("forest"), synthetic=True)
    assert list(r.tables) == ["table"] and list(r.tables["table"].columns) == FOREST_COLUMNS
    assert any("not plotted" in n for n in r.notes)
    save(r.figures["forest"](), tmp_path / "forest.png")


def test_figure_renders_with_no_rows(tmp_path):
    save(forest_figure(forest_rows(None, None, None)), tmp_path / "empty.png")
