"""Survival analysis (KM, log-rank, Cox, cox.zph) on small hand-checkable cohorts, the
not-estimable cases (no deaths in one group, nobody dies, an empty group, separation) and the
Kaplan-Meier figure."""

from __future__ import annotations

import json
import time

import jsonschema
import numpy as np
import pandas as pd
import pytest

from stormcohort.analyses.survival import (
    COX_COLUMNS,
    KM_RISK_COLUMNS,
    LOGRANK_COLUMNS,
    PH_COLUMNS,
    ROUTE_TERM,
    jsonable,
    km_columns,
    survival_analysis,
)
from stormcohort.figures import save
from stormcohort.stats import cox_ph, cox_zph, logrank_test
from tests.config_defaults import schema_defaults

Z = 1.959963984540054


def cohort(n: int = 46, seed: int = 1, n_iv: int = 18) -> pd.DataFrame:
    """A synthetic analysis dataset shaped like the embedded delivery's (46 patients, 18 IV)."""
    rng = np.random.default_rng(seed)
    t = rng.exponential(200, n).round() + 1
    return pd.DataFrame({
        "patient_key": [f"P{i:06d}" for i in range(n)],
        "route_group": np.where(np.arange(n) < n_iv, "IV", "SC"),
        "time_to_death_days": np.minimum(t, 90.0),
        "death_90d": (t <= 90).astype(int),
        "age_group": rng.choice(["adult", "child"], n, p=[0.75, 0.25]),
        "icu": rng.integers(0, 2, n),
        "trigger_category": np.resize(["infection", "rheumatic", "malignancy", "idiopathic"], n),
    })


def hand() -> pd.DataFrame:
    """IV: deaths at days 10 and 20, censored at 30 and 90. SC: death at 5, three censored at 90."""
    return pd.DataFrame({
        "route_group": ["IV"] * 4 + ["SC"] * 4,
        "time_to_death_days": [10.0, 20, 30, 90, 5, 90, 90, 90],
        "death_90d": [1, 1, 0, 0, 1, 0, 0, 0],
        "age_group": ["adult", "child"] * 4,
        "icu": [0, 1, 1, 0, 0, 1, 0, 1],
        "trigger_category": ["infection"] * 8,
    })


KM_COLUMNS = km_columns([30, 90])


def survival(dataset: pd.DataFrame, cfg: dict | None = None, follow_up_days: int = 90, **kw):
    """The analysis with the schema's defaults for every setting not in ``cfg``."""
    return survival_analysis(dataset, schema_defaults("survival", **(cfg or {})), follow_up_days, **kw)


def render(result, tmp_path, name="km"):
    for ext in ("png", "svg"):
        save(result.figures["km"](), tmp_path / f"{name}.{ext}")
    assert (tmp_path / f"{name}.png").stat().st_size > 20_000
    assert "Survival probability" in (tmp_path / f"{name}.svg").read_text()


# --------------------------------------------------------------------------- contract


def test_tables_have_the_contract_columns_and_rows():
    r = survival(cohort())
    assert list(r.tables["km"].columns) == KM_COLUMNS and list(r.tables["km"]["group"]) == ["overall", "IV", "SC"]
    assert list(r.tables["logrank"].columns) == LOGRANK_COLUMNS and len(r.tables["logrank"]) == 1
    assert list(r.tables["cox"].columns) == COX_COLUMNS
    assert list(r.tables["ph_test"].columns) == PH_COLUMNS
    assert list(r.tables["cox"]["model"].unique()) == ["unadjusted", "adjusted"]
    for model in ("unadjusted", "adjusted"):
        assert r.tables["cox"].loc[r.tables["cox"]["model"] == model, "term"].iloc[0] == ROUTE_TERM
    assert list(r.tables["cox"].loc[r.tables["cox"]["model"] == "unadjusted", "term"]) == [ROUTE_TERM]
    # reference levels from the defaults: SC, adult, infection
    assert list(r.tables["cox"].loc[r.tables["cox"]["model"] == "adjusted", "term"]) == [
        ROUTE_TERM, "age_group[child]", "icu", "trigger_category[idiopathic]",
        "trigger_category[malignancy]", "trigger_category[rheumatic]"]
    assert r.tables["cox"]["hr"].to_numpy() == pytest.approx(np.exp(r.tables["cox"]["coef"].to_numpy()))


