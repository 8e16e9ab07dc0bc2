"""Coverage simulation of the trajectory mixed model at the embedded delivery's size (issue 13, item 2).

    python -m stormcohort.simulate_mixed [--replicates 500] [--seed 20200601] [--json out.json]

Each replicate draws 46 patients (18 IV, 28 SC, as the embedded delivery) with 15 samples each
(one on each calendar day 0-14, at a uniform time of day), log value = 7 - 0.1 day + a random
intercept (SD 0.8) + a random slope (SD 0.02 log-units per day, uncorrelated) + noise (SD 0.3),
and no IV-vs-SC difference in level or slope. :func:`stormcohort.stats.lab_trajectory_lmm` fits
each one; the summary is the coverage of the 95% t interval of the IV-vs-SC slope difference
(``route[IV]:day``, truth 0) with its Wilson 95% CI, the coverage a normal interval with the same
standard error would have had, the bias, the empirical SD of the estimates against the mean
reported SE, the median Satterthwaite df, and how many fits were singular or dropped the slope.
Data are drawn per replicate with vectorised numpy (no loop over patients).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from stormcohort.stats.mixed import lab_trajectory_lmm

TERM = "route[IV]:day"
DEFAULTS = {"n_iv": 18, "n_sc": 28, "samples": 15, "intercept": 7.0, "slope": -0.1, "sd_intercept": 0.8,
            "sd_slope": 0.02, "sigma": 0.3}


def simulate_replicate(rng: np.random.Generator, n_iv=18, n_sc=28, samples=15, intercept=7.0, slope=-0.1,
                       sd_intercept=0.8, sd_slope=0.02, sigma=0.3) -> pd.DataFrame:
    """One delivery's log values (``pid, route, day, y``) with no IV-vs-SC difference."""
    n = n_iv + n_sc
    pid = np.repeat(np.arange(n), samples)
    day = np.tile(np.arange(samples, dtype=float), n) + rng.uniform(0, 1, n * samples)
    b0 = rng.normal(0, sd_intercept, n)[pid]
    b1 = rng.normal(0, sd_slope, n)[pid]
    y = intercept + slope * day + b0 + b1 * day + rng.normal(0, sigma, n * samples)
    route = pd.Categorical(np.where(pid < n_iv, "IV", "SC"), categories=["SC", "IV"])  # IV - SC, as the pipeline
    return pd.DataFrame({"pid": pid, "route": route, "day": day, "y": y})


def run(replicates: int = 500, seed: int = 20200601, conf_level: float = 0.95, **params) -> dict:
    """Fit ``replicates`` simulated deliveries; the coverage summary (see the module doc)."""
    p = {**DEFAULTS, **params}
    rng = np.random.default_rng(seed)
    rows, singular, fallback = [], 0, 0
    start = time.perf_counter()
    for _ in range(replicates):
        d = simulate_replicate(rng, **p)
        r = lab_trajectory_lmm(d, "y", "day", "pid", "route", log=False, conf_level=conf_level)
        if not r.estimable:
            rows.append((np.nan,) * 5)
            continue
        singular += r.singular
        fallback += r.fallback_reason is not None
        fe = r.fixed_effects.set_index("term").loc[TERM]
        rows.append((fe["coef"], fe["se"], fe["df"], fe["lcl"], fe["ucl"]))
    seconds = time.perf_counter() - start
    coef, se, df, lcl, ucl = np.array(rows, dtype=float).T
    ok = np.isfinite(coef)
    k = int(ok.sum())
    covered = int(((lcl <= 0) & (0 <= ucl))[ok].sum())
    from scipy import special

    z = special.ndtri(1 - (1 - conf_level) / 2)
    covered_z = int((np.abs(coef[ok]) <= z * se[ok]).sum())
    return {
        "replicates": replicates, "fitted": k, "seed": seed, "params": p, "term": TERM, "truth": 0.0,
        "coverage": covered / k, "coverage_wilson_95": list(_wilson(covered, k)),
        "coverage_normal_interval": covered_z / k,
        "bias": float(np.mean(coef[ok])), "empirical_sd": float(np.std(coef[ok], ddof=1)),
        "mean_se": float(np.mean(se[ok])), "rms_se": float(np.sqrt(np.mean(se[ok] ** 2))),
        "median_df": float(np.median(df[ok])), "df_range": [float(np.min(df[ok])), float(np.max(df[ok]))],
        "singular_fits": int(singular), "slope_dropped": int(fallback), "seconds": round(seconds, 1),
        "seconds_per_fit": round(seconds / replicates, 4),
    }


def _wilson(x: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(centre - half), float(centre + half)


def report(s: dict) -> str:
    lo, hi = s["coverage_wilson_95"]
    return "\n".join([
        f"{s['replicates']} replicates of {s['params']['n_iv']} IV + {s['params']['n_sc']} SC patients x "
        f"{s['params']['samples']} samples, slope SD {s['params']['sd_slope']:g}/day, no IV-vs-SC difference "
        f"(seed {s['seed']}; {s['seconds']:.0f} s, {s['seconds_per_fit'] * 1000:.0f} ms per fit)",
        f"coverage of the 95% t interval of {s['term']}: {s['coverage']:.3f} (Wilson 95% CI {lo:.3f} to {hi:.3f}); "
        f"a normal interval with the same SE: {s['coverage_normal_interval']:.3f}",
        f"bias {s['bias']:+.5f}; empirical SD {s['empirical_sd']:.5f} vs mean SE {s['mean_se']:.5f} "
        f"(RMS {s['rms_se']:.5f}); median df {s['median_df']:.1f} (range {s['df_range'][0]:.1f} to "
        f"{s['df_range'][1]:.1f})",
        f"singular fits {s['singular_fits']}, random slope dropped {s['slope_dropped']}, fitted {s['fitted']}",
    ])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20200601)
    ap.add_argument("--json", help="write the summary here")
    args = ap.parse_args(argv)
    s = run(args.replicates, args.seed)
    print(report(s))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(s, fh, indent=2)


if __name__ == "__main__":
    main()
