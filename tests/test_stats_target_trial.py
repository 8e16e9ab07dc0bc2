"""Clone-censor-weight emulation of IV within G days vs SC through day G (stats.target_trial).

Hand-checkable cloning, weights and weighted Kaplan-Meier; the weighted KM engine against
stats.survival.kaplan_meier and against replicated rows; the weighted Cox against lifelines; the
vectorised bootstrap fits against statsmodels; bootstrap determinism; a seeded simulation with
immortal time and confounding; not-estimable cases; landmark and start-stop data.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from stormcohort.stats import target_trial as tt
from stormcohort.stats.cox import cox_ph
from stormcohort.stats.firth import ml_logistic
from stormcohort.stats.survival import kaplan_meier
from stormcohort.stats.target_trial import (
    clone,
    clone_censor_weight,
    landmark,
    start_stop,
    time_varying_cox,
    weighted_kaplan_meier,
)

REF = Path(__file__).parent / "reference"


@pytest.fixture
def hand():
    """a: IV first dose, dies day 10; b: SC then IV on day 1, censored 20; c: IV on day 5, dies 15;
    d: never IV, dies day 1; e: never IV, censored 30; f: IV on day 2, dies 8; g: never IV, dies
    day 3; h: IV first dose, censored 25."""
    return pd.DataFrame({
        "time": [10, 20, 15, 1, 30, 8, 3, 25],
        "event": [1, 0, 1, 1, 0, 1, 1, 0],
        "iv_start": [0, 1, 5, np.nan, np.nan, 2, np.nan, 0],
        "x": [1, 0, 1, 0, 0, 1, 1, 0],
    }, index=list("abcdefgh"))


def row(clones, patient, arm):
    r = clones[(clones["patient"] == patient) & (clones["arm"] == arm)]
    assert len(r) == 1
    return tuple(r[["time", "event", "deviated"]].iloc[0])


# --------------------------------------------------------------------------- cloning


def test_cloning_and_artificial_censoring_with_a_two_day_grace_period(hand):
    c = clone(hand, 2)
    assert len(c) == 16 and list(c.columns) == ["patient", "arm", "time", "event", "deviated"]
    # IV first dose: IV clone followed to death; SC clone censored at 0 (contributes nothing)
    assert row(c, "a", "IV") == (10, 1, 0) and row(c, "a", "SC") == (0, 0, 1)
    # SC, IV on day 1 (within G): the SC clone deviates on day 1
    assert row(c, "b", "IV") == (20, 0, 0) and row(c, "b", "SC") == (1, 0, 1)
    # SC, IV on day 5 (after G): the IV clone is censored at G, the SC clone followed to death
    assert row(c, "c", "IV") == (2, 0, 1) and row(c, "c", "SC") == (15, 1, 0)
    # death on day 1 without IV: consistent with both strategies, a death in both arms
    assert row(c, "d", "IV") == (1, 1, 0) and row(c, "d", "SC") == (1, 1, 0)
    # never IV, followed past G: IV clone censored at G
    assert row(c, "e", "IV") == (2, 0, 1) and row(c, "e", "SC") == (30, 0, 0)
    # IV on day G itself is IV by G
    assert row(c, "f", "IV") == (8, 1, 0) and row(c, "f", "SC") == (2, 0, 1)


def test_death_on_day_g_without_iv_is_an_sc_death_and_grace_zero_is_the_first_dose_route():
    df = pd.DataFrame({"time": [2, 0, 0, 4], "event": [1, 1, 1, 0], "iv_start": [np.nan, np.nan, 0, 3]})
    c = clone(df, 2)
    # alive at the start of day 2 without IV: the IV clone deviates then, before the death
    assert row(c, 0, "IV") == (2, 0, 1) and row(c, 0, "SC") == (2, 1, 0)
    c0 = clone(df, 0)
    assert row(c0, 1, "IV") == (0, 0, 1) and row(c0, 1, "SC") == (0, 1, 0)  # SC first dose, died day 0
    assert row(c0, 2, "IV") == (0, 1, 0) and row(c0, 2, "SC") == (0, 0, 1)  # IV first dose, died day 0
    assert row(c0, 3, "IV") == (0, 0, 1) and row(c0, 3, "SC") == (4, 0, 0)  # IV later: SC strategy


def test_bad_input_raises():
    df = pd.DataFrame({"time": [2.0], "event": [1], "iv_start": [3.0]})
    with pytest.raises(ValueError, match="after"):
        clone(df, 2)
    with pytest.raises(ValueError, match="grace"):
        clone(df.assign(iv_start=np.nan), -1)
    with pytest.raises(ValueError, match="negative"):
        clone(df.assign(iv_start=-1.0), 2)


# --------------------------------------------------------------------------- weighted KM and weights


def test_arm_curves_by_hand(hand):
    r = clone_censor_weight(hand, 2, days=(5, 20))
    assert r.estimable and r.reason is None
    cur = {a: c.set_index("time") for a, c in r.curve.groupby("arm")}
    # IV arm: day 1: 8 at risk (G deviations still at risk), 1 death; day 8: a b f h; day 10: a b h
    assert cur["IV"]["surv"].to_dict() == pytest.approx({1: 7 / 8, 8: 7 / 8 * 3 / 4, 10: 7 / 8 * 3 / 4 * 2 / 3})
    # SC arm: day 1: c d e f g (b deviates on day 1, before the death); day 3: c e g (f left on 2); day 15: c e
    assert cur["SC"]["surv"].to_dict() == pytest.approx({1: 4 / 5, 3: 4 / 5 * 2 / 3, 15: 4 / 5 * 2 / 3 * 1 / 2})
    assert list(cur["SC"]["n_risk"]) == [5, 3, 2]
    risks = r.risks.set_index(["arm", "day"])["risk"]
    assert risks[("IV", 5)] == pytest.approx(1 / 8) and risks[("SC", 20)] == pytest.approx(1 - 4 / 15)
    c = r.contrasts.set_index("day")
    assert c.loc[5, "rd"] == pytest.approx(1 / 8 - 7 / 15)
    assert c.loc[5, "rr"] == pytest.approx((1 / 8) / (7 / 15))
    # stabilised covariate-free weights are exactly 1
    assert set(r.clones["weight"].dropna()) == {1.0}


def test_unstabilised_covariate_free_weights_are_one_over_crude_proportions(hand):
    r = clone_censor_weight(hand, 2, stabilised=False, days=(5,))
    w = r.clones.set_index(["patient", "arm"])["weight"]
    # SC: decision days 0 (a, h of 8 start), 1 (b of b c d e f g), 2 (f of c e f g)
    assert w[("e", "SC")] == pytest.approx(1 / (6 / 8 * 5 / 6 * 3 / 4))
    assert w[("d", "SC")] == pytest.approx(1 / (6 / 8 * 5 / 6))  # died on day 1: weighted up to day 1
    # IV: 4 of the 7 followed at day 2 had IV by then; weight 7/4 from day 2, 1 before
    assert w[("a", "IV")] == pytest.approx(7 / 4) and w[("d", "IV")] == 1.0
    # the KM is unchanged: covariate-free weights are constant within each risk set
    base = clone_censor_weight(hand, 2, days=(5,))
    pd.testing.assert_frame_equal(r.curve.drop(columns=["n_risk", "n_event"]),
                                  base.curve.drop(columns=["n_risk", "n_event"]))


@pytest.fixture(scope="module")
def lung():
    return pd.read_csv(REF / "survival_lung.csv")


def test_weighted_km_with_unit_weights_is_kaplan_meier(lung):
    ref = kaplan_meier(lung, "time", "status", "sex")
    got = weighted_kaplan_meier(lung, "time", "status", group="sex")
    assert list(got["time"]) == list(ref["time"])
    for c in ("n_risk", "n_event", "n_censor", "surv"):
        np.testing.assert_allclose(got[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-12)


def test_weighted_km_with_integer_weights_is_km_on_replicated_rows(lung):
    w = np.random.default_rng(3).integers(1, 4, len(lung))
    got = weighted_kaplan_meier(lung.assign(w=w), "time", "status", "w")
    ref = kaplan_meier(lung.loc[lung.index.repeat(w)], "time", "status")
    np.testing.assert_allclose(got["surv"], ref["surv"], rtol=1e-12)
    np.testing.assert_allclose(got["n_risk"], ref["n_risk"], rtol=1e-12)


# --------------------------------------------------------------------------- simulation


def simulate(n, seed):
    """No effect of IV on death; x and z confound the route (IV first dose, switches on days
    1-20) and death; a patient who dies before a planned switch never gets IV (immortal time)."""
    rng = np.random.default_rng(seed)
    x = (rng.random(n) < 0.5).astype(float)
    z = rng.normal(size=n)
    first_iv = rng.random(n) < expit(-1.0 + 1.5 * x + 0.5 * z)
    planned = np.where(rng.random(n) < expit(-0.5 + x), rng.integers(1, 21, n), np.inf)
    v0 = np.where(first_iv, 0.0, planned)
    death = np.ceil(rng.exponential(1 / (0.01 * np.exp(x + 0.5 * z))))
    t = np.minimum(death, 90.0)
    return pd.DataFrame({"time": t, "event": (death <= 90).astype(int), "iv_start": np.where(v0 <= t, v0, np.nan),
                         "x": x, "z": z})


@pytest.fixture(scope="module")
def sim():
    return simulate(3000, 1)


def test_naive_ever_iv_is_biased_by_immortal_time_and_ccw_is_not(sim):
    naive = cox_ph(sim.assign(ever_iv=sim["iv_start"].notna().astype(float)), "time", "event",
                   ["ever_iv", "x", "z"]).table.set_index("term")
    assert naive.loc["ever_iv", "hr"] < 0.9  # the truth is 1
    r = clone_censor_weight(sim, 2, ["x", "z"], days=(30, 90))
    assert r.estimable, r.reason
    assert r.contrasts["rd"].abs().max() < 0.03
    assert r.cox.loc[0, "hr_lcl"] < 1 < r.cox.loc[0, "hr_ucl"]
    assert set(r.weights["method"]) == {"ML"}
    # without the weights the IV arm holds the sicker patients
    crude = clone_censor_weight(sim, 2, days=(30, 90))
    assert crude.contrasts["rd"].min() > 0.08


def test_risks_are_unbiased_over_replicate_simulations():
    bias = []
    for seed in range(4):
        df = simulate(3000, 100 + seed)
        truth = [(df["event"].eq(1) & (df["time"] <= d)).mean() for d in (30, 90)]
        r = clone_censor_weight(df, 2, ["x", "z"], days=(30, 90)).risks
        bias.append(r["risk"].to_numpy() - np.r_[truth, truth])
    assert np.abs(np.mean(bias, axis=0)).max() < 0.015


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_and_seeded(sim):
    small = sim.iloc[:300]
    a = clone_censor_weight(small, 2, ["x", "z"], days=(30, 90), replicates=60, seed=5)
    b = clone_censor_weight(small, 2, ["x", "z"], days=(30, 90), replicates=60, seed=5)
    c = clone_censor_weight(small, 2, ["x", "z"], days=(30, 90), replicates=60, seed=6)
    for t in ("risks", "contrasts"):
        x, y = (getattr(r, t).select_dtypes("number").to_numpy(dtype=float) for r in (a, b))
        assert x.tobytes() == y.tobytes()
    assert not np.array_equal(a.contrasts["rd_lcl"], c.contrasts["rd_lcl"])
    ci = a.contrasts.set_index("day")
    assert (ci["rd_lcl"] < ci["rd"]).all() and (ci["rd"] < ci["rd_ucl"]).all()
    assert (ci["rr_lcl"] < ci["rr"]).all() and (ci["rr"] < ci["rr_ucl"]).all()
    assert a.bootstrap.set_index("outcome").loc["requested", "replicates"] == 60


def test_replicate_risks_are_the_ones_the_limits_come_from(sim):
    small = sim.iloc[:300]
    r = clone_censor_weight(small, 2, ["x", "z"], days=(30, 90), replicates=40, seed=3)
    boot = r.replicate_risks
    used = r.bootstrap.set_index("outcome").loc["used", "replicates"]
    assert boot.shape == (used, 2, 2) and np.isfinite(boot).all()
    rd = boot[:, 0, :] - boot[:, 1, :]
    np.testing.assert_allclose(r.contrasts["rd_lcl"], np.quantile(rd, 0.025, axis=0), rtol=1e-12)
    np.testing.assert_allclose(r.contrasts["rd_ucl"], np.quantile(rd, 0.975, axis=0), rtol=1e-12)
    assert clone_censor_weight(small, 2, ["x", "z"], days=(30, 90)).replicate_risks.shape[0] == 0


def test_bootstrap_does_not_depend_on_the_batch_size(sim, monkeypatch):
    small = sim.iloc[:200]
    a = clone_censor_weight(small, 2, ["x", "z"], days=(30,), replicates=25, seed=9)
    monkeypatch.setattr(tt, "_CHUNK_CELLS", 3000)  # a few replicates per batch
    b = clone_censor_weight(small, 2, ["x", "z"], days=(30,), replicates=25, seed=9)
    np.testing.assert_allclose(a.contrasts.drop(columns="day").to_numpy(float),
                               b.contrasts.drop(columns="day").to_numpy(float), rtol=1e-9)


def test_vectorised_fits_are_statsmodels_ml(sim):
    """The bootstrap's batched Newton-Raphson on frequency counts = ml_logistic on the resample."""
    small = sim.iloc[:400]
    d = tt._prepare(small, "time", "event", "iv_start", ["x", "z"])
    s = tt._setup(d, 2.0, np.array([30.0]))
    C = np.stack([np.bincount(r, minlength=400) for r in np.random.default_rng(2).integers(0, 400, (5, 400))])
    C = C.astype(float)
    for spec in (s.haz, s.lm):
        fast = tt._fit_spec(spec, d.X, d.names, C, exact=False)
        assert (fast.method == "ML").all()
        for r in range(len(C)):
            exact = tt._fit_spec(spec, d.X, d.names, C[r:r + 1], exact=True)
            np.testing.assert_allclose(fast.coef[r], exact.coef[0], atol=1e-6)
    # and the exact path is statsmodels: the IV-arm model is a plain logistic regression
    followed = small.loc[small["time"] >= 2]
    ml = ml_logistic(followed.assign(y=(followed["iv_start"] <= 2).astype(int)), "y", ["x", "z"])
    exact = tt._fit_spec(s.lm, d.X, d.names, np.ones((1, 400)), exact=True)
    np.testing.assert_allclose(exact.coef[0], ml.table["coef"], rtol=1e-10)


