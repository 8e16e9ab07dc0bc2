"""Laboratory-defined hepatotoxicity, computed once for the binary outcomes and the safety tables.

**Post-baseline samples**: the ALT and AST results (``tests``) on calendar days ``window_days``
from the index date. ``post_baseline_samples`` counts a patient's distinct sample times with one
(an ALT and an AST drawn together are one sample).

**CTCAE v5.0 grade of "ALT increased" / "AST increased"** (the hepatotoxicity result). Each test
is graded against the patient's own baseline of that test: the sample the cohort's baseline rule
(config ``cohort.baseline``, :func:`stormcohort.cohort.baseline_samples`) picks from before the
first dose, read here from the long labs table (``day`` from the index date) with the first
dose's time from the anakinra table (a patient without one: a date-only dose at midnight of day 0).
With the upper limit of normal (ULN) of the centre that measured each sample:

* baseline **normal** (at or below its centre's ULN), or **missing** (graded as normal, the
  usual convention; the higher of the two grades a result could have): grade 1 >ULN-3.0 x ULN,
  2 >3.0-5.0 x ULN, 3 >5.0-20.0 x ULN, 4 >20.0 x ULN; at or below the ULN grade 0;
* baseline **abnormal** (above its centre's ULN): grade 1 1.5-3.0 x baseline, 2 >3.0-5.0 x
  baseline, 3 >5.0-20.0 x baseline, 4 >20.0 x baseline; below 1.5 x baseline grade 0.

The bounds are inclusive or exclusive exactly as CTCAE words them (3.0 x ULN is grade 1, 1.5 x
baseline grade 1); ratios are rounded to 9 decimals first, so a result on a bound in decimal
arithmetic stays on it. Per patient: each test's worst post-baseline grade (``ctcae_grade_<test>``)
and the worst of them (``ctcae_grade``), missing when there is no post-baseline sample.

**Censored results** are graded conservatively, at the highest grade any value they stand for
would have: a post-baseline ``<x`` as x (in practice below the ULN, grade 0); a post-baseline
``>x`` (above the analyser's range) as grade 4; a baseline ``<x`` as normal and a baseline
``>x`` as x (the lowest baseline it stands for; a lower baseline never lowers a grade).

**Multiples of the ULN** (kept for the binary outcomes, not CTCAE): the largest ALT or AST on
``window_days`` over its centre's ULN (``max_uln_ratio``) and, for each k in ``multiples``,
``hepatotox_<k>xuln`` (ratio above k). These ignore the baseline, which in sHLH/MAS is often
above 3 x ULN already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stormcohort.analyses.common import check_columns, check_routes, outcome_counts
from stormcohort.analyses.result import AnalysisResult
from stormcohort.cohort import baseline_samples
from stormcohort.labels import GROUP, ROUTES, hepatotox_outcome

GRADES = (0, 1, 2, 3, 4)
STATUSES = ("normal", "abnormal", "missing")
SEVERE_GRADE = 3
# the summary's rows besides hepatotox_<k>xuln: worst grade, grade >= 3, baseline status of the graded
CTCAE_ROWS = ([f"ctcae_grade_{g}" for g in GRADES] + [f"ctcae_grade_{SEVERE_GRADE}plus"]
              + [f"ctcae_baseline_{s}" for s in STATUSES])
SAMPLE_COLUMNS = ["samples_median", "samples_q1", "samples_q3"]
# the long labs table's day 0 as a time, to hand the cohort's baseline rule timestamps again
_EPOCH = pd.Timestamp("2000-01-01")


def outcome_names(patients: pd.DataFrame) -> list[str]:
    """The ``hepatotox_<k>xuln`` columns of the patient table, in its order."""
    return [c for c in patients.columns if c.startswith("hepatotox_")]


def patient_columns(cfg: Mapping) -> list[str]:
    """The patient table's columns (``cohort/hepatotoxicity.csv``)."""
    tests = list(cfg["tests"])
    return ["patient_key", "max_uln_ratio", *[hepatotox_outcome(k) for k in cfg["multiples"]],
            *[f"{t}_baseline_status" for t in tests], "baseline_status",
            *[f"ctcae_grade_{t}" for t in tests], "ctcae_grade", "post_baseline_samples"]


# --------------------------------------------------------------------------- CTCAE v5.0 grading


def _qualifier(q, n: int) -> np.ndarray:
    return np.full(n, "", dtype=object) if q is None else pd.Series(q, dtype=object).fillna("").to_numpy()


