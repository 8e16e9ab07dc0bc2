"""Forest: rows gathered from hand-made cox.csv / logistic.csv / rate_ratios.csv, and the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stormcohort.analyses.dictionary import undocumented
from stormcohort.analyses.forest import FOREST_COLUMNS, forest_analysis
from stormcohort.analyses.forest import forest_rows as rows_of
from stormcohort.figures import save
from stormcohort.labels import PRIMARY_COUNTERPART_NOTE, outcome_label
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


SECONDARY = schema_defaults("comparison")["secondary_outcomes"]  # death_30d, response_day7, ae_grade3plus


def forest_rows(cox, logistic, rate_ratios, cfg: dict | None = None, labels: dict | None = None, **families):
    """The rows with the schema's defaults for every setting not in ``cfg``, the primary outcome
    death by day 90 and the default secondary outcomes unless ``families`` says otherwise."""
    families = {"primary_outcome": "death_90d", "secondary_outcomes": SECONDARY, **families}
    return rows_of(cox, logistic, rate_ratios, schema_defaults("forest", **(cfg or {})), labels, **families)


def secondary_logistic(p_adjusted: dict) -> pd.DataFrame:
    """Firth and ML route rows of ``logistic.csv``: unadjusted p 0.01 for every outcome, adjusted
    Firth p as given (NaN: not estimable)."""
    rows = []
    for outcome, p in p_adjusted.items():
        for model, pm in (("unadjusted", 0.01), ("adjusted", p)):
            for method in ("firth", "ml"):
                est = (np.nan,) * 3 if np.isnan(pm) else (2.0, 0.8, 5.0)
                note = "not estimable: separation" if np.isnan(pm) else None
                rows.append((outcome, model, method, "route_group[IV]", np.log(est[0]), 0.5, *est,
                             pm if method == "firth" else 0.9, 40, 10, note))
    return pd.DataFrame(rows, columns=["outcome", "model", "method", "term", "coef", "se", "or", "or_lcl", "or_ucl",
                                       "p", "n", "events", "note"])


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
        assert any("Not estimable:\n" in t and "Response at day 7" in t for t in texts)
        assert any(t.startswith("2.00 (0.90\u20134.40)") for t in texts)
        # the secondary family (the adjusted OR of death by day 30): diamond, Holm p beside the raw p, footnote
        assert any(t == "2.50 (0.70\u20139.00), p=0.2, p\u2095=0.4" for t in texts)  # Holm of (0.2, 0.2)
        assert any(t.startswith("Secondary family: Death by day 30 (OR, adjusted), Response at day 7 (OR, adjusted)")
                   and "Death by day 90 (HR): the descriptive (route group) counterpart" in t for t in texts)
        markers = {line.get_marker() for ax in fig.axes[1::2] for line in ax.lines}
        assert {"D", "s"} <= markers
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


def test_families_and_holm_within_the_secondary_family():
    # R 4.2.2: p.adjust(c(0.04, 0.001, 0.03), "holm") -> 0.060 0.003 0.060
    logistic = secondary_logistic({"death_30d": 0.04, "response_day7": 0.001, "ae_grade3plus": 0.03,
                                   "hepatotox_3xuln": 0.002})
    rows = forest_rows(COX, logistic, RATES)
    assert list(rows.columns) == FOREST_COLUMNS and not undocumented("forest", rows.columns)
    r = rows.set_index(["measure", "outcome", "model"])
    secondary = r[r["family"].eq("secondary")]
    assert sorted(secondary.index) == [("OR", o, "adjusted") for o in sorted(SECONDARY)]  # one per outcome
    np.testing.assert_allclose(secondary.loc[[("OR", o, "adjusted") for o in ("death_30d", "response_day7",
                                                                             "ae_grade3plus")], "p_holm"],
                               [0.06, 0.003, 0.06], rtol=1e-12)
    assert secondary["p"].tolist() != secondary["p_holm"].tolist()  # raw p kept beside the adjusted one
    others = r[r["family"].ne("secondary")]
    assert set(others["family"]) == {"exploratory"} and others["p_holm"].isna().all()
    # the unadjusted models, the other odds ratios, the hazard and rate ratios are exploratory
    assert r.loc[("OR", "death_30d", "unadjusted"), "family"] == "exploratory"
    assert r.loc[("OR", "hepatotox_3xuln", "adjusted"), "family"] == "exploratory"
    # the route-group Cox of death by H is not the primary estimate (the target trial's is): exploratory, said so
    cox = r.loc[[("HR", "death_90d", "unadjusted"), ("HR", "death_90d", "adjusted")]]
    assert set(cox["family"]) == {"exploratory"} and "primary" not in set(rows["family"])
    assert all(PRIMARY_COUNTERPART_NOTE in n for n in cox["note"])
    assert r.loc[("HR", "death_90d", "adjusted"), "note"].startswith("events per variable 4.3 < 10; ")


def test_holm_skips_a_member_without_p_and_follows_the_config():
    # R 4.2.2: p.adjust(c(0.04, NA, 0.03), "holm") -> 0.06 NA 0.06
    logistic = secondary_logistic({"death_30d": 0.04, "response_day7": np.nan, "ae_grade3plus": 0.03})
    r = forest_rows(None, logistic, None).set_index(["outcome", "model"])
    assert r.loc[("response_day7", "adjusted"), "family"] == "secondary"
    np.testing.assert_allclose(r.xs("adjusted", level="model").loc[["death_30d", "response_day7", "ae_grade3plus"],
                                                                   "p_holm"], [0.06, np.nan, 0.06], rtol=1e-12)
    # a family of one: its Holm p is its p; no secondary outcome configured: no family, no p_holm
    one = forest_rows(None, logistic, None, secondary_outcomes=["ae_grade3plus"]).set_index(["outcome", "model"])
    assert one.loc[("ae_grade3plus", "adjusted"), "p_holm"] == 0.03 and one["p_holm"].notna().sum() == 1
    none = forest_rows(COX, logistic, None, secondary_outcomes=[], primary_outcome=None)
    assert set(none["family"]) == {"exploratory"} and none["p_holm"].isna().all()
    assert not none["note"].fillna("").str.contains("primary outcome").any()
