"""The clinical simulation: episodes of sHLH/MAS care in canonical units, before any centre's
export format is applied.

An *episode* is one course of illness. Most become one admission; a transfer between the two
UK centres becomes two admissions (the second is the one the cohort rules merge away).
Every random choice goes through ``rng(seed, stage)`` so that one stage can change without
shifting the draws of the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stormcohort.canonical import DOSES_PER_DAY, LAB_PLAUSIBLE, LAB_UNITS
from stormcohort.synth import criteria

# The generator's centres (the three of the registry-extracts contract; the pipeline reads
# whichever centres the config lists).
CENTRES = ("LDN", "SHF", "BHM")
CENTRE_WEIGHTS = (19, 15, 12)  # the Viewpoint's split is not published; LDN > SHF > BHM assumed
STUDY_START, STUDY_END = pd.Timestamp("2019-01-01"), pd.Timestamp("2019-12-31")
# Every date of birth lies before every event date of the delivery, in an earlier calendar
# year, so no DOB can be mistaken for an event date in any written form (dd/mm or mm/dd).
DOB_LATEST = pd.Timestamp("2017-12-31")
EARLIEST_2018_ADMISSION = pd.Timestamp("2018-09-03")
COVID_FROM = pd.Timestamp("2020-03-01")

# Non-cohort admissions per cohort patient (at least one of each kind in any delivery).
NON_COHORT_RATES = {
    "outside_window": 0.11,
    "familial": 0.045,
    "not_meeting_criteria": 0.065,
    "no_anakinra": 0.085,
    "readmission": 0.065,
}
PATIENTS_PER_TRANSFER = 46
# prevalent_user: a qualifying 2019 admission of someone already given anakinra in an earlier
# (2018) admission; one per 46 cohort patients, like the planted cases (synth/cases.py).
NON_COHORT_REASONS = (*NON_COHORT_RATES, "prevalent_user", "transfer_merged")
REPEAT_KINDS = ("readmission", "prevalent_user")  # a later admission of a person already admitted

TESTS = tuple(LAB_UNITS)
# Where each test heads when the disease settles, and how fast (per day, before scaling by
# the episode's response).
RECOVERY_TARGET = {"ferritin": 250, "crp": 3, "platelets": 260, "hb": 115, "wbc": 7.0, "neutrophils": 4.2,
                   "fibrinogen": 3.4, "triglycerides": 1.6, "alt": 28, "ast": 26, "bilirubin": 11,
                   "creatinine": 75, "scd25": 900}
RECOVERY_RATE = {"ferritin": 0.28, "crp": 0.40, "platelets": 0.22, "hb": 0.04, "wbc": 0.15, "neutrophils": 0.15,
                 "fibrinogen": 0.20, "triglycerides": 0.10, "alt": 0.15, "ast": 0.22, "bilirubin": 0.15,
                 "creatinine": 0.12, "scd25": 0.15}
LAB_DAYS = np.array([-3, -2, -1, 0, 1, 2, 3, 4, 5, 7, 10, 14])
P_NO_BASELINE_PLATELETS = 0.08  # core cohort episodes without a platelet count up to the day of the first dose
# Death by trigger before adjustment for ICU and age (published sHLH mortality 20-40%,
# highest with malignancy, lowest in rheumatic MAS; see data/README.md).
DEATH_BASE = {"infection": 0.30, "rheumatic": 0.10, "malignancy": 0.55, "idiopathic": 0.30}

TRIGGER_DETAILS = {
    ("adult", "infection"): (("EBV", .3), ("CMV", .15), ("HSV", .08), ("Influenza A", .12), ("Tuberculosis", .1),
                             ("Visceral leishmaniasis", .05), ("HIV", .1), ("Parvovirus B19", .1)),
    ("adult", "rheumatic"): (("AOSD", .5), ("SLE", .4), ("Dermatomyositis", .1)),
    ("adult", "malignancy"): (("T-cell lymphoma", .5), ("Hodgkin lymphoma", .2),
                              ("Diffuse large B-cell lymphoma", .2), ("NK/T-cell lymphoma", .1)),
    ("child", "infection"): (("EBV", .45), ("CMV", .15), ("Adenovirus", .15), ("Influenza A", .15),
                             ("Parvovirus B19", .1)),
    # Written as clinicians write it; each variant matches the config's sJIA pattern.
    ("child", "rheumatic"): (("sJIA", .5), ("systemic JIA", .15), ("systemic juvenile idiopathic arthritis", .1),
                             ("sJIA flare", .1), ("SLE", .15)),
    ("child", "malignancy"): (("Anaplastic large cell lymphoma", .6), ("T-cell lymphoma", .4)),
    ("any", "idiopathic"): (("", 1.0),),
    ("any", "sepsis"): (("E. coli bacteraemia", .3), ("Pneumococcal pneumonia", .3),
                        ("Staphylococcus aureus bacteraemia", .25), ("Group A streptococcus", .15)),
}
SJIA_PATTERN = "sJIA|systemic JIA|systemic juvenile"


def rng(seed: int, stage: int) -> np.random.Generator:
    return np.random.default_rng([seed, stage])


def apportion(total: int, weights) -> np.ndarray:
    """Split an integer total in proportion to weights (largest remainder; ties to the first)."""
    w = np.asarray(weights, dtype=float)
    quota = total * w / w.sum()
    counts = np.floor(quota).astype(int)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def pick(r: np.random.Generator, options, n: int) -> np.ndarray:
    """n draws from ((value, probability), ...)."""
    values = np.array([v for v, _ in options], dtype=object)
    p = np.array([q for _, q in options], dtype=float)
    return values[r.choice(len(values), size=n, p=p / p.sum())]


def days(n) -> pd.TimedeltaIndex:
    return pd.to_timedelta(np.asarray(n, dtype=float), unit="D")


@dataclass
class Simulation:
    persons: pd.DataFrame     # one row per person: sex, dob, identifiers
    admissions: pd.DataFrame  # one row per admission, canonical units, with `kind` and `episode`
    dosing: pd.DataFrame      # one row per regimen segment
    labs: pd.DataFrame        # long: one row per result
    adverse_events: pd.DataFrame
    extract_date: pd.Timestamp


# ----------------------------------------------------------------------------- plan
def plan_episodes(n_patients: int, extract_date: pd.Timestamp, seed: int, n_cases: int = 0) -> pd.DataFrame:
    """Who is ill where and when: kind, centre, age, sex, trigger, admission date. The first
    ``n_cases`` SHF cohort patients are adolescents: the children of the per-kg IV case."""
    r = rng(seed, 1)
    counts = {k: max(1, round(n_patients * rate)) for k, rate in NON_COHORT_RATES.items()}
    counts["readmission"] = min(counts["readmission"], n_patients)
    centres = r.permutation(np.repeat(CENTRES, apportion(n_patients, CENTRE_WEIGHTS)))
    parts = [pd.DataFrame({"kind": "cohort", "centre": centres})]
    centre_weights = {"familial": (15, 25, 60)}  # familial HLH is mostly a disease of young children
    for kind in ("outside_window", "familial", "not_meeting_criteria", "no_anakinra"):
        split = apportion(counts[kind], centre_weights.get(kind, CENTRE_WEIGHTS))
        parts.append(pd.DataFrame({"kind": kind, "centre": r.permutation(np.repeat(CENTRES, split))}))
    ep = pd.concat(parts, ignore_index=True)
    n = len(ep)
    adult = ep["centre"].ne("BHM").to_numpy()
    shf_teen = (ep["centre"].eq("SHF") & (r.random(n) < 0.12)).to_numpy()
    shf_cohort = (ep["centre"].eq("SHF") & ep["kind"].eq("cohort")).to_numpy()
    per_kg_child = shf_cohort & (np.cumsum(shf_cohort) <= n_cases)
    shf_teen |= per_kg_child
    ep["case"] = np.where(per_kg_child, "dose_per_kg_without_weight", "")
    age = np.where(ep["centre"].eq("LDN"), 18.5 + 65.5 * r.beta(2, 2.2, n), 18.5 + 60.5 * r.beta(2, 2.2, n))
    age = np.where(shf_teen, r.uniform(14.2, 17.4, n), age)
    age = np.where(adult, age, 0.6 + 16.6 * r.beta(1.3, 1.4, n))
    familial = ep["kind"].eq("familial").to_numpy()
    age = np.where(familial & adult, r.uniform(16, 32, n), np.where(familial, r.uniform(0.6, 4, n), age))
    age = np.where(ep["centre"].eq("LDN"), np.maximum(age, 18.5), age)

    # Admission dates: 2019 for all but the outside-window ones (late 2018 / early 2020).
    in_2019 = STUDY_START + days(r.integers(1, 344, n))
    late_2018 = EARLIEST_2018_ADMISSION + days(r.integers(0, 108, n))
    last_2020 = min(pd.Timestamp("2020-03-31"), extract_date - pd.Timedelta(days=21))
    if last_2020 < pd.Timestamp("2020-01-06"):
        raise ValueError(f"extract date {extract_date.date()} is too early: it must leave follow-up after the "
                         "2019 study window (expected 2020-01-27 or later)")
    early_2020 = pd.Timestamp("2020-01-06") + days(r.integers(0, (last_2020 - pd.Timestamp("2020-01-06")).days + 1, n))
    outside = ep["kind"].eq("outside_window").to_numpy()
    # At least one in 2018: a prevalent user's earlier admission is one of them.
    in_2018 = outside & (np.cumsum(outside) <= max(1, outside.sum() // 2))
    ep["admit"] = np.where(in_2018, late_2018, np.where(outside, early_2020, in_2019))
    ep["admit"] = pd.to_datetime(ep["admit"])

    # Dates of birth, then the age that follows from them.
    dob = ep["admit"] - days(np.round(age * 365.25)) - days(r.integers(0, 30, n))
    too_late = dob > DOB_LATEST
    dob = dob.where(~too_late, DOB_LATEST - days(r.integers(0, 120, n)))
    ep["dob"] = dob
    ep["age"] = (ep["admit"] - dob).dt.days / 365.25
    ep["adult"] = ep["age"] >= 18

    # Triggers by age group; sJIA only in children, COVID-19 only from March 2020.
    child = ~ep["adult"].to_numpy()
    category = np.where(child,
                        pick(r, (("rheumatic", .45), ("infection", .35), ("malignancy", .07), ("idiopathic", .13)), n),
                        pick(r, (("infection", .40), ("rheumatic", .20), ("malignancy", .25), ("idiopathic", .15)), n))
    category = np.where(familial, pick(r, (("infection", .5), ("idiopathic", .5)), n), category)
    sepsis = ep["kind"].eq("not_meeting_criteria").to_numpy()
    category = np.where(sepsis, "infection", category)
    detail = np.full(n, "", dtype=object)
    for (group, cat), options in TRIGGER_DETAILS.items():
        if cat == "sepsis":
            mask = sepsis
        else:
            in_group = np.ones(n, bool) if group == "any" else (child if group == "child" else ~child)
            mask = in_group & (category == cat) & ~sepsis
        detail = np.where(mask, pick(r, options, n), detail)
    covid = (ep["admit"] >= COVID_FROM).to_numpy() & ~child & (category == "infection") & (r.random(n) < 0.6)
    detail = np.where(covid & ~sepsis, "COVID-19", detail)
    ep["trigger_category"], ep["trigger_detail"] = category, detail
    ep["sjia"] = pd.Series(detail).str.contains(SJIA_PATTERN, regex=True).to_numpy()
    ep["diagnosis"] = np.select([familial, sepsis, category == "rheumatic"], ["fhlh", "other", "mas"], "shlh")
    p_female = np.select([child, category == "rheumatic"], [0.5, 0.7], 0.42)
    ep["sex"] = np.where(r.random(n) < p_female, "F", "M")
    return ep


# ----------------------------------------------------------------------------- clinical picture
def draw_features(ep: pd.DataFrame, seed: int, n_ferritin_over_assay: int) -> pd.DataFrame:
    """Admission findings and baseline labs; core sHLH episodes clearly meet the definition,
    the sepsis ones clearly fail it. The ferritin_below_500 case keeps a ferritin under 500 and
    meets the definition on its other findings."""
    r = rng(seed, 2)
    n = len(ep)
    child = ~ep["adult"].to_numpy()
    sjia = ep["sjia"].to_numpy()
    sepsis = ep["kind"].eq("not_meeting_criteria").to_numpy()
    z = r.normal(size=n)  # latent severity
    f = pd.DataFrame(index=ep.index)
    f["severity"] = z
    f["icu"] = (z + r.normal(0, 0.8, n)) > np.where(child, 0.6, 0.35)
    f["oedema"] = (0.8 * z + r.normal(size=n)) > 0.9
    f["cns"] = (0.7 * z + r.normal(size=n)) > 1.3
    f["hepatomegaly"] = r.random(n) < 0.55
    f["splenomegaly"] = r.random(n) < np.where(sjia, 0.5, 0.6)
    f["immunosuppression"] = r.random(n) < np.select(
        [child, ep["trigger_category"].eq("rheumatic"), ep["trigger_category"].eq("malignancy")],
        [0.1, 0.35, 0.4], 0.12)
    f["bm_haemophagocytosis"] = pick(r, (("yes", .5), ("no", .15), ("not_done", .35)), n)
    band = r.random(n) < 0.3
    f["max_temp_c"] = np.round(np.where(band, r.uniform(*criteria.TEMP_BANDS[0], n),
                                        r.uniform(*criteria.TEMP_BANDS[1], n)), 1)

    lab = {
        "ferritin": np.exp(r.normal(np.log(9000) + 0.4 * z, 1.0)),
        "platelets": np.where(sjia, np.exp(r.normal(np.log(140), 0.35, n)),
                              np.exp(r.normal(np.log(65) - 0.35 * z, 0.55))),
        "hb": r.normal(np.where(child, 92, 86), 12),
        "wbc": np.where(sjia, np.exp(r.normal(np.log(9), 0.4, n)), np.exp(r.normal(np.log(3.0), 0.6, n))),
        "fibrinogen": np.where(sjia, r.normal(2.4, 0.6, n), r.normal(1.8, 0.8, n)),
        "triglycerides": np.exp(r.normal(np.log(3.2), 0.45, n)),
        "ast": np.exp(r.normal(np.log(100), 0.8, n)),
        "crp": np.exp(r.normal(np.log(np.where(sjia, 180, 110)), 0.6)),
        "bilirubin": np.exp(r.normal(np.log(28), 0.7, n)),
        "creatinine": np.exp(r.normal(np.log(np.where(child, 40, 85)) + 0.25 * f["icu"], 0.35)),
        "scd25": np.exp(r.normal(np.log(8000), 0.7, n)),
    }
    lab["neutrophils"] = lab["wbc"] * r.uniform(0.35, 0.8, n)
    lab["alt"] = lab["ast"] * r.uniform(0.5, 1.3, n)
    # Sepsis: acute-phase response without the hyperferritinaemic, consumptive picture of HLH.
    sep = {
        "ferritin": r.uniform(150, 420, n), "platelets": r.uniform(210, 380, n), "hb": r.uniform(105, 140, n),
        "wbc": r.uniform(12, 25, n), "fibrinogen": r.uniform(4.6, 7.5, n), "triglycerides": r.uniform(0.7, 1.3, n),
        "ast": r.uniform(15, 80, n), "crp": r.uniform(150, 350, n), "scd25": np.full(n, np.nan),
    }
    for test, values in sep.items():
        lab[test] = np.where(sepsis, values, lab[test])
    lab["neutrophils"] = np.where(sepsis, lab["wbc"] * r.uniform(0.7, 0.9, n), lab["neutrophils"])
    for col in ("hepatomegaly", "splenomegaly"):
        f[col] &= ~sepsis
    f["bm_haemophagocytosis"] = np.where(sepsis, "not_done", f["bm_haemophagocytosis"])
    f["icu"] &= ~sepsis | (r.random(n) < 0.3)
    # Some LDN cohort ferritins exceed the assay's upper dilution (printed '>100000').
    over = ep.index[ep["kind"].eq("cohort") & ep["centre"].eq("LDN") & ep["case"].eq("")]
    over = r.choice(over, size=min(n_ferritin_over_assay, len(over)), replace=False)
    lab["ferritin"][ep.index.get_indexer(over)] = r.uniform(110_000, 180_000, len(over))
    for test, values in lab.items():
        lo, hi = LAB_PLAUSIBLE[test]
        f[test] = np.clip(values, max(lo, {"hb": 50, "platelets": 4}.get(test, 0.05)), hi * 0.9)

    f["sjia"] = sjia
    core = ~sepsis
    # sHLH without a ferritin above 500 is rare enough to leave out.
    f["ferritin"] = np.where(core, np.maximum(f["ferritin"], r.uniform(900, 1500, n)), f["ferritin"])
    low = ep["case"].eq("ferritin_below_500").to_numpy()
    f["ferritin"] = np.where(low, r.uniform(250, 420, n), f["ferritin"])  # below 500 / MARGIN
    f = _clear_and_upgrade(f, core, r, keep_ferritin=low)
    f["scd25"] = np.where(r.random(n) < np.where(child, 0.7, 0.6), f["scd25"], np.nan)
    _check_definition(f, core, sepsis)
    return f


def _clear(f: pd.DataFrame) -> pd.DataFrame:
    for test in criteria.CUTOFFS:
        f[test] = criteria.clear_of_cutoffs(test, f[test].to_numpy())
    # Neutrophils stay below the white count and clear of their own cut-off.
    lo = 1.0 / criteria.MARGIN
    neut = np.minimum(f["neutrophils"], 0.95 * f["wbc"])
    f["neutrophils"] = np.where((neut > lo) & (neut < 1.0 * criteria.MARGIN), lo * 0.97, neut)
    return f


def _clear_and_upgrade(f: pd.DataFrame, core: np.ndarray, r: np.random.Generator,
                       keep_ferritin: np.ndarray) -> pd.DataFrame:
    """Push labs clear of every cut-off, then strengthen core episodes one finding at a time
    (in the order a clinician would find them) until the HScore is far above 169; the
    ferritin of `keep_ferritin` episodes stays as it is."""
    n = len(f)
    upgrades = (
        ("bm_haemophagocytosis", lambda: np.full(n, "yes", dtype=object)),
        ("splenomegaly", lambda: np.ones(n, bool)),
        ("ferritin", lambda: np.where(keep_ferritin, f["ferritin"], np.maximum(f["ferritin"],
                                                                              r.uniform(7000, 14000, n)))),
        ("triglycerides", lambda: np.maximum(f["triglycerides"], r.uniform(4.6, 7.0, n))),
        ("fibrinogen", lambda: np.minimum(f["fibrinogen"], r.uniform(0.6, 1.3, n))),
        ("hepatomegaly", lambda: np.ones(n, bool)),
        ("max_temp_c", lambda: np.round(r.uniform(39.7, 40.6, n), 1)),
        ("ast", lambda: np.maximum(f["ast"], r.uniform(60, 300, n))),
        ("hb", lambda: np.minimum(f["hb"], r.uniform(68, 79, n))),
        ("platelets", lambda: np.minimum(f["platelets"], r.uniform(20, 85, n))),
        ("wbc", lambda: np.minimum(f["wbc"], r.uniform(1.2, 4.3, n))),
    )
    f = _clear(f)
    for column, stronger in upgrades:
        weak = core & (criteria.hscore(f) < criteria.HSCORE_MIN_CORE)
        f[column] = np.where(weak, stronger(), f[column])
        f = _clear(f)
    # sJIA: make the 2016 MAS classification hold on its own as well.
    sjia = core & f["sjia"].to_numpy()
    f["ast"] = np.where(sjia, np.maximum(f["ast"], 65), f["ast"])
    f["fibrinogen"] = np.where(sjia, np.minimum(f["fibrinogen"], 3.0), f["fibrinogen"])
    return _clear(f)


def _check_definition(f: pd.DataFrame, core: np.ndarray, not_meeting: np.ndarray) -> None:
    hs, hlh = criteria.hscore(f), criteria.hlh2004_count(f)
    mas = criteria.mas2016(f, f["sjia"].to_numpy())
    if (hs[core] < criteria.HSCORE_MIN_CORE).any():
        raise AssertionError("generator: a core sHLH episode does not clearly meet the HScore definition")
    if (hs[not_meeting] > criteria.HSCORE_MAX_NOT_MEETING).any() \
            or (hlh[not_meeting] > criteria.HLH2004_MAX_NOT_MEETING).any() or mas[not_meeting].any():
        raise AssertionError("generator: a 'not meeting criteria' episode comes close to the definition")
    if (core & f["sjia"].to_numpy() & ~mas).any():
        raise AssertionError("generator: an sJIA episode does not meet MAS 2016")


def weights(ep: pd.DataFrame, r: np.random.Generator) -> np.ndarray:
    """Body weight (kg): adults by sex; children by an APLS-style formula for age."""
    n = len(ep)
    age = ep["age"].to_numpy()
    adult = np.where(ep["sex"].eq("F"), r.normal(70, 14, n), r.normal(83, 14, n))
    child = np.where(age < 10, 2 * age + 8, 3 * age + 7) * np.exp(r.normal(0, 0.12, n))
    return np.round(np.clip(np.where(age >= 18, adult, np.minimum(child, adult)), 6, 160), 1)


def link_repeat_admissions(ep: pd.DataFrame, n_patients: int, seed: int, n_cases: int = 0) -> pd.DataFrame:
    """Choose the cohort patients transferred between LDN and SHF, those readmitted later in
    2019, and ``n_cases`` people of a 2018 admission (with anakinra) admitted again in 2019, the
    prevalent users (appended as episodes of the same person, dated once the first stay is known)."""
    r = rng(seed, 3)
    ep = ep.assign(person=np.arange(len(ep)), source=-1, transfer=False)
    cohort = ep["kind"].eq("cohort") & ep["case"].eq("")  # a planted case stays a single admission
    # An adult both centres would treat: LDN takes 18-85, SHF 14-80.
    can_transfer = cohort & ((ep["centre"].eq("LDN") & ep["age"].lt(79))
                             | (ep["centre"].eq("SHF") & ep["age"].ge(18.5)))
    n_transfer = min(max(1, round(n_patients / PATIENTS_PER_TRANSFER)), int(can_transfer.sum()))
    transfer = r.choice(ep.index[can_transfer], size=n_transfer, replace=False)
    ep.loc[transfer, "transfer"] = True
    can_return = cohort & ~ep["transfer"] & ep["admit"].le(pd.Timestamp("2019-09-15"))
    n_return = min(max(1, round(n_patients * NON_COHORT_RATES["readmission"])), int(can_return.sum()))
    sources = np.sort(r.choice(ep.index[can_return], size=n_return, replace=False))
    again = ep.loc[sources].assign(kind="readmission", source=sources, admit=pd.NaT)
    earlier = ep.index[ep["kind"].eq("outside_window") & ep["admit"].lt(STUDY_START)]
    earlier = np.sort(rng(seed, 12).choice(earlier, size=min(n_cases, len(earlier)), replace=False))
    # The same disease (trigger) relapsing; the cohort rules exclude them as prevalent users.
    prevalent = ep.loc[earlier].assign(kind="prevalent_user", source=earlier, admit=pd.NaT, case="prevalent_user")
    return pd.concat([ep, again, prevalent], ignore_index=True)


IV_PATTERNS = (("IV_BOLUS", .25), ("IV_CONT", .15), ("SC_IV", .2), ("SC_IVCONT", .1), ("IV_SC", .3))
# Regimen segments: route, continuous, two frequencies and the chance of the first, duration
# range (days), two adult doses (mg), and the paediatric weight-based range: mg/kg/day for SC,
# mg/kg/dose for IV bolus, mg/kg/h for continuous infusion.
SEGMENTS = pd.DataFrame(
    [
        ("SC", "SC", False, "BD", "QDS", .5, 3, 10, 100, 100, 2, 8),
        ("SC", "SC", False, "OD", "BD", .6, 5, 28, 100, 100, 2, 4),
        ("IV_BOLUS", "IV", False, "QDS", "QDS", 1, 3, 10, 100, 200, 1, 2.5),
        ("IV_BOLUS", "IV", False, "TDS", "BD", .5, 2, 5, 100, 100, 1, 2),
        ("IV_CONT", "IV", True, "CONT", "CONT", 1, 2, 7, np.nan, np.nan, .1, .4),
        ("IV_CONT", "IV", False, "QDS", "QDS", 1, 2, 5, 100, 100, 1, 2),
        ("SC_IV", "SC", False, "BD", "QDS", .6, 1, 4, 100, 100, 2, 6),
        ("SC_IV", "IV", False, "QDS", "QDS", 1, 3, 8, 200, 100, 1, 2.5),
        ("SC_IV", "SC", False, "OD", "BD", .5, 7, 21, 100, 100, 2, 4),
        ("SC_IVCONT", "SC", False, "BD", "TDS", .6, 1, 4, 100, 100, 2, 6),
        ("SC_IVCONT", "IV", True, "CONT", "CONT", 1, 3, 8, np.nan, np.nan, .1, .4),
        ("SC_IVCONT", "SC", False, "OD", "BD", .5, 7, 21, 100, 100, 2, 4),
        ("IV_SC", "IV", False, "QDS", "QDS", 1, 3, 8, 100, 200, 1, 2.5),
        ("IV_SC", "SC", False, "BD", "OD", .6, 7, 28, 100, 100, 2, 4),
    ],
    columns=["pattern", "route", "continuous", "freq_a", "freq_b", "p_a", "dur_lo", "dur_hi", "dose_a", "dose_b",
             "per_kg_lo", "per_kg_hi"],
)


def regimen(episode: np.ndarray, pattern: np.ndarray, u: np.ndarray) -> pd.DataFrame:
    """The segments of each episode's regimen (SEGMENTS' rows of its pattern, in order) with
    start and stop days from the index date. Segment j of the i-th episode lasts
    dur_lo + floor(u[i, j] * (dur_hi - dur_lo + 1)) days, so an episode's timings depend on its
    own draws only, whatever the regimens of the others."""
    seg = pd.DataFrame({"episode": episode, "pattern": pattern, "i": np.arange(len(episode))})
    seg = seg.merge(SEGMENTS, on="pattern", how="inner")  # keeps the episodes' order
    i, j = seg.pop("i").to_numpy(), seg.groupby("episode").cumcount().to_numpy()
    span = (seg["dur_hi"] - seg["dur_lo"] + 1).to_numpy()
    duration = seg["dur_lo"].to_numpy() + np.floor(u[i, j] * span).astype(int)
    seg["start_day"] = pd.Series(duration).groupby(seg["episode"].to_numpy()).cumsum().to_numpy() - duration
    seg["stop_day"] = seg["start_day"] + duration - 1
    return seg


# ----------------------------------------------------------------------------- effect model
# IV starts on days 0..4 from the first dose, as the regimens time them: 70% of IV patients start
# on IV (IV_BOLUS, IV_CONT, IV_SC: .25 + .15 + .3 of IV_PATTERNS), 30% switch from SC on day 1-4
# (SC_IV, SC_IVCONT, whose first SC segment lasts 1-4 days), 7.5% on each day.
EFFECT_DAY_SHARE = (0.70, 0.075, 0.075, 0.075, 0.075)
IV_FIRST_PATTERNS = (("IV_BOLUS", .25), ("IV_CONT", .15), ("IV_SC", .3))
SWITCH_PATTERNS = (("SC_IV", .2), ("SC_IVCONT", .1))
SEVERITY_HSCORE = (250.0, 26.0)  # severity = (HScore - 250) / 26: about mean 0, SD 1 in the cohort
DEATH_TAU = 24.0  # days: the baseline hazard falls as exp(-t / 24)
HORIZON = 90.0
EFFECT_COLUMNS = ("severity", "log_hazard", "hazard_start", "exposure", "plan_day", "iv_day",
                  *(f"plan_score_{k}" for k in range(len(EFFECT_DAY_SHARE))))


def baseline_cumhaz(t) -> np.ndarray:
    """Baseline cumulative hazard of death, days from the first dose: 1 at day 90, a finite limit
    (1.02) after it, so that, as in the embedded generator, death is a risk of the acute illness:
    ``(1 - exp(-t / 24)) / (1 - exp(-90 / 24))``; ``inf`` gives the limit."""
    t = np.asarray(t, dtype=float)
    return -np.expm1(-t / DEATH_TAU) / -np.expm1(-HORIZON / DEATH_TAU)


def inverse_cumhaz(cumhaz) -> np.ndarray:
    """The day at which the baseline cumulative hazard reaches ``cumhaz`` (inf: never)."""
    h = np.asarray(cumhaz, dtype=float) * -np.expm1(-HORIZON / DEATH_TAU)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h < 1 - 1e-12, -DEATH_TAU * np.log1p(-np.minimum(h, 1)), np.inf)


def death_time(exposure, log_hazard, hazard_start, iv_day, true_hr: float) -> np.ndarray:
    """Continuous time of death (days from the first dose; inf: never) of a patient whose hazard is
    ``exp(log_hazard) * dLambda0(t)`` from ``hazard_start`` on (none before: known alive then),
    times ``true_hr`` from ``iv_day`` on (inf: never IV): the first t at which the cumulative
    hazard reaches ``exposure`` (an Exp(1) draw, so the same draw gives the patient's death under
    any IV start: the counterfactual strategies of the simulation share it)."""
    need = np.asarray(exposure, dtype=float) * np.exp(-np.asarray(log_hazard, dtype=float))
    a = baseline_cumhaz(hazard_start)
    v = baseline_cumhaz(np.maximum(iv_day, hazard_start))
    on_sc = need <= v - a
    return inverse_cumhaz(np.where(on_sc, a + need, v + (need - (v - a)) / true_hr))


def effect_course(ep: pd.DataFrame, f: pd.DataFrame, p_death: np.ndarray, second_admit_day: np.ndarray,
                  readmitted: np.ndarray, n_iv: int, seed: int, true_hr: float, confounding: float) -> pd.DataFrame:
    """The cohort's IV plan and deaths with a known effect of IV and confounding by indication.

    **Severity** ``s = (HScore - 250) / 26`` (the baseline HScore the cohort rules compute, an
    adjustment-set variable; about mean 0 and SD 1 in the cohort).

    **Death**: a proportional-hazards model in continuous time from the first dose,
    ``h(t) = exp(eta) dLambda0(t) * true_hr^[on IV at t]``, with ``Lambda0`` of
    :func:`baseline_cumhaz` and ``eta = log(-log(1 - p)) + confounding * s - confounding^2 / 2``:
    ``p`` is the embedded generator's risk of death (trigger, ICU, age, CNS involvement), which
    the model reproduces by day 90 when ``confounding`` is 0, and the last term keeps the mean
    hazard about the same when it is not. IV multiplies the hazard by ``true_hr`` from the day of
    its first dose on (a death on that day is a death on IV: the time convention of
    :mod:`stormcohort.stats.target_trial`), whatever came before. The day of death is the whole
    day (``floor``) of the continuous time. As in the embedded generator, a patient readmitted
    later does not die, and a transferred patient is alive until 4 days after arriving at the
    second centre (no hazard before).

    **IV plan**, by day of the first IV dose (days 0-4, ``EFFECT_DAY_SHARE`` of the n_iv IV
    patients on each; day 0: an IV-first regimen, days 1-4: SC then IV): on day k, the cohort
    patients not yet planned are ranked by ``confounding * s + L_k`` (L_k standard logistic,
    drawn afresh each day) and planned IV from the top until as many as the day's share are alive
    on day k (a patient planned for a switch on a day after death stays SC, as in the embedded
    generator). In a large cohort this is a discrete-time logistic hazard of starting IV,
    ``logit P(IV on day k | no IV before, alive on day k, s) = confounding * s - c_k``: severity
    raises both the chance and the earliness of IV, and nothing else does (no variable outside the
    adjustment set of the analyses), the model of the clone-censor-weight censoring weights.

    **The estimand** this makes known: with ``true_hr`` the hazard ratio of being on IV, given
    every prognostic variable, the per-protocol contrast of "IV within G days of the first dose"
    vs "no IV through day G" (the clone-censor-weight strategies) has a marginal hazard ratio near
    ``true_hr`` (exactly 1 when ``true_hr`` is 1): not equal to it, since a hazard ratio is not
    collapsible over the other prognostic variables and the SC strategy allows switches after day
    G. The simulation computes it on a large sample from the counterfactual death times
    (:func:`death_time` with the same Exp(1) draw under each strategy; ``plan_score_k`` and the
    day thresholds give the switches after G under the SC strategy).

    Returns, per episode (non-cohort rows: no plan, NaN): ``plan_day``, ``iv_day`` (the day IV
    starts, NaN when never), ``died``, ``death_day``, ``pattern`` and ``u0`` (the regimen giving
    that first IV day), and ``EFFECT_COLUMNS``. Draws: ``rng(seed, 15)`` only.
    """
    if not (np.isfinite(true_hr) and true_hr > 0):
        raise ValueError(f"--true-hr {true_hr}: expected a hazard ratio > 0")
    if not np.isfinite(confounding):
        raise ValueError(f"--confounding {confounding}: expected a finite number")
    r = rng(seed, 15)
    n = len(ep)
    days_k = len(EFFECT_DAY_SHARE)
    cohort = ep["kind"].eq("cohort").to_numpy()
    transfer = ep["transfer"].to_numpy()
    per_kg_child = ep["case"].eq("dose_per_kg_without_weight").to_numpy()
    exposure = r.exponential(size=n)
    noise = r.logistic(size=(n, days_k))
    first_pattern = pick(r, IV_FIRST_PATTERNS, n)
    switch_pattern = pick(r, SWITCH_PATTERNS, n)

    severity = (criteria.hscore(f) - SEVERITY_HSCORE[0]) / SEVERITY_HSCORE[1]
    log_hazard = np.log(-np.log1p(-np.minimum(p_death, 0.999))) + confounding * severity - confounding**2 / 2
    hazard_start = np.where(transfer, second_admit_day + 4.0, 0.0)
    exposure = np.where(readmitted, np.inf, exposure)
    on_sc = death_time(exposure, log_hazard, hazard_start, np.inf, true_hr)  # death time without IV
    score = confounding * severity[:, None] + noise

    targets = apportion(n_iv, EFFECT_DAY_SHARE) if n_iv else np.zeros(days_k, int)
    plan = np.full(n, np.nan)
    # The per-kg IV children (a planted case) start on IV first, as many as day 0 has room for;
    # the others are not planned IV (their case is dropped, as in the embedded generator).
    forced = np.flatnonzero(cohort & per_kg_child)[: targets[0]]
    plan[forced] = 0
    for k in range(days_k):
        need = targets[k] - (len(forced) if k == 0 else 0)
        pool = np.flatnonzero(cohort & np.isnan(plan) & ~per_kg_child)
        order = pool[np.argsort(-score[pool, k], kind="stable")]
        alive = np.cumsum(on_sc[order] >= k)
        if need > (alive[-1] if len(alive) else 0):
            raise ValueError(f"--iv-patients {n_iv}: too few cohort patients left alive to start IV on day {k}")
        if need > 0:
            plan[order[: np.searchsorted(alive, need) + 1]] = k
    received = ~np.isnan(plan) & (on_sc >= np.nan_to_num(plan, nan=np.inf))
    iv_day = np.where(received, plan, np.nan)
    t = death_time(exposure, log_hazard, hazard_start, np.where(received, plan, np.inf), true_hr)
    died = np.isfinite(t)
    pattern = np.where(plan == 0, np.where(transfer | per_kg_child, "IV_SC", first_pattern),
                       np.where(transfer, "SC_IV", switch_pattern))
    out = pd.DataFrame({
        "plan_day": plan, "iv_day": iv_day, "died": died, "death_day": np.where(died, np.floor(t), np.nan),
        "pattern": pattern,
        # the first (SC) segment of a switch lasts dur_lo + floor(u0 * 4) = k days (SEGMENTS: 1-4)
        "u0": np.where(np.nan_to_num(plan) >= 1, (np.nan_to_num(plan) - 0.5) / 4, np.nan),
        "severity": severity, "log_hazard": log_hazard, "hazard_start": hazard_start, "exposure": exposure,
    }, index=ep.index)
    for k in range(days_k):
        out[f"plan_score_{k}"] = score[:, k]
    return out


def draw_course(ep: pd.DataFrame, f: pd.DataFrame, n_iv: int, seed: int, true_hr: float = 1.0,
                confounding: float | None = None) -> pd.DataFrame:
    """Treatment group, timings (days from the index date) and outcome of each episode.

    Deaths fall when they fall. IV is planned for the sickest cohort patients; one whose planned
    switch from SC to IV would come after death never receives IV and stays in the SC group, and
    the next sickest is planned IV too, until exactly n_iv cohort patients receive IV.

    With ``true_hr`` other than 1 or a ``confounding`` strength, the cohort's IV plan and deaths
    follow the effect model instead (:func:`effect_course`: a known hazard ratio of IV, confounding
    by indication through the HScore); every other draw is the same."""
    r = rng(seed, 4)
    n = len(ep)
    kind = ep["kind"].to_numpy()
    cohort = kind == "cohort"
    transfer = ep["transfer"].to_numpy()
    per_kg_child = ep["case"].eq("dose_per_kg_without_weight").to_numpy()
    sickness = (1.2 * f["icu"] + 0.6 * f["oedema"] + 0.8 * f["cns"] + 0.5 * (f["platelets"] < 50)
                + 0.3 * np.log10(f["ferritin"]) + r.normal(0, 0.6, n)).to_numpy()
    has_anakinra = np.isin(kind, ["cohort", "outside_window", *REPEAT_KINDS]) | (
        np.isin(kind, ["familial", "not_meeting_criteria"]) & (r.random(n) < 0.5))
    # The regimen an episode follows if given IV, and the draws that time its segments.
    iv_pattern = pick(r, IV_PATTERNS, n)
    iv_pattern = np.where(transfer, "SC_IV", iv_pattern)  # long enough to continue after transfer
    iv_pattern = np.where(per_kg_child, "IV_SC", iv_pattern)  # the case's per-kg IV dose comes first
    u = rng(seed, 11).random((n, 3))

    c = pd.DataFrame(index=ep.index)
    c[["u0", "u1", "u2"]] = u
    # Diagnostic labs come first: the first dose is given a day or more after admission (a
    # transfer arrives at the second centre within a week of the first admission).
    c["index_off"] = np.where(has_anakinra, 1 + r.choice(4, size=n, p=[.4, .3, .2, .1]), 0)
    c["index_off"] = np.where(transfer, np.minimum(c["index_off"], 3), c["index_off"])
    c["transfer_day"] = np.where(transfer, r.integers(2, 4, n), -1)       # discharge from the first centre
    c["second_admit_day"] = np.where(transfer, c["transfer_day"] + r.integers(0, 2, n), -1)

    category = ep["trigger_category"].to_numpy()
    p_death = pd.Series(category).map(DEATH_BASE).to_numpy() * np.where(f["icu"], 1.5, 0.65) \
        * np.where(ep["adult"], 1.0, 0.5) * np.where(f["cns"], 1.3, 1.0)
    p_death = np.where(kind == "not_meeting_criteria", 0.15, np.minimum(p_death, 0.85))
    readmitted = np.isin(np.arange(n), ep["source"])
    died = (r.random(n) < p_death) & ~readmitted
    death_day = 2 + np.round(r.gamma(1.1, 20, n))
    # A transferred patient was alive at the transfer (and some days after: the course continues).
    death_day = np.where(transfer, np.maximum(death_day, c["second_admit_day"] + 4), death_day)

    effect = None
    if true_hr != 1 or confounding is not None:
        effect = effect_course(ep, f, p_death, c["second_admit_day"].to_numpy(), readmitted, n_iv, seed, true_hr,
                               confounding or 0.0)
        iv = effect["plan_day"].notna().to_numpy()
        iv_pattern = np.where(cohort, effect["pattern"].to_numpy(), iv_pattern)
        c["u0"] = np.where(cohort & effect["plan_day"].ge(1).to_numpy(), effect["u0"].to_numpy(), c["u0"])
        died = np.where(cohort, effect["died"].to_numpy(), died)
        death_day = np.where(cohort, effect["death_day"].to_numpy(), death_day)
    else:
        # IV: the sickest cohort patients (the per-kg IV children first) until n_iv of them receive it.
        seg = regimen(np.arange(n), iv_pattern, u)
        first_iv = seg[seg["route"].eq("IV")].groupby("episode")["start_day"].min().reindex(np.arange(n)).to_numpy()
        receives = first_iv <= np.where(died, death_day, np.inf)  # doses stop at death (build_dosing)
        ranked = np.flatnonzero(cohort)[np.lexsort((-sickness[cohort], ~per_kg_child[cohort]))]
        received = np.cumsum(receives[ranked])
        if n_iv > (received[-1] if len(received) else 0):
            raise ValueError(f"--iv-patients {n_iv}: only {received[-1] if len(received) else 0} cohort patients "
                             "live long enough to receive IV anakinra")
        iv = np.zeros(n, bool)
        iv[ranked[: np.searchsorted(received, n_iv) + 1 if n_iv else 0]] = True
    p_iv_other = pd.Series(kind).map({"outside_window": .35, "familial": .5, "not_meeting_criteria": .2,
                                      "prevalent_user": .35})
    iv |= ~cohort & (r.random(n) < p_iv_other.fillna(0).to_numpy())
    iv &= has_anakinra
    c["has_anakinra"], c["iv"] = has_anakinra, iv  # iv: planned; the doses say who received it
    c["pattern"] = np.where(iv, iv_pattern, "SC")
    los = 6 + np.round(r.gamma(2, 5, n)) + 7 * f["icu"].to_numpy()
    los = np.where(iv, np.maximum(los, 10), los)
    los = np.where(transfer, np.maximum(los, c["second_admit_day"] + 6), los)
    c["los_after_index"] = np.minimum(los, 60)

    c["death_day"] = np.where(died, death_day, np.nan)
    c["response_start"] = np.where(transfer, c["second_admit_day"], 0)
    fever = 1 + np.round(r.gamma(1.6, 1.6, n)) + c["response_start"]
    fever = np.where(transfer, np.maximum(fever, c["second_admit_day"] + 2), fever)
    undocumented = r.random(n) < 0.05
    c["fever_day"] = np.where((died & (death_day <= fever)) | undocumented, np.nan, fever)
    c["response"] = np.where(died, r.uniform(-0.15, 0.35, n),
                             np.where(kind == "no_anakinra", r.uniform(0.3, 0.8, n), r.uniform(0.6, 1.3, n)))
    lost = r.random(n) < 0.12
    c["last_seen_day"] = np.where(died, death_day,
                                  c["los_after_index"] + np.where(lost, r.integers(0, 50, n), r.integers(95, 400, n)))
    c["icu_days"] = np.where(f["icu"], np.minimum(2 + np.round(r.gamma(1.5, 4, n)), c["los_after_index"]), np.nan)
    if effect is not None:  # what the known-truth simulation needs (stormcohort.simulate_target_trial)
        c[[f"effect_{k}" for k in EFFECT_COLUMNS]] = effect[list(EFFECT_COLUMNS)].to_numpy()
    return c

def date_episodes(ep: pd.DataFrame, c: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Absolute dates; a readmission follows its first stay by 2-4 weeks (still in 2019), a
    prevalent user's 2019 admission follows the 2018 one by 1-4 months."""
    r = rng(seed, 5)
    c = c.copy()
    in_hospital = c["death_day"] <= c["los_after_index"]
    c["end_day"] = np.where(in_hospital, c["death_day"], c["los_after_index"])  # discharge, days from index
    again = ep["kind"].eq("readmission").to_numpy()
    admit = ep["admit"].copy()
    index = admit + days(c["index_off"])
    discharge = index + days(c["end_day"])
    sources = ep.loc[again, "source"].to_numpy()
    readmit = discharge.to_numpy()[sources] + days(r.integers(14, 31, again.sum())).to_numpy()
    admit[again] = np.minimum(readmit, np.datetime64("2019-12-20"))
    again = ep["kind"].eq("prevalent_user").to_numpy()
    sources = ep.loc[again, "source"].to_numpy()
    later = discharge.to_numpy()[sources] + days(r.integers(30, 121, again.sum())).to_numpy()
    admit[again] = np.clip(later, np.datetime64("2019-01-14"), np.datetime64("2019-12-20"))
    c["admit"] = admit
    c["index"] = admit + days(c["index_off"])
    return c


