"""Time to fever resolution with death as a competing event, IV vs SC.

Analysis dataset in, tidy tables out (no I/O). ``fever_outcome``: 0 censored, 1 fever resolved,
2 died before fever resolved; ``time_to_fever_days``: index to that event or censoring. Patients
not at risk (afebrile at index) or not evaluable (no resolution date) have neither and are
excluded, counted by the reason in ``fever_not_evaluable``.

* Aalen-Johansen cumulative incidence (CIF) overall and by route, 95% CI from the
  infinitesimal-jackknife variance with R's "log" intervals (:func:`stormcohort.stats.aalen_johansen`,
  checked against R ``survfit`` on mgus2). Ties of different event types at one time are one
  step (R's deterministic rule; lifelines' random jitter is not used).
* ``cif``: CIF of fever resolution at every event time (of either cause) per group.
* ``cif_summary``: CIF of both causes at the configured days with numbers at risk and events.
* ``cif_risk``: per route and day of ``risk_table_days``, patients still febrile and followed
  (event-free, time >= day): the table under the CIF figure.
* ``cif_tests``: IV vs SC for each cause (fever resolution, and death before resolution): Gray's
  test of equal CIFs (R ``cmprsk::cuminc``), the Fine-Gray subdistribution hazard ratio (R
  ``cmprsk::crr``) and the cause-specific Cox hazard ratio (Efron, R ``coxph``), unadjusted,
  reference SC (:mod:`stormcohort.stats.finegray`); ``weights`` ``none``. With the target trial's
  per-patient weights (``cohort/comparison_weights.csv``, ``weights=``), rows ``weights`` ``iptw``
  (estimand ATE) or ``overlap`` (ATO) add the weighted Fine-Gray and cause-specific Cox models
  (:func:`weighted_comparison`): exposure IV by day G vs not (not the descriptive route group),
  among the patients followed at day G that the weights cover, fever time still counted from
  time zero, robust (sandwich) variance; Gray's test has no weighted form.

An empty group, no resolutions or no deaths give zero curves or NA with a reason, never an
error; a hazard ratio with no events of the cause in one group is not estimable (infinite),
and Gray's test is then still reported (the group's CIF is 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stormcohort.analyses.common import check_columns, check_routes, jsonable
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import GROUP, REFERENCE, ROUTE_TERM, ROUTES
from stormcohort.stats import aalen_johansen
from stormcohort.stats.competing import EVENT_FREE

TIME = "time_to_fever_days"
EVENT = "fever_outcome"
CAUSES = {1: "fever_resolution", 2: "death"}
INTEREST = 1
GROUPS = ("overall", *ROUTES)

CIF_COLUMNS = ["group", "time", "cif", "cif_lcl", "cif_ucl"]
SUMMARY_COLUMNS = ["group", "cause", "time", "n_risk", "events", "cif", "cif_lcl", "cif_ucl", "note"]
CURVE_COLUMNS = ["group", "cause", "time", "n_risk", "n_event", "any_event", "cif", "cif_se", "cif_lcl", "cif_ucl"]
RISK_COLUMNS = ["outcome", "group", "day", "n_risk"]
TESTS_COLUMNS = ["outcome", "method", "weights", "measure", "estimate", "lcl", "ucl", "statistic", "df", "p", "n",
                 "events", "events_iv", "events_sc", "note"]
TEST_METHODS = {"gray_test": "", "fine_gray": "sHR", "cause_specific_cox": "HR"}
WEIGHT_COLUMNS = ["patient_key", "iv", "iptw", "overlap"]  # cohort/comparison_weights.csv
ESTIMAND_WEIGHTS = {"ATE": "iptw", "ATO": "overlap"}
WEIGHT_LABELS = {"iptw": "stabilised inverse-probability-of-treatment weights (ATE)",
                 "overlap": "overlap weights (ATO)"}

METHODS = {
    "estimator": "Aalen-Johansen, event-free state + absorbing states fever resolution (1) and death (2); "
    "censored subjects stay at risk at their own time; tied times of different causes form one step "
    "(R survfit multi-state, deterministic)",
    "variance": "infinitesimal jackknife (R survfit default for multi-state models)",
    "intervals": "log: cif * exp(+/- z se / cif), upper limit truncated at 1, none where cif = 0",
    "group_test": "Gray's test of equal cumulative incidence, rho = 0 (R cmprsk::cuminc)",
    "fine_gray": "Fine-Gray proportional subdistribution hazards: competing events stay at risk weighted by the "
    "Kaplan-Meier of censoring, Breslow ties, sandwich variance including the estimated censoring distribution "
    "(R cmprsk::crr)",
    "cause_specific_cox": "cause-specific Cox proportional hazards (other outcomes censored), Efron ties "
    "(R survival::coxph)",
    "weighted": "Fine-Gray and cause-specific Cox models with the target trial's propensity weights as case "
    "weights (R finegray(weights =) + coxph, and coxph(weights =, robust = TRUE)), robust sandwich variance "
    "treating the weights as known; Gray's test has no weighted form",
}


def _validate(dataset: pd.DataFrame) -> pd.DataFrame:
    check_columns(dataset, [TIME, EVENT, GROUP], "competing_risks")
    check_routes(dataset, "analysis dataset")
    d = dataset.dropna(subset=[TIME, EVENT, GROUP]).copy()
    outcome = pd.to_numeric(d[EVENT], errors="coerce")
    bad = ~outcome.isin([0, *CAUSES])
    if bad.any():
        raise ValueError(f"column {EVENT!r}: value {d.loc[bad, EVENT].iloc[0]!r} in row {d.index[bad][0]}; "
                         "expected 0 (censored), 1 (fever resolved) or 2 (died)")
    d[EVENT] = outcome.astype(np.int64)
    d[GROUP] = d[GROUP].astype(str)
    return d


def aj_curves(d: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """CIF of each cause, overall and by route, at every distinct time (events and censorings).

    Long table ``group, cause, time, n_risk, n_event, any_event, cif, cif_se, cif_lcl, cif_ucl``;
    a cause nobody had gets CIF 0 (CI NA). Rows sorted by group (overall, IV, SC), cause, time.
    """
    if d.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    overall = aalen_johansen(d, TIME, EVENT, None, conf_level=conf_level).assign(group="overall")
    aj = pd.concat([overall, aalen_johansen(d, TIME, EVENT, GROUP, conf_level=conf_level)], ignore_index=True)
    aj["group"] = aj["group"].astype(str)
    free = aj[aj["state"].astype(str) == EVENT_FREE]
    frames = []
    for code, name in CAUSES.items():
        sub = aj[aj["state"].astype(str) == str(code)]
        if sub.empty:
            sub = free.assign(n_event=0, estimate=0.0, std_err=0.0, lcl=np.nan, ucl=np.nan)
        sub = sub.merge(free[["group", "time", "n_event"]].rename(columns={"n_event": "any_event"}),
                        on=["group", "time"], how="left")
        frames.append(sub.assign(cause=name))
    out = pd.concat(frames, ignore_index=True).rename(
        columns={"estimate": "cif", "std_err": "cif_se", "lcl": "cif_lcl", "ucl": "cif_ucl"})
    order = {g: i for i, g in enumerate(GROUPS)}
    corder = {c: i for i, c in enumerate(CAUSES.values())}
    out = out.assign(_g=out["group"].map(order), _c=out["cause"].map(corder))
    out = out.sort_values(["_g", "_c", "time"], kind="mergesort")
    return out[CURVE_COLUMNS].reset_index(drop=True)


def cif_table(curves: pd.DataFrame) -> pd.DataFrame:
    """``tables/cif.csv``: fever-resolution CIF per group at every time with an event of either cause."""
    fever = curves[(curves["cause"] == CAUSES[INTEREST]) & (curves["any_event"] > 0)]
    return fever[CIF_COLUMNS].reset_index(drop=True)


def _groups_of(d: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"overall": d, **{g: d[d[GROUP] == g] for g in ROUTES}}


def risk_table(d: pd.DataFrame, days) -> pd.DataFrame:
    """``tables/cif_risk.csv``: still febrile and under observation (time >= day) per route at ``days``."""
    tt = np.asarray(days, dtype=float)
    rows = []
    for g in ROUTES:
        ts = np.sort(d.loc[d[GROUP] == g, TIME].to_numpy(dtype=float))
        n = len(ts) - np.searchsorted(ts, tt, side="left")
        rows.append(pd.DataFrame({"outcome": CAUSES[INTEREST], "group": g, "day": tt, "n_risk": n.astype(np.int64)}))
    return pd.concat(rows, ignore_index=True)[RISK_COLUMNS]


def summary_table(d: pd.DataFrame, curves: pd.DataFrame, days) -> pd.DataFrame:
    """CIF of both causes at ``days`` (right-continuous step lookup), with at-risk and event counts."""
    tt = np.asarray(days, dtype=float)
    frames = []
    for g, sub in _groups_of(d).items():
        ts = np.sort(sub[TIME].to_numpy(dtype=float))
        n_risk = len(ts) - np.searchsorted(ts, tt, side="left")
        last = ts[-1] if len(ts) else np.nan
        # Everyone left the event-free state with an event (no one censored at the end): the
        # CIFs are final, so later days carry the last value (R's summary would omit them).
        final = curves[curves["group"] == g].groupby("cause", sort=False)["cif"].last()
        complete = len(ts) > 0 and abs(final.sum() - 1.0) < 1e-9
        beyond = np.zeros(len(tt), dtype=bool) if complete else tt > last
        for code, name in CAUSES.items():
            te = np.sort(sub.loc[sub[EVENT] == code, TIME].to_numpy(dtype=float))
            events = np.searchsorted(te, tt, side="right")
            c = curves[(curves["group"] == g) & (curves["cause"] == name)]
            vals = {k: np.full(len(tt), np.nan) for k in ("cif", "cif_lcl", "cif_ucl")}
            notes = []
            if len(c):
                ct = c["time"].to_numpy(dtype=float)
                idx = np.searchsorted(ct, tt, side="right") - 1
                j = np.clip(idx, 0, len(ct) - 1)
                for k in vals:
                    v = np.where(idx < 0, 0.0 if k == "cif" else np.nan, c[k].to_numpy(dtype=float)[j])
                    vals[k] = np.where(beyond, np.nan, v)
            for i, t in enumerate(tt):
                if not len(ts):
                    notes.append("no patients in group")
                elif beyond[i]:
                    notes.append(f"beyond the group's last follow-up (day {last:g})")
                elif t > last:
                    notes.append(f"every patient had an event by day {last:g}: final value")
                elif events[i] == 0:
                    notes.append(f"no {name.replace('_', ' ')} by day {t:g}")
                else:
                    notes.append(np.nan)
            frames.append(pd.DataFrame({"group": g, "cause": name, "time": tt, "n_risk": n_risk.astype(np.int64),
                                        "events": events.astype(np.int64), **vals, "note": notes}))
    return pd.concat(frames, ignore_index=True)[SUMMARY_COLUMNS]


def _comparison_rows(d: pd.DataFrame, code: int, name: str, conf_level: float, weights: str | None) -> list[dict]:
    from stormcohort.stats.finegray import cause_specific_cox, fine_gray, gray_test

    label = name.replace("_", " ")
    n_by = {g: int((d[GROUP] == g).sum()) for g in ROUTES}
    ev_by = {g: int(((d[GROUP] == g) & (d[EVENT] == code)).sum()) for g in ROUTES}
    base = {"outcome": name, "n": len(d), "events": sum(ev_by.values()), "events_iv": ev_by["IV"],
            "events_sc": ev_by["SC"]}
    rows = {m: dict(base, method=m, measure=measure, df=1, note=np.nan) for m, measure in TEST_METHODS.items()}
    empty = [g for g in ROUTES if n_by[g] == 0]
    if empty:
        for r in rows.values():
            r["note"] = f"not estimable: no patients in the {empty[0]} group"
        return list(rows.values())
    none = [g for g in ROUTES if ev_by[g] == 0]
    if len(none) == len(ROUTES):
        for r in rows.values():
            r["note"] = f"not estimable: no {label} in either group"
        return list(rows.values())
    r = rows["gray_test"]
    if weights is not None:
        r["note"] = "not computed: Gray's test has no weighted form (see the weighted Fine-Gray model)"
    else:
        g = gray_test(d, TIME, EVENT, GROUP, code)
        if g.estimable:
            r.update(statistic=g.statistic, df=g.df, p=g.p)
            if none:
                r["note"] = f"no {label} in the {none[0]} group: its cumulative incidence is 0 throughout"
        else:
            r["note"] = f"not estimable: {g.reason}"
    for method, fit_fn, what in (("fine_gray", fine_gray, "subdistribution hazard ratio"),
                                 ("cause_specific_cox", cause_specific_cox, "hazard ratio")):
        r = rows[method]
        if none:
            r["note"] = f"not estimable: no {label} in the {none[0]} group (the {what} is infinite)"
            continue
        fit = fit_fn(d, TIME, EVENT, [GROUP], code, weights, conf_level=conf_level)
        if not fit.estimable:
            r["note"] = f"not estimable: {fit.reason}"
            continue
        t = fit.table.set_index("term").loc[ROUTE_TERM]
        r.update(estimate=t["hr"], lcl=t["hr_lcl"], ucl=t["hr_ucl"], statistic=t["z"] ** 2, p=t["p"], n=int(t["n"]))
        if weights is not None:
            r["note"] = "weighted; robust (sandwich) variance"
    return list(rows.values())


def comparison_table(d: pd.DataFrame, conf_level: float = 0.95, weights: str | None = None) -> pd.DataFrame:
    """``tables/cif_tests.csv``: IV vs SC for each cause: Gray's test (chi-square on 1 df), the
    Fine-Gray subdistribution hazard ratio and the cause-specific hazard ratio (reference SC; Wald
    chi-square ``z^2``). ``weights``: a column of case weights (e.g. target-trial weights) for the
    two models, whose variance is then the robust sandwich; Gray's test is not computed then.
    Column ``weights``: the weights column's name, ``none`` without. Not estimable rows keep their
    counts and give the reason in ``note``.
    """
    x = d.assign(**{GROUP: pd.Categorical(d[GROUP], categories=[REFERENCE, *[g for g in ROUTES if g != REFERENCE]])})
    rows = [row for code, name in CAUSES.items() for row in _comparison_rows(x, code, name, conf_level, weights)]
    out = pd.DataFrame(rows).assign(weights=weights or "none").reindex(columns=TESTS_COLUMNS)
    for c in ("n", "events", "events_iv", "events_sc", "df"):
        out[c] = out[c].astype(np.int64)
    return out


def weighted_comparison(d: pd.DataFrame, weights: pd.DataFrame, estimand: str, grace_days: float,
                        conf_level: float = 0.95) -> tuple[pd.DataFrame, dict]:
    """``cif_tests`` rows of the weighted Fine-Gray and cause-specific Cox models of each cause:
    ``d`` the fever analysis (evaluable patients, ``patient_key``), ``weights`` the target trial's
    ``patient_key, iv, iptw, overlap`` (its landmark population: patients followed at day
    ``grace_days``; empty when its propensity model was not estimable), ``estimand`` ATE (``iptw``)
    or ATO (``overlap``). Exposure: ``iv`` (IV by day G), not the route group. Patients of ``d``
    the weights do not cover (or with a missing weight) are left out and counted in ``note``.
    Returns the rows and a summary for the model JSON; never raises on data it cannot use."""
    if estimand not in ESTIMAND_WEIGHTS:
        raise ValueError(f"estimand {estimand!r}: expected one of {sorted(ESTIMAND_WEIGHTS)}")
    col, g = ESTIMAND_WEIGHTS[estimand], f"{grace_days:g}"
    what = (f"weighted by the target trial's {WEIGHT_LABELS[col]}; exposure IV by day {g} vs not (not the "
            f"descriptive route group) among patients followed at day {g}, fever time from time zero")
    info = {"weights": col, "estimand": estimand, "grace_days": grace_days, "n": 0, "n_not_in_weights": len(d),
            "reason": None}
    check_columns(d, ["patient_key"], "competing_risks (weighted comparison)")
    missing = [c for c in ("patient_key", "iv", col) if c not in weights.columns]
    if missing:
        info["reason"] = f"weights file without column(s) {missing}"
    elif weights.empty:
        info["reason"] = f"no propensity weights (the target trial's propensity of IV by day {g} was not estimable)"
    if info["reason"] is not None:
        rows = comparison_table(d.iloc[:0].assign(_w=1.0), conf_level, weights="_w")
        rows = rows[rows["method"].ne("gray_test")].assign(weights=col, note=f"not estimable: {info['reason']}; {what}")
        return rows.reset_index(drop=True), info
    num = lambda c: pd.to_numeric(weights[c], errors="coerce")  # noqa: E731
    w = weights.assign(patient_key=weights["patient_key"].astype(str), _iv=num("iv"), _w=num(col))
    w = w[w["_iv"].isin([0, 1]) & np.isfinite(w["_w"]) & w["_w"].ge(0)].drop_duplicates("patient_key")
    x = d.assign(patient_key=d["patient_key"].astype(str)).merge(w[["patient_key", "_iv", "_w"]], on="patient_key")
    x = x.assign(**{GROUP: np.where(x["_iv"].eq(1), "IV", "SC"), col: x["_w"]})
    out = len(d) - len(x)
    info.update(n=len(x), n_not_in_weights=out)
    left = (f"; {out} patient(s) of the fever analysis without a weight (not followed at day {g} or without the "
            "adjustment set) left out" if out else "")
    rows = comparison_table(x, conf_level, weights=col)
    rows = rows[rows["method"].ne("gray_test")].reset_index(drop=True)
    rows["note"] = [f"{n}; {what}{left}" if isinstance(n, str) and n.startswith("not estimable")
                    else f"{what}; robust (sandwich) variance{left}" for n in rows["note"]]
    return rows, info


def competing_risks_analysis(dataset: pd.DataFrame, cfg: Mapping, *, weights: pd.DataFrame | None = None,
                             estimand: str = "ATE", grace_days: float = 0, synthetic: bool = False) -> AnalysisResult:
    """Aalen-Johansen CIFs of fever resolution and death (competing) by route, and their IV-vs-SC
    comparison: tables ``cif, cif_summary, cif_risk, cif_tests``, the CIF figure and the model.
    ``weights``: the target trial's per-patient weights (``cohort/comparison_weights.csv``; G =
    ``grace_days``, ``estimand`` picks the column): adds the weighted rows of ``cif_tests``
    (:func:`weighted_comparison`); none without."""
    s = dict(cfg)
    d = _validate(dataset)
    reasons = dataset.get("fever_not_evaluable", pd.Series("", index=dataset.index)).fillna("")
    not_evaluable = reasons[~dataset.index.isin(d.index) & reasons.ne("")].value_counts().sort_index()
    n_dropped = len(dataset) - len(d) - int(not_evaluable.sum())
    curves = aj_curves(d, s["conf_level"])
    cif = cif_table(curves)
    summary = summary_table(d, curves, s["summary_days"])
    risk = risk_table(d, s["risk_table_days"])
    tests = comparison_table(d, s["conf_level"])
    weighted = None
    if weights is not None:
        rows, weighted = weighted_comparison(d, weights, estimand, grace_days, s["conf_level"])
        tests = pd.concat([tests, rows], ignore_index=True)

    counts = {}
    for g, sub in _groups_of(d).items():
        vc = sub[EVENT].value_counts()
        counts[g] = {"n": len(sub), "censored": int(vc.get(0, 0)),
                     **{name: int(vc.get(code, 0)) for code, name in CAUSES.items()}}
    warnings = []
    if len(not_evaluable):
        why = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in not_evaluable.items())
        warnings.append(f"{int(not_evaluable.sum())} patient(s) not at risk or not evaluable for fever "
                        f"resolution excluded ({why})")
    if n_dropped:
        warnings.append(f"{n_dropped} patient(s) without time, outcome or route excluded")
    for g in ROUTES:
        if counts[g]["n"] == 0:
            warnings.append(f"no patients in the {g} group: no curve")
        else:
            for _, name in CAUSES.items():
                if counts[g][name] == 0:
                    warnings.append(f"no {name.replace('_', ' ')} events in the {g} group: its CIF is 0 throughout")
    if weighted is not None and weighted["reason"]:
        warnings.append(f"weighted comparisons not estimable: {weighted['reason']}")
    model = {
        "analysis": "competing_risks",
        "outcome": {"time": TIME, "event": EVENT, "coding": {"0": "censored", **{str(k): v for k, v in CAUSES.items()}},
                    "event_of_interest": CAUSES[INTEREST], "competing_event": CAUSES[2]},
        "exposure": {"column": GROUP, "reference": REFERENCE, "term": ROUTE_TERM},
        "settings": s,
        "methods": METHODS,
        "data": {"n": len(d), "n_excluded_missing": n_dropped,
                 "n_not_evaluable": {str(k): int(v) for k, v in not_evaluable.items()}, "by_group": counts},
        "cif_at_days": summary,
        "comparisons": tests,
        "weighted": weighted,
        "warnings": warnings,
    }

    def figure():
        from stormcohort.plots.cif import cif_figure

        return cif_figure(curves, risk.rename(columns={"day": "time"}), days=s["risk_table_days"], synthetic=synthetic)

    return AnalysisResult(tables={"cif": cif, "cif_summary": summary, "cif_risk": risk, "cif_tests": tests},
                          model=jsonable(model), figures={"cif": figure}, notes=tuple(warnings))
