"""Cohort derivation: linked canonical tables + the study's rules -> the analysis dataset.

Units move from admissions to episodes (an inter-centre transfer is one episode) to
patients (a person's first qualifying episode). Every admission leaves at exactly one
step with its reason, and the attrition table counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from stormcohort.canonical import FLAGS, LAB_WORSE
from stormcohort.labels import death_outcome
from stormcohort.scores import meets_shlh_definition

SCORE_LABS = [
    "ferritin", "triglycerides", "fibrinogen", "ast", "hb", "platelets", "wbc", "neutrophils", "scd25",
]
BASELINE_LABS = ["ferritin", "crp", "platelets", "alt"]
LAB_COLUMNS = sorted(set(SCORE_LABS) | set(BASELINE_LABS))

# (step id, attrition description, the unit counted after the step)
STEPS = [
    ("all_admissions", "Admissions in the delivery after cleaning", "admissions"),
    ("transfer_merged", "Inter-centre transfers merged into one episode", "episodes"),
    ("outside_window", "Episode starts outside the study window", "episodes"),
    ("excluded_diagnosis", "Excluded diagnosis (familial HLH)", "episodes"),
    ("criteria_not_met", "Does not meet the sHLH/MAS definition", "episodes"),
    ("no_anakinra", "No anakinra during the episode", "episodes"),
    ("prevalent_user", "Anakinra in an earlier episode (prevalent user)", "episodes"),
    ("readmission", "Readmission: not the person's first qualifying episode", "patients"),
]

# The survival outcome's column is named from the horizon H (cohort.follow_up_days): death_<H>d.
DEATH_H = "death_<H>d"
DATASET_COLUMNS = [
    "patient_key", "centre", "admitting_centre", "route_group", "first_route", "age_years", "age_group", "sex",
    "weight_kg", "trigger_category", "icu", "oedema", "cns", "hscore", "hlh2004_count", "mas2016",
    "ferritin_baseline", "crp_baseline", "platelets_baseline", "alt_baseline", "ferritin_baseline_qualifier",
    "crp_baseline_qualifier", "platelets_baseline_qualifier", "alt_baseline_qualifier",
    "days_admission_to_anakinra", "max_daily_dose_mg", "max_dose_mg_per_kg_day", "days_on_anakinra",
    "route_switch", "iv_start_day", "length_of_stay_days", DEATH_H, "time_to_death_days", "death_30d",
    "death_date_unknown",
    "fever_outcome", "time_to_fever_days", "fever_not_evaluable",
]

DATA_DICTIONARY = {
    "patient_key": ("", "Pseudonymous person key (keyed HMAC-SHA256 of the NHS number or local id)"),
    "centre": ("", "Treating centre: centre of the admission where the first anakinra dose was given"),
    "admitting_centre": ("", "Centre of the episode's first admission (differs from centre after a transfer "
                             "before the first dose)"),
    "route_group": ("", "IV = any intravenous anakinra in the episode (config cohort.exposure=any_iv) "
                        "or route of the first dose (first_dose); else SC"),
    "first_route": ("", "Route of the first anakinra dose"),
    "age_years": ("years", "Age at admission"),
    "age_group": ("", "child if age_years < cohort.age_groups.child_below, else adult"),
    "sex": ("", "M or F"),
    "weight_kg": ("kg", "Weight at admission"),
    "trigger_category": ("", "infection, rheumatic, malignancy or idiopathic"),
    "icu": ("0/1", "Intensive or critical care during the episode"),
    "oedema": ("0/1", "Subcutaneous oedema"),
    "cns": ("0/1", "Central nervous system involvement"),
    "hscore": ("points", "HScore (Fardet 2014) at baseline; missing items score 0"),
    "hlh2004_count": ("criteria", "HLH-2004 criteria met at baseline (NK activity never available)"),
    "mas2016": ("0/1", "2016 EULAR/ACR/PRINTO MAS classification (sJIA only)"),
    "ferritin_baseline": ("ug/L", "Baseline ferritin: the sample before the first anakinra dose chosen by "
                                  "cohort.baseline (window_days, same_day, nearest or worst); a censored "
                                  "result (<x, >x) as its number x"),
    "crp_baseline": ("mg/L", "Baseline CRP (as ferritin)"),
    "platelets_baseline": ("10^9/L", "Baseline platelets (as ferritin)"),
    "alt_baseline": ("U/L", "Baseline ALT (as ferritin)"),
    **{f"{t}_baseline_qualifier": ("", f"< or > when the baseline {t} is a censored result (the true value is "
                                       f"below or above {t}_baseline); empty when exact")
       for t in ("ferritin", "crp", "platelets", "alt")},
    "days_admission_to_anakinra": ("days", "Index date minus admission date"),
    "max_daily_dose_mg": ("mg/day", "Largest daily dose of any single regimen (dose x doses per day, or rate x 24)"),
    "max_dose_mg_per_kg_day": ("mg/kg/day", "max_daily_dose_mg / weight_kg"),
    "days_on_anakinra": ("days", "First start to last stop (or discharge when no stop), inclusive"),
    "route_switch": ("0/1", "Both routes used during the episode"),
    "iv_start_day": ("days", "Index date to the first intravenous dose (0 when the first dose is IV); missing "
                             "when never IV (the target-trial strategies are defined on it)"),
    "length_of_stay_days": ("days", "Episode discharge minus admission date"),
    DEATH_H: ("0/1", "Death on a recorded date within cohort.follow_up_days (H) of the index date, within "
                     "follow-up (the time-to-event outcome: a death without a date is censored, death_date_unknown)"),
    "time_to_death_days": ("days", "Index to death or censoring "
                                   "(last date known alive, day cohort.follow_up_days or extract date)"),
    "death_30d": ("0/1", "Death by day 30; a death without a date counts when the patient was last known alive "
                         "before day 30; missing when censored alive before day 30"),
    "death_date_unknown": ("0/1", "Died (death flag) without a date of death: censored at the last date known "
                                  "alive in time-to-event analyses, a death in the binary outcomes"),
    "fever_outcome": ("0/1/2", "0 censored, 1 fever resolved, 2 died before fever resolved; missing when not "
                               "evaluable (fever_not_evaluable)"),
    "time_to_fever_days": ("days", "Index to fever resolution, death or censoring"),
    "fever_not_evaluable": ("", "Why the patient is not at risk for fever resolution: afebrile_at_index (resolved "
                                "before the index date) or no_resolution_date (alive, no date recorded); "
                                "empty when evaluable"),
}

# The cohort's data conflicts: a patient-level consequence of a missing or contradictory value,
# with the documented rule that handles it (cohort/data_conflicts.csv; the report counts them).
CONFLICTS = {
    "death_without_date": "death flag without a date: censored at the last date known alive in time-to-event "
                          "analyses; a death in death_30d when last known alive before day 30",
    "afebrile_at_index": "fever resolved before the index date: not at risk, excluded from the fever analyses",
    "fever_date_missing": "no fever resolution date (alive or death without date): fever outcome not evaluable",
    "no_contact_dates": "no date last seen or discharge date: follow-up ends at the last dose, lab or adverse event",
    "dose_without_mg": "a regimen without an mg dose (per-kg dose, no weight): maximum daily dose not evaluable",
    "transfer_without_discharge": "no discharge date at the sending centre: the next admission within "
                                  "cohort.transfer_without_discharge_days of it continues the episode",
    "prevalent_user_kept": "anakinra in an earlier episode, kept in the cohort (cohort.exclude_prevalent_users "
                           "false)",
}
CONFLICT_COLUMNS = ["patient_key", "centre", "rule", "handling"]


@dataclass
class CohortResult:
    attrition: pd.DataFrame
    dataset: pd.DataFrame
    assessed: pd.DataFrame  # every admission: its episode, scores and the step where it left
    anakinra: pd.DataFrame
    labs: pd.DataFrame
    adverse_events: pd.DataFrame
    conflicts: pd.DataFrame  # CONFLICT_COLUMNS: one row per patient and rule


def dataset_columns(follow_up_days: int) -> list[str]:
    """The analysis dataset's columns, the survival outcome named from H (``death_<H>d``)."""
    return [death_outcome(follow_up_days) if c == DEATH_H else c for c in DATASET_COLUMNS]


