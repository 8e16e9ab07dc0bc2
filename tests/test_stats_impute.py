"""Multiple imputation by chained equations (mice's default methods), the missingness patterns, and
MI + Rubin's rules in a seeded simulation.

Checked against R mice 3.15.0 here (R 4.2.2), once, not in the tests (they would need R): 200
data sets of n = 200 (``x ~ N(0, 1)``, ``z ~ Bernoulli(0.4)``, ``y = 1 + x + 0.5 z + e``; ``x``
missing with probability ``plogis(-2.2 + 1.2 y)``, 37%; ``z`` with ``plogis(-1.5 + 0.8 y)``,
39%), each imputed by ``mice(d, m = 20, maxit = 10)`` (z a factor: pmm and logreg) and by
:func:`impute` (m 20, max_iter 10), ``lm(y ~ x + z)`` pooled. Means over the 200 data sets, mice
then ours: coefficient of x 0.98361 and 0.98368 (paired difference 0.00007, MC se 0.0012), z
0.5492 and 0.5451 (-0.0041, se 0.0036); pooled se of x 0.09230 and 0.09275; fmi of x 0.2787 and
0.2785, of z 0.5470 and 0.5473. (Both show predictive mean matching's small bias towards the
centre when the missing values are in the tail.) Pooling against R's ``pool()`` on these
imputations is in tests/test_stats_pooling.py.
"""

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stormcohort.stats.impute import (
    IMPUTATION,
    _match,
    _Multinomial,
    _outer_upper,
    impute,
    missingness_pattern,
    nelson_aalen,
)
from stormcohort.stats.pooling import pool_scalar

REF = Path(__file__).parent / "reference"
COLS = ["age_group", "sex", "cns", "trigger_category", "ferritin_baseline", "platelets_baseline", "hscore"]


def cohort(n: int, seed: int = 1, missing: float = 0.25) -> pd.DataFrame:
    """A synthetic baseline table shaped like the comparison's adjustment set, values missing at random."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "age_group": rng.choice(["adult", "child", "elderly"], n, p=[0.5, 0.3, 0.2]).astype(object),
        "sex": rng.choice(["F", "M"], n).astype(object),
        "cns": (rng.random(n) < 1 / (1 + np.exp(-(x - 0.5)))).astype(float),
        "trigger_category": pd.Categorical(rng.choice(["infection", "malignancy", "autoimmune", "other"], n)),
        "ferritin_baseline": np.round(np.exp(8 + 0.8 * x + rng.normal(size=n))),
        "platelets_baseline": rng.poisson(150 + 20 * x.clip(-3, 3)).astype(float),
        "hscore": np.round(150 + 30 * x + rng.normal(scale=20, size=n)),
        "treat": (rng.random(n) < 1 / (1 + np.exp(-0.5 * x))).astype(int),
    })
    frame["y"] = 1 + frame["treat"] + x + rng.normal(size=n)
    frame.index = pd.RangeIndex(100, 100 + n)
    for c in COLS:
        frame.loc[rng.random(n) < missing * rng.random(), c] = np.nan if frame[c].dtype == float else None
    return frame


@pytest.fixture(scope="module")
def data():
    return cohort(300)


@pytest.fixture(scope="module")
def imputed(data):
    return impute(data, COLS, 5, 20200601, predictors=["treat", "y"])


def test_long_frame_shape_values_and_types(data, imputed):
    m, n = 5, len(data)
    assert list(imputed.columns) == [IMPUTATION, *data.columns]
    assert len(imputed) == m * n
    assert imputed[IMPUTATION].tolist() == list(np.repeat(np.arange(1, m + 1), n))
    assert (imputed.index == np.tile(data.index, m)).all()
    assert imputed[COLS].notna().all().all()
    for c in data.columns:
        assert imputed[c].dtype == data[c].dtype, c
    for _, frame in imputed.groupby(IMPUTATION):
        frame = frame.drop(columns=IMPUTATION)
        for c in data.columns:
            obs = data[c].notna()
            assert (frame.loc[obs, c] == data.loc[obs, c]).all(), c  # observed values never change
            # pmm imputes observed values; logreg / polyreg observed levels
            assert set(frame.loc[~obs, c]) <= set(data.loc[obs, c]), c
    # the imputations differ from each other
    first, second = (imputed.loc[imputed[IMPUTATION] == i, "ferritin_baseline"] for i in (1, 2))
    assert (first != second).any()
    info = imputed.attrs["imputation"]
    assert info["methods"] == {"age_group": "polyreg", "sex": "logreg", "cns": "logreg", "trigger_category": "polyreg",
                               "ferritin_baseline": "pmm", "platelets_baseline": "pmm", "hscore": "pmm"}
    assert info["n_missing"] == {c: int(data[c].isna().sum()) for c in COLS}
    assert info["predictors"] == ["treat", "y"] and info["m"] == 5 and info["seed"] == 20200601


def test_seeded_and_byte_identical(data, imputed):
    again = impute(data, COLS, 5, 20200601, predictors=["treat", "y"])
    assert again.equals(imputed)
    assert pd.util.hash_pandas_object(again).equals(pd.util.hash_pandas_object(imputed))
    other = impute(data, COLS, 5, 20200602, predictors=["treat", "y"])
    assert not other.equals(imputed)


NHANES_IMPUTATIONS = """
import sys
import pandas as pd
from stormcohort.stats.impute import impute
out = impute(pd.read_csv(sys.argv[1]), ["bmi", "hyp", "chl"], 20, 20200601, predictors=["age"])
out.to_csv(sys.stdout, index=False)
"""


@pytest.mark.parametrize("kernels", ["Sandybridge", "Haswell"])
def test_imputations_do_not_depend_on_the_cpus_blas_kernels(kernels):
    """OpenBLAS picks its kernels by CPU (on an AMD EPYC: Haswell's; on an Intel Xeon with AVX-512:
    SkylakeX's), and their sums round differently in the last bit. Tied predictions must stay tied, or a
    delivery imputes differently on the reviewer's machine: the same imputations under other kernels."""
    import subprocess
    import sys

    here = subprocess.run([sys.executable, "-c", NHANES_IMPUTATIONS, str(REF / "mice_nhanes.csv")],
                          capture_output=True, text=True, check=True).stdout
    forced = subprocess.run([sys.executable, "-c", NHANES_IMPUTATIONS, str(REF / "mice_nhanes.csv")],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "OPENBLAS_CORETYPE": kernels}).stdout
    assert here == forced and len(here.splitlines()) == 501


