"""Incidence rates (exact Poisson CI) and rate ratios (exact conditional) against R poisson.test."""

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.rates import (
    RATE_COLUMNS,
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
