"""Kaplan-Meier, medians, survival at times, numbers at risk and the log-rank test.

Reference numbers: /work/shared/reference/README.md (R survival 3.5, R 4.2), copied here with
the R call that printed them. lung is lifelines' copy of survival::lung (status recoded 0/1).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.survival import (
    kaplan_meier,
    km_median,
    km_summary,
    logrank_test,
    numbers_at_risk,
    survival_at,
)

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def lung():
    return pd.read_csv(REF / "survival_lung.csv")


# --------------------------------------------------------------------------- lung vs R


def test_lung_overall_summary_matches_r(lung):
    s = km_summary(lung, "time", "status", times=[365.25]).iloc[0]
    # R: print(survfit(Surv(time, status) ~ 1, data = lung)) -> n 228, events 165,
    #    median 310, 0.95LCL 285, 0.95UCL 363 (survival 3.5; README "Kaplan-Meier")
    assert s["group"] == "all"
    assert s["n"] == 228 and s["events"] == 165
    assert (s["median"], s["median_lcl"], s["median_ucl"]) == (310, 285, 363)
    # R: summary(survfit(Surv(time, status) ~ 1, lung), times = 365.25)
    #    -> survival 0.409, lower 95% CI 0.345, upper 0.486 (README; printed to 3 decimals)
    assert s["surv_365.25"] == pytest.approx(0.409, abs=5e-4)
    assert s["surv_365.25_lcl"] == pytest.approx(0.345, abs=5e-4)
    assert s["surv_365.25_ucl"] == pytest.approx(0.486, abs=5e-4)


def test_lung_by_sex_medians_match_r(lung):
    s = km_summary(lung, "time", "status", "sex").set_index("group")
    # R: survfit(Surv(time, status) ~ sex, data = lung)
    #    sex=1: median 270 (212, 310); sex=2: median 426 (348, 550)  (README)
    assert tuple(s.loc[1, ["median", "median_lcl", "median_ucl"]]) == (270, 212, 310)
    assert tuple(s.loc[2, ["median", "median_lcl", "median_ucl"]]) == (426, 348, 550)
    assert list(s["n"]) == [138, 90]


def test_lung_logrank_matches_r(lung):
    r = logrank_test(lung, "time", "status", "sex")
    # R: survdiff(Surv(time, status) ~ sex, data = lung)
    #    -> Chisq = 10.3 on 1 df, p = 0.00131; chisq 10.3267 to 4 decimals (README)
    assert r.chisq == pytest.approx(10.3267, abs=5e-5)
    assert r.df == 1
    assert r.p == pytest.approx(0.00131, abs=5e-6)
    # R prints N 138/90, Observed 112/53, Expected 91.6/73.4 for the same call
    assert list(r.table["observed"]) == [112, 53]
    assert r.table["expected"].to_numpy() == pytest.approx([91.6, 73.4], abs=0.05)


def test_default_intervals_are_r_log_not_lifelines_loglog(lung):
    # README: lifelines' log(-log) intervals give 284 to 361 for the median (R conf.type="log-log"),
    # R's default "log" gives 285 to 363.
    loglog = km_median(kaplan_meier(lung, "time", "status", conf_type="log-log")).iloc[0]
    assert (loglog["median_lcl"], loglog["median_ucl"]) == (284, 361)


# --------------------------------------------------------------------------- hand-worked


def tiny():
    # 5 subjects; tie at t=2 between an event and a censoring (censored stays at risk at 2)
    return pd.DataFrame({"t": [1, 2, 2, 3, 4], "d": [1, 1, 0, 1, 0]})


def test_tiny_curve_by_hand():
    c = kaplan_meier(tiny(), "t", "d")
    # by hand: n_risk 5,4,2,1; S = 4/5, 4/5*3/4, *1/2, *1 = 0.8, 0.6, 0.3, 0.3
    assert list(c["time"]) == [1, 2, 3, 4]
    assert list(c["n_risk"]) == [5, 4, 2, 1]
    assert list(c["n_event"]) == [1, 1, 1, 0]
    assert list(c["n_censor"]) == [0, 1, 0, 1]
    assert c["surv"].to_numpy() == pytest.approx([0.8, 0.6, 0.3, 0.3])
    # Greenwood: sum d/(n(n-d)) = 1/20, +1/12, +1/2 -> var(log S) = 0.05, 0.13333, 0.63333
    se_log = np.sqrt([0.05, 0.05 + 1 / 12, 0.05 + 1 / 12 + 0.5, 0.05 + 1 / 12 + 0.5])
    assert c["std_err"].to_numpy() == pytest.approx(c["surv"].to_numpy() * se_log)
    z = 1.959963984540054
    assert c["surv_lcl"].to_numpy() == pytest.approx(c["surv"].to_numpy() * np.exp(-z * se_log))
    assert c["surv_ucl"].to_numpy() == pytest.approx(np.minimum(1, c["surv"].to_numpy() * np.exp(z * se_log)))


def test_tiny_median_by_hand():
    m = km_median(kaplan_meier(tiny(), "t", "d")).iloc[0]
    # S first <= .5 at t=3; lower curve 0.8*exp(-z*sqrt(.05)) = 0.516 at 1, 0.293 at 2 -> 2;
    # upper curve never reaches .5 (0.3*exp(z*sqrt(.6333)) > 1) -> NA, as R prints
    assert m["median"] == 3
    assert m["median_lcl"] == 2
    assert np.isnan(m["median_ucl"])


def test_median_half_way_rule_when_curve_is_exactly_half():
    # R: survfit(Surv(1:4) ~ 1) has S = .75, .5, .25, 0 and prints median 2.5 (mean of 2 and 3)
    df = pd.DataFrame({"t": [1, 2, 3, 4], "d": [1, 1, 1, 1]})
    assert km_median(kaplan_meier(df, "t", "d")).iloc[0]["median"] == 2.5


def test_survival_at_is_right_continuous_and_stops_at_last_time():
    s = survival_at(tiny(), "t", "d", [0, 0.5, 1, 1.5, 2, 4, 5])
    assert s["surv"].to_numpy()[:6] == pytest.approx([1, 1, 0.8, 0.8, 0.6, 0.3])
    assert np.isnan(s["surv"].iloc[6])  # beyond follow-up: R's summary(times=) omits it
    assert list(s["n_risk"]) == [5, 5, 5, 4, 4, 1, 0]


def test_numbers_at_risk():
    r = numbers_at_risk(tiny(), "t", "d", [0, 2, 2.5, 10])
    assert list(r["n_risk"]) == [5, 4, 2, 0]
    assert list(r["n_event_cum"]) == [0, 2, 2, 3]
    assert list(r["n_censor_cum"]) == [0, 1, 1, 2]


def test_all_events_curve_reaches_zero_without_crash():
    df = pd.DataFrame({"t": [1, 2, 2], "d": [1, 1, 1]})
    c = kaplan_meier(df, "t", "d")
    assert c["surv"].iloc[-1] == 0
    assert np.isnan(c["surv_lcl"].iloc[-1])  # R gives NA limits where S = 0


def test_group_without_events_and_missing_rows():
    df = pd.DataFrame(
        {"t": [4.5, 6, 3, 4, 5, np.nan], "d": [0, 0, 1, 1, 0, 1], "g": ["IV", "IV", "SC", "SC", "SC", "IV"]}
    )
    s = km_summary(df, "t", "d", "g", times=[2]).set_index("group")
    assert s.loc["IV", "n"] == 2 and s.loc["IV", "events"] == 0
    assert np.isnan(s.loc["IV", "median"])
    assert s.loc["IV", "surv_2"] == 1.0
    r = logrank_test(df, "t", "d", "g")
    assert np.isfinite(r.chisq) and r.df == 1
    # a group whose subjects all leave before the first event has E = 0: R drops it (no test)
    early = df.assign(t=[1, 2, 3, 4, 5, np.nan])
    assert logrank_test(early, "t", "d", "g").df == 0


def test_logrank_no_events_is_no_test():
    df = pd.DataFrame({"t": [1, 2, 3], "d": [0, 0, 0], "g": ["a", "b", "b"]})
    r = logrank_test(df, "t", "d", "g")
    assert r.df == 0 and np.isnan(r.p)


def test_logrank_three_groups_matches_lifelines():
    from lifelines.statistics import multivariate_logrank_test

    rng = np.random.default_rng(7)
    df = pd.DataFrame({"t": rng.integers(1, 30, 120), "d": rng.integers(0, 2, 120), "g": rng.choice(list("abc"), 120)})
    ours = logrank_test(df, "t", "d", "g")
    theirs = multivariate_logrank_test(df["t"], df["g"], df["d"])
    assert ours.df == 2
    assert ours.chisq == pytest.approx(theirs.test_statistic, rel=1e-10)


def test_bad_event_values_raise_named_error():
    with pytest.raises(ValueError, match="'d'"):
        kaplan_meier(pd.DataFrame({"t": [1, 2], "d": [0, 2]}), "t", "d")


def test_fast_at_100k():
    import time

    rng = np.random.default_rng(1)
    n = 100_000
    df = pd.DataFrame({"t": rng.exponential(10, n), "d": rng.integers(0, 2, n), "g": rng.integers(0, 3, n)})
    start = time.perf_counter()
    km_summary(df, "t", "d", "g", times=[1, 5])
    logrank_test(df, "t", "d", "g")
    numbers_at_risk(df, "t", "d", [0, 5, 10], "g")
    assert time.perf_counter() - start < 5


def test_logrank_zero_variance_is_not_estimable_not_a_crash():
    # Each group has one death, both at day 2 when the only two at risk both die (the others were
    # censored at day 1): E = 1 in each group, so a test is attempted, but every death time has
    # d = n, so the hypergeometric variance d (n - d) / (n - 1) is 0 and V is singular.
    df = pd.DataFrame({"t": [1, 2, 1, 2], "d": [0, 1, 0, 1], "g": ["IV", "IV", "SC", "SC"]})
    r = logrank_test(df, "t", "d", "g")
    assert np.isnan(r.chisq) and r.df == 0 and np.isnan(r.p)
    assert "variance" in r.note and "all at risk died" in r.note
    assert list(r.table["expected"]) == [1.0, 1.0] and list(r.table["observed"]) == [1.0, 1.0]
    # the curves of the same data are computed as usual
    c = kaplan_meier(df, "t", "d", "g")
    assert list(c.loc[c["time"] == 2, "surv"]) == [0.0, 0.0]
    # an estimable test has no note
    assert logrank_test(df.assign(t=[1, 2, 3, 4]), "t", "d", "g").note is None