def test_nhanes_imputations_reproduced():
    """The imputations that R's pool() was run on (tests/test_stats_pooling.py) come out again."""
    nhanes = pd.read_csv(REF / "mice_nhanes.csv")
    saved = pd.read_csv(REF / "nhanes_imputations.csv")
    again = impute(nhanes, ["bmi", "hyp", "chl"], 20, 20200601, predictors=["age"])
    assert again.attrs["imputation"]["methods"] == {"bmi": "pmm", "hyp": "logreg", "chl": "pmm"}
    pd.testing.assert_frame_equal(again.reset_index(drop=True), saved, check_dtype=False)


def test_complete_constant_and_unlisted_columns(data):
    d = data.assign(note="x", complete=np.arange(len(data), dtype=float), single=np.where(
        np.arange(len(data)) % 3 == 0, np.nan, 7.0))
    out = impute(d, ["hscore", "complete", "single"], 3, 1, predictors=["y"])
    for _, frame in out.groupby(IMPUTATION):
        assert (frame["complete"].to_numpy() == d["complete"].to_numpy()).all()
        assert (frame["single"] == 7.0).all()  # one observed value: imputed as it
        assert frame["note"].eq("x").all()
        # columns not listed keep their missing values
        assert frame["ferritin_baseline"].isna().sum() == d["ferritin_baseline"].isna().sum()
    assert out.attrs["imputation"]["methods"] == {"hscore": "pmm", "complete": None, "single": "constant"}


def test_errors(data):
    with pytest.raises(ValueError, match="'hscore' is missing for every row"):
        impute(data.assign(hscore=np.nan), COLS, 2, 1)
    with pytest.raises(ValueError, match="predictor 'hscore' has .* missing"):
        impute(data, ["sex"], 2, 1, predictors=["hscore"])
    with pytest.raises(ValueError, match="distinct"):
        impute(data, ["sex", "sex"], 2, 1)
    with pytest.raises(ValueError, match="method 'logreg' for numeric"):
        impute(data, COLS, 2, 1, methods={"hscore": "logreg"})
    with pytest.raises(ValueError, match="not in columns"):
        impute(data, ["sex"], 2, 1, methods={"hscore": "pmm"})
    with pytest.raises(ValueError, match="m must be"):
        impute(data, ["sex"], 0, 1)
    with pytest.raises(TypeError, match="date"):
        impute(data.assign(when=pd.Timestamp("2020-01-01")), ["when"], 2, 1)
    with pytest.raises(KeyError):
        impute(data, ["nope"], 2, 1)


def test_binary_by_pmm_on_request(data):
    out = impute(data, ["cns", "sex"], 2, 3, predictors=["y"], methods={"cns": "pmm", "sex": "pmm"})
    assert set(out["cns"]) == {0.0, 1.0} and set(out["sex"]) == {"F", "M"}


