"""Survival to day H (``cohort.follow_up_days``) after the first anakinra dose, IV vs SC.

Analysis dataset in, tidy tables out (no I/O). Every estimate comes from
:mod:`stormcohort.stats` (checked against R there):

* Kaplan-Meier overall and by route: n, deaths, median with 95% CI (R ``print.survfit`` rule),
  survival at the landmark days (``landmark_days`` and H; columns ``surv_<day>``) with R's
  default "log" Greenwood intervals -> ``km``; numbers at risk by day -> ``km_risk``.
* Log-rank test IV vs SC (R ``survdiff``) -> ``logrank``.
* Cox PH with Efron ties (R ``coxph``) of ``death_<H>d``: ``unadjusted`` (route_group, reference SC) and
  ``adjusted`` for the configured covariates, with events per variable (EPV) -> ``cox``.
* Schoenfeld test of proportional hazards per term and global for each estimable model, as R
  survival >= 3.0 ``cox.zph`` (score test, ``transform = "km"``, ``terms = TRUE``) -> ``ph_test``.

Small numbers are normal here: an empty route group, no deaths at all, no deaths in one group
(monotone likelihood) or a non-converging fit give rows with NA estimates and the reason in
``note``; nothing raises for such data. Adjustment covariates that do not vary among the
complete cases are dropped from the adjusted model with a note (R would alias them to NA).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stormcohort.analyses.common import check_columns, check_routes, join_notes, jsonable, reference_first
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import GROUP, REFERENCE, ROUTE_TERM, ROUTES, death_outcome, landmark_days
from stormcohort.stats import (
    cox_ph,
    cox_zph,
    kaplan_meier,
    km_summary,
    logrank_test,
    numbers_at_risk,
)

TIME = "time_to_death_days"
GROUPS = ("overall", *ROUTES)

LOGRANK_COLUMNS = ["statistic", "df", "p", "note"]
COX_COLUMNS = ["outcome", "model", "term", "coef", "se", "hr", "hr_lcl", "hr_ucl", "p", "n", "events", "epv", "note"]
PH_COLUMNS = ["model", "term", "statistic", "df", "p", "note"]
CURVE_COLUMNS = ["group", "time", "n_risk", "n_event", "n_censor", "surv", "surv_lcl", "surv_ucl"]
RISK_COLUMNS = ["group", "time", "n_risk", "n_event_cum", "n_censor_cum"]
KM_RISK_COLUMNS = ["outcome", "group", "day", "n_risk", "n_event_cum", "n_censor_cum"]

METHODS = {
    "kaplan_meier": "Kaplan-Meier product-limit estimator, Greenwood variance, R survfit default "
    "conf.type='log' intervals; median and its CI by R's print.survfit rule (NA = not reached)",
    "logrank": "log-rank (Mantel-Haenszel) test, R survdiff(rho = 0)",
    "cox": "Cox proportional hazards, Efron ties (R coxph default), variance = inverse observed "
    "information, Wald CIs; route_group reference SC; complete cases",
    "ph_test": "Schoenfeld/score test of proportional hazards following R survival >= 3.0 cox.zph "
    "(transform = 'km', terms = TRUE; factors tested jointly), per term and GLOBAL",
}


# --------------------------------------------------------------------------- helpers


def with_reference(d: pd.DataFrame, covariates: Sequence[str], reference_levels: Mapping) -> pd.DataFrame:
    """Route as a categorical with SC first (so its term is ``route_group[IV]``); other factor
    covariates with the configured reference level first, remaining levels sorted."""
    d = d.copy()
    d[GROUP] = pd.Categorical(d[GROUP], categories=[REFERENCE, "IV"])
    for var in covariates:
        s = d[var]
        if var == GROUP or pd.api.types.is_numeric_dtype(s):
            continue
        d[var] = reference_first(s, reference_levels.get(var))
    return d


def _route_problem(d: pd.DataFrame, event: str, what: str) -> str | None:
    """A clear reason why IV vs SC cannot be compared in ``d`` (None when it can)."""
    counts = d[GROUP].value_counts()
    empty = [g for g in ROUTES if counts.get(g, 0) == 0]
    if len(d) == 0:
        return "no patients with complete data"
    if empty:
        return f"no patients in the {' and '.join(empty)} group"
    deaths = d.groupby(GROUP, observed=False)[event].sum()
    if deaths.sum() == 0:
        return f"no {what} in either group"
    zero = [g for g in ROUTES if deaths.get(g, 0) == 0]
    if zero:
        return (f"no {what} in the {zero[0]} group: the hazard ratio is 0 or infinite "
                "(monotone likelihood), not estimable")
    return None


# --------------------------------------------------------------------------- Kaplan-Meier


def km_columns(days: Sequence[int]) -> list[str]:
    """``tables/km.csv`` columns for the landmark ``days``."""
    surv = [f"surv_{t}{x}" for t in days for x in ("", "_lcl", "_ucl")]
    return ["group", "n", "events", "median", "median_lcl", "median_ucl", *surv, "note"]


def km_table(d: pd.DataFrame, event: str, days: Sequence[int], conf_level: float = 0.95) -> pd.DataFrame:
    """``group, n, events, median (+CI), surv_<day> (+CI) per landmark day, note`` for overall, IV, SC."""
    parts = []
    if len(d):
        overall = km_summary(d, TIME, event, None, times=tuple(days), conf_level=conf_level)
        parts += [overall.assign(group="overall"),
                  km_summary(d, TIME, event, GROUP, times=tuple(days), conf_level=conf_level)]
    columns = km_columns(days)
    cols = [c for c in columns if c != "note"]
    if parts:
        tab = pd.concat(parts, ignore_index=True)
        tab["group"] = tab["group"].astype(str)
        tab = tab.set_index("group").reindex(list(GROUPS)).reset_index()
    else:
        tab = pd.DataFrame({"group": list(GROUPS)})
    tab = tab.reindex(columns=cols)
    tab["n"] = tab["n"].fillna(0).astype(np.int64)
    tab["events"] = tab["events"].fillna(0).astype(np.int64)
    notes = []
    for _, r in tab.iterrows():
        n = []
        if r["n"] == 0:
            n.append("no patients in group")
        elif r["events"] == 0:
            n.append("no deaths: survival 1 throughout, median not reached")
        else:
            if pd.isna(r["median"]):
                n.append("median not reached")
            elif pd.isna(r["median_ucl"]):
                n.append("upper limit of the median's CI not reached")
            for t in days:
                if pd.isna(r[f"surv_{t}"]):
                    n.append(f"no follow-up to day {t}")
        notes.append(join_notes(n))
    tab["note"] = notes
    return tab[columns]


def logrank_table(d: pd.DataFrame, event: str) -> tuple[pd.DataFrame, dict]:
    """One row ``statistic, df, p, note`` and the per-group observed/expected table for the json."""
    reason = None
    counts = d[GROUP].value_counts()
    empty = [g for g in ROUTES if counts.get(g, 0) == 0]
    if empty:
        reason = f"not estimable: no patients in the {' and '.join(empty)} group"
    elif d[event].sum() == 0:
        reason = "not estimable: no deaths in either group"
    detail: dict = {}
    if reason is None:
        lr = logrank_test(d, TIME, event, GROUP)
        detail = {"chisq": lr.chisq, "df": lr.df, "p": lr.p, "groups": lr.table}
        if lr.note is not None:
            reason = f"not estimable: {lr.note}"
        elif lr.df == 0:
            reason = "not estimable: fewer than two groups have patients at risk at a death time"
        else:
            deaths = d.groupby(GROUP)[event].sum()
            zero = [g for g in ROUTES if deaths.get(g, 0) == 0]
            note = f"no deaths in the {zero[0]} group" if zero else np.nan
            row = {"statistic": lr.chisq, "df": lr.df, "p": lr.p, "note": note}
            return pd.DataFrame([row], columns=LOGRANK_COLUMNS), detail
    row = {"statistic": np.nan, "df": 0, "p": np.nan, "note": reason}
    return pd.DataFrame([row], columns=LOGRANK_COLUMNS), {"reason": reason, **detail}


# --------------------------------------------------------------------------- Cox


@dataclass
class CoxFit:
    """One Cox model's tidy rows, its PH test rows and what goes in the json."""

    table: pd.DataFrame
    ph: pd.DataFrame
    summary: dict
    warnings: list[str] = field(default_factory=list)


