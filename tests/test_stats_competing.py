"""Aalen-Johansen cumulative incidence against R survfit on mgus2, plus the IJ variance
checked against a brute-force infinitesimal jackknife.

Reference numbers: /work/shared/reference/README.md, "Competing risks, survival::mgus2".
"""


import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.competing import (
    aalen_johansen,
    cumulative_incidence,
    state_probabilities_at,
)

# R: summary(survfit(Surv(etime, factor(event)) ~ sex, data = mgus2), times = 120)  (README)
#      P(no event), CIF progression (95% CI), CIF death (95% CI)
R_MGUS2_120 = {
    "F": (0.4456, (0.07389, 0.05552, 0.09832), (0.48049, 0.44140, 0.52305)),
    "M": (0.3695, (0.05531, 0.04072, 0.07513), (0.57518, 0.53923, 0.61352)),
}


@pytest.mark.parametrize("sex", ["F", "M"])
def test_mgus2_state_probabilities_at_120_match_r(mgus2, sex):
    p = state_probabilities_at(mgus2, "etime", "event", [120], "sex")
    p = p.loc[p["group"] == sex].set_index("state")
    free, prog, death = R_MGUS2_120[sex]
    assert p.loc["event-free", "estimate"] == pytest.approx(free, abs=5e-5)  # 4 decimals
    for state, (est, lcl, ucl) in ((1, prog), (2, death)):  # 5 decimals
        assert p.loc[state, "estimate"] == pytest.approx(est, abs=5e-6)
        assert p.loc[state, "lcl"] == pytest.approx(lcl, abs=5e-6)
        assert p.loc[state, "ucl"] == pytest.approx(ucl, abs=5e-6)
    # the three states partition the probability
    assert p["estimate"].sum() == pytest.approx(1.0)


def test_cumulative_incidence_tidy_output(mgus2):
    c = cumulative_incidence(mgus2, "etime", "event", 1, "sex", times=[0, 120])
    assert list(c.columns) == ["group", "time", "n_risk", "cif", "cif_se", "cif_lcl", "cif_ucl"]
    f120 = c.loc[(c["group"] == "F") & (c["time"] == 120)].iloc[0]
    assert (f120["cif"], f120["cif_lcl"], f120["cif_ucl"]) == pytest.approx((0.07389, 0.05552, 0.09832), abs=5e-6)
    assert c.loc[c["time"] == 0, "cif"].eq(0).all()
    allt = cumulative_incidence(mgus2, "etime", "event", 2, "sex")
    assert allt.groupby("group")["time"].apply(lambda s: s.is_monotonic_increasing).all()
    assert allt.groupby("group")["cif"].apply(lambda s: s.is_monotonic_increasing).all()


def test_unknown_cause_raises(mgus2):
    with pytest.raises(ValueError, match="cause 3"):
        cumulative_incidence(mgus2, "etime", "event", 3)


# --------------------------------------------------------------------------- brute-force IJ


def _weighted_aj(t, cause, w, K):
    """Plain-loop weighted Aalen-Johansen (all types at a tied time together)."""
    times = np.unique(t)
    S, F = 1.0, np.zeros(K)
    out_S, out_F = [], []
    for s in times:
        Y = w[t >= s].sum()
        dk = np.array([w[(t == s) & (cause == k + 1)].sum() for k in range(K)])
        F = F + S * dk / Y
        S = S * (1 - dk.sum() / Y)
        out_S.append(S)
        out_F.append(F.copy())
    return times, np.array(out_S), np.array(out_F)


def test_ij_variance_equals_brute_force_jackknife():
    rng = np.random.default_rng(11)
    n = 40
    t = rng.integers(1, 12, n).astype(float)  # many ties, incl. different types at one time
    cause = rng.integers(0, 3, n)
    df = pd.DataFrame({"t": t, "e": cause})
    curve = aalen_johansen(df, "t", "e")
    eps = 1e-6
    times, S0, F0 = _weighted_aj(t, cause, np.ones(n), 2)
    U_S = np.zeros((n, len(times)))
    U_F = np.zeros((n, len(times), 2))
    for i in range(n):
        w = np.ones(n)
        w[i] += eps
        _, Sp, Fp = _weighted_aj(t, cause, w, 2)
        w[i] -= 2 * eps
        _, Sm, Fm = _weighted_aj(t, cause, w, 2)
        U_S[i] = (Sp - Sm) / (2 * eps)
        U_F[i] = (Fp - Fm) / (2 * eps)
    se_S = np.sqrt((U_S**2).sum(axis=0))
    se_F = np.sqrt((U_F**2).sum(axis=0))
    ours = curve.set_index(["state", "time"])
    assert ours.loc["event-free", "estimate"].to_numpy() == pytest.approx(S0, abs=1e-12)
    assert ours.loc["event-free", "std_err"].to_numpy() == pytest.approx(se_S, abs=1e-6)
    for k in (1, 2):
        assert ours.loc[k, "estimate"].to_numpy() == pytest.approx(F0[:, k - 1], abs=1e-12)
        assert ours.loc[k, "std_err"].to_numpy() == pytest.approx(se_F[:, k - 1], abs=1e-6)


def test_group_with_no_events_of_a_type():
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1, 0, 2, 0, 0, 2], "g": ["a", "a", "a", "b", "b", "b"]})
    c = cumulative_incidence(df, "t", "e", 1, "g", times=[10])
    b = c.loc[c["group"] == "b"].iloc[0]
    assert np.isnan(b["cif"])  # beyond b's last observation (6): R omits it
    c = cumulative_incidence(df, "t", "e", 1, "g", times=[5.5])
    b = c.loc[c["group"] == "b"].iloc[0]
    assert b["cif"] == 0 and np.isnan(b["cif_lcl"])


def test_everyone_has_an_event_at_last_time():
    df = pd.DataFrame({"t": [1, 2, 3, 3], "e": [1, 2, 1, 2]})
    p = state_probabilities_at(df, "t", "e", [3]).set_index("state")
    assert p.loc["event-free", "estimate"] == 0
    assert p.loc[1, "estimate"] + p.loc[2, "estimate"] == pytest.approx(1)
    assert np.isfinite(p.loc[1, "std_err"])


def test_fast_at_100k():
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    df = pd.DataFrame({"t": rng.exponential(10, n).round(1), "e": rng.integers(0, 3, n), "g": rng.integers(0, 2, n)})
    start = time.perf_counter()
    cumulative_incidence(df, "t", "e", 1, "g", times=[5, 10])
    assert time.perf_counter() - start < 5