def test_categorical_imputations_follow_their_predictor():
    """logreg and polyreg impute from the fitted model: a strong predictor is followed far above chance."""
    rng = np.random.default_rng(3)
    n = 2000
    x = rng.normal(size=n)
    cat = np.select([x < -0.6, x < 0.6], ["low", "mid"], "high").astype(object)
    binary = np.where(x + 0.3 * rng.normal(size=n) > 0, "yes", "no").astype(object)
    d = pd.DataFrame({"x": x, "cat": cat, "bin": binary})
    hide = rng.random(n) < 0.3
    d.loc[hide, "cat"] = None
    d.loc[rng.random(n) < 0.3, "bin"] = None
    out = impute(d, ["cat", "bin"], 4, 9, predictors=["x"])
    for _, frame in out.groupby(IMPUTATION):
        assert (frame.loc[hide, "cat"].to_numpy() == cat[hide]).mean() > 0.75
        miss = d["bin"].isna().to_numpy()
        assert (frame.loc[miss, "bin"].to_numpy() == binary[miss]).mean() > 0.8


def test_multinomial_fit_is_the_mle():
    """The batched Newton fit equals statsmodels' MNLogit / Logit MLE and its information matrix."""
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    n, q = 400, 3
    X = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    eta = X @ np.array([[0.2, -0.5], [1.0, 0.3], [-0.7, 0.8]])
    P = np.exp(np.column_stack([np.zeros(n), eta]))
    P /= P.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1)
    empty = np.zeros((2, 0, q))
    for K, yy in ((3, y), (2, (y > 0).astype(int))):
        model = _Multinomial(K, X, _outer_upper(X), yy, empty, np.zeros(0, int), np.zeros(0))
        theta, _, probs = model.fit(np.zeros((2, (K - 1) * q)))
        info = model.information(probs)
        ref = (sm.MNLogit(yy, X) if K == 3 else sm.Logit(yy, X)).fit(disp=0, method="newton", tol=1e-12)
        params = np.asarray(ref.params).reshape(q, K - 1).T.ravel()  # class-major
        assert np.allclose(theta, params, atol=1e-6)
        cov = np.asarray(ref.cov_params())
        if K == 3:  # statsmodels orders the covariance class-major too
            assert np.allclose(np.linalg.inv(info[0]), cov, atol=1e-6)
        else:
            assert np.allclose(np.linalg.inv(info[0]), cov, atol=1e-8)


def _matchindex_reference(d, t, h, k):
    """mice's C++ matchindex (src/matchindex.cpp) line by line, given the donors' order and h."""
    ids = np.argsort(d, kind="stable")
    ysort = d[ids]
    out = []
    for val, hi in zip(t, h, strict=True):
        r = int(np.searchsorted(ysort, val, side="left"))
        left, count, idx = r - 1, 0, -1
        while count < hi and left >= 0 and r < len(d):
            if val - ysort[left] < ysort[r] - val:
                idx, left = ids[left], left - 1
            else:
                idx, r = ids[r], r + 1
            count += 1
        while count < hi and left >= 0:
            idx, left, count = ids[left], left - 1, count + 1
        while count < hi and r < len(d):
            idx, r, count = ids[r], r + 1, count + 1
        out.append(idx)
    return np.array(out)


def test_match_is_mice_matchindex():
    rng = np.random.default_rng(8)
    d = rng.normal(size=(2, 60))
    t = np.concatenate([rng.normal(scale=1.5, size=(2, 40)), [[-9, 9], [9, -9]]], axis=1)  # and beyond both ends
    for k in (1, 3, 5):
        got = _match(d, t, [np.random.default_rng(s) for s in (1, 2)], k)
        for i, s in enumerate((1, 2)):
            h = np.random.default_rng(s).integers(1, k + 1, t.shape[1])
            assert (got[i] == _matchindex_reference(d[i], t[i], h, k)).all()
    # ties are broken at random, not by row order
    tied = np.zeros((1, 50))
    picks = {int(_match(tied, np.zeros((1, 1)), [np.random.default_rng(s)], 5)[0, 0]) for s in range(40)}
    assert len(picks) > 10


def test_missingness_pattern(data):
    table = missingness_pattern(data, COLS, "treat")
    assert list(table.columns) == ["treat", "pattern", "n_missing", "n", "percent", *COLS]
    for g, part in table.groupby("treat"):
        assert part["n"].sum() == (data["treat"] == g).sum()
        assert part["percent"].sum() == pytest.approx(100)
    complete = table[table["pattern"] == "none"]
    assert (complete["n"].to_numpy() == data[COLS].notna().all(axis=1).groupby(data["treat"]).sum().to_numpy()).all()
    row = table[table["n_missing"] >= 2].iloc[0]
    assert row["pattern"] == " + ".join(c for c in COLS if row[c] == 1)
    assert (table.groupby("treat")["n_missing"].apply(lambda s: s.is_monotonic_increasing)).all()
    overall = missingness_pattern(data, COLS)
    assert overall["group"].eq("all").all() and overall["n"].sum() == len(data)