def fit_cox(d: pd.DataFrame, event: str, model: str, adjust_for: Sequence[str], s: dict) -> CoxFit:
    """Cox PH of ``event`` on route (+ ``adjust_for``); never raises for data problems."""
    wanted = [GROUP, *[c for c in adjust_for if c != GROUP]]
    prepared = with_reference(d, wanted, s["reference_levels"])
    cc = prepared.dropna(subset=[TIME, event, *wanted])
    n_missing = len(prepared) - len(cc)
    notes, warns = [], []
    dropped = [c for c in wanted[1:] if cc[c].nunique(dropna=True) < 2]
    covariates = [c for c in wanted if c not in dropped]
    for c in dropped:
        notes.append(f"{c} dropped: a single value among the complete cases")
    if n_missing:
        notes.append(f"{n_missing} patient(s) without complete data excluded")

    fit = cox_ph(cc, TIME, event, covariates, conf_level=s["conf_level"])
    reason = _route_problem(cc, event, "deaths") or (None if fit.estimable else fit.reason)
    estimable = fit.estimable and reason is None

    table = fit.table.copy()
    if ROUTE_TERM not in set(table["term"]):
        table = pd.concat([pd.DataFrame({"term": [ROUTE_TERM]}), table], ignore_index=True)
    if not estimable:
        for c in ("coef", "se", "hr", "hr_lcl", "hr_ucl", "z", "p"):
            table[c] = np.nan
    table["n"], table["events"] = fit.n, fit.events
    epv = fit.events_per_variable
    table["epv"] = epv
    table.insert(0, "model", model)
    table.insert(0, "outcome", event)
    if estimable and np.isfinite(epv) and epv < s["epv_warn_below"]:
        msg = (f"EPV {epv:.1f} < {s['epv_warn_below']:g} ({fit.events} deaths, {fit.n_parameters} "
               "parameters): estimates may be unstable")
        notes.append(msg)
        warns.append(f"{model}: {msg}")
    if not estimable:
        notes.insert(0, f"not estimable: {reason}")
        warns.append(f"{model}: not estimable: {reason}")
    warns += [f"{model}: {w}" for w in fit.warnings]
    table["note"] = join_notes(notes)

    ph = _ph_rows(fit, model, estimable, reason)
    for _, r in ph.iterrows():
        if pd.notna(r["p"]) and r["p"] < s["ph_alpha"]:
            warns.append(f"{model}: proportional hazards questionable for {r['term']} "
                         f"(cox.zph p = {r['p']:.3g})")

    reference = {c: str(prepared[c].cat.categories[0]) for c in covariates
                 if isinstance(prepared[c].dtype, pd.CategoricalDtype) and len(prepared[c].cat.categories)}
    summary = {
        "covariates": covariates,
        "dropped_covariates": dropped,
        "reference_levels": reference,
        "estimable": estimable,
        "converged": _converged(fit),
        "reason": reason,
        "n": fit.n,
        "n_excluded_incomplete": n_missing,
        "events": fit.events,
        "n_parameters": fit.n_parameters,
        "events_per_variable": epv,
        "loglik": fit.loglik if estimable else None,
        "loglik_null": fit.loglik_null,
        "concordance": fit.concordance if estimable else None,
        "tests": fit.tests if estimable else [],
        "coefficients": table.drop(columns=["outcome", "model", "note", "n", "events", "epv"]),
        "fit_warnings": list(fit.warnings),
    }
    return CoxFit(table[COX_COLUMNS], ph, summary, warns)


