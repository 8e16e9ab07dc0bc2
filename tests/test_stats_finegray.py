"""Gray's test, Fine-Gray and cause-specific Cox against R cmprsk / survival on mgus2, and the
not-estimable paths (never a crash).

Reference numbers: /work/shared/reference/README.md, "Comparing cumulative incidence,
survival::mgus2 (R cmprsk)". The further cases (ties with events at time 0, three groups,
strata, rho = 1, two covariates; case weights) come from this script, run with R 4.2.2,
cmprsk 2.2-11, survival 3.5-3 (Debian bookworm r-cran-cmprsk, r-cran-survival)::

    library(survival); library(cmprsk); options(digits = 10)
    m <- read.csv("tests/reference/survival_mgus2.csv")
    m$etime <- ifelse(m$pstat == 0, m$futime, m$ptime)
    m$event <- ifelse(m$pstat == 0, 2 * m$death, 1)
    m$sexM <- as.numeric(m$sex == "M")
    # A: whole years (heavy ties, 177 rows at time 0), three age groups
    m$yr <- m$etime %/% 12
    m$agegrp <- cut(m$age, c(0, 60, 70, Inf), labels = c("<60", "60-69", "70+"))
    cuminc(m$yr, m$event, group = m$agegrp)$Tests
    cuminc(m$yr, m$event, group = m$agegrp, strata = m$sex)$Tests
    cuminc(m$yr, m$event, group = m$sex, rho = 1)$Tests
    for (k in 1:2) {
      f <- crr(m$yr, m$event, cov1 = cbind(sexM = m$sexM, age = m$age), failcode = k, cencode = 0)
      print(rbind(f$coef, sqrt(diag(f$var))))
    }
    # B: censored times half a month later (no censoring tied to an event: there finegray's
    # tie rule and crr's agree) and case weights
    m$etime2 <- m$etime + 0.5 * (m$event == 0)
    m$w <- 1 + (m$id %% 5) / 4
    for (k in 1:2) {
      f <- crr(m$etime2, m$event, cov1 = m$sexM, failcode = k, cencode = 0)
      fg0 <- finegray(Surv(etime2, factor(event)) ~ ., data = m[, c("etime2", "event", "sex", "id")], etype = k)
      c0 <- coxph(Surv(fgstart, fgstop, fgstatus) ~ sex, data = fg0, weights = fgwt, ties = "breslow",
                  cluster = id)
      fg <- finegray(Surv(etime2, factor(event)) ~ ., data = m[, c("etime2", "event", "sex", "id", "w")],
                     weights = w, etype = k)
      cw <- coxph(Surv(fgstart, fgstop, fgstatus) ~ sex, data = fg, weights = fgwt, ties = "breslow",
                  cluster = id)
      cs <- coxph(Surv(etime, event == k) ~ sex, data = m, weights = w, robust = TRUE)
      print(c(f$coef, sqrt(f$var), coef(c0), coef(cw), sqrt(vcov(cw)), coef(cs), sqrt(vcov(cs))))
    }
    # C: small, group b without events of cause 1
    t <- c(1, 2, 2, 3, 4, 5, 5, 6, 1, 2, 3, 3, 4, 6, 7, 8)
    e <- c(1, 2, 0, 1, 1, 0, 2, 1, 2, 0, 2, 2, 0, 2, 0, 2)
    cuminc(t, e, rep(c("a", "b"), each = 8))$Tests
"""


import numpy as np
import pandas as pd
import pytest

from stormcohort.stats._util import design_matrix
from stormcohort.stats.finegray import (
    _FG,
    TABLE_COLUMNS,
    _codes,
    cause_specific_cox,
    fine_gray,
    gray_test,
)


@pytest.fixture(scope="module")
def mgus2(mgus2):
    """tests/conftest.py's mgus2 with the columns of the further R cases."""
    m = mgus2.copy()
    m["yr"] = m["etime"] // 12
    m["agegrp"] = pd.cut(m["age"], [0, 60, 70, np.inf], labels=["<60", "60-69", "70+"])
    m["etime2"] = m["etime"] + 0.5 * (m["event"] == 0)
    m["w"] = 1 + (m["id"] % 5) / 4
    return m


# README: cuminc(etime, event, group = sex): stat, p; crr(cov1 = sexM): coef, se;
# coxph(Surv(etime, event == k) ~ sex): coef, se
README = {
    1: dict(stat=1.1945078, p=0.27442216, fg=(-0.22923711, 0.18577835), cs=(-0.05938364, 0.1872321)),
    2: dict(stat=11.651259, p=0.00064159098, fg=(0.23276927, 0.067999032), cs=(0.2279963, 0.06900029)),
}


