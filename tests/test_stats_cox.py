"""Cox PH (Efron ties): estimates and global tests against R coxph, PH test against R cox.zph,
and the not-estimable paths (never a crash).

Reference numbers: /work/shared/reference/README.md (R 4.2, survival 3.5) unless noted.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.cox import TABLE_COLUMNS, _efron, cox_ph, cox_zph

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def lung():
    return pd.read_csv(REF / "survival_lung.csv")


@pytest.fixture(scope="module")
def rossi():
    return pd.read_csv(REF / "rossi.csv")


def test_lung_sex_matches_r(lung):
    fit = cox_ph(lung, "time", "status", ["sex"])
    assert fit.estimable and fit.reason is None
    assert list(fit.table.columns) == TABLE_COLUMNS
    row = fit.table.iloc[0]
    # R: coxph(Surv(time, status) ~ sex, data = lung): coef -0.5310, exp(coef) 0.5880,
    #    se 0.1672, z -3.176, p 0.00149 (README, printed digits)
    assert row["coef"] == pytest.approx(-0.5310, abs=5e-5)
    assert row["hr"] == pytest.approx(0.5880, abs=5e-5)
    assert row["se"] == pytest.approx(0.1672, abs=5e-5)
    assert row["z"] == pytest.approx(-3.176, abs=5e-4)
    assert row["p"] == pytest.approx(0.00149, abs=5e-6)
    assert (row["n"], row["events"]) == (228, 165)
    tests = fit.tests.set_index("test")["statistic"]
    # R summary(): Likelihood ratio test 10.63, Wald 10.09, Score (logrank) 10.33 on 1 df
    assert tests["likelihood_ratio"] == pytest.approx(10.63, abs=5e-3)
    assert tests["wald"] == pytest.approx(10.09, abs=5e-3)
    assert tests["score"] == pytest.approx(10.33, abs=5e-3)
    # R summary(): Concordance = 0.579
    assert fit.concordance == pytest.approx(0.579, abs=5e-4)
    assert fit.events_per_variable == 165


def test_lung_three_covariates_match_r(lung):
    fit = cox_ph(lung, "time", "status", ["age", "sex", "ph.ecog"])
    t = fit.table.set_index("term")
    # R: coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung): n 227, 164 events,
    #    age 0.011067 (se 0.009267), sex -0.552612 (0.167739), ph.ecog 0.463728 (0.113577); LR 30.5
    assert (fit.n, fit.events) == (227, 164)
    assert t.loc["age", "coef"] == pytest.approx(0.011067, abs=5e-7)
    assert t.loc["age", "se"] == pytest.approx(0.009267, abs=5e-7)
    assert t.loc["sex", "coef"] == pytest.approx(-0.552612, abs=5e-7)
    assert t.loc["sex", "se"] == pytest.approx(0.167739, abs=5e-7)
    assert t.loc["ph.ecog", "coef"] == pytest.approx(0.463728, abs=5e-7)
    assert t.loc["ph.ecog", "se"] == pytest.approx(0.113577, abs=5e-7)
    assert fit.tests.set_index("test").loc["likelihood_ratio", "statistic"] == pytest.approx(30.5, abs=0.05)
    assert fit.events_per_variable == pytest.approx(164 / 3)


def test_rossi_matches_fox_weisberg(rossi):
    covs = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    fit = cox_ph(rossi, "week", "arrest", covs)
    # R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
    #    (Fox & Weisberg, appendix on Cox regression; README), LR 33.27 on 7 df
    ref = [-0.3794222, -0.0574377, 0.3138998, -0.1497957, -0.4337039, -0.0848711, 0.0914971]
    assert fit.table["coef"].to_numpy() == pytest.approx(ref, abs=5e-7)
    lr = fit.tests.set_index("test").loc["likelihood_ratio"]
    assert lr["statistic"] == pytest.approx(33.27, abs=5e-3)
    assert lr["df"] == 7


def test_efron_loglik_matches_lifelines(lung):
    from lifelines import CoxPHFitter

    d = lung[["time", "status", "age", "sex"]].dropna()
    cph = CoxPHFitter().fit(d, "time", "status")
    X, t, e = d[["age", "sex"]].to_numpy(float), d["time"].to_numpy(float), d["status"].to_numpy()
    ours = _efron(X, t, e, cph.params_.to_numpy())
    assert ours.loglik == pytest.approx(cph.log_likelihood_, abs=1e-8)


def test_cox_zph_matches_r3(lung):
    fit = cox_ph(lung, "time", "status", ["age", "sex", "ph.ecog"])
    z = cox_zph(fit).set_index("term")
    # R >= 3.0 survival: cox.zph(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung))
    #    (transform = "km", the score test) prints chisq age 0.1879877, sex 2.3054372,
    #    ph.ecog 2.0542488, GLOBAL 4.4636576 (3 df), p GLOBAL 0.2155549 -- R output reproduced in
    #    public survival tutorials; not in the shared README.
    assert z.loc["age", "chisq"] == pytest.approx(0.1879877, abs=1e-5)
    assert z.loc["sex", "chisq"] == pytest.approx(2.3054372, abs=1e-5)
    assert z.loc["ph.ecog", "chisq"] == pytest.approx(2.0542488, abs=1e-5)
    assert z.loc["GLOBAL", "chisq"] == pytest.approx(4.4636576, abs=1e-5)
    assert z.loc["GLOBAL", "df"] == 3
    assert z.loc["GLOBAL", "p"] == pytest.approx(0.2155549, abs=1e-5)


def test_factor_covariate_is_one_term_in_zph(lung):
    d = lung.assign(ecog=lung["ph.ecog"].map({0: "0", 1: "1", 2: "2+", 3: "2+"}))
    fit = cox_ph(d, "time", "status", ["sex", "ecog"])
    assert list(fit.table["term"]) == ["sex", "ecog[1]", "ecog[2+]"]
    z = cox_zph(fit).set_index("term")
    assert z.loc["ecog", "df"] == 2 and z.loc["GLOBAL", "df"] == 3


# --------------------------------------------------------------------------- not estimable


def small(seed=3, n=46):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "t": rng.exponential(30, n).round() + 1,
            "d": rng.integers(0, 2, n),
            "route": rng.choice(["IV", "SC"], n),
            "age": rng.normal(50, 15, n),
        }
    )


def test_small_cohort_fits():
    fit = cox_ph(small(), "t", "d", ["route", "age"])
    assert fit.estimable
    assert list(fit.table["term"]) == ["route[SC]", "age"]
    assert len(cox_zph(fit)) == 3


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d.assign(d=0), "no events"),
        (lambda d: d.assign(d=np.where(d["route"] == "SC", 0, d["d"])), "no events where route[SC] == 1"),
        (lambda d: d.assign(d=np.where(d["route"] == "IV", 0, d["d"])), "no events where route[SC] == 0"),
        (lambda d: d.assign(route="IV"), "'route' has a single level"),
        (lambda d: d.assign(age=50.0), "constant"),
        (lambda d: d.assign(age2=d["age"] * 2), "linearly dependent"),
        (lambda d: d.iloc[:0], "no complete observations"),
    ],
)
def test_not_estimable_reasons(mutate, reason):
    d = mutate(small())
    covs = ["route", "age"] + (["age2"] if "age2" in d else [])
    fit = cox_ph(d, "t", "d", covs)
    assert not fit.estimable
    assert reason in fit.reason
    assert fit.table["coef"].isna().all()
    assert cox_zph(fit).empty


def test_continuous_separation_is_flagged():
    # events occur exactly in decreasing order of x: the partial likelihood is monotone in b
    df = pd.DataFrame({"t": np.arange(1, 21), "d": 1, "x": np.arange(20.0)[::-1]})
    fit = cox_ph(df, "t", "d", ["x"])
    assert not fit.estimable
    assert "separation" in fit.reason or "infinite" in fit.reason


def test_quasi_separation_in_multivariable_model_is_flagged():
    # a 0/1 covariate whose "1" level has no events, next to a continuous one
    d = small(5)
    d["flag"] = (np.arange(len(d)) % 3 == 0).astype(int)
    d.loc[d["flag"] == 1, "d"] = 0
    fit = cox_ph(d, "t", "d", ["age", "flag"])
    assert not fit.estimable and "flag" in fit.reason


def test_fast_at_100k():
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    df = pd.DataFrame(
        {
            "t": rng.exponential(10, n).round(1),
            "e": rng.integers(0, 2, n),
            "a": rng.normal(size=n),
            "b": rng.integers(0, 2, n),
        }
    )
    start = time.perf_counter()
    fit = cox_ph(df, "t", "e", ["a", "b"])
    cox_zph(fit)
    assert fit.estimable
    assert time.perf_counter() - start < 10


def test_risk_set_sums_equal_add_at_bit_for_bit():
    from stormcohort.stats.cox import _bucket_sum

    rng = np.random.default_rng(1)
    index = rng.integers(0, 50, 5_000)
    values = rng.normal(size=(5_000, 3, 3))
    expected = np.zeros((51, 3, 3))
    np.add.at(expected, index, values)
    assert np.array_equal(_bucket_sum(index, values, 51), expected)
    assert np.array_equal(_bucket_sum(index, values[:, 0], 51), expected[:, 0])


def test_newton_polish_stops_at_rounding_noise(monkeypatch):
    # at large n the score's rounding noise exceeds the 1e-10 step tolerance and the
    # log-likelihood's exceeds 1e-12: the polish must stop instead of stepping and halving
    # through noise (structural check: the number of Efron evaluations, not the clock)
    import stormcohort.stats.cox as cox

    rng = np.random.default_rng(2)
    n = 20_000  # a registry-like case (integer days, categorical covariates) that used to spin
    df = pd.DataFrame({"t": rng.integers(1, 91, n).astype(float), "e": (rng.random(n) < 0.25).astype(int),
                       "g": rng.choice(["IV", "SC"], n), "age": rng.choice(["adult", "child"], n),
                       "icu": rng.integers(0, 2, n), "trig": rng.choice(["infection", "malignancy", "rheumatic"], n)})
    calls = []
    efron = cox._efron
    monkeypatch.setattr(cox, "_efron", lambda *a, **kw: calls.append(1) or efron(*a, **kw))
    fit = cox_ph(df, "t", "e", ["g", "age", "icu", "trig"])
    assert fit.estimable
    assert len(calls) <= 6  # null model + a few Newton steps (109 before the noise rule)
    # and the estimate is the maximum: the Newton step left is at rounding level
    at = efron(fit._X, fit._time, fit._event, fit._beta)
    assert np.max(np.abs(np.linalg.solve(at.info, at.score))) < 1e-8


def test_no_comparable_pairs_gives_nan_concordance_not_a_crash():
    # The two deaths are tied at t = 2 and everyone else left at t = 1: Harrell's C has no
    # comparable pair (lifelines raises ZeroDivisionError). Efron's likelihood is symmetric in b
    # here, so the fit itself is fine: b = 0 with the information 1/2.
    df = pd.DataFrame({"t": [1, 2, 1, 2], "d": [0, 1, 0, 1], "route": ["IV", "IV", "SC", "SC"]})
    fit = cox_ph(df, "t", "d", ["route"])
    assert fit.estimable and np.isnan(fit.concordance)
    assert any("concordance" in w for w in fit.warnings)
    assert fit.table["coef"].iloc[0] == pytest.approx(0, abs=1e-9)
    assert fit.table["se"].iloc[0] == pytest.approx(np.sqrt(2))