def test_km_hand_values():
    km = survival(hand()).tables["km"].set_index("group")
    iv, sc = km.loc["IV"], km.loc["SC"]
    assert (iv["n"], iv["events"], sc["n"], sc["events"]) == (4, 2, 4, 1)
    assert km.loc["overall", "n"] == 8 and km.loc["overall", "events"] == 3
    # IV: S(10) = 3/4, S(20) = 3/4 * 2/3 = 1/2, flat to the end -> median 20 (R's rule)
    assert iv["surv_30"] == pytest.approx(0.5) and iv["surv_90"] == pytest.approx(0.5)
    assert iv["median"] == 20
    se = np.sqrt(1 / (4 * 3) + 1 / (3 * 2))  # Greenwood se(log S)
    assert iv["surv_30_lcl"] == pytest.approx(0.5 * np.exp(-Z * se))
    assert iv["surv_30_ucl"] == 1.0  # log interval truncated at 1
    assert sc["surv_90"] == pytest.approx(0.75)
    assert np.isnan(sc["median"]) and sc["note"] == "median not reached"


def test_logrank_and_cox_pass_through_the_stats_layer():
    d = cohort()
    r = survival(d)
    lr = logrank_test(d, "time_to_death_days", "death_90d", "route_group")
    assert r.tables["logrank"].loc[0, "statistic"] == pytest.approx(lr.chisq)
    assert r.tables["logrank"].loc[0, "df"] == 1 and r.tables["logrank"].loc[0, "p"] == pytest.approx(lr.p)
    # route_group[IV] with SC as reference is the coefficient of an IV indicator
    ref = cox_ph(d.assign(iv=(d["route_group"] == "IV").astype(int)), "time_to_death_days", "death_90d", ["iv"])
    row = r.tables["cox"].set_index(["model", "term"]).loc[("unadjusted", ROUTE_TERM)]
    assert row["coef"] == pytest.approx(ref.table.loc[0, "coef"], abs=1e-9)
    assert row["se"] == pytest.approx(ref.table.loc[0, "se"], abs=1e-9)
    assert row["n"] == 46 and row["events"] == int(d["death_90d"].sum()) and row["epv"] == row["events"]


def test_ph_test_terms_and_global():
    d = cohort()
    r = survival(d)
    ph = r.tables["ph_test"].set_index(["model", "term"])
    assert list(r.tables["ph_test"].loc[r.tables["ph_test"]["model"] == "adjusted", "term"]) == [
        ROUTE_TERM, "age_group[child]", "icu", "trigger_category", "GLOBAL"]
    assert ph.loc[("adjusted", "trigger_category"), "df"] == 3
    assert ph.loc[("adjusted", "GLOBAL"), "df"] == 6
    ref = cox_zph(cox_ph(d.assign(iv=(d["route_group"] == "IV").astype(int)),
                         "time_to_death_days", "death_90d", ["iv"]))
    assert ph.loc[("unadjusted", ROUTE_TERM), "statistic"] == pytest.approx(ref.loc[0, "chisq"], rel=1e-6)
    assert r.tables["ph_test"]["note"].isna().all()
    assert "cox.zph" in r.model["ph_test"]["method"] and "km" in r.model["ph_test"]["method"]


