"""Incidence rates (exact Poisson CI) and rate ratios (exact conditional) against R poisson.test."""

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.rates import (
    RATE_COLUMNS,
    clustered_rate_ratio,
    incidence_rates,
    poisson_rate_ci,
    rate_ratio,
)


def test_poisson_test_10_in_100():
    r = poisson_rate_ci(10, 100).iloc[0]
    # R: poisson.test(10, 100) -> rate 0.1, 95% CI 0.04795389 0.18390356 (task brief)
    assert r["rate"] == pytest.approx(0.1)
    assert r["rate_lcl"] == pytest.approx(0.04795389, abs=5e-9)
    assert r["rate_ucl"] == pytest.approx(0.18390356, abs=5e-9)


def test_poisson_test_smr_example():
    r = poisson_rate_ci(137, 24.19893).iloc[0]
    # R: example(poisson.test), poisson.test(137, 24.19893) (Welsh nickel workers, ISwR)
    #    -> rate 5.661407, 95% CI 4.753125 6.692709
    assert (r["rate"], r["rate_lcl"], r["rate_ucl"]) == pytest.approx((5.661407, 4.753125, 6.692709), abs=5e-7)


def test_zero_events_lower_limit_zero():
    r = poisson_rate_ci(0, 50).iloc[0]
    # by hand: upper = qgamma(0.975, 1) / 50 = -log(0.025) / 50; R poisson.test(0, 50) agrees
    assert r["rate"] == 0 and r["rate_lcl"] == 0
    assert r["rate_ucl"] == pytest.approx(-np.log(0.025) / 50)


def test_per_100_patient_days_by_group():
    df = pd.DataFrame({"route": ["IV", "IV", "SC", "SC", "SC"], "inf": [1, 0, 2, 0, 0], "days": [10, 20, 15.0, 5, 0]})
    r = incidence_rates(df, "inf", "days", "route").set_index("group")
    assert list(r.reset_index().columns) == RATE_COLUMNS
    # by hand: IV 1 event / 30 days = 3.333 per 100; SC 2 / 20 = 10 per 100
    assert r.loc["IV", "rate"] == pytest.approx(100 / 30)
    assert r.loc["SC", "rate"] == pytest.approx(10.0)
    # exact limits scale with `per`: SC = 100 * poisson.test(2, 20)$conf.int
    sc = poisson_rate_ci(2, 20).iloc[0]
    assert r.loc["SC", "rate_lcl"] == pytest.approx(100 * sc["rate_lcl"])


def test_zero_exposure_not_estimable():
    df = pd.DataFrame({"g": ["a", "b"], "x": [1, 0], "T": [0.0, 10.0]})
    r = incidence_rates(df, "x", "T", "g").set_index("group")
    assert not r.loc["a", "estimable"] and r.loc["a", "reason"] == "zero exposure"
    assert np.isnan(r.loc["a", "rate"])
    assert r.loc["b", "estimable"] and r.loc["b", "rate_lcl"] == 0


def test_rate_ratio_matches_r():
    rr = rate_ratio(11, 800, 21, 3011)
    # R: poisson.test(c(11, 6 + 8 + 7), c(800, 1083 + 1050 + 878)) (example(poisson.test), eba1977)
    #    -> p-value = 0.07967, 95% CI 0.8584264 4.2772659, rate ratio 1.971488
    assert rr.estimable
    assert rr.rate_ratio == pytest.approx(1.971488, abs=5e-7)
    assert rr.lcl == pytest.approx(0.8584264, abs=5e-8)
    assert rr.ucl == pytest.approx(4.2772659, abs=5e-8)
    assert rr.p == pytest.approx(0.07967, abs=5e-6)


def test_rate_ratio_zero_cells():
    zero1 = rate_ratio(0, 800, 21, 3011)
    assert zero1.rate_ratio == 0 and zero1.lcl == 0 and np.isfinite(zero1.ucl)
    zero2 = rate_ratio(5, 800, 0, 3011)
    assert zero2.rate_ratio == np.inf and zero2.ucl == np.inf and zero2.lcl > 0
    none = rate_ratio(0, 8, 0, 3)
    assert not none.estimable and none.reason == "no events in either group"
    assert not rate_ratio(1, 0, 2, 3).estimable


def test_vectorised():
    r = poisson_rate_ci(np.arange(100_000) % 7, np.full(100_000, 50.0))
    assert len(r) == 100_000 and r["rate_lcl"].notna().all()


# --------------------------------------------------------------------------- patient-clustered


# A small fixed dataset, one row per patient: IV (iv = 1) 6 events / 45 days, SC 8 / 79.
CLUSTER_DATA = pd.DataFrame({
    "id": range(1, 14),
    "iv": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    "days": [10, 5, 8, 12, 3, 7, 14, 9, 20, 6, 11, 15, 4],
    "events": [0, 3, 1, 0, 2, 0, 1, 0, 4, 0, 2, 0, 1],
})
# Source: R 4.2.2, sandwich 3.0.2, MASS 7.3.58.2 (Debian r-base-core, r-cran-sandwich, r-cran-mass),
# run for this test:
#   library(sandwich); library(MASS)
#   d <- data.frame(id = 1:13, iv = c(1,1,1,1,1,1, 0,0,0,0,0,0,0),
#                   days = c(10,5,8,12,3,7, 14,9,20,6,11,15,4), events = c(0,3,1,0,2,0, 1,0,4,0,2,0,1))
#   fit <- glm(events ~ iv + offset(log(days)), family = poisson, data = d)
#   b <- coef(fit)[["iv"]]; se <- sqrt(vcovCL(fit, cluster = ~id, type = "HC1")["iv", "iv"])
#   exp(b); se; exp(b + c(-1, 1) * qnorm(0.975) * se); 2 * pnorm(-abs(b / se))
# -> irr 1.3166666667, se 0.7713242475, CI 0.2903510836 5.9707409726, p 0.7213436515
#   (R's default for a glm, type = "HC0" with the G/(G-1) adjustment: se 0.7384867434, CI 0.3096526388
#    5.5985672141, p 0.7095034977; MASS::glm.nb(events ~ iv + offset(log(days))): irr 1.8465492337,
#    se 0.7734749081, theta 0.9808082564, p 0.4278132144 -- a differently weighted estimate)
R_HC1 = {"irr": 1.3166666667, "se": 0.7713242475, "lcl": 0.2903510836, "ucl": 5.9707409726, "p": 0.7213436515}


