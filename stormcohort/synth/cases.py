"""Planted cases: admissions holding a defect real extracts hold, which the generator's usual
draws would rarely (or never) make, so that each can be tested on a delivery built for it
(issue 11). ``n`` of each per delivery (one per 46 cohort patients, at least one); each keeps
its category (cohort, except the prevalent user) and is listed in the manifest's ``cases``,
and every cell it changed in its ``dirty_values`` (with the case's name).

Some are made while the episodes are drawn (an adolescent at SHF, a low ferritin, a 2018
admission before a 2019 one: clinical.py); the rest here, on the finished admissions, of people
admitted once, and the renderers write what the case needs (centres.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stormcohort.synth.clinical import rng

CASES = {
    "dose_per_kg_without_weight":
        "a child at SHF given IV anakinra prescribed per kg ('2mg/kg'), no weight recorded: the mg dose is "
        "unknown, the route is not (IV group)",
    "death_flag_without_date": "died (flag set) after discharge, date of death not recorded: a death at an "
                               "unknown time (last seen = discharge)",
    "death_date_without_flag": "date of death recorded, outcome left blank: the date makes it a death",
    "no_follow_up_dates": "alive, with no discharge, last-seen or anakinra stop date; labs, doses and events "
                          "are dated",
    "fever_resolved_before_index": "fever resolved the day before the first anakinra dose: afebrile at index",
    "ferritin_below_500": "baseline ferritin printed '<500' (below 500: not a ferritin >= 500); meets the "
                          "definition on its other findings",
    "transfer_discharge_missing": "transferred between LDN and SHF; the sending centre's discharge (and last-seen) "
                                  "date is missing; the receiving admission starts within 7 days of the first",
    "prevalent_user": "a qualifying 2019 admission of a person given anakinra in a 2018 admission "
                      "(related_local_id): excluded as a prevalent user",
    "iso_admission_date": "an admission date written yyyy-mm-dd among the LDN dd/mm/yyyy dates",
    "died_before_planned_iv": "planned to switch from SC to IV but died before the switch: never given IV, "
                              "SC group (not planted: as the draws fall)",
}


def mark_low_ferritin(ep: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """n LDN cohort patients admitted once (adults: never sJIA, whose MAS 2016 needs ferritin > 684)."""
    repeat = np.isin(ep.index, ep["source"])
    pool = ep.index[ep["kind"].eq("cohort") & ep["centre"].eq("LDN") & ep["case"].eq("") & ~ep["transfer"] & ~repeat]
    chosen = rng(seed, 13).choice(pool, size=min(n, len(pool)), replace=False)
    ep.loc[chosen, "case"] = "ferritin_below_500"
    return ep


def _choose(adm: pd.DataFrame, candidates: np.ndarray, order: tuple[str, ...], n: int,
            r: np.random.Generator) -> np.ndarray:
    """n admissions among the candidates, round robin over the centres in `order` (the first
    centre first), a centre without candidates skipped."""
    pool = pd.DataFrame({"row": r.permutation(adm.index[candidates])})
    pool["centre"] = adm.loc[pool["row"], "centre"].to_numpy()
    pool["turn"] = pool.groupby("centre").cumcount()
    pool["preference"] = pool["centre"].map({c: i for i, c in enumerate(order)})
    pool = pool[pool["preference"].notna()]
    return pool.sort_values(["turn", "preference"], kind="stable")["row"].head(n).to_numpy()


def plant(adm: pd.DataFrame, dosing: pd.DataFrame, ae: pd.DataFrame, n: int, seed: int) -> None:
    """The cases made on the finished admissions (in place), each on a different admission."""
    r = rng(seed, 14)
    adm.loc[adm["case"].eq("dose_per_kg_without_weight"), "weight_kg"] = np.nan
    once = adm.groupby("person")["episode"].transform("size").eq(1).to_numpy()
    alive = ~adm["died"].to_numpy() & adm["death_date"].isna().to_numpy()
    fatal = adm["episode"].isin(ae.loc[ae["grade"].eq(5), "episode"]).to_numpy()

    def free() -> np.ndarray:
        return (adm["kind"].eq("cohort") & adm["case"].eq("")).to_numpy() & once

    # Died after discharge; no fatal event dated that day either, so nothing records when.
    rows = _choose(adm, free() & adm["died"].to_numpy() & (adm["death_date"] > adm["discharge"]).to_numpy()
                   & ~fatal, ("SHF", "LDN", "BHM"), n, r)
    adm.loc[rows, "case"] = "death_flag_without_date"
    adm.loc[rows, "last_seen"] = adm.loc[rows, "discharge"]
    adm.loc[rows, "death_date"] = pd.NaT
    rows = _choose(adm, free() & adm["died"].to_numpy(), ("LDN", "SHF", "BHM"), n, r)
    adm.loc[rows, "case"] = "death_date_without_flag"
    adm.loc[rows, "outcome_recorded"] = False
    rows = _choose(adm, free() & alive, ("BHM", "LDN", "SHF"), n, r)
    adm.loc[rows, "case"] = "no_follow_up_dates"
    adm.loc[rows, ["discharge", "last_seen"]] = pd.NaT
    dosing.loc[dosing["adm"].isin(rows), "stop"] = pd.NaT
    # Every first dose comes a day or more after admission (clinical.draw_course).
    rows = _choose(adm, free() & alive & adm["fever_resolution"].notna().to_numpy(), ("BHM", "SHF", "LDN"), n, r)
    adm.loc[rows, "case"] = "fever_resolved_before_index"
    adm.loc[rows, "fever_resolution"] = adm.loc[rows, "index"] - pd.Timedelta(days=1)
    rows = _choose(adm, free(), ("LDN",), n, r)
    adm.loc[rows, "case"] = "iso_admission_date"
    # Half the transfers (at least one) lose the sending centre's discharge date (and the last-seen
    # date, which is the same day there), leaving only the admission dates to link the two stays.
    moved = adm["person"].isin(adm.loc[adm["kind"].eq("transfer_merged"), "person"]) & adm["kind"].eq("cohort")
    rows = _choose(adm, moved.to_numpy(), ("LDN", "SHF"), -(-int(moved.sum()) // 2), r)
    adm.loc[rows, "case"] = "transfer_discharge_missing"
    adm.loc[rows, ["discharge", "last_seen"]] = pd.NaT