def test_epv_warning_and_threshold_is_configurable():
    d = cohort()
    r = survival(d)
    adj = r.tables["cox"][r.tables["cox"]["model"] == "adjusted"]
    events = int(d["death_90d"].sum())
    assert adj["epv"].iloc[0] == pytest.approx(events / 6)
    assert adj["note"].str.contains("EPV").all()
    assert any("adjusted: EPV" in w for w in r.model["warnings"])
    assert r.tables["cox"].loc[r.tables["cox"]["model"] == "unadjusted", "note"].isna().all()  # EPV >= 10 there
    quiet = survival(d, {"epv_warn_below": 1})
    assert not any("EPV" in w for w in quiet.model["warnings"])


def test_model_json_is_strict_json_and_deterministic():
    a, b = survival(cohort()).model, survival(cohort()).model
    text = json.dumps(a, sort_keys=True, allow_nan=False)
    assert text == json.dumps(b, sort_keys=True, allow_nan=False)
    assert a["cox"]["adjusted"]["estimable"] is True and a["cox"]["adjusted"]["converged"] is True
    assert a["cox"]["adjusted"]["reference_levels"] == {
        "route_group": "SC", "age_group": "adult", "trigger_category": "infection"}
    assert jsonable({"x": np.float64(1 / 3), "y": np.nan, "z": np.int64(2)}) == {"x": 0.333333, "y": None, "z": 2}


def test_reference_levels_and_covariates_come_from_config():
    r = survival(cohort(), {"adjust_for": ["trigger_category"],
                                     "reference_levels": {"trigger_category": "malignancy"}})
    assert list(r.tables["cox"].loc[r.tables["cox"]["model"] == "adjusted", "term"]) == [
        ROUTE_TERM, "trigger_category[idiopathic]", "trigger_category[infection]", "trigger_category[rheumatic]"]


# --------------------------------------------------------------------------- small numbers


def test_one_group_without_deaths_gives_reasons_not_a_crash(tmp_path):
    d = cohort()
    d.loc[d["route_group"] == "IV", "death_90d"] = 0
    r = survival(d)
    km = r.tables["km"].set_index("group")
    assert km.loc["IV", "events"] == 0 and km.loc["IV", "surv_90"] == 1.0
    assert "no deaths" in km.loc["IV", "note"]
    # log-rank is still a valid test; the note says why it may look extreme
    assert (np.isfinite(r.tables["logrank"].loc[0, "p"])
            and r.tables["logrank"].loc[0, "note"] == "no deaths in the IV group")
    assert r.tables["cox"][["coef", "se", "hr", "hr_lcl", "hr_ucl", "p"]].isna().all().all()
    assert r.tables["cox"]["note"].str.contains("not estimable: no deaths in the IV group").all()
    assert (r.tables["cox"]["n"] == 46).all()
    assert list(r.tables["ph_test"]["term"]) == ["GLOBAL", "GLOBAL"] and r.tables["ph_test"]["statistic"].isna().all()
    assert r.tables["ph_test"]["note"].str.startswith("model not estimable").all()
    assert r.model["cox"]["unadjusted"]["estimable"] is False
    render(r, tmp_path)


def test_nobody_dies(tmp_path):
    d = cohort().assign(death_90d=0, time_to_death_days=90.0)
    r = survival(d)
    assert (r.tables["km"]["events"] == 0).all() and (r.tables["km"]["surv_90"] == 1.0).all()
    assert r.tables["km"]["median"].isna().all()
    assert (np.isnan(r.tables["logrank"].loc[0, "statistic"])
            and "no deaths in either group" in r.tables["logrank"].loc[0, "note"])
    assert (r.tables["cox"]["coef"].isna().all()
            and r.tables["cox"]["note"].str.contains("no deaths in either group").all())
    assert r.model["cox"]["adjusted"]["converged"] is None  # nothing to fit
    json.dumps(r.model, allow_nan=False)
    render(r, tmp_path)