def data_dictionary(follow_up_days: int) -> pd.DataFrame:
    """``column, unit, definition`` of each analysis dataset column, for horizon H = ``follow_up_days``."""
    return pd.DataFrame(
        [(name, *DATA_DICTIONARY[col]) for name, col in zip(dataset_columns(follow_up_days), DATASET_COLUMNS)],
        columns=["column", "unit", "definition"],
    )


def build_episodes(admissions: pd.DataFrame, gap_days: int, *, without_discharge_days: int,
                   same_centre: bool) -> pd.DataFrame:
    """Per admission, `episode_key` and `merged_without_discharge`. A person's later admission
    continues the previous one (a transfer) when it is at another centre (or at any centre when
    `same_centre`) and starts within `gap_days` of the previous discharge or, when that discharge
    date is missing, within `without_discharge_days` of the previous admission (flagged)."""
    adm = admissions.sort_values(["person_key", "admit_date", "centre", "admission_key"])
    same_person = adm["person_key"].eq(adm["person_key"].shift())
    centre_ok = adm["centre"].ne(adm["centre"].shift()) | same_centre
    gap = (adm["admit_date"] - adm["discharge_date"].shift()).dt.days
    # Without the sending centre's discharge date only the admission dates can tell a transfer.
    no_discharge = adm["discharge_date"].shift().isna()
    since_admit = (adm["admit_date"] - adm["admit_date"].shift()).dt.days
    by_discharge = gap.le(gap_days).fillna(False)
    by_admit = no_discharge & since_admit.le(without_discharge_days).fillna(False)
    continues = same_person & centre_ok & (by_discharge | by_admit)
    first = adm["admission_key"].where(~continues)
    return pd.DataFrame({"episode_key": first.ffill(),
                         "merged_without_discharge": continues & by_admit}).reindex(admissions.index)