@pytest.mark.parametrize("cause", [1, 2])
def test_gray_test_matches_cuminc(mgus2, cause):
    g = gray_test(mgus2, "etime", "event", "sex", cause)
    assert g.estimable and g.df == 1 and g.groups == ("F", "M")
    assert g.statistic == pytest.approx(README[cause]["stat"], abs=5e-7)
    assert g.p == pytest.approx(README[cause]["p"], rel=5e-7)


@pytest.mark.parametrize("cause", [1, 2])
def test_fine_gray_matches_crr(mgus2, cause):
    f = fine_gray(mgus2, "etime", "event", ["sex"], cause)
    assert f.estimable and list(f.table.columns) == TABLE_COLUMNS
    row = f.table.iloc[0]
    coef, se = README[cause]["fg"]
    # crr stops at its gtol (~2e-7 short of the maximum for death); the se to 1e-8
    assert row["term"] == "sex[M]"
    assert row["coef"] == pytest.approx(coef, abs=5e-7)
    assert row["se"] == pytest.approx(se, abs=5e-8)
    assert (f.n, f.events, f.competing + f.censored + f.events) == (1384, int((mgus2.event == cause).sum()), 1384)
    if cause == 1:  # README: subdistribution HR 0.795 (0.552 to 1.14)
        assert (row["hr"], row["hr_lcl"], row["hr_ucl"]) == pytest.approx((0.795, 0.552, 1.14), abs=5e-3)


@pytest.mark.parametrize("cause", [1, 2])
def test_cause_specific_cox_matches_coxph(mgus2, cause):
    c = cause_specific_cox(mgus2, "etime", "event", ["sex"], cause)
    row = c.table.iloc[0]
    coef, se = README[cause]["cs"]
    assert row["coef"] == pytest.approx(coef, abs=5e-8)
    assert row["se"] == pytest.approx(se, abs=5e-8)


def test_gray_test_ties_three_groups_strata_rho(mgus2):
    # R case A: stat on 2 df (agegrp), stratified by sex, and by sex with rho = 1 (1 df)
    r = {1: (4.72613008, 5.069021764, 1.282437254), 2: (230.27302286, 240.635029009, 14.751189715)}
    for cause, (plain, strat, rho1) in r.items():
        g = gray_test(mgus2, "yr", "event", "agegrp", cause)
        assert g.df == 2 and g.groups == ("<60", "60-69", "70+")
        assert g.statistic == pytest.approx(plain, abs=5e-8)
        stratified = gray_test(mgus2, "yr", "event", "agegrp", cause, strata="sex")
        assert stratified.statistic == pytest.approx(strat, abs=5e-8)
        assert gray_test(mgus2, "yr", "event", "sex", cause, rho=1).statistic == pytest.approx(rho1, abs=5e-8)


def test_fine_gray_ties_and_time_zero_two_covariates(mgus2):
    # R case A: crr on whole years (177 rows at time 0: crr reads G at 0, not before 0)
    r = {1: ([-0.2623626714, -0.017471696490], [0.1853532041, 0.005740012838]),
         2: ([0.35536934783, 0.056099193156], [0.06396027154, 0.003512735392])}
    for cause, (coef, se) in r.items():
        t = fine_gray(mgus2, "yr", "event", ["sex", "age"], cause).table
        assert list(t["term"]) == ["sex[M]", "age"]
        assert t["coef"].to_numpy() == pytest.approx(coef, abs=5e-9)
        assert t["se"].to_numpy() == pytest.approx(se, abs=5e-10)


# R case B: crr coef, se; finegray + coxph(breslow) coef unweighted, weighted; its robust se
# (weighted, without G's uncertainty); weighted coxph(robust = TRUE) coef and robust se
CASE_B = {
    1: (-0.2289951561, 0.1857666845, -0.2289951792, -0.2479377171, 0.1893582404, -0.0649029327, 0.1910259130),
    2: (0.23278220818, 0.06799673800, 0.23278240561, 0.24941307635, 0.07043157857, 0.24612952401, 0.07108552803),
}


