"""Safety: adverse events by route, exposure-adjusted incidence rates and IV vs SC rate ratios.

Analysis dataset and long tables in, tidy tables out (no I/O). Rates, exact CIs and rate
ratios come from :mod:`stormcohort.stats.rates` (R ``poisson.test``).

**Counts** (``safety_events``): adverse events on calendar days ``window_days`` from the index
date, by route group (IV, SC, overall), term (canonical terms, ``any_infection`` = bacterial,
fungal or viral, ``any``) and CTCAE grade (``any``, 1-5 and ``>=<severe_grade>``): patients
with at least one such event (``percent`` of the group) and events.

**Exposure** (patient-days on anakinra): each regimen covers the calendar days
``floor(day_start)`` to ``floor(day_stop)`` inclusive (a regimen without a stop runs to the
discharge, else to the end of follow-up), extended by ``event_lag_days`` after its last day,
and cut at the end of follow-up (``time_to_death_days``). Overlapping or adjacent regimens of
a patient are merged, so no day counts twice. Two exposure rules:

* *route-specific terms* (``route_specific_terms``; default injection-site reactions -> SC,
  infusion reactions -> IV): exposure is the days on that route, whoever the patient (an SC->IV
  switcher's SC days count as SC exposure, their IV days as IV exposure), and the events are
  those of the term on such a day. The other route's row is not applicable and no rate
  ratio is formed.
* *every other term* (and ``any``, ``any_infection``, ``any_grade_3plus``): by the patient's
  route group, all their anakinra days on any route; events of the term on such a day.

An event counts in a rate when its calendar day is an exposure day (events after treatment
ended appear in the counts, not in the rates). Rate per ``per`` patient-days with exact
(Garwood) Poisson CI; IV vs SC rate ratio with the exact conditional (binomial) CI and p, the
descriptive figure, which treats a patient's repeated events as independent. Beside it
(``irr_robust``, ``robust_*``) the rate ratio whose interval accounts for the clustering of
events within patients: Poisson regression of each patient's events on the route group with
the log of their patient-days as offset and a patient-clustered sandwich variance (R
``sandwich::vcovCL``, type HC1; patients without exposure days have no time at risk and are
left out). Its estimate is the same ratio; ``robust_se`` (of the log ratio) lets the ``disclose``
rule recentre the interval on the ratio of the disclosed counts.

**First severe adverse event** (``safety_first_severe``): the patient count of grade >=
``severe_grade`` events over all patients of a group counts a patient followed for 5 days like
one followed for 90. Instead, the time from the index date to the first adverse event of grade
>= ``severe_grade`` on calendar days ``window_days``, censored at the end of follow-up
(``time_to_death_days``) and with death without such an event as a competing event: the
Aalen-Johansen cumulative incidence at the end of the window by route, with the patients at
risk, first events, competing deaths and patients censored earlier. An event on the day of
death or of the end of follow-up counts; one recorded after it does not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from stormcohort.analyses.common import calendar_day, check_columns, check_routes, join_notes, jsonable, outcome_counts
from stormcohort.analyses.hepatotoxicity import outcome_names
from stormcohort.analyses.result import AnalysisResult
from stormcohort.canonical import AE_TERMS, INFECTION_TERMS
from stormcohort.labels import GROUP, ROUTE_TERM, ROUTES, death_outcome
from stormcohort.stats import clustered_rate_ratio, poisson_rate_ci, rate_ratio

EVENT_COLUMNS = ["group", "term", "grade", "patients", "events", "n", "percent"]
RATE_COLUMNS = ["group", "term", "patients", "events", "patient_days", "rate_per_100pd", "rate_lcl", "rate_ucl",
                "note"]
RATIO_COLUMNS = ["outcome", "model", "term", "irr", "irr_lcl", "irr_ucl", "p", "events_iv", "patient_days_iv",
                 "events_sc", "patient_days_sc", "note", "irr_robust", "robust_lcl", "robust_ucl", "robust_p",
                 "robust_se", "robust_method"]
ROBUST_COLUMNS = RATIO_COLUMNS[-6:]
FIRST_SEVERE_COLUMNS = ["group", "day", "n", "n_risk", "events", "competing_deaths", "censored_before", "cif",
                        "cif_lcl", "cif_ucl", "note"]
GROUPS = (*ROUTES, "overall")
SEVERE = "any_grade_3plus"


def _terms(adverse_events: pd.DataFrame) -> list[str]:
    extra = sorted(set(adverse_events["term"].dropna().astype(str)) - set(AE_TERMS))
    return [*AE_TERMS, *extra]


def _grade_labels(severe: int) -> list[str]:
    return ["any", "1", "2", "3", "4", "5", f">={severe}"]


# --------------------------------------------------------------------------- counts


def safety_events(dataset: pd.DataFrame, adverse_events: pd.DataFrame, cfg: Mapping) -> pd.DataFrame:
    """``group, term, grade, patients, events, n, percent`` on the full grid (zeros included)."""
    lo, hi = cfg["window_days"]
    severe = int(cfg["severe_grade"])
    group_of = dataset.set_index("patient_key")[GROUP]
    ae = adverse_events[calendar_day(adverse_events["day"]).between(lo, hi)]
    ae = pd.DataFrame({
        "patient_key": ae["patient_key"].to_numpy(),
        "group": ae["patient_key"].map(group_of).to_numpy(),
        "term": ae["term"].astype(str).to_numpy(),
        "grade": pd.to_numeric(ae["grade"], errors="coerce").to_numpy(),
    })
    ae = ae[ae["group"].notna()]
    ae["event"] = np.arange(len(ae))
    # every event under each (term, grade) label it belongs to
    by_term = [ae, ae[ae["term"].isin(INFECTION_TERMS)].assign(term="any_infection"), ae.assign(term="any")]
    t = pd.concat(by_term, ignore_index=True)
    g = t["grade"]
    labels = _grade_labels(severe)
    by_grade = [t.assign(grade_label="any")]
    by_grade += [t[g.eq(k)].assign(grade_label=str(k)) for k in range(1, 6)]
    by_grade.append(t[g.ge(severe)].assign(grade_label=labels[-1]))
    t = pd.concat(by_grade, ignore_index=True)
    t = pd.concat([t, t.assign(group="overall")], ignore_index=True)
    agg = t.groupby(["group", "term", "grade_label"]).agg(patients=("patient_key", "nunique"),
                                                          events=("event", "size"))
    terms = [*_terms(adverse_events), "any_infection", "any"]
    grid = pd.MultiIndex.from_product([GROUPS, terms, labels], names=["group", "term", "grade_label"])
    out = agg.reindex(grid, fill_value=0).reset_index().rename(columns={"grade_label": "grade"})
    n = {g: int(dataset[GROUP].eq(g).sum()) for g in ROUTES} | {"overall": len(dataset)}
    out["n"] = out["group"].map(n).astype(int)
    out["percent"] = np.where(out["n"] > 0, 100 * out["patients"] / out["n"].where(out["n"] > 0), np.nan)
    return out[EVENT_COLUMNS]


# --------------------------------------------------------------------------- exposure


def regimen_days(anakinra: pd.DataFrame, dataset: pd.DataFrame, lag: int = 0) -> tuple[pd.DataFrame, dict]:
    """Each regimen as inclusive calendar days ``s..e`` (``patient_key, route, s, e``) after the
    rules in the module docstring, and counts of what was filled in or dropped."""
    check_columns(anakinra, ["patient_key", "route", "day_start", "day_stop"], "anakinra table")
    check_columns(dataset, ["patient_key", "time_to_death_days", "length_of_stay_days",
                            "days_admission_to_anakinra"], "analysis dataset")
    ds = dataset.set_index("patient_key")
    r = anakinra[anakinra["patient_key"].isin(ds.index)]
    end_fu = np.floor(pd.to_numeric(r["patient_key"].map(ds["time_to_death_days"]), errors="coerce"))
    discharge = np.floor(pd.to_numeric(r["patient_key"].map(ds["length_of_stay_days"]), errors="coerce")
                         - pd.to_numeric(r["patient_key"].map(ds["days_admission_to_anakinra"]), errors="coerce"))
    s = calendar_day(r["day_start"]).clip(lower=0)
    e = calendar_day(r["day_stop"])
    no_stop = e.isna()
    e = e.fillna(discharge).fillna(end_fu)
    e = e + lag
    e = np.fmin(e, end_fu)  # fmin: no follow-up end -> keep e
    d = pd.DataFrame({"patient_key": r["patient_key"].to_numpy(), "route": r["route"].astype(str).to_numpy(),
                      "s": s.to_numpy(), "e": np.asarray(e, dtype=float)})
    unusable = d["s"].isna() | d["e"].isna() | (d["e"] < d["s"])
    counts = {"regimens": int(len(d)), "regimens_without_stop": int(no_stop.sum()),
              "regimens_dropped_no_start_or_ending_before_start": int(unusable.sum()),
              "regimens_of_patients_not_in_cohort": int((~anakinra["patient_key"].isin(ds.index)).sum())}
    return d[~unusable].reset_index(drop=True), counts


def merge_intervals(intervals: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Union of inclusive day intervals ``s..e`` within each ``by`` key (overlapping or
    adjacent intervals merge): ``*by, s, e``, sorted."""
    if intervals.empty:
        return pd.DataFrame({**{b: pd.Series(dtype=object) for b in by}, "s": pd.Series(dtype=float),
                             "e": pd.Series(dtype=float)})
    d = intervals.sort_values([*by, "s", "e"], kind="mergesort").reset_index(drop=True)
    run_max = d.groupby(by, sort=False)["e"].cummax()
    prev = run_max.groupby([d[b] for b in by], sort=False).shift()
    block = (prev.isna() | (d["s"] > prev + 1)).cumsum()
    out = d.groupby(block, sort=False).agg(**{b: (b, "first") for b in by}, s=("s", "min"), e=("e", "max"))
    return out.reset_index(drop=True)