def _lowest_baseline(baseline, qualifier) -> np.ndarray:
    """The lowest value a baseline result stands for: ``<x`` -> 0, ``>x`` and x -> x."""
    b = np.asarray(baseline, dtype=float)
    return np.where(_qualifier(qualifier, len(b)) == "<", np.where(np.isnan(b), np.nan, 0.0), b)


def baseline_status(baseline, baseline_uln, qualifier=None) -> np.ndarray:
    """``normal`` (at or below the ULN of the centre that measured it), ``abnormal`` (above it)
    or ``missing``; a censored baseline at the lowest value it stands for."""
    b = _lowest_baseline(baseline, qualifier)
    return np.where(np.isnan(b), "missing", np.where(b > np.asarray(baseline_uln, dtype=float), "abnormal",
                                                     "normal")).astype(object)


def ctcae_grade(value, uln, baseline, baseline_uln, value_qualifier=None, baseline_qualifier=None) -> np.ndarray:
    """CTCAE v5.0 grade (0-4, float; NaN without a value) of "ALT/AST increased" for results
    ``value`` (with the ULN of the centre that measured each) against the patient's ``baseline``
    (with its centre's ULN): relative to the ULN when the baseline is normal or missing, relative
    to the baseline when it is abnormal. Censored results: see the module docstring."""
    v = np.asarray(value, dtype=float)
    v = np.where(_qualifier(value_qualifier, len(v)) == ">", np.where(np.isnan(v), np.nan, np.inf), v)
    b = _lowest_baseline(baseline, baseline_qualifier)
    abnormal = b > np.asarray(baseline_uln, dtype=float)  # NaN (missing) compares False: graded as normal
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.round(v / np.asarray(uln, dtype=float), 9)
        q = np.round(v / np.where(abnormal, b, np.nan), 9)
    by_uln = (r > 1).astype(int) + (r > 3) + (r > 5) + (r > 20)
    by_baseline = (q >= 1.5).astype(int) + (q > 3) + (q > 5) + (q > 20)
    return np.where(np.isnan(v), np.nan, np.where(abnormal, by_baseline, by_uln).astype(float))


# --------------------------------------------------------------------------- inputs


def _results(labs: pd.DataFrame, tests: Sequence[str], patients: pd.Index, uln: Mapping) -> pd.DataFrame:
    """The ``tests`` rows of ``patients`` with a numeric value and day, as numbers: ``p`` (position in
    ``patients``), ``t`` (position in ``tests``), ``day``, ``value``, ``qualifier`` ('', '<' or '>')
    and ``uln`` (of the (centre, test) of the row, from ``uln`` {centre: {test: ULN}}; an unknown pair
    is an error)."""
    sel = labs["test"].isin(tests).to_numpy()
    p = patients.get_indexer(labs["patient_key"].to_numpy()[sel])
    t = pd.Index(tests).get_indexer(labs["test"].to_numpy()[sel])
    value = pd.to_numeric(labs["value"].to_numpy()[sel], errors="coerce").astype(float)
    day = pd.to_numeric(labs["day"].to_numpy()[sel], errors="coerce").astype(float)
    qualifier = (pd.Series(labs["qualifier"].to_numpy()[sel], dtype=object).fillna("").astype(str).to_numpy()
                 if "qualifier" in labs else np.full(len(p), "", dtype=object))
    keep = (p >= 0) & ~np.isnan(value) & ~np.isnan(day)
    t = t[keep]
    centre, centres = pd.factorize(labs["centre"].to_numpy()[sel][keep])  # -1: no centre
    names = [*map(str, centres), "nan"]
    table = np.full((len(names), len(tests)), np.nan)  # ULN by centre and test; the last row (-1): none
    for i, c in enumerate(names[:-1]):
        for k, test in enumerate(tests):
            if uln.get(c, {}).get(test) is not None:
                table[i, k] = float(uln[c][test])
    row_uln = table[centre, t]
    gap = np.isnan(row_uln)
    if gap.any():
        pairs = pd.DataFrame({"c": centre[gap], "t": t[gap]}).drop_duplicates()
        missing = sorted((names[c], tests[k]) for c, k in zip(pairs["c"], pairs["t"]))
        raise KeyError(f"analyses.hepatotoxicity.uln: no upper limit of normal for (centre, test) {missing}")
    return pd.DataFrame({"p": p[keep], "t": t, "day": day[keep], "value": value[keep], "qualifier": qualifier[keep],
                         "uln": row_uln})