def _converged(fit) -> bool | None:
    """True when the fit converged, False when it failed or diverged, None when not attempted."""
    if fit.estimable:
        return True
    reason = fit.reason or ""
    attempted = ("did not converge", "fit failed", "infinite (separation)", "singular", "overflow")
    return False if any(a in reason for a in attempted) else None


def _ph_rows(fit, model: str, estimable: bool, reason: str | None) -> pd.DataFrame:
    """cox.zph rows; a single GLOBAL row with NA and the reason when it cannot be computed."""
    if estimable:
        try:
            z = cox_zph(fit, transform="km")
        except (np.linalg.LinAlgError, ValueError) as exc:
            z, reason = None, f"PH test failed: {str(exc).splitlines()[0]}"
        if z is not None and len(z):
            name = {var: cols[0] if len(cols) == 1 else var for var, cols in fit.terms.items()}
            out = z.rename(columns={"chisq": "statistic"})
            out["term"] = out["term"].map(lambda t: name.get(t, t))
            out.insert(0, "model", model)
            out["note"] = np.nan
            return out[PH_COLUMNS]
    note = reason if reason and reason.startswith("PH test failed") else f"model not estimable: {reason}"
    return pd.DataFrame([{"model": model, "term": "GLOBAL", "statistic": np.nan, "df": np.nan,
                          "p": np.nan, "note": note}], columns=PH_COLUMNS)


# --------------------------------------------------------------------------- analysis