def _on_exposure(events: pd.DataFrame, intervals: pd.DataFrame, by: list[str]) -> np.ndarray:
    """Whether each event's calendar day ``cday`` lies in one of its key's merged intervals."""
    out = np.zeros(len(events), dtype=bool)
    ev = events.assign(_row=np.arange(len(events)), cday=events["cday"].astype(float))
    ev = ev[ev["cday"].notna()].sort_values("cday", kind="mergesort")  # no day: never on exposure
    if ev.empty or intervals.empty:
        return out
    iv = intervals.assign(s=intervals["s"].astype(float)).sort_values("s", kind="mergesort")
    m = pd.merge_asof(ev[["_row", "cday", *by]], iv[[*by, "s", "e"]], left_on="cday", right_on="s", by=by,
                      direction="backward")
    on = (m["e"].notna() & (m["cday"] <= m["e"])).to_numpy()
    out[m["_row"].to_numpy()] = on
    return out


def exposure(anakinra: pd.DataFrame, dataset: pd.DataFrame, lag: int = 0) -> dict:
    """Merged intervals on any route (``any``, by patient) and per route (``route``), and counts."""
    regimens, counts = regimen_days(anakinra, dataset, lag)
    return {"any": merge_intervals(regimens, ["patient_key"]),
            "route": merge_intervals(regimens, ["patient_key", "route"]), "counts": counts}