def build_admissions(ep: pd.DataFrame, f: pd.DataFrame, c: pd.DataFrame, weight: np.ndarray,
                     extract: pd.Timestamp) -> pd.DataFrame:
    """One row per admission; a transferred episode gives a first stay and a merged second one."""
    idx = c["index"]
    base = pd.DataFrame({
        "episode": ep.index, "person": ep["person"].to_numpy(), "centre": ep["centre"].to_numpy(),
        "kind": ep["kind"].to_numpy(), "admit": c["admit"].to_numpy(),
        "discharge": (idx + days(c["end_day"])).to_numpy(),
        "diagnosis": ep["diagnosis"].to_numpy(), "trigger_category": ep["trigger_category"].to_numpy(),
        "trigger_detail": ep["trigger_detail"].to_numpy(), "weight_kg": weight,
        "max_temp_c": f["max_temp_c"].to_numpy(),
        **{k: f[k].to_numpy() for k in ("hepatomegaly", "splenomegaly", "immunosuppression",
                                         "bm_haemophagocytosis", "icu", "oedema", "cns")},
        "icu_days": c["icu_days"].to_numpy(),
        "died": c["death_day"].notna().to_numpy(),
        "death_date": (idx + days(c["death_day"])).to_numpy(),
        "last_seen": (idx + days(c["last_seen_day"])).to_numpy(),
        "fever_resolution": (idx + days(c["fever_day"])).to_numpy(),
        "index": idx.to_numpy(),
        "planned_iv": c["iv"].to_numpy(), "case": ep["case"].to_numpy(), "outcome_recorded": True,
    })
    moved = ep["transfer"].to_numpy()
    first = base[moved].copy()
    first_discharge = (idx + days(c["transfer_day"]))[moved].to_numpy()
    first = first.assign(discharge=first_discharge, died=False, death_date=pd.NaT, last_seen=first_discharge,
                         fever_resolution=pd.NaT, icu=False, icu_days=np.nan)
    second = base[moved].assign(
        kind="transfer_merged", centre=np.where(base.loc[moved, "centre"].eq("LDN"), "SHF", "LDN"),
        admit=(idx + days(c["second_admit_day"]))[moved].to_numpy())
    second["index"] = second["admit"]
    adm = pd.concat([base[~moved], first, second]).sort_values(["episode", "admit"], kind="stable")
    adm = adm.reset_index(drop=True)
    # Nothing after the extract date is known yet.
    late_death = adm["death_date"] > extract
    adm.loc[late_death, ["died", "death_date"]] = [False, pd.NaT]
    adm["last_seen"] = adm["last_seen"].clip(upper=extract)
    for col in ("discharge", "fever_resolution"):
        adm[col] = adm[col].where(adm[col] <= extract)
    return adm


