"""Propensity scores, balancing weights and balance against R cobalt / WeightIt and What If.

Reference numbers: /work/shared/reference/README.md, "Confounding adjustment: propensity
weights, balance, E-values, pooling" (lalonde from MatchIt, NHEFS from causaldata). Numbers
marked "R here" were printed by R 4.2.2 (stats, survival 3.5.3) run on the same files while
writing these tests (cobalt is not packaged for Debian; its variance formula is ``cov.wt``'s).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.weights import (
    BALANCE_COLUMNS,
    SUMMARY_COLUMNS,
    balance_table,
    balancing_weights,
    effective_sample_size,
    ess_by_group,
    propensity,
    truncate_weights,
    weights_summary,
)

REF = Path(__file__).parent / "reference"
COBALT_COVS = ["age", "educ", "race", "re74", "re75"]
WEIGHTIT_COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
# What If chapter 12: qsmk ~ sex + race + age + age^2 + factor(education) + smokeintensity +
# smokeintensity^2 + smokeyrs + smokeyrs^2 + factor(exercise) + factor(active) + wt71 + wt71^2
NHEFS_COVS = ["sex", "race", "age", "age2", "education", "smokeintensity", "smokeintensity2", "smokeyrs",
              "smokeyrs2", "exercise", "active", "wt71", "wt712"]


@pytest.fixture(scope="module")
def lalonde():
    return pd.read_csv(REF / "matchit_lalonde.csv")


def nhefs_frame() -> pd.DataFrame:
    n = pd.read_csv(REF / "causaldata_nhefs.csv")
    for c in ["age", "smokeintensity", "smokeyrs", "wt71"]:
        n[c + "2"] = n[c].astype(float) ** 2
    for c in ["education", "exercise", "active"]:
        n[c] = pd.Categorical(n[c])  # R as.factor(): treatment-coded against the first level
    return n


@pytest.fixture(scope="module")
def nhefs():
    return nhefs_frame()


@pytest.fixture(scope="module")
def cobalt_att(lalonde):
    p = propensity(lalonde, "treat", COBALT_COVS)
    return p, balancing_weights(p.treat, p.ps, "ATT")


@pytest.fixture(scope="module")
def weightit_ps(lalonde):
    return propensity(lalonde, "treat", WEIGHTIT_COVS)


# --------------------------------------------------------------------------- lalonde, cobalt


def test_cobalt_att_balance(lalonde, cobalt_att):
    # README: cobalt vignette, ATT weights from treat ~ age + educ + race + re74 + re75
    p, w = cobalt_att
    assert p.estimable and p.method_used == "logistic" and p.note is None and p.n == 614
    bal = balance_table(lalonde, "treat", COBALT_COVS, w, estimand="ATT").set_index("covariate")
    expected = {"age": 0.1112, "educ": -0.0641, "race_black": -0.0044, "race_hispan": 0.0016,
                "race_white": 0.0028, "re74": -0.0039, "re75": -0.0428}
    assert list(bal.index) == ["age", "educ", "race_black", "race_hispan", "race_white", "re74", "re75"]
    for cov, value in expected.items():
        assert round(bal.loc[cov, "diff_adj"], 4) == value, cov
    assert bal.loc["age", "type"] == "continuous" and bal.loc["age", "diff_type"] == "smd"
    assert bal.loc["race_black", "type"] == "binary" and bal.loc["race_black", "diff_type"] == "raw"
    # continuous SMDs use the SD of the (unweighted) treated for ATT
    treated = lalonde[lalonde.treat == 1]
    assert bal.loc["age", "sd_denominator"] == pytest.approx(treated.age.std(ddof=1))
    ess = ess_by_group(p.treat, w)
    assert round(ess[0], 1) == 108.2 and ess[1] == pytest.approx(185)


def test_variance_ratios_match_r(lalonde, cobalt_att):
    # R here: var(x[t==1]) / var(x[t==0]) and cov.wt(x, w) (cobalt's col.w.v formula), same ATT weights
    _, w = cobalt_att
    bal = balance_table(lalonde, "treat", COBALT_COVS, w, estimand="ATT").set_index("covariate")
    r = {"age": (0.4399954634, 0.5085807364), "educ": (0.4958933714, 0.6018265371),
         "re74": (0.5181284809, 1.482081353), "re75": (0.9562930454, 1.17120442)}
    for cov, (unadj, adj) in r.items():
        assert bal.loc[cov, "var_ratio_unadj"] == pytest.approx(unadj, rel=1e-8)
        assert bal.loc[cov, "var_ratio_adj"] == pytest.approx(adj, rel=1e-8)
    assert bal.loc[["race_black", "race_white"], "var_ratio_adj"].isna().all()  # binary: none, as cobalt


def test_weighted_means_per_group(lalonde, cobalt_att):
    _, w = cobalt_att
    bal = balance_table(lalonde, "treat", ["age"], w, estimand="ATT").iloc[0]
    t = lalonde.treat.to_numpy() == 1
    assert bal["mean_treated_adj"] == pytest.approx(lalonde.age[t].mean())  # ATT: treated weight 1
    assert bal["mean_control_adj"] == pytest.approx(np.average(lalonde.age[~t], weights=w[~t]))
    assert bal["mean_control_unadj"] == pytest.approx(lalonde.age[~t].mean())


# --------------------------------------------------------------------------- lalonde, WeightIt


def test_propensity_coefficients_match_r_glm(weightit_ps):
    # R here: glm(treat ~ age + educ + race + married + nodegree + re74 + re75, binomial)
    r = {"(Intercept)": -1.663281595, "age": 0.01577707099, "educ": 0.1613068770, "race[hispan]": -2.081734119,
         "race[white]": -3.065367729, "married": -0.8321132713, "nodegree": 0.7072968811,
         "re74": -7.177668568e-05, "re75": 5.344644639e-05}
    coefs = weightit_ps.coefficients.set_index("term")
    assert list(coefs.index) == list(r)
    for term, value in r.items():
        assert coefs.loc[term, "coef"] == pytest.approx(value, rel=1e-6), term
    # R's vcov uses the weights of its last IRLS iteration (one step before convergence)
    assert coefs.loc["educ", "se"] == pytest.approx(0.06512533, rel=1e-4)


def test_weightit_att(lalonde, weightit_ps):
    p = weightit_ps
    w = balancing_weights(p.treat, p.ps, "ATT")
    assert round(ess_by_group(p.treat, w)[0], 2) == 99.82
    bal = balance_table(lalonde, "treat", WEIGHTIT_COVS, w, estimand="ATT").set_index("covariate")
    expected = {"age": 0.119, "educ": -0.028, "married": 0.019, "nodegree": 0.018, "re74": -0.002, "re75": 0.011}
    for cov, value in expected.items():
        assert round(bal.loc[cov, "diff_adj"], 3) == value, cov
    assert round(bal.loc["re74", "diff_unadj"], 3) == -0.721


def test_weightit_ate(lalonde, weightit_ps):
    p = weightit_ps
    w = balancing_weights(p.treat, p.ps, "ATE")
    s = weights_summary(p.treat, w).set_index("treatment")
    assert list(s.reset_index().columns) == SUMMARY_COLUMNS
    assert round(s.loc[0, "ess"], 3) == 329.008
    assert round(s.loc[1, "ess"], 3) == 58.327
    assert round(s.loc[1, "max"], 4) == 40.0773
    assert s.loc[1, "largest"][0] == s.loc[1, "max"]
    assert w[s.loc[1, "largest_at"][0]] == s.loc[1, "max"]  # positions into w
    assert list(s.loc[1, "largest"]) == sorted(s.loc[1, "largest"], reverse=True)
    assert (s.loc[0, "n"], s.loc[1, "n"]) == (429, 185)
    bal = balance_table(lalonde, "treat", WEIGHTIT_COVS, w, estimand="ATE").set_index("covariate")
    for cov, value in {"age": -0.1676, "re74": -0.2740, "re75": -0.1579}.items():
        assert round(bal.loc[cov, "diff_adj"], 4) == value, cov
    # pooled SD of the unweighted groups
    g = lalonde.groupby("treat").age.var(ddof=1)
    assert bal.loc["age", "sd_denominator"] == pytest.approx(np.sqrt((g[0] + g[1]) / 2))


def test_overlap_weights_balance_every_model_covariate_exactly(lalonde, weightit_ps):
    p = weightit_ps
    w = balancing_weights(p.treat, p.ps, "ATO")
    t = p.treat == 1
    assert np.allclose(w, np.where(t, 1 - p.ps, p.ps))
    bal = balance_table(lalonde, "treat", WEIGHTIT_COVS, w, estimand="ATO")
    raw = bal["mean_treated_adj"] - bal["mean_control_adj"]
    scale = np.maximum(1.0, bal["mean_treated_unadj"].abs())
    assert (raw.abs() / scale).max() < 1e-8
    assert bal["diff_adj"].abs().max() < 1e-8


# --------------------------------------------------------------------------- NHEFS, What If


def test_nhefs_chapter12_ip_weights(nhefs):
    cc = nhefs[nhefs.wt82.notna()]
    p = propensity(cc, "qsmk", NHEFS_COVS)
    assert p.estimable and p.n == 1566
    w = balancing_weights(p.treat, p.ps)
    assert round(w.mean(), 2) == 2.00
    assert (round(w.min(), 2), round(w.max(), 2)) == (1.05, 16.70)
    sw = balancing_weights(p.treat, p.ps, stabilize=True)
    assert (round(sw.min(), 2), round(sw.max(), 2)) == (0.33, 4.30)
    assert sw.mean() == pytest.approx(1.0, abs=0.01)
    # stabilised = marginal P(T = t) times the unstabilised weight
    p1 = p.treat.mean()
    assert np.allclose(sw, w * np.where(p.treat == 1, p1, 1 - p1))


def test_missing_rows_dropped_and_counted(nhefs):
    # wt82 is missing for 63 of 1,629: as a covariate it drops those rows, and says so
    p = propensity(nhefs, "qsmk", ["sex", "age", "wt82"])
    assert (p.n, p.n_dropped) == (1566, 63)
    assert "63 row(s)" in p.note
    assert p.index.equals(nhefs.index[nhefs.wt82.notna()])
    assert len(p.ps) == len(p.treat) == 1566


def test_nhefs_chapter17_stabilised_weights(nhefs):
    # R here (What If's R code, program 17.3: the chapter-12 model fitted on all 1,629):
    # summary(sw) min 0.3312, max 4.2054; quantile(sw, c(.01, .99)) 0.4558843637 1.9533688333
    p = propensity(nhefs, "qsmk", NHEFS_COVS)
    assert p.n == 1629 and p.n_dropped == 0
    sw = balancing_weights(p.treat, p.ps, stabilize=True)
    assert (round(sw.min(), 4), round(sw.max(), 4)) == (0.3312, 4.2054)
    tw = truncate_weights(sw)
    assert tw.min() == pytest.approx(0.4558843637, abs=1e-9)
    assert tw.max() == pytest.approx(1.9533688333, abs=1e-9)
    assert np.array_equal(tw, np.clip(sw, tw.min(), tw.max()))


# --------------------------------------------------------------------------- not estimable


def _toy(n=200, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-x))).astype(int)
    return pd.DataFrame({"t": t, "x": x, "z": rng.normal(size=n), "sex": rng.choice(["F", "M"], n)})


def test_empty_treatment_group_not_estimable():
    d = _toy().assign(t=0)
    p = propensity(d, "t", ["x"])
    assert not p.estimable and "treatment group 1 is empty" in p.reason
    assert len(p.ps) == 0 and p.method_used is None
    bal = balance_table(d, "t", ["x"])
    assert bal["diff_adj"].isna().all() and "empty" in bal.loc[0, "note"]


def test_constant_covariate_not_estimable():
    p = propensity(_toy().assign(c=1.0), "t", ["x", "c"])
    assert not p.estimable and p.reason == "covariate 'c' is constant"


def test_collinear_covariates_not_estimable():
    d = _toy()
    p = propensity(d.assign(x2=2 * d.x + 1), "t", ["x", "x2"])
    assert not p.estimable and "linearly dependent" in p.reason


def test_complete_separation_falls_back_to_firth():
    d = _toy(20, seed=1)
    d["t"] = (d.x > 0.3).astype(int)  # x separates the treatment completely
    p = propensity(d, "t", ["x", "z"])
    assert p.estimable and p.method_used == "firth"
    assert "ML logistic regression not usable" in p.note and "Firth" in p.note
    assert np.all((p.ps > 0) & (p.ps < 1))
    w = balancing_weights(p.treat, p.ps)
    assert np.all(np.isfinite(w))
    # at n = 200 Firth's fitted scores round to 0 and 1: no finite weights, said so
    big = _toy()
    big["t"] = (big.x > 0.3).astype(int)
    p = propensity(big, "t", ["x", "z"])
    assert not p.estimable and "Firth" in p.reason and "exactly 0 or 1" in p.reason
    forced = propensity(_toy(), "t", ["x"], method="firth")
    assert forced.method_used == "firth" and forced.note is None


def test_quasi_separation_by_a_binary_covariate_falls_back_to_firth():
    d = _toy()
    d.loc[d.sex == "M", "t"] = 1  # every M treated
    p = propensity(d, "t", ["x", "sex"])
    assert p.estimable and p.method_used == "firth" and "separation" in p.note


def test_weights_never_nan_or_inf():
    t = np.array([1, 0, 1, 0])
    for bad in ([0.5, 0.5, 1.0, 0.5], [0.5, 0.0, 0.5, 0.5], [0.5, np.nan, 0.5, 0.5], [0.5, np.inf, 0.5, 0.5]):
        for est in ("ATE", "ATT", "ATO"):
            with pytest.raises(ValueError, match="propensity"):
                balancing_weights(t, bad, est)
    with pytest.raises(ValueError, match="0/1"):
        balancing_weights([1, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="stabilize"):
        balancing_weights(t, [0.5] * 4, "ATT", stabilize=True)
    with pytest.raises(ValueError, match="estimand"):
        balancing_weights(t, [0.5] * 4, "ATX")
    # ps so close to 0 that 1/ps overflows: an error, not inf
    with pytest.raises(ValueError, match="infinite"):
        balancing_weights([1, 0], [1e-320, 0.5])
    for f in (effective_sample_size, lambda w: truncate_weights(w)):
        with pytest.raises(ValueError, match="missing or infinite"):
            f([1.0, np.nan])
    with pytest.raises(ValueError, match="missing or infinite"):
        balance_table(_toy(4), "t", ["x"], [1.0, np.inf, 1.0, 1.0])
    with pytest.raises(ValueError, match="negative"):
        weights_summary([0, 1], [1.0, -1.0])


def test_weight_formulas():
    t, ps = np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.5, 0.2])
    assert np.allclose(balancing_weights(t, ps, "ATE"), [1.25, 2.5, 2.0, 1.25])
    assert np.allclose(balancing_weights(t, ps, "ATE", stabilize=True), [0.625, 1.25, 1.0, 0.625])
    assert np.allclose(balancing_weights(t, ps, "ATT"), [1, 1, 1.0, 0.25])
    assert np.allclose(balancing_weights(t, ps, "ato"), [0.2, 0.6, 0.5, 0.2])


def test_ess_and_truncation():
    assert effective_sample_size([1, 1, 1, 1]) == 4
    assert effective_sample_size([2.0, 0, 0]) == 1
    assert effective_sample_size([]) == 0.0
    w = np.arange(1.0, 101.0)
    tw = truncate_weights(w, 0.05, 0.95)
    assert (tw.min(), tw.max()) == (np.quantile(w, 0.05), np.quantile(w, 0.95)) == (5.95, 95.05)  # R type 7
    assert np.array_equal(truncate_weights(w, None, 0.95)[:10], w[:10])
    t = (w > 50).astype(int)
    by = truncate_weights(w, 0.1, 0.9, treat=t)
    assert by[t == 0].max() == np.quantile(w[t == 0], 0.9) and by[t == 1].min() == np.quantile(w[t == 1], 0.1)
    with pytest.raises(ValueError):
        truncate_weights(w, 0.9, 0.1)


def test_balance_table_expansion_and_notes():
    d = _toy(300)
    d["grade"] = np.random.default_rng(1).choice(["a", "b", "c"], len(d))
    d.loc[::10, "grade"] = None
    d["smoker"] = np.where(d.x > 0, 2, 1)  # two values, not 0/1
    d["const"] = 5.0
    bal = balance_table(d, "t", ["sex", "grade", "smoker", "const", "z"])
    assert list(bal.columns) == BALANCE_COLUMNS
    assert list(bal.covariate) == ["sex_M", "grade_a", "grade_b", "grade_c", "grade:<NA>", "smoker_2", "const", "z"]
    b = bal.set_index("covariate")
    assert b.loc["grade:<NA>", "type"] == "binary"
    assert b.loc["const", "type"] == "constant" and b.loc["const", "diff_adj"] == 0 and "constant" in b.loc[
        "const", "note"]
    # grade proportions among the non-missing rows
    nm = d[d.grade.notna()]
    assert b.loc["grade_a", "mean_treated_unadj"] == pytest.approx((nm[nm.t == 1].grade == "a").mean())
    # unweighted: adjusted equals unadjusted
    assert np.allclose(bal.diff_adj.to_numpy(dtype=float), bal.diff_unadj.to_numpy(dtype=float), equal_nan=True)
    # a continuous covariate constant in the treated: ATT SD is 0, SMD not computed, said so
    d2 = d.assign(z=np.where(d.t == 1, 1.0, d.z))
    row = balance_table(d2, "t", ["z"], estimand="ATT").iloc[0]
    assert np.isnan(row["diff_adj"]) and "SD of 0" in row["note"]
    # a weights column by name, and a Series aligned by index
    named = balance_table(d.assign(w=2.0), "t", ["z"], "w")
    series = balance_table(d, "t", ["z"], pd.Series(2.0, index=d.index[::-1]))
    assert named.diff_adj[0] == pytest.approx(series.diff_adj[0]) == pytest.approx(bal.set_index("covariate").loc[
        "z", "diff_adj"])