def baselines(results: pd.DataFrame, anakinra: pd.DataFrame, patients: pd.Index, tests: Sequence[str],
              rule: Mapping) -> pd.DataFrame:
    """Per patient and test (``p``, ``t`` of :func:`_results`), the baseline sample the cohort's rule
    (``cohort.baseline``) picks: ``p, t, value, qualifier, uln``. The long tables' days from the
    index date are turned back into times from a fixed day 0, so
    :func:`stormcohort.cohort.baseline_samples` (the rule the analysis dataset's ``<test>_baseline``
    come from) decides, including a same-day sample before the first dose's time."""
    d = results[results["day"].lt(1).to_numpy() & results["day"].ge(-float(rule["window_days"]) - 1).to_numpy()]
    frame = pd.DataFrame({"episode_key": d["p"].to_numpy(), "test": np.asarray(tests, dtype=object)[d["t"]],
                          "sample_time": _EPOCH + pd.to_timedelta(d["day"].to_numpy(), unit="D"),
                          "value": d["value"].to_numpy(), "qualifier": d["qualifier"].to_numpy(),
                          "uln": d["uln"].to_numpy()})
    first_dose = pd.to_numeric(anakinra["day_start"], errors="coerce").groupby(anakinra["patient_key"]).min()
    dose_day = first_dose.reindex(patients).fillna(0.0).to_numpy()  # no dose time: a date-only dose on day 0
    positions = pd.RangeIndex(len(patients))
    index_time = pd.Series(_EPOCH + pd.to_timedelta(dose_day, unit="D"), index=positions)
    reference = pd.Series(_EPOCH, index=positions)
    picked = baseline_samples(frame, index_time, reference, dict(rule), columns=("uln",)).reset_index()
    return pd.DataFrame({"p": picked["episode_key"].to_numpy(dtype=int),
                         "t": pd.Index(tests).get_indexer(picked["test"]), "value": picked["value"].to_numpy(),
                         "qualifier": picked["qualifier"].to_numpy(), "uln": picked["uln"].to_numpy()})


# --------------------------------------------------------------------------- per patient


def hepatotoxicity(dataset: pd.DataFrame, labs: pd.DataFrame, cfg: Mapping, *, anakinra: pd.DataFrame | None = None,
                   baseline: Mapping | None = None) -> pd.DataFrame:
    """Per patient (dataset order), :func:`patient_columns`: ``max_uln_ratio``, ``hepatotox_<k>xuln``
    0/1 (<NA> when no sample), each test's baseline status and the combined ``baseline_status``
    (abnormal when any test's is, normal when every test's is, else missing), each test's and the
    worst CTCAE grade (<NA> when no post-baseline sample) and ``post_baseline_samples``.
    ``anakinra`` (the cohort's long table; the first dose's time) and ``baseline`` (config
    ``cohort.baseline``) are needed for the CTCAE columns; without ``baseline`` they are left out."""
    tests = list(cfg["tests"])
    lo, hi = cfg["window_days"]
    patients = pd.Index(dataset["patient_key"].unique())
    row = patients.get_indexer(dataset["patient_key"])  # each dataset row's patient
    n, nt = len(patients), len(tests)
    results = _results(labs, tests, patients, cfg["uln"])
    d = results[np.floor(results["day"]).between(lo, hi).to_numpy()]
    p, t = d["p"].to_numpy(), d["t"].to_numpy()
    ratio = pd.Series(d["value"].to_numpy() / d["uln"].to_numpy()).groupby(p).max()
    out = pd.DataFrame({"patient_key": dataset["patient_key"].to_numpy()}, index=dataset.index)
    out["max_uln_ratio"] = ratio.reindex(row).to_numpy(dtype=float)
    for k in cfg["multiples"]:
        out[hepatotox_outcome(k)] = out["max_uln_ratio"].gt(float(k)).astype("Int64").mask(
            out["max_uln_ratio"].isna())
    if baseline is None:
        return out

    ana = anakinra if anakinra is not None else pd.DataFrame({"patient_key": [], "day_start": []})
    b = baselines(results, ana, patients, tests, baseline)
    base = {c: np.full((n, nt), np.nan if c != "qualifier" else "", dtype=float if c != "qualifier" else object)
            for c in ("value", "qualifier", "uln")}
    for c in base:
        base[c][b["p"].to_numpy(), b["t"].to_numpy()] = b[c].to_numpy()
    for k, test in enumerate(tests):
        out[f"{test}_baseline_status"] = baseline_status(base["value"][row, k], base["uln"][row, k],
                                                         base["qualifier"][row, k])
    status = out[[f"{test}_baseline_status" for test in tests]]
    out["baseline_status"] = np.where(status.eq("abnormal").any(axis=1), "abnormal",
                                      np.where(status.eq("normal").all(axis=1), "normal", "missing"))

    grade = ctcae_grade(d["value"], d["uln"], base["value"][p, t], base["uln"][p, t], d["qualifier"],
                        base["qualifier"][p, t])
    worst = pd.Series(grade).groupby(p * nt + t).max()
    worst = worst.reindex(np.arange(n * nt)).to_numpy().reshape(n, nt)
    for k, test in enumerate(tests):
        out[f"ctcae_grade_{test}"] = pd.array(worst[row, k], dtype="Float64").astype("Int64")
    out["ctcae_grade"] = pd.array(np.fmax.reduce(worst, axis=1)[row], dtype="Float64").astype("Int64")
    first_of_time = ~pd.DataFrame({"p": p, "day": d["day"].to_numpy()}).duplicated().to_numpy()
    out["post_baseline_samples"] = np.bincount(p[first_of_time], minlength=n)[row]
    return out[patient_columns(cfg)]