def test_clustered_rate_ratio_matches_r_sandwich():
    d = CLUSTER_DATA
    rr = clustered_rate_ratio(d["events"], d["days"], d["iv"].eq(1))
    assert rr.estimable and rr.method == "poisson_glm_cluster_hc1" and (rr.patients1, rr.patients2) == (6, 7)
    got = {"irr": rr.rate_ratio, "se": rr.se, "lcl": rr.lcl, "ucl": rr.ucl, "p": rr.p}
    assert got == pytest.approx(R_HC1, abs=5e-9)
    # the estimate is the crude ratio of the exact conditional method; only the interval differs
    assert rr.rate_ratio == pytest.approx(rate_ratio(6, 45, 8, 79).rate_ratio)


def test_clustered_variance_by_hand():
    """The sandwich for a two-group Poisson model by hand: var(log irr) = c * sum over groups of
    sum_i (y_i - rate_g t_i)^2 / Y_g^2, c = G/(G-1) * (N-1)/(N-K), one cluster per patient."""
    d = CLUSTER_DATA
    var = 0.0
    for _, g in d.groupby("iv"):
        rate = g["events"].sum() / g["days"].sum()
        var += ((g["events"] - rate * g["days"]) ** 2).sum() / g["events"].sum() ** 2
    n = len(d)
    var *= n / (n - 1) * (n - 1) / (n - 2)
    assert clustered_rate_ratio(d["events"], d["days"], d["iv"].eq(1)).se == pytest.approx(np.sqrt(var), rel=1e-9)


def test_clustered_rate_ratio_matches_statsmodels_glm_cluster():
    """The closed form against statsmodels' Poisson GLM with offset and patient-clustered variance,
    on a random over-dispersed cohort (some patients without exposure, left out by both)."""
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    r = np.random.default_rng(7)
    n = 400
    iv = r.random(n) < 0.4
    days = r.integers(0, 60, n).astype(float)
    events = r.negative_binomial(0.5, 0.5 / (0.5 + days * np.where(iv, 0.05, 0.03)))
    events[days == 0] = 0
    got = clustered_rate_ratio(events, days, iv, conf_level=0.9)
    at_risk = days > 0
    fit = GLM(events[at_risk].astype(float), np.column_stack([np.ones(at_risk.sum()), iv[at_risk].astype(float)]),
              family=families.Poisson(), offset=np.log(days[at_risk])).fit(
        cov_type="cluster", cov_kwds={"groups": np.arange(at_risk.sum())})
    lo, hi = np.exp(fit.conf_int(alpha=0.1)[1])
    assert (got.rate_ratio, got.se, got.lcl, got.ucl, got.p) == pytest.approx(
        (np.exp(fit.params[1]), fit.bse[1], lo, hi, fit.pvalues[1]), rel=1e-7)
    assert (got.patients1, got.patients2) == (int((iv & at_risk).sum()), int((~iv & at_risk).sum()))


def test_clustered_rate_ratio_widens_when_events_bunch_in_one_patient():
    # the same totals (IV 6 / 45, SC 8 / 79) with every IV event in one patient
    d = CLUSTER_DATA.assign(events=[6, 0, 0, 0, 0, 0, 1, 0, 4, 0, 2, 0, 1])
    spread = clustered_rate_ratio(CLUSTER_DATA["events"], CLUSTER_DATA["days"], CLUSTER_DATA["iv"].eq(1))
    bunched = clustered_rate_ratio(d["events"], d["days"], d["iv"].eq(1))
    assert bunched.rate_ratio == pytest.approx(spread.rate_ratio) and bunched.se > spread.se


def test_clustered_rate_ratio_not_estimable():
    d = CLUSTER_DATA
    none_iv = clustered_rate_ratio(d["events"].where(d["iv"].eq(0), 0), d["days"], d["iv"].eq(1))
    assert not none_iv.estimable and none_iv.reason == "no events in group 1" and np.isnan(none_iv.lcl)
    assert clustered_rate_ratio([1, 2], [3.0, 4.0], [True, False]).reason == "fewer than 3 patients with exposure"
    assert clustered_rate_ratio([1, 2, 0], [3.0, 4.0, 5.0], [False] * 3).reason == \
        "no patient with exposure in a group"
    # a patient without exposure is left out (no time at risk)
    zero_days = clustered_rate_ratio([*d["events"], 0], [*d["days"], 0.0], [*d["iv"].eq(1), True])
    assert (zero_days.patients1, zero_days.se) == (6, pytest.approx(R_HC1["se"], abs=5e-9))