def test_replicates_ml_cannot_fit_get_the_exact_fits_vectorised():
    """Replicates the first Newton pass cannot fit (separation by a rare binary covariate, or a
    bad start) get what ml_logistic / firth_logistic give them one by one: the same method, the
    same coefficients (Firth by firth_batch, ML by statsmodels' Newton from 0)."""
    rng = np.random.default_rng(11)
    n = 50
    df = pd.DataFrame({"x": rng.normal(size=n).round(1), "rare": (rng.random(n) < 0.12).astype(float),
                       "c": rng.integers(0, 3, n).astype(float),
                       "iv_start": np.where(rng.random(n) < 0.35, rng.integers(0, 4, n), np.nan),
                       "time": rng.integers(1, 60, n).astype(float), "event": (rng.random(n) < 0.4).astype(int)})
    df["time"] = np.maximum(df["time"], df["iv_start"].fillna(0))
    d = tt._prepare(df, "time", "event", "iv_start", ["x", "rare", "c"])
    s = tt._setup(d, 2.0, np.array([30.0]))
    C = np.stack([np.bincount(r, minlength=n) for r in np.random.default_rng(3).integers(0, n, (60, n))]).astype(float)
    for spec in (s.haz, s.lm):
        q = len(spec.groups) + d.X.shape[1]
        for start in (None, np.full(q, 40.0)):  # 40: the first pass diverges for every replicate
            fast = tt._fit_spec(spec, d.X, d.names, C, exact=False, start=start)
            assert {"ML", "Firth"} <= set(fast.method)
            for r in range(len(C)):
                exact = tt._fit_spec(spec, d.X, d.names, C[r:r + 1], exact=True)
                assert fast.method[r] == exact.method[0] and fast.ok[r] == exact.ok[0]
                np.testing.assert_allclose(fast.coef[r], exact.coef[0], rtol=0, atol=1e-8)