# --------------------------------------------------------------------------- by route


def summary_table(dataset: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """``tables/hepatotoxicity.csv``: the ``outcome, group, n, events, not_evaluable, percent`` of
    :func:`stormcohort.analyses.common.outcome_counts` for each ``hepatotox_<k>xuln`` and the
    :data:`CTCAE_ROWS` (worst grade 0-4 and >= 3, and the graded patients' baseline status; ``n``:
    patients with a post-baseline sample), and beside each group's rows the median [IQR] of the
    post-baseline samples per patient of its patients with one (``samples_median, samples_q1,
    samples_q3``)."""
    names = outcome_names(patients)
    data = dataset[["patient_key", GROUP]].join(patients.drop(columns="patient_key"))
    grade = data["ctcae_grade"]
    graded = grade.notna()
    flags = {f"ctcae_grade_{g}": grade.eq(g) for g in GRADES}
    flags[f"ctcae_grade_{SEVERE_GRADE}plus"] = grade.ge(SEVERE_GRADE)
    flags |= {f"ctcae_baseline_{s}": data["baseline_status"].eq(s) for s in STATUSES}
    for name, hit in flags.items():
        data[name] = hit.fillna(False).astype("Int64").mask(~graded)
    summary = outcome_counts(data, [*names, *CTCAE_ROWS])
    n_samples = data.loc[graded, ["post_baseline_samples", GROUP]]
    by_group = {"overall": n_samples["post_baseline_samples"],
                **{r: n_samples.loc[n_samples[GROUP].eq(r), "post_baseline_samples"] for r in ROUTES}}
    quart = {g: (s.quantile(0.5), s.quantile(0.25), s.quantile(0.75)) if len(s) else (np.nan,) * 3
             for g, s in by_group.items()}
    for i, col in enumerate(SAMPLE_COLUMNS):
        summary[col] = summary["group"].map({g: float(v[i]) for g, v in quart.items()})
    return summary


def hepatotoxicity_analysis(dataset: pd.DataFrame, labs: pd.DataFrame, cfg: Mapping, *, anakinra: pd.DataFrame,
                            baseline: Mapping) -> AnalysisResult:
    """Tables ``patients`` (``cohort/hepatotoxicity.csv``: :func:`patient_columns`) and ``summary``
    (``tables/hepatotoxicity.csv``: :func:`summary_table`). ``anakinra``: the cohort's long
    anakinra table; ``baseline``: config ``cohort.baseline``."""
    check_columns(dataset, ["patient_key", GROUP], "analysis dataset")
    check_routes(dataset, "analysis dataset")
    check_columns(labs, ["patient_key", "centre", "test", "value", "day"], "labs table")
    check_columns(anakinra, ["patient_key", "day_start"], "anakinra table")
    patients = hepatotoxicity(dataset, labs, cfg, anakinra=anakinra, baseline=baseline)
    summary = summary_table(dataset, patients)
    notes = []
    n_missing = int(patients["max_uln_ratio"].isna().sum())
    if n_missing:
        notes.append(f"hepatotoxicity: {n_missing} patient(s) without ALT/AST in the window: not evaluable")
    graded = patients["ctcae_grade"].notna()
    n_no_base = int((graded & patients["baseline_status"].eq("missing")).sum())
    if n_no_base:
        notes.append(f"hepatotoxicity: {n_no_base} graded patient(s) without a baseline ALT or AST: graded against "
                     "the ULN (as a normal baseline)")
    return AnalysisResult(tables={"patients": patients, "summary": summary}, notes=tuple(notes))