def _any(series: pd.Series) -> pd.Series:
    return series.astype("boolean")


def _episode_table(adm: pd.DataFrame) -> pd.DataFrame:
    """Collapse admissions into episodes (first admission's values; flags true if any)."""
    adm = adm.sort_values(["episode_key", "admit_date", "admission_key"])
    first_cols = ["person_key", "admitting_centre", "admit_date", "age_years", "weight_kg", "diagnosis",
                  "trigger_category", "trigger_detail"]
    agg = {c: (c, "first") for c in first_cols}
    agg |= {f: (f, "max") for f in FLAGS}
    agg |= {
        "discharge_date": ("discharge_date", "last"),
        "max_temp_c": ("max_temp_c", "max"),
        "death_date": ("death_date", "max"),
        "last_seen_date": ("last_seen_date", "max"),
        "fever_resolution_date": ("fever_resolution_date", "min"),
        "n_admissions": ("admission_key", "size"),
        "familial": ("is_fhlh", "max"),
        "merged_without_discharge": ("merged_without_discharge", "any"),
    }
    adm = adm.assign(is_fhlh=adm["diagnosis"].eq("fhlh"), admitting_centre=adm["centre"])
    episodes = adm.groupby("episode_key", sort=True).agg(**agg)
    for flag in FLAGS:
        episodes[flag] = _any(episodes[flag])
    return episodes