def _days(intervals: pd.DataFrame) -> pd.Series:
    return intervals["e"] - intervals["s"] + 1


# --------------------------------------------------------------------------- rates


def safety_rates(dataset: pd.DataFrame, adverse_events: pd.DataFrame, expo: dict, cfg: Mapping
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``safety_rates`` (group x term) and ``rate_ratios`` (one row per term) tables."""
    per, conf = float(cfg["per"]), float(cfg["conf_level"])
    severe = int(cfg["severe_grade"])
    specific = cfg["route_specific_terms"]
    group_of = dataset.set_index("patient_key")[GROUP]
    ae = adverse_events[adverse_events["patient_key"].isin(group_of.index)]
    ev = pd.DataFrame({"patient_key": ae["patient_key"].to_numpy(),
                       "group": ae["patient_key"].map(group_of).to_numpy(),
                       "term": ae["term"].astype(str).to_numpy(),
                       "grade": pd.to_numeric(ae["grade"], errors="coerce").to_numpy(),
                       "cday": calendar_day(ae["day"]).to_numpy()})
    ev["on_any"] = _on_exposure(ev, expo["any"], ["patient_key"])
    for route in ROUTES:
        ev[f"on_{route}"] = _on_exposure(ev.assign(route=route), expo["route"], ["patient_key", "route"])

    any_iv = expo["any"]
    days_by_group = (_days(any_iv).groupby(any_iv["patient_key"].map(group_of)).sum()
                     if len(any_iv) else pd.Series(dtype=float))
    route_iv = expo["route"]
    days_by_route = _days(route_iv).groupby(route_iv["route"]).sum() if len(route_iv) else pd.Series(dtype=float)

    # per patient with exposure days: their days and route group (the patient-clustered ratio's rows)
    patient_days = (_days(any_iv).groupby(any_iv["patient_key"]).sum() if len(any_iv)
                    else pd.Series(dtype=float))
    patient_iv = patient_days.index.map(group_of).to_numpy() == "IV"

    term_sets = {t: ev["term"].eq(t) for t in _terms(adverse_events)}
    term_sets["any_infection"] = ev["term"].isin(INFECTION_TERMS)
    term_sets["any"] = pd.Series(True, index=ev.index)
    term_sets[SEVERE] = ev["grade"].ge(severe)
    rows, ratios = [], []
    for term, sel in term_sets.items():
        route = specific.get(term)
        counts = {}
        for g in ROUTES:
            if route is not None and g != route:
                counts[g] = (pd.NA, pd.NA, np.nan,
                             f"not applicable: {term} is counted on {route} exposure only (any patient's {route} days)")
                continue
            if route is not None:
                hit = ev[sel & ev[f"on_{route}"]]
                pdays = float(days_by_route.get(route, 0.0))
                note = f"exposure: {route} days of any patient"
            else:
                hit = ev[sel & ev["on_any"] & ev["group"].eq(g)]
                pdays = float(days_by_group.get(g, 0.0))
                note = None
            counts[g] = (int(hit["patient_key"].nunique()), int(len(hit)), pdays, note)
        for g in ROUTES:
            patients, events, pdays, note = counts[g]
            rows.append((g, term, patients, events, pdays, note))
        if route is not None:
            ratios.append(_ratio_row(term, None, counts, conf,
                                     f"not estimable: route-specific term ({route} exposure only)"))
        else:
            per_patient = ev.loc[sel & ev["on_any"], "patient_key"].value_counts().reindex(patient_days.index,
                                                                                         fill_value=0)
            robust = clustered_rate_ratio(per_patient.to_numpy(), patient_days.to_numpy(), patient_iv,
                                          conf_level=conf)
            ratios.append(_ratio_row(term, rate_ratio(counts["IV"][1], counts["IV"][2], counts["SC"][1],
                                                      counts["SC"][2], conf_level=conf), counts, conf, None, robust))
    rates = pd.DataFrame(rows, columns=["group", "term", "patients", "events", "patient_days", "note"])
    est = rates["patient_days"].notna() & rates["events"].notna()
    ci = poisson_rate_ci(rates.loc[est, "events"].astype(int), rates.loc[est, "patient_days"], per=per,
                         conf_level=conf)
    for col, src in (("rate_per_100pd", "rate"), ("rate_lcl", "rate_lcl"), ("rate_ucl", "rate_ucl")):
        rates[col] = np.nan
        rates.loc[est, col] = ci[src].to_numpy()
    zero = est & rates["patient_days"].eq(0)
    rates.loc[zero, "note"] = rates.loc[zero, "note"].map(lambda v: join_notes([v, "not estimable: zero exposure"]))
    for c in ("patients", "events"):
        rates[c] = rates[c].astype("Int64")
    return rates[RATE_COLUMNS], pd.DataFrame(ratios, columns=RATIO_COLUMNS)


def _ratio_row(term, rr, counts, conf, reason, robust=None):
    iv, sc = counts["IV"], counts["SC"]
    method = robust.method if robust is not None else None
    if robust is not None and robust.estimable:
        clustered = (robust.rate_ratio, robust.lcl, robust.ucl, robust.p, robust.se, method)
    else:
        clustered = (np.nan, np.nan, np.nan, np.nan, np.nan, method)
    if rr is None or not rr.estimable:
        note = reason or f"not estimable: {rr.reason}"
        return (term, "unadjusted", ROUTE_TERM, np.nan, np.nan, np.nan, np.nan, iv[1], iv[2], sc[1], sc[2], note,
                *clustered)
    note = None
    if iv[1] == 0:
        note = "no events in the IV group: rate ratio 0, upper limit only"
    elif sc[1] == 0:
        note = "no events in the SC group: rate ratio infinite, lower limit only"
    if robust is not None and not robust.estimable:
        why = robust.reason.replace("group 1", "the IV group").replace("group 2", "the SC group")
        note = join_notes([note, f"patient-clustered interval not estimable: {why}"])
    return (term, "unadjusted", ROUTE_TERM, rr.rate_ratio, rr.lcl, rr.ucl, rr.p, iv[1], iv[2], sc[1], sc[2], note,
            *clustered)


# --------------------------------------------------------------------------- first severe event


def first_severe_event(dataset: pd.DataFrame, adverse_events: pd.DataFrame, cfg: Mapping, event: str
                       ) -> pd.DataFrame:
    """Per patient (dataset order, patients without a follow-up time left out): ``time`` from the
    index date and ``status`` 1 (first adverse event of grade >= ``severe_grade`` on calendar days
    ``window_days``, within follow-up), 2 (death, column ``event``, first) or 0 (censored at the end
    of follow-up or of the window)."""
    lo, hi = (float(x) for x in cfg["window_days"])
    end = pd.to_numeric(dataset["time_to_death_days"], errors="coerce")
    died = pd.to_numeric(dataset[event], errors="coerce").fillna(0).eq(1)
    ae_day = calendar_day(adverse_events["day"])
    severe = pd.to_numeric(adverse_events["grade"], errors="coerce").ge(int(cfg["severe_grade"])) & ae_day.between(
        lo, hi)
    first = ae_day[severe].groupby(adverse_events.loc[severe, "patient_key"]).min()
    first = dataset["patient_key"].map(first)
    first = first.where(first.le(end))  # recorded after the end of follow-up: not within it
    status = np.select([first.notna(), died & end.le(hi)], [1, 2], 0)
    time = np.fmin(first.fillna(np.inf), np.fmin(end, hi)).clip(lower=0)
    out = pd.DataFrame({"patient_key": dataset["patient_key"].to_numpy(), GROUP: dataset[GROUP].to_numpy(),
                        "time": time.to_numpy(dtype=float), "status": status}, index=dataset.index)
    return out[end.notna().to_numpy() & out[GROUP].notna().to_numpy()]


def first_severe_table(times: pd.DataFrame, cfg: Mapping, conf: float) -> pd.DataFrame:
    """``safety_first_severe``: per group (IV, SC, overall) at the last day of ``window_days``, the
    cumulative incidence (Aalen-Johansen, infinitesimal-jackknife log CI, R ``survfit``) of a first
    adverse event of grade >= ``severe_grade``, death competing; with the counts that explain it."""
    from stormcohort.stats import cumulative_incidence

    hi = float(cfg["window_days"][1])
    rows = []
    for g in GROUPS:
        d = times if g == "overall" else times[times[GROUP].eq(g)]
        n = len(d)
        counts = {"events": int(d["status"].eq(1).sum()), "competing_deaths": int(d["status"].eq(2).sum()),
                  "censored_before": int((d["status"].eq(0) & d["time"].lt(hi)).sum()),
                  "n_risk": int(d["time"].ge(hi).sum())}
        cif, note = (np.nan, np.nan, np.nan), None
        if n == 0:
            note = "no patients in the group"
        elif counts["events"] == 0:
            cif, note = (0.0, np.nan, np.nan), f"no first grade >={cfg['severe_grade']} event by day {hi:g}"
        else:
            # everyone left before the day: the incidence is final when the last to leave had an event or
            # died (no one event-free remains), else unknown after the last follow-up
            last = float(d["time"].max())
            final = last < hi and d.loc[d["time"].eq(last), "status"].ne(0).all()
            c = cumulative_incidence(d, "time", "status", 1, times=[last if final else hi], conf_level=conf).iloc[0]
            cif = (c["cif"], c["cif_lcl"], c["cif_ucl"])
            if final:
                note = f"every patient had an event or died by day {last:g}: final value"
            elif np.isnan(c["cif"]):
                note = f"beyond the group's last follow-up (day {last:g})"
        rows.append({"group": g, "day": hi, "n": n, **counts, "cif": cif[0], "cif_lcl": cif[1], "cif_ucl": cif[2],
                     "note": note})
    return pd.DataFrame(rows)[FIRST_SEVERE_COLUMNS]


# --------------------------------------------------------------------------- swimmer data


def swimmer_data(dataset: pd.DataFrame, adverse_events: pd.DataFrame, expo: dict, event: str) -> dict:
    """What the swimmer plot draws: per patient ``follow_up`` end, ``died`` (``event``), ``discharge`` day and
    ``days_on`` (sort key); route segments (``patient_key, route, s, e``); adverse events
    (``patient_key, day, grade``)."""
    p = pd.DataFrame({
        "patient_key": dataset["patient_key"].to_numpy(),
        GROUP: dataset[GROUP].to_numpy(),
        "follow_up": pd.to_numeric(dataset["time_to_death_days"], errors="coerce").to_numpy(),
        "died": pd.to_numeric(dataset[event], errors="coerce").fillna(0).astype(int).to_numpy(),
        "discharge": (pd.to_numeric(dataset["length_of_stay_days"], errors="coerce")
                      - pd.to_numeric(dataset["days_admission_to_anakinra"], errors="coerce")).to_numpy(),
    })
    any_iv = expo["any"]
    on_days = _days(any_iv).groupby(any_iv["patient_key"]).sum() if len(any_iv) else pd.Series(dtype=float)
    p["days_on"] = p["patient_key"].map(on_days).fillna(0).to_numpy()
    ae = adverse_events[adverse_events["patient_key"].isin(p["patient_key"])]
    events = pd.DataFrame({"patient_key": ae["patient_key"].to_numpy(),
                           "day": pd.to_numeric(ae["day"], errors="coerce").to_numpy(),
                           "grade": pd.to_numeric(ae["grade"], errors="coerce").to_numpy()})
    return {"patients": p, "segments": expo["route"].copy(), "events": events.dropna(subset=["day"])}


# --------------------------------------------------------------------------- entry point


def safety_analysis(dataset: pd.DataFrame, anakinra: pd.DataFrame, adverse_events: pd.DataFrame,
                    hepatotoxicity: pd.DataFrame, cfg: Mapping, follow_up_days: int, *,
                    synthetic: bool = False) -> AnalysisResult:
    """Tables ``events, rates, ratios`` of the ``safety`` rule, the swimmer plot and the model.
    ``hepatotoxicity``: the hepatotoxicity rule's patient table (its counts go in the model)."""
    s = dict(cfg)
    event = death_outcome(follow_up_days)
    check_columns(dataset, ["patient_key", GROUP, "time_to_death_days", event], "analysis dataset")
    check_routes(dataset, "analysis dataset")
    check_columns(adverse_events, ["patient_key", "term", "grade", "day"], "adverse events table")
    events = safety_events(dataset, adverse_events, s)
    expo = exposure(anakinra, dataset, int(s["event_lag_days"]))
    rates, ratios = safety_rates(dataset, adverse_events, expo, s)
    first_severe = first_severe_table(first_severe_event(dataset, adverse_events, s, event), s,
                                      float(s["conf_level"]))
    hep_names = outcome_names(hepatotoxicity)
    hep = dataset[["patient_key", GROUP]].merge(hepatotoxicity[["patient_key", *hep_names]], on="patient_key",
                                                how="left", validate="1:1")
    hep_counts = outcome_counts(hep, hep_names)
    route_days = _days(expo["route"]).groupby(expo["route"]["route"]).sum() if len(expo["route"]) else {}
    group_of = dataset.set_index("patient_key")[GROUP]
    any_days = _days(expo["any"]).groupby(expo["any"]["patient_key"].map(group_of)).sum() \
        if len(expo["any"]) else {}
    lo, hi = s["window_days"]
    day = calendar_day(adverse_events["day"])
    model = {
        "settings": {"safety": s},
        "exposure_rules": {
            "route_specific_terms": {t: f"events on {r} days / {r} patient-days of any patient"
                                     for t, r in s["route_specific_terms"].items()},
            "other_terms": "events on any anakinra day / all anakinra patient-days, by the patient's route group",
            "days": "calendar days floor(day_start)..floor(day_stop) inclusive (+ event_lag_days), regimens "
                    "without a stop run to discharge (else end of follow-up), cut at end of follow-up, "
                    "overlaps counted once",
        },
        "methods": {"rate": "exact Poisson (Garwood) CI, R poisson.test",
                    "rate_ratio": "exact conditional binomial CI and p, R poisson.test(c(x1, x2), c(T1, T2)), "
                                  "treating repeated events of a patient as independent (descriptive)",
                    "rate_ratio_clustered": "Poisson regression of each patient's events on the route group with "
                                            "log patient-days offset, patient-clustered sandwich variance with the "
                                            "G/(G-1)*(N-1)/(N-K) factor (as R sandwich::vcovCL type HC1 and "
                                            "statsmodels GLM cov_type='cluster'), Wald CI and p",
                    "first_severe_event": "time to the first adverse event of grade >= severe_grade in the window, "
                                          "censored at the end of follow-up, death competing: Aalen-Johansen "
                                          "cumulative incidence at the end of the window, infinitesimal-jackknife "
                                          "log CI (R survfit)"},
        "exposure": {"patient_days_by_route_group": {g: float(any_days.get(g, 0)) for g in ROUTES},
                     "patient_days_by_route_given": {r: float(route_days.get(r, 0)) for r in ROUTES},
                     **expo["counts"]},
        "adverse_events": {"total": int(len(adverse_events)),
                           "outside_window": int((~day.between(lo, hi)).sum()),
                           "missing_grade": int(pd.to_numeric(adverse_events["grade"], errors="coerce").isna().sum())},
        "rate_ratios": ratios,
        "first_severe_event": first_severe,
        "hepatotoxicity": hep_counts,
    }
    swimmer = swimmer_data(dataset, adverse_events, expo, event)

    def figure():
        from stormcohort.plots.swimmer import swimmer_figure

        return swimmer_figure(swimmer, synthetic=synthetic, max_patients=s["swimmer_max_patients"],
                              severe_grade=s["severe_grade"], horizon=s["window_days"][1])

    return AnalysisResult(tables={"events": events, "rates": rates, "ratios": ratios, "first_severe": first_severe},
                          model=jsonable(model),
                          figures={"swimmer": figure})