def test_empty_route_group(tmp_path):
    d = cohort().assign(route_group="SC")
    r = survival(d)
    iv = r.tables["km"].set_index("group").loc["IV"]
    assert iv["n"] == 0 and iv["note"] == "no patients in group" and np.isnan(iv["surv_30"])
    assert "no patients in the IV group" in r.tables["logrank"].loc[0, "note"]
    assert r.tables["cox"].loc[r.tables["cox"]["model"] == "unadjusted", "term"].tolist() == [ROUTE_TERM]
    assert r.tables["cox"]["note"].str.contains("no patients in the IV group").all()
    assert (r.tables["km_risk"].loc[r.tables["km_risk"]["group"] == "IV", "n_risk"] == 0).all()
    render(r, tmp_path)


def test_empty_dataset():
    r = survival(cohort().iloc[:0])
    assert (r.tables["km"]["n"] == 0).all() and r.tables["cox"]["coef"].isna().all()
    assert "no patients" in r.tables["logrank"].loc[0, "note"]


def test_factor_level_without_deaths_makes_adjusted_not_estimable():
    d = cohort()
    d.loc[d["trigger_category"] == "malignancy", "death_90d"] = 0
    r = survival(d)
    assert r.tables["cox"].loc[r.tables["cox"]["model"] == "unadjusted", "coef"].notna().all()
    adj = r.tables["cox"][r.tables["cox"]["model"] == "adjusted"]
    assert adj["coef"].isna().all() and adj["note"].str.contains("trigger_category\\[malignancy\\]").all()
    assert r.tables["ph_test"].loc[r.tables["ph_test"]["model"] == "adjusted",
                                   "note"].str.contains("not estimable").all()


def test_constant_covariate_dropped_and_missing_covariates_noted():
    d = cohort().assign(age_group="adult")
    d.loc[:4, "icu"] = np.nan
    r = survival(d)
    adj = r.tables["cox"][r.tables["cox"]["model"] == "adjusted"]
    assert "age_group[child]" not in set(adj["term"])
    assert adj["note"].str.contains("age_group dropped").all()
    assert adj["note"].str.contains("5 patient\\(s\\) without complete data excluded").all()
    assert (adj["n"] == 41).all()
    assert r.model["cox"]["adjusted"]["dropped_covariates"] == ["age_group"]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'iv'"):
        survival(cohort().assign(route_group="iv"))
    with pytest.raises(KeyError, match="icu"):
        survival(cohort().drop(columns="icu"))
    with pytest.raises(jsonschema.ValidationError, match="adjust"):
        survival(cohort(), {"adjust": []})


def test_works_on_a_derived_cohort_and_its_csv():
    """The dataset as cohort.derive_cohort makes it (nullable ints) and as the rule reads it (CSV)."""
    import io

    from stormcohort.cohort import derive_cohort
    from stormcohort.link import link_centres
    from tests.test_cohort import CONFIG, EXTRACT, split_by_centre, world

    cfg = dict(CONFIG, study_window={"start": "2019-01-01", "end": "2020-12-31"})
    linked, _ = link_centres(split_by_centre(world().tables()))
    dataset = derive_cohort(linked, cfg, EXTRACT).dataset
    buf = io.StringIO()
    dataset.to_csv(buf, index=False)
    for d in (dataset, pd.read_csv(io.StringIO(buf.getvalue()))):
        r = survival(d)
        assert r.tables["km"].set_index("group").loc["overall", "n"] == len(dataset)
        assert set(r.tables["cox"]["model"]) == {"unadjusted", "adjusted"}
        json.dumps(r.model, allow_nan=False)


# --------------------------------------------------------------------------- figure and scale