def baseline_samples(labs: pd.DataFrame, index_time: pd.Series, reference: pd.Series, rule: dict,
                     columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per episode and test, the baseline sample under ``rule`` (config ``cohort.baseline``).

    Candidates: samples from ``window_days`` days before the reference date (the index date, or the
    admission date without anakinra) to before the first dose (``index_time``). A sample on the
    index date counts by ``same_day``: ``before_dose`` when its time is before the dose's (a
    date-only sample or dose is at midnight, so neither is known to come first), ``always`` or
    ``never``. Of the candidates, ``pick`` takes the ``nearest`` (the latest) or the ``worst``
    (``LAB_WORSE``; ties: the earlier sample). ``labs`` carries ``episode_key``; returns the chosen
    rows indexed by ``(episode_key, test)``: ``sample_time, value, qualifier`` and ``columns``.
    """
    episode = labs["episode_key"]
    time = labs["sample_time"].to_numpy()
    date = labs["sample_time"].dt.normalize().to_numpy()
    dose = index_time.reindex(episode).to_numpy()
    day = (date - reference.reindex(episode).to_numpy()) / np.timedelta64(1, "D")
    if rule["same_day"] == "before_dose":
        same_day_ok = (time > date) & (time < dose)  # a time of day (not midnight), before the dose's
    else:
        same_day_ok = np.full(len(labs), rule["same_day"] == "always")
    # Without anakinra there is no dose to be before: the window ends on the admission date, inclusive.
    same_day_ok |= pd.isna(dose)
    keep = (day >= -rule["window_days"]) & ((day < 0) | ((day == 0) & same_day_ok))
    # one copy, of what is needed
    base = labs.loc[keep, ["episode_key", "test", "sample_time", "value", "qualifier", *columns]]
    if rule["pick"] == "worst":
        worse_first = base["value"] * base["test"].map(LAB_WORSE).map({"high": -1.0, "low": 1.0})
        base = base.assign(rank=worse_first).sort_values(["episode_key", "test", "rank", "sample_time"],
                                                         kind="mergesort").drop(columns="rank")
    else:
        base = base.sort_values(["episode_key", "test", "sample_time"], ascending=[True, True, False],
                                kind="mergesort")
    return base.drop_duplicates(["episode_key", "test"]).set_index(["episode_key", "test"])


def baseline_labs(labs: pd.DataFrame, index_time: pd.Series, reference: pd.Series, rule: dict) -> pd.DataFrame:
    """Per episode, the baseline samples of :func:`baseline_samples` as one column per test (the
    value) and ``<test>_qualifier`` ('', '<' or '>': the scores' input contract)."""
    first = baseline_samples(labs, index_time, reference, rule)
    value = first["value"].unstack().reindex(columns=LAB_COLUMNS)
    qualifier = first["qualifier"].fillna("").unstack().reindex(columns=LAB_COLUMNS)
    return value.join(qualifier.add_suffix("_qualifier")).rename_axis(columns=None)


# cohort.simultaneous_routes: the order of the routes of regimens starting at the same time.
# iv_first: an IV loading dose given with the first SC dose (the usual practice) starts an IV regimen.
SIMULTANEOUS_ROUTES = {"iv_first": ("IV", "SC"), "sc_first": ("SC", "IV")}


def _days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.days.astype("float")


def derive_cohort(tables: dict[str, pd.DataFrame], cfg: dict, extract_date: date) -> CohortResult:
    adm = tables["admissions"].copy()
    ana = tables["anakinra"]
    patients = tables["patients"].set_index("person_key")
    extract = pd.Timestamp(extract_date)

    adm[["episode_key", "merged_without_discharge"]] = build_episodes(
        adm, cfg["transfer_gap_days"], without_discharge_days=cfg["transfer_without_discharge_days"],
        same_centre=cfg["transfer_same_centre"])
    episodes = _episode_table(adm)
    episode_of = adm.set_index("admission_key")["episode_key"]

    ana = ana.assign(episode_key=ana["admission_key"].map(episode_of))
    labs = tables["labs"].assign(episode_key=lambda d: d["admission_key"].map(episode_of))
    aes = tables["adverse_events"].assign(episode_key=lambda d: d["admission_key"].map(episode_of))

    # Index date: first dose; the reference for baseline labs falls back to admission. Regimens of
    # both routes starting at the same time: cohort.simultaneous_routes says which came first.
    rank = {route: i for i, route in enumerate(SIMULTANEOUS_ROUTES[cfg["simultaneous_routes"]])}
    first_dose = (ana.assign(route_rank=ana["route"].map(rank))
                  .sort_values(["episode_key", "start", "route_rank"], kind="mergesort")
                  .drop_duplicates("episode_key").set_index("episode_key"))
    episodes["index_time"] = first_dose["start"].reindex(episodes.index)
    episodes["first_route"] = first_dose["route"].reindex(episodes.index)
    # The episode's centre is the treating centre (where anakinra started); else the admitting one.
    centre_of = adm.set_index("admission_key")["centre"]
    episodes["centre"] = first_dose["admission_key"].map(centre_of).reindex(episodes.index).fillna(
        episodes["admitting_centre"])
    episodes["index_date"] = episodes["index_time"].dt.normalize()
    reference = episodes["index_date"].fillna(episodes["admit_date"])

    baseline = baseline_labs(labs, episodes["index_time"], reference, cfg["baseline"]).reindex(episodes.index)
    definition = cfg["shlh_definition"]
    score_input = baseline.join(episodes[["max_temp_c", "hepatomegaly", "splenomegaly", "immunosuppression",
                                          "bm_haemophagocytosis"]])
    score_input["sjia"] = episodes["trigger_detail"].fillna("").str.contains(
        definition["mas_trigger_pattern"], case=False, regex=True)
    scores = meets_shlh_definition(
        score_input,
        hlh2004_min=definition["hlh2004_min_criteria"],
        hscore_min=definition["hscore_min"],
        use_mas2016=definition["mas2016"],
    )
    episodes = episodes.join(scores)

    # Episode-level exclusions, first failing step wins.
    start, end = (pd.Timestamp(cfg["study_window"][k]) for k in ("start", "end"))
    excluded_dx = set(cfg["exclude_diagnoses"])
    excluded_by_dx = episodes["diagnosis"].isin(excluded_dx) | (episodes["familial"] & ("fhlh" in excluded_dx))
    checks = [
        ("outside_window", ~episodes["admit_date"].between(start, end)),
        ("excluded_diagnosis", excluded_by_dx),
        ("criteria_not_met", ~episodes["meets_definition"].fillna(False).astype(bool)),
        ("no_anakinra", episodes["index_time"].isna()),
    ]
    reason = pd.Series(pd.NA, index=episodes.index, dtype="object")
    for step, failed in checks:
        reason = reason.mask(reason.isna() & failed, step)
    qualifying = episodes[reason.isna()].sort_values(["person_key", "index_time", "admitting_centre"])
    later = qualifying["person_key"].duplicated()
    first = qualifying[~later]
    # A prevalent user had anakinra in an episode admitted, and started, before their first qualifying
    # episode (before the window or excluded for another reason): not a new user.
    of_person = first.set_index("person_key")
    treated = episodes[episodes["index_time"].notna()]
    before = (treated["admit_date"].lt(treated["person_key"].map(of_person["admit_date"]))
              & treated["index_time"].lt(treated["person_key"].map(of_person["index_time"])))
    prevalent = first.index[first["person_key"].isin(treated.loc[before, "person_key"])]
    episodes["prevalent_user"] = episodes.index.isin(prevalent)
    if cfg["exclude_prevalent_users"]:
        reason = reason.mask(episodes["prevalent_user"], "prevalent_user")
    reason.loc[qualifying.index[later]] = "readmission"
    episodes["exclusion"] = reason

    assessed = adm[["admission_key", "person_key", "centre", "episode_key"]].merge(
        episodes[["exclusion", "hscore", "hlh2004_count", "mas2016", "meets_definition",
                  "merged_without_discharge", "prevalent_user"]],
        left_on="episode_key", right_index=True,
    )
    merged = assessed["admission_key"].ne(assessed["episode_key"])
    assessed["exclusion"] = assessed["exclusion"].mask(merged, "transfer_merged")
    assessed = assessed.rename(columns={"person_key": "patient_key"}).sort_values("admission_key")

    cohort = episodes[episodes["exclusion"].isna()].copy()
    # The last date the patient is known alive from any record: a dose, a lab, an adverse event.
    records = pd.concat([ana.groupby("episode_key")["start"].max(), ana.groupby("episode_key")["stop"].max(),
                         labs.groupby("episode_key")["sample_time"].max(),
                         aes.groupby("episode_key")["event_date"].max()], axis=1)
    last_record = records.max(axis=1).reindex(cohort.index).dt.normalize()
    dataset, conflicted = _analysis_rows(cohort, ana, baseline, patients, cfg, extract, last_record)
    # Kept prevalent users are still counted, in the step's description.
    kept = int((episodes["prevalent_user"] & episodes["exclusion"].isna()).sum())
    notes = {} if cfg["exclude_prevalent_users"] else {
        "prevalent_user": f": not excluded (cohort.exclude_prevalent_users false), {kept} in the cohort"}
    attrition = _attrition(len(adm), episodes, merged.sum(), dataset, notes)
    key_of = cohort["person_key"]
    long = {
        name: _long_table(frame, cohort, key_of, dataset, time_cols)
        for name, frame, time_cols in [
            ("anakinra", ana, ["start", "stop"]),
            ("labs", labs, ["sample_time"]),
            ("adverse_events", aes, ["event_date"]),
        ]
    }
    return CohortResult(attrition, dataset, assessed.reset_index(drop=True), **long,
                        conflicts=_conflicts(dataset, conflicted))


def conflicts_summary(conflicts: pd.DataFrame) -> pd.DataFrame:
    """Patients per centre and rule of the conflicts list, with the rule's handling (for the report)."""
    summary = conflicts.groupby(["centre", "rule"], sort=True).size().rename("patients").reset_index()
    return summary.assign(handling=summary["rule"].map(CONFLICTS))


def _conflicts(dataset: pd.DataFrame, conflicted: pd.DataFrame) -> pd.DataFrame:
    """One row per patient and CONFLICTS rule that applied (``conflicted``: a boolean column per rule)."""
    long = conflicted.set_axis(dataset["patient_key"]).rename_axis("patient_key").melt(
        ignore_index=False, var_name="rule", value_name="hit")
    long = long[long["hit"]].reset_index()
    long["centre"] = long["patient_key"].map(dataset.set_index("patient_key")["centre"])
    long["handling"] = long["rule"].map(CONFLICTS)
    return long[CONFLICT_COLUMNS].sort_values(["rule", "patient_key"], ignore_index=True)


def _analysis_rows(cohort, ana, baseline, patients, cfg, extract, last_record) -> pd.DataFrame:
    follow_up = pd.Timedelta(days=cfg["follow_up_days"])
    index_date = cohort["index_date"]
    doses = ana[ana["episode_key"].isin(cohort.index)]
    per_episode = doses.groupby("episode_key")
    last_stop = per_episode["stop"].max().reindex(cohort.index).dt.normalize()
    route_used = pd.crosstab(doses["episode_key"], doses["route"]).reindex(
        index=cohort.index, columns=["IV", "SC"], fill_value=0).gt(0)
    any_iv = route_used["IV"]
    if cfg["exposure"] == "any_iv":
        route_group = np.where(any_iv, "IV", "SC")
    else:
        route_group = cohort["first_route"].to_numpy()

    # Follow-up ends at death, the last date the patient is known alive (last seen, discharge, or the
    # last record of a dose, lab or adverse event; never later: a patient without any is not
    # followed to the horizon), day `follow_up_days` or the extract date.
    last_contact = pd.concat([cohort["last_seen_date"], cohort["discharge_date"], last_record],
                             axis=1).max(axis=1)
    horizon = pd.concat([index_date + follow_up, pd.Series(extract, index=cohort.index)], axis=1).min(axis=1)
    # A death without a date (ingest made every dated death a death) is censored at the last date known
    # alive; in death_30d it counts as a death unless the patient was known alive on day 30.
    dated = cohort["death_date"].notna()
    undated = cohort["died"].fillna(False).astype(bool) & ~dated
    death_in_fu = dated & (cohort["death_date"] <= horizon)
    censor = pd.concat([last_contact, horizon], axis=1).min(axis=1)
    end = cohort["death_date"].where(death_in_fu, censor)
    time_to_death = _days(end, index_date).clip(lower=0)
    death_30 = (death_in_fu & (_days(cohort["death_date"], index_date) <= 30)) | (undated & (time_to_death < 30))
    death_30d = death_30.astype("Int64").mask(~death_30 & (time_to_death < 30))

    # Fever: not at risk when it resolved before the index date; not evaluable without a resolution
    # date unless a dated death came first (died febrile). Neither is a failure to respond.
    fever = cohort["fever_resolution_date"]
    not_evaluable = pd.Series(np.select([fever < index_date, fever.isna() & ~death_in_fu],
                                        ["afebrile_at_index", "no_resolution_date"], ""), index=cohort.index)
    fever_in_fu = fever.notna() & (fever <= end) & ~(death_in_fu & (fever > cohort["death_date"]))
    fever_outcome = pd.Series(np.select([fever_in_fu, death_in_fu], [1, 2], 0), index=cohort.index,
                              dtype="Int64").mask(not_evaluable.ne(""))
    fever_end = fever.where(fever_in_fu, end).mask(not_evaluable.ne(""))

    stop_or_discharge = last_stop.fillna(cohort["discharge_date"]).fillna(horizon)
    # A regimen whose mg dose is missing (a per-kg dose without a weight) makes the maximum not
    # evaluable: missing, not the largest of the other regimens.
    dose_without_mg = doses["daily_dose_mg"].isna().groupby(doses["episode_key"]).any().reindex(
        cohort.index, fill_value=False)
    max_daily = per_episode["daily_dose_mg"].max().reindex(cohort.index).mask(dose_without_mg)
    age = cohort["age_years"]
    flag = lambda col: cohort[col].astype("Int64")  # noqa: E731 - 0/1 with missing kept missing

    dataset = pd.DataFrame({
        "patient_key": cohort["person_key"],
        "centre": cohort["centre"],
        "admitting_centre": cohort["admitting_centre"],
        "route_group": route_group,
        "first_route": cohort["first_route"],
        "age_years": age,
        "age_group": np.where(age < cfg["age_groups"]["child_below"], "child",
                              np.where(age.notna(), "adult", None)),
        "sex": patients["sex"].reindex(cohort["person_key"]).to_numpy(),
        "weight_kg": cohort["weight_kg"],
        "trigger_category": cohort["trigger_category"],
        "icu": flag("icu"),
        "oedema": flag("oedema"),
        "cns": flag("cns"),
        "hscore": cohort["hscore"],
        "hlh2004_count": cohort["hlh2004_count"],
        "mas2016": cohort["mas2016"].astype("Int64"),
        **{f"{t}_baseline": baseline[t].reindex(cohort.index) for t in BASELINE_LABS},
        **{f"{t}_baseline_qualifier": baseline[f"{t}_qualifier"].reindex(cohort.index).fillna("")
           for t in BASELINE_LABS},
        "days_admission_to_anakinra": _days(index_date, cohort["admit_date"]),
        "max_daily_dose_mg": max_daily,
        "max_dose_mg_per_kg_day": max_daily / cohort["weight_kg"],
        "days_on_anakinra": _days(stop_or_discharge, index_date) + 1,
        "route_switch": route_used.all(axis=1).astype(int),
        "iv_start_day": _days(doses[doses["route"].eq("IV")].groupby("episode_key")["start"].min().reindex(
            cohort.index).dt.normalize(), index_date),
        "length_of_stay_days": _days(cohort["discharge_date"], cohort["admit_date"]),
        death_outcome(cfg["follow_up_days"]): death_in_fu.astype(int),
        "time_to_death_days": time_to_death,
        "death_30d": death_30d,
        "death_date_unknown": undated.astype(int),
        "fever_outcome": fever_outcome,
        "time_to_fever_days": _days(fever_end, index_date).clip(lower=0),
        "fever_not_evaluable": not_evaluable,
    })
    conflicted = pd.DataFrame({
        "death_without_date": undated,
        "afebrile_at_index": not_evaluable.eq("afebrile_at_index"),
        "fever_date_missing": not_evaluable.eq("no_resolution_date"),
        "no_contact_dates": cohort["last_seen_date"].isna() & cohort["discharge_date"].isna(),
        "dose_without_mg": dose_without_mg,
        "transfer_without_discharge": cohort["merged_without_discharge"].astype(bool),
        "prevalent_user_kept": cohort["prevalent_user"].astype(bool),
    })
    order = np.argsort(dataset["patient_key"].to_numpy(), kind="stable")
    return (dataset[dataset_columns(cfg["follow_up_days"])].iloc[order].reset_index(drop=True),
            conflicted.iloc[order].reset_index(drop=True))


def _attrition(n_admissions: int, episodes: pd.DataFrame, n_merged: int, dataset: pd.DataFrame,
               notes: dict[str, str]) -> pd.DataFrame:
    excluded = episodes["exclusion"].value_counts()
    rows, remaining = [], n_admissions
    for step, description, _unit in STEPS:
        if step == "all_admissions":
            n_excluded = pd.NA
        else:
            n_excluded = int(n_merged if step == "transfer_merged" else excluded.get(step, 0))
            remaining -= n_excluded
        rows.append((step, description + notes.get(step, ""), remaining, n_excluded))
    assert remaining == len(dataset), "attrition does not add up to the analysis dataset"
    rows.append(("final_cohort", "Patients in the analysis cohort", remaining, pd.NA))
    for group in ("IV", "SC"):
        n = int(dataset["route_group"].eq(group).sum())
        rows.append((f"route_{group}", f"Route group {group}", n, pd.NA))
    attrition = pd.DataFrame(rows, columns=["step", "description", "n_remaining", "n_excluded"])
    attrition["n_excluded"] = attrition["n_excluded"].astype("Int64")
    return attrition


def _long_table(frame, cohort, key_of, dataset, time_cols) -> pd.DataFrame:
    """A cohort long table in days from the index date; keyed by patient, no dates.
    (Copies as little as it can: the labs table has millions of rows in a registry.)"""
    in_cohort = frame["episode_key"].isin(cohort.index).to_numpy()
    episode = frame["episode_key"].to_numpy()[in_cohort]
    index_date = cohort["index_date"].reindex(episode).to_numpy()
    out = frame.loc[in_cohort, [c for c in frame.columns if c not in ("admission_key", "episode_key", *time_cols)]]
    for col in time_cols:
        day_col = "day" if len(time_cols) == 1 else f"day_{col}"
        out[day_col] = (frame[col].to_numpy()[in_cohort] - index_date) / np.timedelta64(1, "D")
    out.insert(0, "patient_key", key_of.reindex(episode).to_numpy())
    route = dataset.set_index("patient_key")["route_group"]
    out.insert(1, "route_group", route.reindex(out["patient_key"]).to_numpy())
    sort = ["patient_key", *[c for c in out.columns if c.startswith("day")]]
    return out.sort_values(sort + [c for c in out.columns if c not in sort], kind="mergesort", ignore_index=True)
