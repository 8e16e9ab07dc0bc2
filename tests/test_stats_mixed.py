"""Linear mixed model of a log lab value: recovery of known parameters, fallback, degenerate data."""

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.mixed import FIXED_COLUMNS, lab_trajectory_lmm

TRUE = {"Intercept": 8.0, "day": -0.05, "route[SC]": 0.3, "route[SC]:day": -0.04}


def simulate(n_pat=200, days=np.arange(0, 15, 2), seed=1, sd_i=0.5, sd_s=0.03, sigma=0.25):
    """log(ferritin) = fixed + b0_i + b1_i * day + e, known parameters (TRUE, sd_i, sd_s, sigma)."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_pat), len(days))
    day = np.tile(days, n_pat).astype(float)
    sc = (pid % 2 == 1).astype(float)
    b0 = rng.normal(0, sd_i, n_pat)[pid]
    b1 = rng.normal(0, sd_s, n_pat)[pid]
    mu = TRUE["Intercept"] + TRUE["day"] * day + (TRUE["route[SC]"] + TRUE["route[SC]:day"] * day) * sc
    y = mu + b0 + b1 * day + rng.normal(0, sigma, len(day))
    return pd.DataFrame({"pid": pid, "route": np.where(sc == 1, "SC", "IV"), "day": day, "ferritin": np.exp(y)})


def test_recovers_known_parameters():
    r = lab_trajectory_lmm(simulate(), "ferritin", "day", "pid", "route")
    assert r.estimable and r.random_effects == "intercept+slope" and r.fallback_reason is None
    assert list(r.fixed_effects.columns) == FIXED_COLUMNS
    fe = r.fixed_effects.set_index("term")
    for term, value in TRUE.items():
        assert abs(fe.loc[term, "coef"] - value) < 3 * fe.loc[term, "se"], term
    # variance components (simulated sd 0.5, 0.03, residual 0.25)
    assert np.sqrt(r.random_cov.loc["Intercept", "Intercept"]) == pytest.approx(0.5, rel=0.15)
    assert np.sqrt(r.random_cov.loc["day", "day"]) == pytest.approx(0.03, rel=0.25)
    assert np.sqrt(r.residual_var) == pytest.approx(0.25, rel=0.1)
    assert (r.n_obs, r.n_patients) == (1600, 200)


def test_falls_back_to_random_intercept_when_slope_variance_is_zero():
    r = lab_trajectory_lmm(simulate(n_pat=60, sd_s=0.0, seed=2), "ferritin", "day", "pid", "route")
    assert r.estimable
    assert r.random_effects == "intercept"
    assert r.fallback_reason.startswith("random slope dropped")
    fe = r.fixed_effects.set_index("term")
    assert abs(fe.loc["route[SC]:day", "coef"] - TRUE["route[SC]:day"]) < 3 * fe.loc["route[SC]:day", "se"]


PAIRS = {"pid": list("aabbccdd"), "route": ["IV"] * 4 + ["SC"] * 4}


@pytest.mark.parametrize(
    "data, reason",
    [
        # one day only: the day and interaction columns are not estimable
        (pd.DataFrame({**PAIRS, "day": 0, "ferritin": np.arange(1.0, 9.0)}), "rank"),
        # a single patient
        (pd.DataFrame({"pid": "a", "route": "IV", "day": [0, 1, 2], "ferritin": [1e3, 2e3, 3e3]}), "2 patients"),
        # values that cannot be logged leave too few rows
        (pd.DataFrame({"pid": list("abc"), "route": ["IV", "SC", "SC"], "day": 0, "ferritin": [100, 200, 0]}), "too few"),
        # constant outcome
        (pd.DataFrame({**PAIRS, "day": [0, 1] * 4, "ferritin": 100.0}), "does not vary"),
    ],
)
def test_degenerate_data_is_not_estimable_never_a_crash(data, reason):
    r = lab_trajectory_lmm(data, "ferritin", "day", "pid", "route")
    assert not r.estimable and reason in r.reason
    assert r.fixed_effects["coef"].isna().all()


def test_two_visits_per_patient_cannot_carry_a_random_slope():
    # 6 patients x 2 days = 12 observations <= 12 random effects (lme4 refuses this model)
    r = lab_trajectory_lmm(simulate(n_pat=6, days=np.array([0, 3]), seed=5), "ferritin", "day", "pid", "route")
    assert r.estimable
    assert r.random_effects == "intercept" and "not identifiable" in r.fallback_reason


def test_one_visit_per_patient_is_not_estimable():
    d = simulate(n_pat=12, days=np.array([0]), seed=5).assign(day=np.arange(12.0) % 4)
    r = lab_trajectory_lmm(d, "ferritin", "day", "pid", "route")
    assert not r.estimable and "one observation per patient" in r.reason


def test_nonpositive_values_counted():
    d = simulate(n_pat=40, seed=3)
    d.loc[:5, "ferritin"] = 0
    r = lab_trajectory_lmm(d, "ferritin", "day", "pid", "route")
    assert r.n_dropped_nonpositive == 6 and r.n_obs == len(d) - 6