def admission_of(adm: pd.DataFrame, episode: np.ndarray, when: pd.Series) -> np.ndarray:
    """Row of `adm` holding each (episode, date): the episode's last admission starting on or before it."""
    key = pd.DataFrame({"episode": episode, "when": pd.to_datetime(when).to_numpy(), "order": np.arange(len(episode))})
    starts = adm[["episode", "admit"]].assign(row=np.arange(len(adm))).sort_values("admit")
    found = pd.merge_asof(key.sort_values("when"), starts, left_on="when", right_on="admit", by="episode",
                          direction="backward")
    # A date before the episode's first admission (none are made) would have no row.
    return found.sort_values("order")["row"].to_numpy()


def build_dosing(ep: pd.DataFrame, c: pd.DataFrame, adm: pd.DataFrame, weight: np.ndarray,
                 per_kg_episodes: np.ndarray, extract: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Regimen segments from the templates; weight-based for children; cut at discharge (IV),
    death and the extract date; a transferred course is split between the two stays."""
    r = rng(seed, 6)
    on = np.flatnonzero(c["has_anakinra"].to_numpy())
    # The same timings draw_course planned IV with.
    seg = regimen(on, c["pattern"].to_numpy()[on], c[["u0", "u1", "u2"]].to_numpy()[on])
    n = len(seg)
    e = seg["episode"].to_numpy()
    wt = weight[e]
    child = ~ep["adult"].to_numpy()[e]
    seg["frequency"] = np.where(r.random(n) < seg["p_a"], seg["freq_a"], seg["freq_b"])
    per_kg = r.uniform(seg["per_kg_lo"], seg["per_kg_hi"])
    doses_per_day = seg["frequency"].map(DOSES_PER_DAY).to_numpy(dtype=float)  # NaN for infusions
    paed = np.where(seg["route"].eq("SC"), per_kg * wt / doses_per_day, per_kg * wt)
    paed = np.clip(np.round(paed / 5) * 5, 10, np.where(seg["route"].eq("SC"), 100, 200))
    adult = np.where(r.random(n) < 0.5, seg["dose_a"], seg["dose_b"])
    cont = seg["continuous"].to_numpy()
    seg["dose_mg"] = np.where(cont, np.nan, np.where(child, paed, adult))
    seg["rate_mg_per_kg_h"] = np.where(cont, np.round(per_kg, 2), np.nan)
    seg["rate_mg_per_h"] = np.round(seg["rate_mg_per_kg_h"] * wt, 1)
    # A clinician's '2mg/kg' prescription: the dose follows the recorded weight exactly.
    by_weight = np.isin(e, per_kg_episodes) & ~cont
    seg["dose_per_kg"] = np.where(by_weight, 2.0, np.nan)
    seg["dose_mg"] = np.where(by_weight, 2.0 * wt, seg["dose_mg"])

    # IV only in hospital; nothing after death.
    end_day, death_day = c["end_day"].to_numpy()[e], c["death_day"].to_numpy()[e]
    limit = np.fmin(np.where(seg["route"].eq("IV"), end_day, np.inf), death_day)
    keep = seg["start_day"].to_numpy() <= limit
    seg = seg[keep].reset_index(drop=True)
    seg["stop_day"] = np.minimum(seg["stop_day"], limit[keep])
    # Split a transferred course at the transfer.
    e = seg["episode"].to_numpy()
    moved = ep["transfer"].to_numpy()[e]
    t_out, t_in = c["transfer_day"].to_numpy()[e], c["second_admit_day"].to_numpy()[e]
    in_first = ~moved | (seg["start_day"].to_numpy() < t_in)
    before = seg[in_first].copy()
    before["stop_day"] = np.where(moved[in_first], np.minimum(before["stop_day"], t_out[in_first]), before["stop_day"])
    in_second = moved & (seg["stop_day"].to_numpy() >= t_in)
    after = seg[in_second].copy()
    after["start_day"] = np.maximum(after["start_day"], t_in[in_second])
    seg = pd.concat([before, after]).sort_values(["episode", "start_day"], kind="stable")
    index = c["index"].to_numpy()[seg["episode"]]
    seg["start"] = index + days(seg["start_day"]).to_numpy()
    seg["stop"] = index + days(seg["stop_day"]).to_numpy()
    seg = seg[seg["start"] <= extract].copy()
    seg["stop"] = seg["stop"].where(seg["stop"] <= extract)
    seg["adm"] = admission_of(adm, seg["episode"].to_numpy(), seg["start"])
    return seg[["adm", "episode", "start", "stop", "start_day", "route", "continuous", "dose_mg", "frequency",
                "rate_mg_per_h", "rate_mg_per_kg_h", "dose_per_kg"]].reset_index(drop=True)


def build_labs(ep: pd.DataFrame, f: pd.DataFrame, c: pd.DataFrame, adm: pd.DataFrame,
               extract: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Results on days -3..+14 from the index date while in hospital. The day before the first
    dose every test is measured (the diagnostic set: whatever treats the episode comes after
    it), as on admission day for episodes never given anakinra and on arrival at a transfer's
    second centre; but ``P_NO_BASELINE_PLATELETS`` of the core episodes have no platelet count
    until the day after the first dose. Until a day after the response starts (the index; for a transfer, the first
    dose at the second centre) values stay within 4% of baseline, so whichever sample a rule
    takes as baseline scores the same; then each test relaxes towards normal at the episode's
    response rate (worsening in most of those who die)."""
    r = rng(seed, 7)
    n_ep = len(ep)
    start_rel = -c["index_off"].to_numpy()
    grid_e = np.repeat(np.arange(n_ep), len(LAB_DAYS))
    grid_d = np.tile(LAB_DAYS, n_ep)
    t0 = c["response_start"].to_numpy()[grid_e]
    t_out, t_in = c["transfer_day"].to_numpy()[grid_e], c["second_admit_day"].to_numpy()[grid_e]
    moved = ep["transfer"].to_numpy()[grid_e]
    stay = (grid_d >= start_rel[grid_e]) & (grid_d <= c["end_day"].to_numpy()[grid_e])
    stay &= ~moved | (grid_d <= t_out) | (grid_d >= t_in)
    diagnostic = np.where(c["has_anakinra"].to_numpy(), -1, 0)[grid_e]
    full_panel = (grid_d == diagnostic) | (moved & (grid_d == t_in))
    sampled = stay & (full_panel | (r.random(len(grid_d)) < np.where(np.abs(grid_d - 1) <= 2, 0.85, 0.7)))
    e, d = grid_e[sampled], grid_d[sampled]
    full_panel, t0 = full_panel[sampled], t0[sampled]

    n_tests = len(TESTS)
    p_test = np.array([0.9, 0.95, 1, 1, 1, 1, 0.5, 0.3, 0.9, 0.9, 0.9, 0.9, 0.0])
    e_l, d_l = np.repeat(e, n_tests), np.repeat(d, n_tests)
    test = np.tile(np.arange(n_tests), len(e))
    full_l, t0_l = np.repeat(full_panel, n_tests), np.repeat(t0, n_tests)
    baseline = f[list(TESTS)].to_numpy()[e_l, test]
    measured = (full_l | (r.random(len(e_l)) < p_test[test])) & ~np.isnan(baseline)
    # sCD25 is a send-away test: once, at baseline, when it was sent at all.
    measured &= (test != TESTS.index("scd25")) | full_l
    e_l, d_l, test, t0_l, baseline = e_l[measured], d_l[measured], test[measured], t0_l[measured], baseline[measured]

    target = np.array([RECOVERY_TARGET[t] for t in TESTS])[test]
    child = ~ep["adult"].to_numpy()[e_l]
    target = np.where(child & (test == TESTS.index("creatinine")), 35, target)
    rate = np.array([RECOVERY_RATE[t] for t in TESTS])[test] * c["response"].to_numpy()[e_l]
    since = np.maximum(d_l - t0_l - 1, 0)
    settled = target + (baseline - target) * np.exp(-rate * since) * np.exp(r.normal(0, 0.08, len(e_l)))
    value = np.where(d_l <= t0_l + 1, baseline * r.uniform(0.96, 1.04, len(e_l)), settled)
    lo = np.array([{"hb": 45, "platelets": 3}.get(t, 0.05) for t in TESTS])[test]
    hi = np.array([LAB_PLAUSIBLE[t][1] * 0.9 for t in TESTS])[test]
    value = np.clip(value, lo, hi)

    index = c["index"].to_numpy()[e_l]
    # One blood draw per day, mostly on the early-morning round.
    draw = pd.DataFrame({"e": e_l, "d": d_l}).drop_duplicates()
    minutes = np.where(r.random(len(draw)) < 0.8, r.integers(330, 540, len(draw)), r.integers(600, 1410, len(draw)))
    minute_of = pd.Series(minutes, index=pd.MultiIndex.from_frame(draw))
    minute = minute_of.reindex(pd.MultiIndex.from_arrays([e_l, d_l])).to_numpy()
    labs = pd.DataFrame({
        "episode": e_l, "day": d_l, "test": np.array(TESTS)[test], "value": value,
        "sample_time": index + days(d_l).to_numpy() + pd.to_timedelta(minute, unit="min").to_numpy(),
        "near_baseline": d_l <= t0_l + 1,
    })
    labs = labs[labs["sample_time"] < extract].copy()
    # As in real registries, some patients have no platelet count before treatment (a clumped or
    # clotted sample, a count not requested): a missing baseline value of the comparison's
    # adjustment set, at random. Core admissions only (their HScore, 210 or more, keeps the
    # definition met without the cytopenia item's 34 points); none of the planted cases.
    eligible = (ep["kind"].eq("cohort") & ep["case"].eq("") & ~ep["transfer"] & c["has_anakinra"]).to_numpy()
    no_count = eligible & (rng(seed, 16).random(n_ep) < P_NO_BASELINE_PLATELETS)
    labs = labs[~(labs["test"].eq("platelets") & labs["day"].le(0) & no_count[labs["episode"]])].copy()
    labs["adm"] = admission_of(adm, labs["episode"].to_numpy(), labs["sample_time"].dt.normalize())
    return labs.sort_values(["adm", "sample_time", "test"], kind="stable").reset_index(drop=True)


# Adverse events: canonical term, chance per episode, day range from the response start,
# grade probabilities (1-4), chance of 'serious' at grade >= 3.
AE_TYPES = (
    ("alt_ast_increased", 0.15, 3, 10, (.1, .5, .4, 0)),
    ("bacterial_infection", 0.14, 3, 40, (0, .4, .45, .15)),
    ("fungal_infection", 0.03, 5, 40, (0, 0, .6, .4)),
    ("viral_infection", 0.05, 3, 40, (0, .6, .4, 0)),
    ("injection_site_reaction", 0.14, 0, 0, (.7, .3, 0, 0)),
    ("infusion_reaction", 0.08, 0, 0, (.6, .4, 0, 0)),
    ("neutropenia", 0.04, 3, 20, (0, 0, .7, .3)),
    ("thrombocytopenia", 0.03, 3, 20, (0, 0, .8, .2)),
    ("dress_eosinophilia", 0.01, 7, 21, (0, 0, 1, 0)),
)


def build_adverse_events(ep: pd.DataFrame, c: pd.DataFrame, adm: pd.DataFrame, dosing: pd.DataFrame,
                         labs: pd.DataFrame, extract: pd.Timestamp, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events during anakinra treatment and follow-up. Injection-site reactions fall within a
    subcutaneous segment, infusion reactions within an intravenous one; a third of deaths carry
    a fatal (grade 5) infection. Transaminitis lifts the ALT/AST results that follow it."""
    r = rng(seed, 8)
    treated = np.flatnonzero(c["has_anakinra"].to_numpy())
    parts = []
    for term, p, lo, hi, grades in AE_TYPES:
        e = treated[r.random(len(treated)) < p]
        if term in ("injection_site_reaction", "infusion_reaction"):
            route = "SC" if term == "injection_site_reaction" else "IV"
            segs = dosing[dosing["route"].eq(route) & dosing["episode"].isin(e)]
            segs = segs.sample(frac=1, random_state=r.integers(2**31)).drop_duplicates("episode")
            length = (segs["stop"].fillna(segs["start"]) - segs["start"]).dt.days.to_numpy()
            e = segs["episode"].to_numpy()
            when = segs["start"].to_numpy() + days(np.floor(r.random(len(e)) * (length + 1))).to_numpy()
        else:
            offset = c["response_start"].to_numpy()[e] + r.integers(lo, hi + 1, len(e))
            when = c["index"].to_numpy()[e] + days(offset).to_numpy()
        grade = r.choice(4, size=len(e), p=grades) + 1
        parts.append(pd.DataFrame({"episode": e, "event_date": when, "term": term, "grade": grade,
                                   "serious": (grade >= 3) & (r.random(len(e)) < 0.7)}))
    died = np.flatnonzero(c["death_day"].notna().to_numpy() & c["has_anakinra"].to_numpy())
    fatal = died[r.random(len(died)) < 0.33]
    parts.append(pd.DataFrame({"episode": fatal, "term": "bacterial_infection", "grade": 5, "serious": True,
                               "event_date": c["index"].to_numpy()[fatal]
                               + days(c["death_day"].to_numpy()[fatal]).to_numpy()}))
    ae = pd.concat(parts, ignore_index=True)
    # Within follow-up: not after death, the person's next admission or the extract date.
    death = c["index"] + days(c["death_day"])
    next_admit = pd.Series(pd.NaT, index=ep.index, dtype="datetime64[ns]")
    again = ep["source"].ge(0)
    next_admit[ep.loc[again, "source"].to_numpy()] = c.loc[again, "admit"].to_numpy()
    limit = death.fillna(pd.Timestamp.max).clip(upper=next_admit.fillna(pd.Timestamp.max) - pd.Timedelta(days=1))
    ae = ae[(ae["event_date"] <= limit.to_numpy()[ae["episode"]]) & (ae["event_date"] <= extract)].copy()
    ae["adm"] = admission_of(adm, ae["episode"].to_numpy(), ae["event_date"])
    ae = ae.sort_values(["adm", "event_date", "term"], kind="stable").reset_index(drop=True)

    # Transaminitis: ALT and AST from the event onwards rise 3-6 fold.
    hit = ae[ae["term"].eq("alt_ast_increased")].drop_duplicates("episode")
    onset = pd.Series(hit["event_date"].to_numpy(), index=hit["episode"].to_numpy())
    factor = pd.Series(r.uniform(3, 6, len(hit)), index=hit["episode"].to_numpy())
    after = labs["test"].isin(["alt", "ast"]) & (labs["sample_time"].dt.normalize() >= labs["episode"].map(onset))
    labs.loc[after, "value"] = np.minimum(labs.loc[after, "value"] * labs.loc[after, "episode"].map(factor), 15_000)
    return ae, labs


def build_persons(ep: pd.DataFrame, adm: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Identifiers of everyone admitted: an MRN per centre attended, an NHS number for anyone
    seen in the UK, a postcode (LDN records it) or ZIP (BHM)."""
    from stormcohort.synth import identities

    r = rng(seed, 10)
    first = ep[ep["source"].lt(0)].set_index("person")
    persons = pd.DataFrame({"sex": first["sex"], "dob": first["dob"]}).sort_index()
    n = len(persons)
    persons["surname"], persons["forename"] = identities.names(r, persons["sex"].to_numpy())
    persons["nhs"] = identities.nhs_numbers(r, n)
    seen = adm.groupby(["person", "centre"]).size().unstack(fill_value=0).reindex(persons.index, fill_value=0) > 0
    for centre, letter in (("LDN", "L"), ("SHF", "S"), ("BHM", "B")):
        persons[f"mrn_{centre}"] = np.where(seen.get(centre, False), identities.mrns(r, n, letter), None)
    persons["nhs"] = persons["nhs"].where(seen.get("LDN", False) | seen.get("SHF", False))
    persons["postcode"] = identities.uk_postcodes(r, n, identities.LONDON_DISTRICTS)
    persons["zip"] = identities.us_zips(r, n)
    return persons


def clinical_course(n_patients: int, n_iv: int, seed: int, extract_date: pd.Timestamp, n_dirt: int,
                    true_hr: float = 1.0, confounding: float | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The episodes (``ep``), their admission findings (``f``) and course (``c``: treatment,
    days from the index date, death), before dates, doses, labs and formats: what
    :func:`simulate` builds the delivery from, and all the known-truth simulation needs."""
    from stormcohort.synth import cases

    ep = plan_episodes(n_patients, extract_date, seed, n_cases=n_dirt)
    ep = link_repeat_admissions(ep, n_patients, seed, n_cases=n_dirt)
    ep = cases.mark_low_ferritin(ep, n_dirt, seed)
    f = draw_features(ep, seed, n_ferritin_over_assay=n_dirt)
    c = draw_course(ep, f, n_iv, seed, true_hr, confounding)
    # A per-kg child the IV group has no room for (--iv-patients below n_dirt) is no case.
    ep["case"] = ep["case"].mask(ep["case"].eq("dose_per_kg_without_weight") & ~c["iv"], "")
    return ep, f, c


def simulate(n_patients: int, n_iv: int, seed: int, extract_date: pd.Timestamp, n_dirt: int,
             true_hr: float = 1.0, confounding: float | None = None) -> Simulation:
    """The whole synthetic world, in canonical units; ``n_dirt`` scales the few special cases
    that the export formats need (ferritins over the assay limit, '2mg/kg' prescriptions) and
    the planted cases (synth/cases.py). ``true_hr``, ``confounding``: :func:`draw_course`."""
    from stormcohort.synth import cases

    ep, f, c = clinical_course(n_patients, n_iv, seed, extract_date, n_dirt, true_hr, confounding)
    c = date_episodes(ep, c, seed)
    ep["age"] = (c["admit"] - ep["dob"]).dt.days / 365.25
    weight = weights(ep, rng(seed, 9))
    again = ep["source"].ge(0).to_numpy()
    weight[again] = weight[ep.loc[again, "source"].to_numpy()]  # the same person again
    # '2mg/kg' prescriptions at SHF go to its lightest cohort patients (adolescents if any),
    # and to the per-kg IV children.
    shf = ep.index[ep["kind"].eq("cohort") & ep["centre"].eq("SHF") & ~ep["transfer"] & ep["case"].eq("")]
    per_kg = np.concatenate([shf[np.argsort(weight[shf], kind="stable")[:n_dirt]].to_numpy(),
                             ep.index[ep["case"].eq("dose_per_kg_without_weight")].to_numpy()])
    adm = build_admissions(ep, f, c, weight, extract_date)
    dosing = build_dosing(ep, c, adm, weight, per_kg, extract_date, seed)
    labs = build_labs(ep, f, c, adm, extract_date, seed)
    ae, labs = build_adverse_events(ep, c, adm, dosing, labs, extract_date, seed)
    persons = build_persons(ep, adm, seed)
    cases.plant(adm, dosing, ae, n_dirt, seed)
    # The route group follows the doses given (none after death), not the plan.
    given_iv = adm["episode"].isin(dosing.loc[dosing["route"].eq("IV"), "episode"]).to_numpy()
    adm["route_group"] = np.where(adm["kind"].eq("cohort"), np.where(given_iv, "IV", "SC"), "")
    if (adm["route_group"] == "IV").sum() != n_iv:
        raise AssertionError("generator: the IV group differs from the IV patients planned")
    return Simulation(persons, adm, dosing, labs, ae, extract_date)
