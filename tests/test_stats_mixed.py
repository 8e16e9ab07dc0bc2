"""Linear mixed model of a log lab value: recovery of known parameters, fallback, degenerate data."""

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.mixed import FIXED_COLUMNS, lab_trajectory_lmm

TRUE = {"Intercept": 8.0, "day": -0.05, "route[SC]": 0.3, "route[SC]:day": -0.04}
DAYS = np.arange(0, 15, 2)


def simulate(n_pat=200, days=DAYS, seed=1, sd_i=0.5, sd_s=0.03, sigma=0.25):
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
        (pd.DataFrame({"pid": list("abc"), "route": ["IV", "SC", "SC"], "day": 0, "ferritin": [100, 200, 0]}),
         "too few"),
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


# --------------------------------------------------------------------------- exactness and scale


def unbalanced(n_pat=200, seed=11, sd_i=0.5, sd_s=0.04, rho=-0.3, sigma=0.2):
    """3 to 10 samples per patient at random times over two weeks (GLS differs from OLS here)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(3, 11, n_pat)
    pid = np.repeat(np.arange(n_pat), k)
    day = rng.uniform(0, 14, len(pid)).round(2)
    sc = (pid % 3 > 0).astype(float)
    cov = [[sd_i**2, rho * sd_i * sd_s], [rho * sd_i * sd_s, sd_s**2]]
    b = rng.multivariate_normal([0, 0], cov, n_pat)[pid]
    mu = TRUE["Intercept"] + TRUE["day"] * day + (TRUE["route[SC]"] + TRUE["route[SC]:day"] * day) * sc
    y = mu + b[:, 0] + b[:, 1] * day + rng.normal(0, sigma, len(day))
    return pd.DataFrame({"pid": pid, "route": np.where(sc == 1, "SC", "IV"), "day": day, "ferritin": np.exp(y)})


def _statsmodels_reml(d):
    """statsmodels MixedLM on the scaled design of lab_trajectory_lmm, driven to its optimum."""
    import warnings

    from statsmodels.regression.mixed_linear_model import MixedLM

    y, t = np.log(d["ferritin"].to_numpy()), d["day"].to_numpy(float)
    s, sc = np.std(t), (d["route"] == "SC").to_numpy(float)
    X = np.column_stack([np.ones_like(t), t / s, sc, sc * t / s])
    Z = np.column_stack([np.ones_like(t), t / s])
    model = MixedLM(y, X, groups=d["pid"].to_numpy(), exog_re=Z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BFGS reports "precision loss" at gtol 1e-10
        res = model.fit(reml=True, method=["bfgs"], gtol=1e-10)
    per_day = np.array([1, 1 / s, 1, 1 / s])
    return model, res, per_day, s


@pytest.mark.parametrize("seed", [11, 12])
def test_reproduces_statsmodels_mixedlm_reml(seed):
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    from stormcohort.stats.mixed import _hessian, _reml_optimum, _Suff

    d = unbalanced(seed=seed)
    r = lab_trajectory_lmm(d, "ferritin", "day", "pid", "route")
    assert r.estimable and r.random_effects == "intercept+slope" and r.converged
    model, ref, per_day, s = _statsmodels_reml(d)
    fe = r.fixed_effects
    assert fe["coef"].to_numpy() == pytest.approx(ref.fe_params * per_day, rel=1e-5, abs=1e-9)
    assert fe["se"].to_numpy() == pytest.approx(ref.bse_fe * per_day, rel=1e-5)
    back = np.diag([1, 1 / s])
    assert r.random_cov.to_numpy() == pytest.approx(back @ ref.cov_re @ back, rel=1e-4)
    assert r.residual_var == pytest.approx(ref.scale, rel=1e-6)

    # the engine's optimum is at least as good as statsmodels' on statsmodels' own REML criterion,
    # and its analytic Hessian is statsmodels' Hessian (the source of the standard errors)
    y = np.log(d["ferritin"].to_numpy())
    codes, uniq = pd.factorize(d["pid"])
    st = _Suff(y, model.exog, model.exog_re, codes, len(uniq))
    psi, cur, converged, _ = _reml_optimum(st)

    def loglike(cov_re):
        return model.loglike(MixedLMParams.from_components(np.zeros(4), cov_re=cov_re), profile_fe=True)

    assert converged and loglike(psi) >= loglike(ref.cov_re_unscaled) - 1e-9
    params = MixedLMParams.from_components(st.b_ols + cur["b"], cov_re=psi)
    ref_hessian = model.hessian(params)[0]
    assert _hessian(st, cur) == pytest.approx(ref_hessian, rel=1e-9, abs=1e-9 * np.abs(ref_hessian).max())


def test_intercept_only_fit_reproduces_statsmodels():
    import warnings

    from statsmodels.regression.mixed_linear_model import MixedLM

    d = simulate(n_pat=6, days=np.array([0, 3]), seed=5)  # falls back: not identifiable with a slope
    r = lab_trajectory_lmm(d, "ferritin", "day", "pid", "route")
    assert r.random_effects == "intercept"
    y, t = np.log(d["ferritin"].to_numpy()), d["day"].to_numpy(float)
    s, sc = np.std(t), (d["route"] == "SC").to_numpy(float)
    X = np.column_stack([np.ones_like(t), t / s, sc, sc * t / s])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MixedLM(y, X, groups=d["pid"].to_numpy(), exog_re=np.ones((len(y), 1))).fit(
            reml=True, method=["bfgs"], gtol=1e-10)
    per_day = np.array([1, 1 / s, 1, 1 / s])
    assert r.fixed_effects["coef"].to_numpy() == pytest.approx(ref.fe_params * per_day, rel=1e-6)
    assert r.fixed_effects["se"].to_numpy() == pytest.approx(ref.bse_fe * per_day, rel=1e-5)


def test_twenty_thousand_patients_agree_with_a_subsample_and_stay_small():
    """Scalability without a clock: 20,000 patients (~130,000 samples) fit with peak memory of a
    few dozen doubles per sample (~36 measured; a dense n x n covariance would need ~135 GB),
    and the estimates agree with a 2,000-patient subsample within sampling error, with
    standard errors shrinking as 1/sqrt(n)."""
    import tracemalloc

    d = unbalanced(n_pat=20_000, seed=7)
    sub = d[d["pid"] < 2_000]
    tracemalloc.start()
    full = lab_trajectory_lmm(d, "ferritin", "day", "pid", "route")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    part = lab_trajectory_lmm(sub, "ferritin", "day", "pid", "route")
    assert full.random_effects == part.random_effects == "intercept+slope"
    assert (full.n_patients, part.n_patients) == (20_000, 2_000)
    assert peak < 64 * 8 * len(d)  # bytes: 64 doubles per sample
    f, p = full.fixed_effects.set_index("term"), part.fixed_effects.set_index("term")
    # the subsample estimate minus the full one has variance ~ se_sub^2 - se_full^2
    z = (p["coef"] - f["coef"]) / np.sqrt(p["se"] ** 2 - f["se"] ** 2)
    assert (z.abs() < 4).all(), z
    assert (f["se"] / p["se"]).to_numpy() == pytest.approx(np.sqrt(0.1), rel=0.15)
    for term, value in TRUE.items():
        assert abs(f.loc[term, "coef"] - value) < 4 * f.loc[term, "se"], term
    assert np.sqrt(full.residual_var) == pytest.approx(0.2, rel=0.02)