def test_nelson_aalen():
    t = np.array([2.0, 1.0, 3.0, 3.0, 5.0, 4.0])
    e = np.array([1, 1, 1, 0, 0, 1])
    # at risk: t=1: 6 (1 death), t=2: 5 (1), t=3: 4 (1 death, 1 censored), t=4: 2 (1), t=5: 1 (0)
    h = np.cumsum([1 / 6, 1 / 5, 1 / 4, 1 / 2, 0])
    assert np.allclose(nelson_aalen(t, e), [h[1], h[0], h[2], h[2], h[4], h[3]])
    with pytest.raises(ValueError, match="0/1"):
        nelson_aalen(t, e * 2)


def test_speed_500_patients():
    d = cohort(500, seed=2)
    start = time.perf_counter()
    impute(d, COLS, 20, 1, predictors=["treat", "y"])
    assert time.perf_counter() - start < 3  # about 0.3 s on one core; generous for a busy machine


# --------------------------------------------------------------------------- MI + Rubin's rules


def _ols(X, y):
    xtx_inv = np.linalg.inv(X.T @ X)
    b = xtx_inv @ X.T @ y
    r = y - X @ b
    return b, r @ r / (len(y) - X.shape[1]) * np.diag(xtx_inv)


def _replicate(rng, n, m, max_iter):
    """x and z missing at random given the outcome y: complete cases biased, MI not."""
    x = rng.normal(size=n)
    z = (rng.random(n) < 0.4).astype(float)
    y = 1 + x + 0.5 * z + rng.normal(size=n)
    d = pd.DataFrame({"x": x, "z": z, "y": y})
    d.loc[rng.random(n) < 1 / (1 + np.exp(-(-1.8 + y))), "x"] = np.nan
    d.loc[rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.8 * y))), "z"] = np.nan
    cc = d.dropna()
    b_cc, _ = _ols(np.column_stack([np.ones(len(cc)), cc["x"], cc["z"]]), cc["y"].to_numpy())
    long = impute(d, ["x", "z"], m, int(rng.integers(2**31)), predictors=["y"], max_iter=max_iter)
    est, var = [], []
    for _, f in long.groupby(IMPUTATION):
        b, v = _ols(np.column_stack([np.ones(n), f["x"], f["z"]]), f["y"].to_numpy())
        est.append(b[1:])
        var.append(v[1:])
    pooled = pool_scalar(np.array(est), np.array(var), n, 3)
    truth = np.array([1.0, 0.5])
    return b_cc[1:], pooled.qbar, (pooled.lcl <= truth) & (truth <= pooled.ucl)


def _simulate(reps, n, m, max_iter, seed):
    rng = np.random.default_rng(seed)
    res = [_replicate(rng, n, m, max_iter) for _ in range(reps)]
    cc, mi, cover = (np.array([r[i] for r in res]) for i in range(3))
    truth = np.array([1.0, 0.5])
    return cc.mean(axis=0) - truth, mi.mean(axis=0) - truth, cover.mean(axis=0), mi.std(axis=0) / np.sqrt(reps)


def test_mi_recovers_what_complete_cases_miss():
    """200 replicates of n = 200 (m = 10, 5 sweeps; a few seconds): complete-case coefficients are
    biased (about -0.2 for x, -0.1 for z), MI + Rubin's rules are not and cover near 95%."""
    cc_bias, mi_bias, coverage, mc_se = _simulate(200, 200, 10, 5, seed=20200601)
    assert cc_bias[0] < -0.12 and cc_bias[1] < -0.05
    assert abs(mi_bias[0]) < 0.03 and abs(mi_bias[1]) < 0.04
    assert np.all(np.abs(mi_bias) < np.abs(cc_bias) / 3)
    assert np.all((coverage >= 0.90) & (coverage <= 0.99))


@pytest.mark.simulation
def test_mi_coverage_long():
    """1,000 replicates, m = 20, 10 sweeps (the defaults): coverage within 2.5 points of 95%."""
    cc_bias, mi_bias, coverage, mc_se = _simulate(1000, 200, 20, 10, seed=7)
    assert cc_bias[0] < -0.12
    assert abs(mi_bias[0]) < 0.03 and abs(mi_bias[1]) < 0.03
    assert np.all(np.abs(coverage - 0.95) < 0.025)