def km_risk_table(d: pd.DataFrame, event: str, days: Sequence[float]) -> pd.DataFrame:
    """``tables/km_risk.csv``: per route and day of ``days``, patients alive and followed
    (time >= day), with cumulative deaths and censorings before the day (0 for an empty group)."""
    if len(d):
        risk = numbers_at_risk(d, TIME, event, days, GROUP)
    else:
        risk = pd.DataFrame(columns=RISK_COLUMNS)
    full = pd.MultiIndex.from_product([list(ROUTES), [float(t) for t in days]], names=["group", "time"])
    risk = (risk.astype({"group": str, "time": float}).set_index(["group", "time"])
            .reindex(full, fill_value=0).reset_index())
    risk = risk.rename(columns={"time": "day"}).assign(outcome=event)
    return risk[KM_RISK_COLUMNS]


def survival_analysis(dataset: pd.DataFrame, cfg: Mapping, follow_up_days: int, *,
                      synthetic: bool = False) -> AnalysisResult:
    """Kaplan-Meier, log-rank, Cox (unadjusted, adjusted) and cox.zph of death by day H
    (``follow_up_days``): tables ``km, km_risk, logrank, cox, ph_test``, the KM figure, the model."""
    s = dict(cfg)
    event = death_outcome(follow_up_days)
    days = landmark_days(s["landmark_days"], follow_up_days)
    check_columns(dataset, [TIME, event, GROUP, *s["adjust_for"]], "survival")
    check_routes(dataset, "analysis dataset")
    d = dataset.dropna(subset=[TIME, event, GROUP]).copy()
    n_dropped = len(dataset) - len(d)
    d[GROUP] = d[GROUP].astype(str)
    d[event] = pd.to_numeric(d[event]).astype(np.int64)

    km = km_table(d, event, days, s["conf_level"])
    logrank, lr_detail = logrank_table(d, event)
    fits = [fit_cox(d, event, "unadjusted", [], s), fit_cox(d, event, "adjusted", s["adjust_for"], s)]
    cox = pd.concat([f.table for f in fits], ignore_index=True)
    ph = pd.concat([f.ph for f in fits], ignore_index=True)
    curves = (kaplan_meier(d, TIME, event, GROUP, conf_level=s["conf_level"])[CURVE_COLUMNS] if len(d)
              else pd.DataFrame(columns=CURVE_COLUMNS)).reset_index(drop=True)
    # the numbers at risk under the figure, within follow-up
    risk_days = [day for day in s["risk_table_days"] if day <= follow_up_days]
    risk = km_risk_table(d, event, risk_days)

    warnings = []
    if n_dropped:
        warnings.append(f"{n_dropped} patient(s) without time, death or route excluded")
    warnings += [f"Kaplan-Meier {g}: {note}" for g, n, note in km[["group", "n", "note"]].itertuples(index=False)
                 if g != "overall" and n == 0]
    if pd.notna(logrank["note"].iloc[0]):
        warnings.append(f"log-rank: {logrank['note'].iloc[0]}")
    for f in fits:
        warnings += f.warnings
    model = {
        "analysis": "survival",
        "outcome": {"time": TIME, "event": event, "follow_up_days": int(follow_up_days), "landmark_days": days,
                    "definition": "death within follow-up (cohort.follow_up_days) of the first anakinra dose"},
        "exposure": {"column": GROUP, "reference": REFERENCE, "term": ROUTE_TERM},
        "settings": s,
        "methods": METHODS,
        "data": {"n": len(d), "deaths": int(d[event].sum()), "n_excluded_missing": n_dropped,
                 "by_group": {g: {"n": int((d[GROUP] == g).sum()), "deaths": int(d.loc[d[GROUP] == g, event].sum())}
                              for g in ROUTES}},
        "kaplan_meier": km,
        "logrank": {"statistic": logrank["statistic"].iloc[0], "df": logrank["df"].iloc[0],
                    "p": logrank["p"].iloc[0], "note": logrank["note"].iloc[0], **lr_detail},
        "cox": {f.table["model"].iloc[0]: f.summary for f in fits},
        "ph_test": {"method": METHODS["ph_test"], "results": ph},
        "warnings": warnings,
    }

    def figure():
        from stormcohort.plots.km import km_figure

        return km_figure(curves, risk.rename(columns={"day": "time"}), km, logrank, days=risk_days,
                         horizon=follow_up_days, synthetic=synthetic)

    return AnalysisResult(tables={"km": km, "km_risk": risk, "logrank": logrank, "cox": cox, "ph_test": ph},
                          model=jsonable(model), figures={"km": figure}, notes=tuple(warnings))