def test_skipped_replicates_are_counted_not_fatal(hand):
    r = clone_censor_weight(hand, 2, ["x"], days=(5,), replicates=50, seed=1)
    assert r.estimable
    b = r.bootstrap.set_index("outcome")["replicates"]
    assert b["requested"] == 50 and b["used"] + b.drop(["requested", "used"]).sum() == 50
    assert b["used"] < 50 and any(n.startswith("bootstrap:") and "skipped" in n for n in r.notes)
    assert (r.risks["n_boot"] <= b["used"]).all()


# --------------------------------------------------------------------------- Cox


def _clone_rows(df, grace, covariates):
    d = tt._prepare(df, "time", "event", "iv_start", covariates)
    s = tt._setup(d, float(grace), np.array([10.0]))
    _, _, _, W, _ = tt._estimate(s, np.ones((1, len(df))), bool(covariates), True, exact=True)
    frames = []
    for a, arm in enumerate(s.arms):
        w = W[a][0]
        k = w > 0
        frames.append(pd.DataFrame({"entry": arm.entry[k], "exit": arm.exit[k], "e": arm.event[k], "w": w[k],
                                    "iv": float(a == 0), "pat": arm.pat[k]}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def untied():
    rng = np.random.default_rng(4)
    n = 300
    t = rng.exponential(20, n).round(6) + 0.01
    v = np.where(rng.random(n) < 0.4, 0.0, np.where(rng.random(n) < 0.3, rng.uniform(0, 5, n).round(3), np.nan))
    return pd.DataFrame({"time": t, "event": (rng.random(n) < 0.7).astype(int), "iv_start": np.where(v <= t, v, np.nan),
                         "x": rng.integers(0, 2, n).astype(float)})


def test_weighted_cox_matches_lifelines(untied):
    from lifelines import CoxPHFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # G = 0: one row per clone, no ties: coefficient and clustered robust se as lifelines
        f = _clone_rows(untied, 0, ["x"])
        ref = CoxPHFitter().fit(f[["exit", "e", "w", "iv", "pat"]], "exit", "e", weights_col="w", cluster_col="pat",
                                robust=True, fit_options={"precision": 1e-12})
        got = clone_censor_weight(untied, 0, ["x"], days=(10,)).cox.iloc[0]
        assert got["coef"] == pytest.approx(ref.params_["iv"], abs=1e-7)
        assert got["se"] == pytest.approx(ref.standard_errors_["iv"], rel=1e-6)
        # G = 2 on whole days: left-truncated rows and tied deaths (Efron); lifelines' coefficient
        days = untied.assign(time=np.ceil(untied["time"]), iv_start=np.floor(untied["iv_start"]))
        f = _clone_rows(days, 2, ["x"])
        ref = CoxPHFitter().fit(f[["entry", "exit", "e", "w", "iv"]], "exit", "e", weights_col="w", entry_col="entry",
                                fit_options={"precision": 1e-12})  # lifelines' default stops ~1e-5 away
        got = clone_censor_weight(days, 2, ["x"], days=(10,)).cox.iloc[0]
        assert got["coef"] == pytest.approx(ref.params_["iv"], abs=1e-7)
        assert np.isfinite(got["se"]) and got["se"] > 0


# --------------------------------------------------------------------------- not estimable


@pytest.mark.parametrize("change, reason", [
    (dict(iv_start=[np.nan] * 8), "no patient started IV by day 2"),
    (dict(iv_start=[0.0] * 8), "every patient started IV by day 2"),
    (dict(event=[0, 0, 1, 0, 0, 0, 1, 0]), "no deaths in the IV arm"),
])
def test_not_estimable_reasons(hand, change, reason):
    r = clone_censor_weight(hand.assign(**change), 2, days=(5,), replicates=10, seed=1)
    assert not r.estimable and r.reason.startswith(reason)
    assert r.risks["risk"].isna().all() and r.contrasts["rd"].isna().all()
    assert r.cox["hr"].isna().all() and r.cox_reason == r.reason
    assert r.bootstrap.set_index("outcome").loc["used", "replicates"] == 0


def test_no_patients_and_inestimable_weights(hand):
    r = clone_censor_weight(hand.iloc[:0], 2, days=(5,))
    assert not r.estimable and r.reason == "no patients"
    # a covariate and its double: ML and Firth both see a collinear design
    r = clone_censor_weight(hand.assign(x2=2 * hand["x"]), 2, ["x", "x2"], days=(5,))
    assert not r.estimable and r.reason.startswith("weights could not be estimated") and "collinear" in r.reason
    assert r.curve.empty and r.weights.empty


def test_separation_falls_back_to_firth_with_a_note(sim):
    df = sim.iloc[:300].copy()
    df["rare"] = 0.0
    first_iv = df.index[df["iv_start"].eq(0)][:3]
    df.loc[first_iv, "rare"] = 1.0  # every 'rare' patient had an IV first dose
    r = clone_censor_weight(df, 2, ["x", "rare"], days=(30,))
    assert r.estimable
    assert (r.weights["method"] == "Firth").all()
    assert any("Firth" in n and "separation" in n for n in r.notes)


def test_a_constant_covariate_is_left_out_with_a_note(sim):
    r = clone_censor_weight(sim.iloc[:300].assign(k=1.0), 2, ["x", "k"], days=(30,))
    assert r.estimable
    assert any("'k' is constant" in n for n in r.notes)


# --------------------------------------------------------------------------- sensitivity analyses


def test_landmark_frame(hand):
    lm = landmark(hand, 2)
    assert list(lm.index) == ["a", "b", "c", "e", "f", "g", "h"]  # d died on day 1
    assert lm["time"].to_dict() == {"a": 8, "b": 18, "c": 13, "e": 28, "f": 6, "g": 1, "h": 23}
    assert lm["iv"].to_dict() == {"a": 1, "b": 1, "c": 0, "e": 0, "f": 1, "g": 0, "h": 1}


def test_start_stop_rows(hand):
    rows = start_stop(hand, ["x"]).set_index("patient")
    assert rows.loc["a"].to_dict() == {"start": -0.5, "stop": 10, "event": 1, "iv": 1, "x": 1}  # IV from the start
    b = rows.loc["b"]
    assert b["start"].tolist() == [-0.5, 0.5] and b["stop"].tolist() == [0.5, 20] and b["iv"].tolist() == [0, 1]
    assert b["event"].tolist() == [0, 0]
    assert rows.loc["d"].to_dict() == {"start": -0.5, "stop": 1, "event": 1, "iv": 0, "x": 0}
    # a death on the day of the first IV dose is a death on IV
    same_day = start_stop(pd.DataFrame({"time": [3.0], "event": [1], "iv_start": [3.0]}))
    assert same_day["iv"].tolist() == [0, 1] and same_day["event"].tolist() == [0, 1]
    assert same_day["stop"].iloc[0] < 3 < same_day["stop"].iloc[1] + 1e-12


def test_time_varying_cox_by_hand():
    """Deaths on day 2 (the switcher, on IV; at risk: 2 IV, 2 SC) and day 3 (SC; 1 IV, 2 SC):
    score 1 - 2r/(2r + 2) - r/(r + 2) = 0, so HR = r = sqrt(2)."""
    df = pd.DataFrame({"time": [3.0, 2.0, 5.0, 4.0], "event": [1, 1, 0, 0], "iv_start": [np.nan, 1.0, np.nan, 0.0]})
    r = time_varying_cox(df)
    assert r.estimable and r.n == 4 and r.events == 2
    assert r.table.loc[0, "hr"] == pytest.approx(np.sqrt(2), rel=1e-6)
    # 'ever IV' from time zero would see the same risk sets here; a death on day 0.5 separates them
    assert not time_varying_cox(df.assign(iv_start=np.nan)).estimable
