"""Firth logistic regression against R logistf (sex2), and ML logistic under separation.

Reference numbers: /work/shared/reference/README.md, "Firth logistic regression":
R logistf::logistf(case ~ age + oc + vic + vicl + vis + dia, data = sex2) (current logistf).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from stormcohort.stats.firth import (
    FIRTH_COLUMNS,
    _compress,
    _firth_fit,
    _pen_loglik,
    firth_batch,
    firth_logistic,
    ml_logistic,
)

REF = Path(__file__).parent / "reference"
COVS = ["age", "oc", "vic", "vicl", "vis", "dia"]

# R logistf(case ~ age + oc + vic + vicl + vis + dia, data = sex2), summary(): README table
# term: (coef, se, p, lower 95% profile CI, upper)
LOGISTF_SEX2 = {
    "(Intercept)": (0.12025405, 0.4763429, 0.802, -0.8186, 1.0732),
    "age": (-1.10598131, 0.4149021, 0.00614, -1.9738, -0.3074),
    "oc": (-0.06881673, 0.4344026, 0.875, -0.9414, 0.7892),
    "vic": (2.26887464, 0.5384872, 1.68e-6, 1.2730, 3.4354),
    "vicl": (-2.11140817, 0.5320395, 1.24e-5, -3.2609, -1.1177),
    "vis": (-0.78831694, 0.4089620, 0.0545, -1.6081, 0.0152),
    "dia": (3.09601166, 1.5052197, 0.00495, 0.7746, 8.0303),
}


@pytest.fixture(scope="module")
def sex2():
    return pd.read_csv(REF / "logistf_sex2.csv")


@pytest.fixture(scope="module")
def fit(sex2):
    return firth_logistic(sex2, "case", COVS)


def _sig_round(x, digits=3):
    return float(f"{x:.{digits}g}")


@pytest.mark.parametrize("term", list(LOGISTF_SEX2))
def test_sex2_term_matches_logistf(fit, term):
    coef, se, p, lcl, ucl = LOGISTF_SEX2[term]
    row = fit.table.set_index("term").loc[term]
    # printed to 8 / 7 decimals, but logistf stops at xconv = gconv = 1e-5, so its last digits
    # carry its stopping point (dia: 3.09601166 vs the converged 3.09601183)
    assert row["coef"] == pytest.approx(coef, abs=1e-6)
    assert row["se"] == pytest.approx(se, abs=5e-6)
    assert _sig_round(row["p"]) == p  # printed to 3 significant digits
    assert row["lcl"] == pytest.approx(lcl, abs=5e-5)  # printed to 4 decimals
    assert row["ucl"] == pytest.approx(ucl, abs=5e-5)


def test_sex2_global_test_matches_logistf(fit):
    # R logistf print: "Likelihood ratio test=49.09 on 6 df" (README)
    assert fit.estimable and fit.converged
    assert fit.lr_statistic == pytest.approx(49.09, abs=5e-3)
    assert fit.lr_df == 6
    assert fit.lr_p == pytest.approx(stats.chi2.sf(fit.lr_statistic, 6))
    assert list(fit.table.columns) == FIRTH_COLUMNS
    assert (fit.n, fit.events) == (239, 130)


def test_older_logistf_covariance_option(sex2):
    # README: older logistf versions / some ports print se 0.4237 for age: (X'WX)^-1
    old = firth_logistic(sex2, "case", COVS, covariance="fisher", profile=False)
    assert old.table.set_index("term").loc["age", "se"] == pytest.approx(0.4237, abs=5e-5)


def test_profile_limits_solve_the_profile_equation(sex2, fit):
    # 2 * (l*(b-hat) - max l*(b_j = limit)) = chi2_1(0.95) at each limit (logistf's definition)
    X = np.column_stack([np.ones(len(sex2)), sex2[COVS].to_numpy(float)])
    y = sex2["case"].to_numpy(float)
    free = np.ones(X.shape[1], dtype=bool)
    free[1] = False  # age
    for limit in fit.table.loc[fit.table["term"] == "age", ["lcl", "ucl"]].to_numpy().ravel():
        start = fit.table["coef"].to_numpy().copy()
        start[1] = limit
        _, l_prof, _, ok = _firth_fit(X, y, start, free)
        assert ok
        assert 2 * (fit.loglik - l_prof) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)


# --------------------------------------------------------------------------- separation


def separated():
    # complete separation: y = 1 exactly when x > 5
    return pd.DataFrame({"y": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], "x": np.arange(1.0, 11.0)})


def test_ml_reports_complete_separation_instead_of_crashing():
    r = ml_logistic(separated(), "y", ["x"])
    assert not r.estimable
    assert "separation" in r.reason
    assert r.table["coef"].isna().all()


def test_ml_reports_quasi_separation_by_binary_covariate(sex2):
    # in sex2 every woman with dia = 1 is a case: the ML estimate for dia is infinite
    r = ml_logistic(sex2, "case", COVS)
    assert not r.estimable and "dia" in r.reason


def test_firth_gives_finite_estimates_under_separation():
    r = firth_logistic(separated(), "y", ["x"])
    assert r.estimable and r.converged
    t = r.table.set_index("term")
    assert np.all(np.isfinite(t[["coef", "se", "lcl", "ucl", "p"]].to_numpy()))
    assert t.loc["x", "coef"] > 0 and t.loc["x", "lcl"] > 0  # profile CI excludes 0
    # the estimate solves Firth's modified score X'(y - pi + h (1/2 - pi)) = 0
    X = np.column_stack([np.ones(10), separated()["x"].to_numpy()])
    y = separated()["y"].to_numpy(float)
    beta = t["coef"].to_numpy()
    pi = expit(X @ beta)
    XW = X * np.sqrt(pi * (1 - pi))[:, None]
    h = np.einsum("ij,ij->i", XW @ np.linalg.inv(XW.T @ XW), XW)
    assert X.T @ (y - pi + h * (0.5 - pi)) == pytest.approx([0, 0], abs=1e-8)
    assert np.isfinite(_pen_loglik(X, y, beta)[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_firth_converges_when_one_patient_holds_a_binary_value(seed):
    # x = 1 for one patient only: ML separates, and at Firth's estimate that patient's hat value is
    # 1, so the penalty is as curved as the likelihood along x and plain Fisher-scoring steps swing
    # between two mirror points forever (the fit used to stop at 200 iterations, not converged)
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"z": rng.normal(size=30).round(2), "x": 0.0, "y": rng.integers(0, 2, 30).astype(float)})
    df.loc[0, "x"] = 1.0
    r = firth_logistic(df, "y", ["x", "z"], profile=False)
    assert r.estimable and r.converged and r.iterations < 100
    assert not ml_logistic(df, "y", ["x", "z"]).estimable
    X = np.column_stack([np.ones(30), df["x"], df["z"]])
    y = df["y"].to_numpy(float)
    beta = r.table["coef"].to_numpy()
    pi = expit(X @ beta)
    XW = X * np.sqrt(pi * (1 - pi))[:, None]
    h = np.einsum("ij,ij->i", XW @ np.linalg.inv(XW.T @ XW), XW)
    assert h[0] == pytest.approx(1, abs=1e-6)
    assert X.T @ (y - pi + h * (0.5 - pi)) == pytest.approx([0, 0, 0], abs=1e-7)  # the modified score
    # and it is the maximum of the penalised likelihood
    from scipy.optimize import minimize

    best = minimize(lambda b: -_pen_loglik(X, y, b)[0], beta + 0.3, method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20_000})
    assert _pen_loglik(X, y, beta)[0] >= -best.fun - 1e-9
    assert best.x == pytest.approx(beta, abs=1e-4)


def test_firth_batch_is_firth_logistic_on_each_resample():
    # many frequency-weighted versions of one design at once (a bootstrap), some separated, some
    # with a column left out, one with a binary value held by a single row
    rng = np.random.default_rng(7)
    n = 40
    Z = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=n).round(2), rng.random(n) < 0.1])
    Z = Z.astype(float)
    y = rng.integers(0, 2, n).astype(float)
    C = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(30)]).astype(float)
    C[0] = 1.0
    C[0, np.flatnonzero(Z[:, 3])[1:]] = 0  # one row with the rare value
    act = np.ones((30, 4), dtype=bool)
    act[::5, 3] = False
    act[(C[:, Z[:, 3] == 1] == 0).all(axis=1), 3] = False  # the rare value absent: a constant column
    beta, conv, _ = firth_batch(Z, y, C, act)
    assert conv.all()
    for r in range(30):
        rows = np.repeat(np.arange(n), C[r].astype(int))
        cols = np.flatnonzero(act[r])
        df = pd.DataFrame(Z[rows][:, cols], columns=[f"z{j}" for j in cols]).assign(y=y[rows])
        ref = firth_logistic(df, "y", [f"z{j}" for j in cols], intercept=False, profile=False)
        assert ref.estimable
        assert beta[r, cols] == pytest.approx(ref.table["coef"].to_numpy(), abs=1e-8)
        assert (beta[r, ~act[r]] == 0).all()


def test_ml_matches_statsmodels_when_estimable():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=200), "g": rng.choice(["IV", "SC"], 200)})
    df["y"] = rng.binomial(1, expit(-0.3 + 0.8 * df["x"] + 0.5 * (df["g"] == "SC")))
    r = ml_logistic(df, "y", ["x", "g"])
    assert r.estimable
    assert list(r.table["term"]) == ["(Intercept)", "x", "g[SC]"]
    import statsmodels.api as sm

    X = sm.add_constant(np.column_stack([df["x"], (df["g"] == "SC").astype(float)]))
    ref = sm.Logit(df["y"], X).fit(disp=0)
    assert r.table["coef"].to_numpy() == pytest.approx(np.asarray(ref.params), rel=1e-8)


def test_design_problems_are_not_estimable():
    df = pd.DataFrame({"y": [0, 1, 0, 1], "g": ["a"] * 4, "x": [1.0, 2, 3, 4]})
    assert "single level" in firth_logistic(df, "y", ["g", "x"]).reason
    assert "single level" in ml_logistic(df, "y", ["g", "x"]).reason
    collinear = df.assign(x2=df["x"] * 2)
    assert not firth_logistic(collinear, "y", ["x", "x2"]).estimable
    assert "outcome is constant" in ml_logistic(df.assign(y=0), "y", ["x"]).reason


# --------------------------------------------------------------------------- scale (structural, not timed)


def test_repeated_covariate_patterns_are_fitted_once_exactly(sex2):
    # sex2's 239 rows have few distinct covariate patterns: the count-weighted fit is the same fit
    X = np.column_stack([np.ones(len(sex2)), sex2[COVS].to_numpy(float)])
    y = sex2["case"].to_numpy(float)
    Xc, yc, m = _compress(X, y)
    assert m is not None and len(Xc) < len(X) / 4 and m.sum() == len(X) and yc.sum() == y.sum()
    free = np.ones(X.shape[1], dtype=bool)
    b_rows, l_rows, _, ok_rows = _firth_fit(X, y, np.zeros(X.shape[1]), free)
    b_pat, l_pat, _, ok_pat = _firth_fit(Xc, yc, np.zeros(X.shape[1]), free, m)
    assert ok_rows and ok_pat
    assert b_pat == pytest.approx(b_rows, abs=1e-10) and l_pat == pytest.approx(l_rows, abs=1e-10)
    # continuous covariates: nothing to compress, the rows are used as they are
    rng = np.random.default_rng(0)
    Xn = np.column_stack([np.ones(50), rng.normal(size=50)])
    assert _compress(Xn, rng.integers(0, 2, 50).astype(float))[2] is None


@pytest.mark.parametrize("n", [1_000, 20_000])
def test_profile_limits_need_a_few_constrained_fits_at_any_n(monkeypatch, n):
    import stormcohort.stats.firth as firth

    rng = np.random.default_rng(n)
    df = pd.DataFrame({"g": rng.integers(0, 2, n), "age": rng.normal(50, 15, n), "icu": rng.integers(0, 2, n)})
    df["y"] = rng.binomial(1, expit(-1.2 + 0.3 * df["g"] + 0.02 * (df["age"] - 50) + 0.4 * df["icu"]))
    calls = []
    solve = firth._firth_solve
    monkeypatch.setattr(firth, "_firth_solve", lambda *a, **kw: calls.append(1) or solve(*a, **kw))
    fit = firth_logistic(df, "y", ["g", "age", "icu"])
    k = 4
    # fit + null + per coefficient: the p-value fit and ~3 Newton steps per limit (the bracketing
    # search with Brent's method, still used for skewed / irregular profiles at small n, takes
    # ~25 fits per coefficient)
    assert fit.estimable and len(calls) <= 2 + 9 * k
    X = np.column_stack([np.ones(n), df[["g", "age", "icu"]].to_numpy(float)])
    y = df["y"].to_numpy(float)
    t = fit.table
    for j in (1, 2):
        free = np.ones(k, dtype=bool)
        free[j] = False
        for limit in (t.loc[j, "lcl"], t.loc[j, "ucl"]):
            start = t["coef"].to_numpy().copy()
            start[j] = limit
            _, l_prof, _, ok = _firth_fit(X, y, start, free)
            assert ok and 2 * (fit.loglik - l_prof) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)
    if n >= 10_000:  # large n: the profile is quadratic, the limits are the Wald limits
        wald = np.column_stack([t["coef"] - 1.959964 * t["se"], t["coef"] + 1.959964 * t["se"]])
        assert (np.abs(t[["lcl", "ucl"]].to_numpy() - wald) / t[["se"]].to_numpy()).max() < 0.05
