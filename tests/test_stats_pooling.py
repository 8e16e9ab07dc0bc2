"""Rubin's rules against R mice: ``pool.scalar``'s documented example and ``pool()`` on our imputations.

Reference numbers: /work/shared/reference/README.md, "Rubin's rules (R mice pool.scalar
example)"; the full digits were printed here by R 4.2.2 with mice 3.15.0:

    pool.scalar(c(-1.5457, -1.428), c(0.9723^2, 1.041^2), n = 25, k = 2)
    pool.scalar(c(-1.5457, -1.428), c(0.9723^2, 1.041^2))          # n = Inf: Rubin's df

The ``pool()`` cross-check uses the 20 imputations of mice's ``nhanes`` (tests/reference/
mice_nhanes.csv, ``write.csv(nhanes)``) made by :func:`stormcohort.stats.impute.impute`
(``impute(nhanes, ["bmi", "hyp", "chl"], 20, 20200601, predictors=["age"])``, saved as
tests/reference/nhanes_imputations.csv) and this R script (mice 3.15.0), run on that file:

    long <- read.csv("tests/reference/nhanes_imputations.csv")
    fits <- lapply(split(long, long$imputation), function(d) lm(chl ~ age + bmi, data = d))
    p <- pool(as.mira(fits)); print(p$pooled); print(summary(p, conf.int = TRUE))
    gl <- lapply(split(long, long$imputation),
                 function(d) glm(I(hyp == 2) ~ age + bmi, family = binomial, data = d,
                                 control = glm.control(epsilon = 1e-14, maxit = 100)))
    g <- pool(as.mira(gl)); print(g$pooled)
    print(summary(g, conf.int = TRUE, exponentiate = TRUE))
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.pooling import POOLED_COLUMNS, pool_log_ratios, pool_scalar, pool_table

REF = Path(__file__).parent / "reference"
Q = [-1.5457, -1.428]
U = [0.9723**2, 1.041**2]

# R: pool(as.mira(fits))$pooled and summary(..., conf.int = TRUE) for lm(chl ~ age + bmi)
R_LM = pd.DataFrame({
    "term": ["(Intercept)", "age", "bmi"],
    "estimate": [-7.7531006696833291, 31.662907500037157, 5.4749193077408167],
    "ubar": [2916.9286560025439, 71.261940151196114, 2.9777950416707952],
    "b": [2539.6368379957667, 58.418000473020307, 2.0489752653653897],
    "t": [5583.5473358980989, 132.60084064786744, 5.1292190703044547],
    "df": [9.3827054817714703, 9.6902338327193007, 10.597386519083518],
    "riv": [0.91418714489574726, 0.86075260323433345, 0.72248895525950241],
    "lambda": [0.47758504038304822, 0.46258304394586663, 0.4194447535082485],
    "fmi": [0.56196320158311819, 0.54728076711445139, 0.50483693467143886],
    "se": [74.723137888461963, 11.515243837968324, 2.264777929578186],
    "statistic": [-0.1037576965953472, 2.7496515007035716, 2.4174199316577223],
    "p": [0.91954574613195983, 0.021059260400879323, 0.034941257432778601],
    "lcl": [-175.74340170765356, 5.8937338525442122, 0.46697358381972176],
    "ucl": [160.23720036828689, 57.432081147530099, 10.482865031661913],
})
# R: glm(I(hyp == 2) ~ age + bmi, binomial) to the exact MLE (glm.control(epsilon = 1e-14); with
# the default 1e-8 R's variances differ from the MLE's in the 5th digit): pooled log-odds, and
# the exponentiated summary
R_GLM = pd.DataFrame({
    "term": ["(Intercept)", "age", "bmi"],
    "estimate": [-14.611459796874776, 2.3370036566448178, 0.32649704782682931],
    "t": [119.65582338014302, 2.1698869562670753, 0.090066040753449789],
    "df": [10.709768360936835, 11.317805081358566, 10.766436019064326],
    "fmi": [0.49966584572395467, 0.47200198316186059, 0.49706538677104728],
    "ratio": [4.5115277982844643e-07, 10.350177368780875, 1.3861041577374622],
    "ratio_lcl": [1.4574093046067738e-17, 0.40897857013300887, 0.71477089234715763],
    "ratio_ucl": [13965.797398408344, 261.93590419758181, 2.6879728269123877],
    "p": [0.20932126257349404, 0.14015090174392555, 0.30038278658855722],
})


def test_pool_scalar_reference():
    r = pool_scalar(Q, U, 25, 2)
    # the README's digits, to 1e-8
    assert r.qbar == pytest.approx(-1.48685, abs=1e-8)
    assert r.ubar == pytest.approx(1.014524145, abs=1e-8)
    assert r.b == pytest.approx(0.006926645, abs=1e-8)
    assert r.t == pytest.approx(1.0249141125, abs=1e-8)
    assert r.df == pytest.approx(20.97025484, abs=1e-8)
    assert r.riv == pytest.approx(0.0102412225, abs=1e-8)
    assert r.fmi == pytest.approx(0.0927283145, abs=1e-8)
    # R's full digits
    assert r.df == pytest.approx(20.9702548380792, rel=1e-13)
    assert r.riv == pytest.approx(0.01024122249944088, rel=1e-13)
    assert r.fmi == pytest.approx(0.09272831450855648, rel=1e-13)
    assert r.m == 2 and r.dfcom == 23 and r.estimable and r.reason == ""
    assert r.lambda_ == pytest.approx(1.5 * r.b / r.t)
    assert r.se == pytest.approx(np.sqrt(r.t))
    assert r.ratio is None
    # large-sample (Rubin 1987) df when n is infinite, as pool.scalar's default n = Inf
    inf = pool_scalar(Q, U)
    assert inf.df == pytest.approx(9730.75567457442, rel=1e-12)
    assert inf.fmi == pytest.approx(0.0103407906975242, rel=1e-12)
    assert np.isinf(inf.dfcom)


def test_pool_scalar_vectorised_matches_one_at_a_time():
    rng = np.random.default_rng(5)
    Qm = rng.normal(size=(7, 4))
    Um = rng.uniform(0.1, 2, size=(7, 4))
    allp = pool_scalar(Qm, Um, 60, 5)
    for j in range(4):
        one = pool_scalar(Qm[:, j], Um[:, j], 60, 5)
        for name in ("qbar", "ubar", "b", "t", "se", "df", "riv", "lambda_", "fmi", "statistic", "p", "lcl", "ucl"):
            assert getattr(allp, name)[j] == pytest.approx(getattr(one, name), rel=1e-14), name
    frame = allp.to_frame(["a", "b", "c", "d"])
    assert list(frame.columns) == ["term", *POOLED_COLUMNS]
    assert frame["estimable"].all()


def test_pool_scalar_equal_estimates_floor_lambda():
    """b = 0: lambda is floored at 1e-4 in the df only (mice barnard.rubin), riv = fmi's first term 0."""
    r = pool_scalar([1.0, 1.0, 1.0], [0.5, 0.5, 0.5], 30, 2)
    assert r.b == 0 and r.riv == 0 and r.lambda_ == 0
    lam, dfcom = 1e-4, 28
    dfold, dfobs = 2 / lam**2, (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    assert r.df == pytest.approx(dfold * dfobs / (dfold + dfobs), rel=1e-14)
    assert r.fmi == pytest.approx(2 / (r.df + 3), rel=1e-14)


def test_pool_log_ratios():
    log_hr = np.log([[0.8, 2.0], [0.7, 2.4], [0.9, 1.8]])
    se = np.array([[0.2, 0.3], [0.25, 0.3], [0.2, 0.35]])
    r = pool_log_ratios(log_hr, se, np.inf)
    direct = pool_scalar(log_hr, se**2)
    assert np.allclose(r.qbar, direct.qbar) and np.allclose(r.df, direct.df)
    assert np.allclose(r.ratio, np.exp(direct.qbar))
    assert np.allclose(r.ratio_lcl, np.exp(direct.lcl)) and np.allclose(r.ratio_ucl, np.exp(direct.ucl))
    assert set(["ratio", "ratio_lcl", "ratio_ucl"]) <= set(r.to_frame().columns)


def test_not_estimable_and_bad_input():
    Qm = np.array([[0.1, 0.2], [np.nan, 0.3], [0.2, 0.1]])
    Um = np.array([[0.01, 0.02], [0.01, 0.02], [0.01, 0.02]])
    r = pool_scalar(Qm, Um, 100, 2)
    assert list(r.estimable) == [False, True]
    assert "1 of 3 imputations" in r.reason[0] and r.reason[1] == ""
    assert np.isnan(r.qbar[0]) and np.isnan(r.p[0]) and np.isfinite(r.qbar[1])
    neg = pool_scalar([0.1, 0.2], [0.01, -0.01])
    assert not neg.estimable and "negative variance" in neg.reason and np.isnan(neg.se)
    zero = pool_scalar([0.1, 0.1], [0.0, 0.0])
    assert not zero.estimable and "zero total variance" in zero.reason
    with pytest.raises(ValueError, match="at least 2 imputations"):
        pool_scalar([0.1], [0.01])
    with pytest.raises(ValueError, match="same shape"):
        pool_scalar([0.1, 0.2], [0.01])
    with pytest.raises(ValueError, match="n - k"):
        pool_scalar(Q, U, 2, 2)


def _ols(frame: pd.DataFrame, y: str, xs: list[str]) -> pd.DataFrame:
    X = np.column_stack([np.ones(len(frame)), frame[xs].to_numpy(dtype=float)])
    yv = frame[y].to_numpy(dtype=float)
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ yv
    resid = yv - X @ beta
    s2 = resid @ resid / (len(yv) - X.shape[1])
    return pd.DataFrame({"term": ["(Intercept)", *xs], "coef": beta, "se": np.sqrt(s2 * np.diag(xtx_inv))})


@pytest.fixture(scope="module")
def nhanes_long():
    return pd.read_csv(REF / "nhanes_imputations.csv")


def test_pool_table_matches_mice_pool_lm(nhanes_long):
    results = pd.concat([_ols(f, "chl", ["age", "bmi"]).assign(imputation=i)
                         for i, f in nhanes_long.groupby("imputation")])
    pooled = pool_table(results, n=25, k=3)  # mice: dfcom = df.residual = 25 - 3
    assert list(pooled["term"]) == list(R_LM["term"])
    assert (pooled["m"] == 20).all() and (pooled["dfcom"] == 22).all()
    for col in R_LM.columns[1:]:
        assert np.allclose(pooled[col], R_LM[col], rtol=1e-9, atol=0), col


def test_pool_table_matches_mice_pool_logistic_exponentiated(nhanes_long):
    from stormcohort.stats.firth import ml_logistic

    parts = []
    for i, f in nhanes_long.groupby("imputation"):
        fit = ml_logistic(f.assign(hyp2=(f["hyp"] == 2).astype(int)), "hyp2", ["age", "bmi"])
        assert fit.estimable
        parts.append(fit.table[["term", "coef", "se"]].assign(imputation=i))
    results = pd.concat(parts)
    pooled = pool_table(results, n=25, k=3, exponentiate=True)
    assert list(pooled["term"]) == list(R_GLM["term"])
    for col in R_GLM.columns[1:]:
        assert np.allclose(pooled[col], R_GLM[col], rtol=1e-6, atol=0), col


def test_pool_table_missing_term_in_one_imputation():
    results = pd.DataFrame({"imputation": [1, 1, 2, 2, 3], "term": ["a", "b", "a", "b", "a"],
                            "coef": [0.1, 1.0, 0.2, 1.1, 0.15], "se": [0.1, 0.2, 0.1, 0.2, 0.1]})
    pooled = pool_table(results)
    assert list(pooled["term"]) == ["a", "b"]
    assert pooled["estimable"].tolist() == [True, False]
    assert "1 of 3" in pooled["reason"][1]
    with pytest.raises(ValueError, match="more than one row"):
        pool_table(pd.concat([results, results]))


def test_complete_data_df_per_estimate():
    """n and k as arrays: each estimate pooled as alone with its own n - k (Barnard-Rubin df)."""
    rng = np.random.default_rng(4)
    Q, U = rng.normal(size=(6, 3)), rng.uniform(0.5, 1.5, size=(6, 3))
    n, k = np.array([12.0, 40.0, np.inf]), np.array([2, 1, 1])
    together = pool_scalar(Q, U, n, k)
    for j in range(3):
        alone = pool_scalar(Q[:, j], U[:, j], n[j], k[j])
        assert np.isclose(together.df[j], alone.df) and np.isclose(together.lcl[j], alone.lcl)
        assert together.dfcom[j] == alone.dfcom
    assert together.df[0] < together.df[1] < together.df[2]  # fewer complete-data df, fewer df
    with pytest.raises(ValueError, match="at least 1"):
        pool_scalar(Q, U, np.array([2.0, 40, 40]), 2)