@pytest.mark.parametrize("cause", [1, 2])
def test_weighted_fits_match_r(mgus2, cause):
    crr_coef, crr_se, fg_coef, fgw_coef, fgw_robse, cs_coef, cs_se = CASE_B[cause]
    u = fine_gray(mgus2, "etime2", "event", ["sex"], cause).table.iloc[0]
    assert u["coef"] == pytest.approx(fg_coef, abs=1e-8)  # the maximum (coxph converges further)
    assert u["coef"] == pytest.approx(crr_coef, abs=5e-7)
    assert u["se"] == pytest.approx(crr_se, abs=5e-8)
    f = fine_gray(mgus2, "etime2", "event", ["sex"], cause, weights="w")
    assert f.weighted and f.table["coef"].iloc[0] == pytest.approx(fgw_coef, abs=1e-9)
    # the w_i eta_i part of the sandwich is R's robust variance on the finegray data
    X = design_matrix(mgus2, ["sex"])[0].to_numpy(float)
    fg = _FG(X, mgus2["etime2"].to_numpy(float), _codes(mgus2["event"].to_numpy(), cause, 0), mgus2["w"].to_numpy())
    b = f.table["coef"].to_numpy()
    inv = np.linalg.inv(fg.fit_pieces(b)[2])
    U = fg.influence(b, with_psi=False)
    assert np.sqrt((inv @ U.T @ U @ inv)[0, 0]) == pytest.approx(fgw_robse, abs=1e-9)
    # with G's uncertainty (psi) the se differs a little
    assert f.table["se"].iloc[0] == pytest.approx(fgw_robse, rel=0.01)
    c = cause_specific_cox(mgus2, "etime", "event", ["sex"], cause, weights="w")
    assert c.estimable
    assert c.table["coef"].iloc[0] == pytest.approx(cs_coef, abs=1e-9)
    assert c.table["se"].iloc[0] == pytest.approx(cs_se, abs=1e-9)


def test_equal_weights_change_nothing(mgus2):
    plain = fine_gray(mgus2, "yr", "event", ["sex", "age"], 1).table
    two = fine_gray(mgus2.assign(two=2.0), "yr", "event", ["sex", "age"], 1, weights="two").table
    assert two["coef"].to_numpy() == pytest.approx(plain["coef"].to_numpy(), abs=1e-10)
    assert two["se"].to_numpy() == pytest.approx(plain["se"].to_numpy(), abs=1e-10)
    cs = cause_specific_cox(mgus2, "etime", "event", ["sex"], 2).table
    csw = cause_specific_cox(mgus2.assign(one=1.0), "etime", "event", ["sex"], 2, weights="one").table
    assert csw["coef"].iloc[0] == pytest.approx(cs["coef"].iloc[0], abs=1e-8)


def test_gray_group_without_events():
    # R case C: group b has no events of cause 1; the test is still defined (R reports it)
    d = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5, 5, 6, 1, 2, 3, 3, 4, 6, 7, 8],
                      "e": [1, 2, 0, 1, 1, 0, 2, 1, 2, 0, 2, 2, 0, 2, 0, 2], "g": ["a"] * 8 + ["b"] * 8})
    g1 = gray_test(d, "t", "e", "g", 1)
    assert g1.estimable and g1.events == {"a": 4, "b": 0}
    assert g1.statistic == pytest.approx(5.605873918562, abs=1e-10)
    assert gray_test(d, "t", "e", "g", 2).statistic == pytest.approx(0.891462018779, abs=1e-10)
    f = fine_gray(d, "t", "e", ["g"], 1)
    assert not f.estimable and "no events of cause 1 where g[b] == 1" in f.reason
    c = cause_specific_cox(d.assign(w=1.5), "t", "e", ["g"], 1, weights="w")
    assert not c.estimable and "g[b] == 1" in c.reason


def test_not_estimable_never_crashes():
    d = pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 0, 2, 0], "g": ["IV"] * 4, "w": 1.0})
    g = gray_test(d, "t", "e", "g", 1)
    assert not g.estimable and "only one group" in g.reason and np.isnan(g.p)
    assert "no complete" in gray_test(d.iloc[:0], "t", "e", "g", 1).reason
    assert "no events of cause 3 in any group" in gray_test(d.assign(g=["IV", "SC"] * 2), "t", "e", "g", 3).reason
    f = fine_gray(d, "t", "e", ["g"], 1)
    assert not f.estimable and "single level" in f.reason and f.table["coef"].isna().all()
    none = d.assign(e=[0, 0, 2, 0], g=["IV", "SC"] * 2)
    assert fine_gray(none, "t", "e", ["g"], 1, weights="w").reason == "no events of cause 1"
    assert cause_specific_cox(none, "t", "e", ["g"], 1, weights="w").reason == "no events"
    assert fine_gray(d.iloc[:0], "t", "e", ["g"], 1).reason == "no complete observations"
    with pytest.raises(ValueError, match="non-negative"):
        fine_gray(d.assign(w=-1.0), "t", "e", ["g"], 1, weights="w")
    with pytest.raises(ValueError, match="censoring code"):
        fine_gray(d, "t", "e", ["g"], 0)


def test_fast_at_100k():
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    d = pd.DataFrame({"t": rng.exponential(10, n), "e": rng.integers(0, 3, n), "g": rng.choice(["IV", "SC"], n),
                      "x": rng.normal(size=n), "w": rng.uniform(0.5, 2, n)})
    start = time.perf_counter()
    assert gray_test(d, "t", "e", "g", 1).estimable
    assert fine_gray(d, "t", "e", ["g", "x"], 1, weights="w").estimable
    assert cause_specific_cox(d, "t", "e", ["g", "x"], 1, weights="w").estimable
    assert time.perf_counter() - start < 10
