"""Weighted outcome models with robust variance against R (lm/glm + sandwich, coxph robust).

Reference numbers: /work/shared/reference/README.md, "Confounding adjustment": lalonde (WeightIt
vignette) and NHEFS (What If, chapters 12 and 17). Numbers marked "R here" were printed by
R 4.2.2 with survival 3.5.3 and sandwich 3.0.2 run on the same data while writing these tests.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.cox import cox_ph
from stormcohort.stats.weighted import TABLE_COLUMNS, weighted_cox, weighted_glm
from stormcohort.stats.weights import balancing_weights, propensity
from tests.test_stats_weights import NHEFS_COVS, REF, WEIGHTIT_COVS, nhefs_frame


@pytest.fixture(scope="module")
def lalonde_att():
    d = pd.read_csv(REF / "matchit_lalonde.csv")
    p = propensity(d, "treat", WEIGHTIT_COVS)
    d["w"] = balancing_weights(p.treat, p.ps, "ATT")
    d["employed"] = (d.re78 > 0).astype(int)
    d["re78k"] = np.round(d.re78 / 1000)
    return d


@pytest.fixture(scope="module")
def nhefs():
    n = nhefs_frame()
    # What If chapter 17: months to death, administratively censored at 120 (end of 1992)
    n["time"] = np.where(n.death == 0, 120, (n.yrdth - 83) * 12 + n.modth)
    return n


@pytest.fixture(scope="module")
def nhefs_sw(nhefs):
    # chapter 17 (program 17.3): the chapter-12 propensity model fitted on all 1,629, numerator
    # the marginal P(qsmk); see test_nhefs_weighted_cox for why not the 1,566 complete cases
    p = propensity(nhefs, "qsmk", NHEFS_COVS)
    return balancing_weights(p.treat, p.ps, stabilize=True)


def lung_weighted():
    from lifelines.datasets import load_lung

    lung = load_lung().dropna(subset=["time", "status", "age", "sex", "ph.ecog"]).reset_index(drop=True)
    lung["sex"] = lung["sex"] - 1  # 1/2 -> 0/1: the same coefficient
    lung["w"] = 0.5 + ((np.arange(len(lung)) + 1) % 7) / 3  # R: 0.5 + (seq_len(n) %% 7) / 3
    return lung


# --------------------------------------------------------------------------- GLMs


def test_lalonde_att_weighted_difference_hc0(lalonde_att):
    # README: WeightIt vignette, lm(re78 ~ treat, weights = w) with HC0: 1214.07, se 824.05
    r = weighted_glm(lalonde_att, "re78", "treat", "w")
    assert r.estimable and r.model == "linear" and r.term == "treat"
    assert round(r.estimate, 2) == 1214.07
    assert round(r.se, 2) == 824.05
    assert r.lcl == pytest.approx(r.estimate - 1.959964 * r.se, rel=1e-6)
    assert np.isnan(r.ratio) and r.n == 614 and r.events is None
    assert list(r.table.columns) == TABLE_COLUMNS
    # R here: the intercept's HC0 se 588.4697594; with covariates age + educ: treat 1245.97816212316 (805.92731464)
    assert r.table.set_index("term").loc["(Intercept)", "se"] == pytest.approx(588.4697594, rel=1e-8)
    adj = weighted_glm(lalonde_att, "re78", "treat", "w", covariates=["age", "educ"]).table.set_index("term")
    assert adj.loc["treat", "coef"] == pytest.approx(1245.97816212316, rel=1e-8)  # R glm stops at 1e-8
    assert adj.loc["treat", "se"] == pytest.approx(805.92731464, rel=1e-8)
    assert adj.loc["educ", "se"] == pytest.approx(168.88739798, rel=1e-8)


def test_freq_weights_would_not_reproduce_r(lalonde_att):
    # why var_weights: statsmodels freq_weights treats w as a count of identical rows (same
    # estimate, different sandwich), which is not R's lm(weights = w) + vcovHC(type = "HC0")
    from statsmodels.genmod.generalized_linear_model import GLM

    X = np.column_stack([np.ones(len(lalonde_att)), lalonde_att.treat])
    fw = GLM(lalonde_att.re78, X, freq_weights=lalonde_att.w).fit(cov_type="HC0")
    vw = GLM(lalonde_att.re78, X, var_weights=lalonde_att.w).fit(cov_type="HC0")
    assert fw.params.iloc[1] == pytest.approx(vw.params.iloc[1])
    assert round(vw.bse.iloc[1], 2) == 824.05 and round(fw.bse.iloc[1], 2) == 730.65


def test_logistic_and_poisson_match_r_sandwich(lalonde_att):
    # R here: glm(I(re78 > 0) ~ treat, weights = w, family = quasibinomial) + vcovHC(type = "HC0");
    # glm(round(re78 / 1000) ~ treat, weights = w, family = quasipoisson) likewise
    lo = weighted_glm(lalonde_att, "employed", "treat", "w", family="binomial")
    assert lo.model == "logistic"
    assert lo.estimate == pytest.approx(0.06720406345, rel=1e-7)
    assert lo.se == pytest.approx(0.2802851891, rel=1e-7)
    assert lo.ratio == pytest.approx(np.exp(lo.estimate))
    assert lo.events == int(lalonde_att.employed.sum())
    po = weighted_glm(lalonde_att, "re78k", "treat", "w", family="poisson")
    assert po.estimate == pytest.approx(0.2157470046, rel=1e-7)
    assert po.se == pytest.approx(0.1459552346, rel=1e-7)
    assert po.table.set_index("term").loc["(Intercept)", "se"] == pytest.approx(0.1140871069, rel=1e-7)


def test_nhefs_chapter12_effect(nhefs):
    # README: What If chapter 12, complete cases (n 1,566), weighted effect of quitting on
    # wt82_71: 3.4405 (se 0.5255), 95% CI 2.4 to 4.5 (geeglm robust = HC0)
    cc = nhefs[nhefs.wt82.notna()]
    p = propensity(cc, "qsmk", NHEFS_COVS)
    for stabilize in (False, True):  # a saturated model: stabilising changes nothing
        w = balancing_weights(p.treat, p.ps, stabilize=stabilize)
        r = weighted_glm(cc, "wt82_71", "qsmk", w)
        assert round(r.estimate, 4) == 3.4405
        assert round(r.se, 4) == 0.5255
        assert (round(r.lcl, 1), round(r.ucl, 1)) == (2.4, 4.5)
        assert r.n == 1566


# --------------------------------------------------------------------------- Cox


def test_nhefs_weighted_cox(nhefs, nhefs_sw):
    # README: coxph(Surv(time, death) ~ qsmk, weights = sw, robust = TRUE): log-HR 0.001294,
    # robust se 0.134096, HR 1.001 (0.770 to 1.302). R here, to more digits: 0.001293881225,
    # robust 0.1340960453, naive 0.1279644061, with sw from the propensity model fitted on all
    # 1,629 (What If's program 17.3). Weights from the 1,566 complete cases of chapter 12,
    # applied to all 1,629, give 0.0386 instead: the set-up is the 1,629-row fit.
    r = weighted_cox(nhefs, "time", "death", "qsmk", nhefs_sw)
    assert r.estimable and r.model == "cox" and (r.n, r.events) == (1629, 318)
    assert r.estimate == pytest.approx(0.001293881225, abs=1e-9)
    assert r.se == pytest.approx(0.1340960453, abs=1e-9)
    assert r.table["se_naive"][0] == pytest.approx(0.1279644061, abs=1e-9)
    assert (round(r.ratio, 3), round(r.ratio_lcl, 3), round(r.ratio_ucl, 3)) == (1.001, 0.770, 1.302)
    cc = nhefs[nhefs.wt82.notna()]
    p = propensity(cc, "qsmk", NHEFS_COVS)
    other = weighted_cox(nhefs, "time", "death", "qsmk", _ch12_weights_on_all(nhefs, p))
    assert round(other.estimate, 4) == 0.0386


def _ch12_weights_on_all(nhefs, p):
    """Stabilised weights of the chapter-12 fit (1,566 complete cases) for all 1,629 rows."""
    from scipy.special import expit

    from stormcohort.stats._util import design_matrix

    b = p.coefficients.coef.to_numpy()
    ps = expit(b[0] + design_matrix(nhefs, NHEFS_COVS)[0].to_numpy() @ b[1:])
    p1 = p.treat.mean()
    return balancing_weights(nhefs.qsmk, ps) * np.where(nhefs.qsmk == 1, p1, 1 - p1)


def test_weighted_cox_tied_lung_matches_r():
    # R here: coxph(Surv(time, status) ~ age + sex + ph.ecog, data = na.omit(lung), weights = w,
    # robust = TRUE) with w = 0.5 + (seq_len(227) %% 7) / 3 (Efron; lung has tied times)
    lung = lung_weighted()
    t = weighted_cox(lung, "time", "status", "sex", "w", covariates=["age", "ph.ecog"]).table.set_index("term")
    r = {"age": (0.0052772825, 0.01099620853, 0.007609109614), "sex": (-0.6087500804, 0.17738361610, 0.140569616089),
         "ph.ecog": (0.5499336759, 0.11766682454, 0.090742516999)}
    for term, (coef, robust, naive) in r.items():
        assert t.loc[term, "coef"] == pytest.approx(coef, abs=1e-9)
        assert t.loc[term, "se"] == pytest.approx(robust, abs=1e-9)
        assert t.loc[term, "se_naive"] == pytest.approx(naive, abs=1e-9)
    # unweighted, robust = TRUE (R here): robust se 0.00988139278, 0.16474842795, 0.12415884861
    u = weighted_cox(lung.assign(one=1.0), "time", "status", "sex", "one", covariates=["age", "ph.ecog"])
    u = u.table.set_index("term")
    for term, se in {"age": 0.00988139278, "sex": 0.16474842795, "ph.ecog": 0.12415884861}.items():
        assert u.loc[term, "se"] == pytest.approx(se, abs=1e-9)


def test_unit_weights_equal_cox_ph():
    lung = lung_weighted()
    covs = ["sex", "age", "ph.ecog"]
    plain = cox_ph(lung, "time", "status", covs).table.set_index("term")
    unit = weighted_cox(lung.assign(one=1.0), "time", "status", "sex", "one", covariates=covs[1:]).table
    unit = unit.set_index("term")
    for term in covs:
        assert unit.loc[term, "coef"] == pytest.approx(plain.loc[term, "coef"], abs=1e-9)
        assert unit.loc[term, "se_naive"] == pytest.approx(plain.loc[term, "se"], abs=1e-9)


def _lifelines_robust(df, weights_col, covariates):
    from lifelines import CoxPHFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines warns that non-integer weights need robust=True
        fit = CoxPHFitter().fit(df[["time", "death", weights_col, *covariates]], "time", "death",
                                weights_col=weights_col, robust=True,
                                fit_options={"precision": 1e-14, "r_precision": 1e-15})
    return fit.params_, fit.standard_errors_


def test_lifelines_robust_variance_agrees_without_ties_only(nhefs, nhefs_sw):
    df = nhefs[["time", "death", "qsmk"]].assign(sw=nhefs_sw)
    ours = weighted_cox(df, "time", "death", "qsmk", "sw")
    coef, se = _lifelines_robust(df, "sw", ["qsmk"])
    # tied months: the estimate agrees (at a tight precision; lifelines' default 1e-7 leaves
    # ~3e-6), the robust se does not: lifelines' score residuals ignore ties
    assert coef["qsmk"] == pytest.approx(ours.estimate, abs=1e-8)
    assert abs(se["qsmk"] - ours.se) > 1e-4
    assert se["qsmk"] == pytest.approx(0.1338594, abs=1e-7)  # R: 0.1340960
    # the same data with every tie broken: the two sandwich estimators agree
    untied = df.assign(time=df.time + np.arange(len(df)) / (2 * len(df)))
    ours = weighted_cox(untied, "time", "death", "qsmk", "sw")
    coef, se = _lifelines_robust(untied, "sw", ["qsmk"])
    assert coef["qsmk"] == pytest.approx(ours.estimate, abs=1e-8)
    assert se["qsmk"] == pytest.approx(ours.se, rel=1e-6)


# --------------------------------------------------------------------------- not estimable


def _toy(n=120, seed=5):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "t": rng.integers(0, 2, n),
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
        "b": rng.integers(0, 2, n),
        "time": rng.integers(1, 30, n).astype(float),
        "event": rng.integers(0, 2, n),
        "w": rng.uniform(0.5, 3, n),
    })


@pytest.mark.parametrize("fit", [
    lambda d, **k: weighted_glm(d, "y", "t", "w", **k),
    lambda d, **k: weighted_glm(d, "b", "t", "w", family="binomial", **k),
    lambda d, **k: weighted_cox(d, "time", "event", "t", "w", **k),
])
def test_not_estimable_cases(fit):
    d = _toy()
    r = fit(d.assign(t=1))
    assert not r.estimable and "treatment group 0 is empty" in r.reason and np.isnan(r.estimate)
    r = fit(d.assign(c=2.0), covariates=["c"])
    assert not r.estimable and r.reason == "covariate 'c' is constant"
    r = fit(d.assign(x2=d.x * 3), covariates=["x", "x2"])
    assert not r.estimable and "linearly dependent" in r.reason
    for bad in (np.nan, np.inf):
        r = fit(d.assign(w=np.where(np.arange(len(d)) == 3, bad, d.w)))
        assert not r.estimable and "missing or infinite for 1 row(s)" in r.reason
    r = fit(d.assign(w=-d.w))
    assert not r.estimable and "negative" in r.reason
    assert set(r.table.columns) == set(TABLE_COLUMNS) and r.table.coef.isna().all()


def test_zero_weights_glm_drop_out_cox_refuses():
    d = _toy()
    w0 = np.where(np.arange(len(d)) < 10, 0.0, d.w)
    full = weighted_glm(d.assign(w=w0), "y", "t", "w")
    dropped = weighted_glm(d.iloc[10:], "y", "t", "w")
    assert full.estimate == pytest.approx(dropped.estimate) and full.se == pytest.approx(dropped.se)
    assert full.n == dropped.n == len(d) - 10
    r = weighted_cox(d.assign(w=w0), "time", "event", "t", "w")
    assert not r.estimable and "positive" in r.reason


def test_logistic_separation_and_cox_monotone_likelihood():
    d = _toy()
    r = weighted_glm(d.assign(b=d.t), "b", "t", "w", family="binomial")
    assert not r.estimable and "separation" in r.reason
    r = weighted_glm(d.assign(b=0), "b", "t", "w", family="binomial")
    assert not r.estimable and "constant" in r.reason
    r = weighted_cox(d.assign(event=np.where(d.t == 1, 0, d.event)), "time", "event", "t", "w")
    assert not r.estimable and "monotone likelihood" in r.reason
    r = weighted_cox(d.assign(event=0), "time", "event", "t", "w")
    assert not r.estimable and r.reason == "no events"


def test_missing_outcome_rows_dropped_weights_aligned_by_index():
    d = _toy()
    d.loc[[2, 7], "y"] = np.nan
    w = pd.Series(d.w.to_numpy(), index=d.index)
    a = weighted_glm(d, "y", "t", w.iloc[::-1])  # a Series is aligned by index, not position
    b = weighted_glm(d.dropna(subset=["y"]), "y", "t", "w")
    assert a.n == 118 and a.estimate == pytest.approx(b.estimate) and a.se == pytest.approx(b.se)
    with pytest.raises(ValueError, match="rows"):
        weighted_glm(d, "y", "t", np.ones(5))