def test_figure_renders_and_is_deterministic(tmp_path):
    r = survival(cohort())
    render(r, tmp_path, "a")
    render(r, tmp_path, "b")
    for ext in ("png", "svg"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    svg = (tmp_path / "a.svg").read_text()
    assert "Days from the first anakinra dose" in svg and "Number at risk" in svg and "Log-rank p" in svg


def test_fast_at_100k():
    d = cohort(100_000, seed=2, n_iv=40_000)
    start = time.perf_counter()
    r = survival(d)
    assert time.perf_counter() - start < 20
    assert r.tables["km"].loc[0, "n"] == 100_000 and r.tables["cox"]["coef"].notna().all()


# --------------------------------------------------------------------------- horizon and risk table


def test_numbers_at_risk_table():
    r = survival(hand(), {"risk_table_days": [0, 15, 30, 90]})
    risk = r.tables["km_risk"]
    assert list(risk.columns) == KM_RISK_COLUMNS and set(risk["outcome"]) == {"death_90d"}
    iv = risk[risk["group"] == "IV"].set_index("day")
    assert iv["n_risk"].tolist() == [4, 3, 2, 1] and iv["n_event_cum"].tolist() == [0, 1, 2, 2]
    assert set(r.tables["cox"]["outcome"]) == {"death_90d"}


def test_horizon_names_every_table_and_label(tmp_path):
    """With cohort.follow_up_days = 60 every name and label says 60 and nothing says 90."""
    from stormcohort.analyses.forest import forest_rows
    from stormcohort.cohort import data_dictionary

    d = cohort().rename(columns={"death_90d": "death_60d"})
    d["death_60d"] = ((d["time_to_death_days"] <= 60) & (d["death_60d"] == 1)).astype(int)
    d["time_to_death_days"] = d["time_to_death_days"].clip(upper=60)
    r = survival(d, {"risk_table_days": [0, 20, 40, 60]}, follow_up_days=60, synthetic=True)
    assert [c for c in r.tables["km"].columns if c.startswith("surv_")] == km_columns([30, 60])[6:-1]
    for name in ("km_risk", "cox"):
        assert set(r.tables[name]["outcome"]) == {"death_60d"}
    assert r.model["outcome"]["event"] == "death_60d" and r.model["outcome"]["landmark_days"] == [30, 60]
    forest = forest_rows(r.tables["cox"], None, None, {"rate_outcomes": []})
    assert set(forest["label"]) == {"Death by day 60"}
    save(r.figures["km"](), tmp_path / "km.svg")
    svg = (tmp_path / "km.svg").read_text()
    assert "Survival to day 60" in svg and "day 90" not in svg
    names = [str(v) for t in r.tables.values()
             for v in [*t.columns, *t.select_dtypes("object").astype(str).to_numpy().ravel()]]
    assert not [n for n in names if "90" in n]  # no 90-day name, label or note
    assert ("death_60d" in data_dictionary(60)["column"].tolist()
            and "death_90d" not in data_dictionary(60)["column"].tolist())


def test_zero_variance_logrank_gives_a_reason_not_a_crash(tmp_path):
    # One death per group, both on day 20 when the only two patients still at risk die: the
    # log-rank variance is 0 (R's survdiff stops in solve()); KM, Cox and the figure still run.
    d = hand().assign(time_to_death_days=[10.0, 10, 20, 10, 10, 10, 20, 10],
                      death_90d=[0, 0, 1, 0, 0, 0, 1, 0])
    r = survival(d)
    lr = r.tables["logrank"].iloc[0]
    assert np.isnan(lr["statistic"]) and np.isnan(lr["p"]) and lr["df"] == 0
    assert lr["note"].startswith("not estimable: the variance of observed minus expected deaths is zero")
    assert r.model["logrank"]["reason"] == lr["note"]
    assert f"log-rank: {lr['note']}" in r.notes
    km = r.tables["km"].set_index("group")
    assert km.loc["IV", "events"] == 1 and km.loc["IV", "median"] == 20
    # Efron's likelihood is symmetric in b here: HR 1, as R's coxph; Harrell's C has no pair
    unadjusted = r.tables["cox"].iloc[0]
    assert unadjusted["hr"] == pytest.approx(1) and np.isfinite(unadjusted["hr_ucl"])
    assert r.model["cox"]["unadjusted"]["concordance"] is None
    assert r.tables["ph_test"]["note"].notna().all()
    json.dumps(r.model, allow_nan=False)
    render(r, tmp_path)
