"""Synthetic registry generator: one full delivery in the three centres' export formats.

    python -m stormcohort.synth --patients N --seed S --out DIR [--iv-patients K] [--extract-date YYYY-MM-DD]
        [--true-hr HR] [--confounding C]
    python -m stormcohort.synth --update-from DIR --seed S --out NEWDIR [--extract-date YYYY-MM-DD] [--new-patients K]

``N`` patients end up in the cohort after the cohort rules; the non-cohort admissions the
rules must remove (outside the window, familial HLH, not meeting the definition, no anakinra,
readmissions, prevalent users, the second half of a transfer) come on top. ``DIR/synth_manifest.json``
says what was made, without any identifier: expected counts, the category of every admission by
its local id, the planted cases (synth/cases.py), and every injected dirty value with the row a
human sees and what ingest should do with it. Sources and assumptions: data/README.md.

``--true-hr`` and ``--confounding`` switch the cohort's IV plan and deaths to the effect model
(``stormcohort.synth.clinical.effect_course``): IV multiplies the hazard of death by HR from its
first dose on, and the baseline HScore raises both the chance and earliness of IV and the hazard of
death with strength C (log-odds of IV and log hazard of death per 26 HScore points, about one SD).
Without them (HR 1, no confounding given) the generator is the embedded delivery's, byte for byte;
``--true-hr`` alone means confounding 0. ``delivery.yaml`` and the manifest record them when given.

``--update-from DIR`` derives the centres' next extract from a delivery this generator made:
new cohort patients, corrected values, a withdrawn patient and a new column, listed in
``NEWDIR/synth_changes.json`` (see ``stormcohort.synth.update``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from stormcohort.synth import cases, centres, writers
from stormcohort.synth.clinical import (
    CENTRES,
    NON_COHORT_REASONS,
    PATIENTS_PER_TRANSFER,
    Simulation,
    rng,
    simulate,
)

GENERATOR_VERSION = "1.0"
DEFAULT_EXTRACT_DATE = "2020-06-30"
IV_SHARE = 18 / 46  # the Viewpoint: 18 of 46 patients received IV anakinra


def default_iv_patients(patients: int) -> int:
    return int(round(patients * IV_SHARE))


def generate(out_dir: Path | str, patients: int, seed: int, iv_patients: int | None = None,
             extract_date: str = DEFAULT_EXTRACT_DATE, true_hr: float = 1.0,
             confounding: float | None = None) -> dict:
    """Write a delivery into out_dir (LDN/, SHF/, BHM/, delivery.yaml, synth_manifest.json); return the
    manifest. ``true_hr``, ``confounding``: the effect model (module doc); the defaults leave it off."""
    if patients < 1:
        raise ValueError(f"--patients {patients}: expected a positive number of cohort patients")
    iv_patients = default_iv_patients(patients) if iv_patients is None else iv_patients
    if not 0 <= iv_patients <= patients:
        raise ValueError(f"--iv-patients {iv_patients}: expected 0..{patients} (the IV group is part of the cohort)")
    try:
        extract = pd.Timestamp(datetime.strptime(extract_date, "%Y-%m-%d"))
    except ValueError:
        raise ValueError(f"--extract-date {extract_date!r}: expected a date as YYYY-MM-DD") from None
    n_dirt = max(1, round(patients / PATIENTS_PER_TRANSFER))  # each kind of dirt, per 46 patients

    sim = simulate(patients, iv_patients, seed, extract, n_dirt, true_hr, confounding)
    dosing = centres.dosing_with_extras(sim, centres.extra_dosing_rows(sim, n_dirt, seed))
    spaced_ldn, spaced_shf = _nhs_written_with_spaces(sim, seed)
    rendered = [centres.render_ldn(sim, dosing, spaced_ldn, n_dirt, seed),
                centres.render_shf(sim, dosing, spaced_shf, n_dirt, seed),
                centres.render_bhm(sim, dosing, n_dirt, seed)]

    out = Path(out_dir)
    for centre in CENTRES:
        (out / centre).mkdir(parents=True, exist_ok=True)
    for part in rendered:
        csvs = [t for t in part.tables if t.sheet is None]
        for table in csvs:
            writers.write_csv(table, out / table.centre / table.file)
        sheets = [t for t in part.tables if t.sheet is not None]
        if sheets:
            writers.write_workbook(sheets, out / sheets[0].centre / sheets[0].file, extract.to_pydatetime())
    effect = _effect_settings(true_hr, confounding)
    manifest = _manifest(sim, rendered, patients, iv_patients, seed, extract_date, effect)
    (out / "synth_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (out / "delivery.yaml").write_text(
        f"extract_date: {extract_date}\nsynthetic: true\ngenerator:\n  name: stormcohort.synth\n"
        f"  version: '{GENERATOR_VERSION}'\n  seed: {seed}\n  patients: {patients}\n  iv_patients: {iv_patients}\n"
        + "".join(f"  {k}: {v}\n" for k, v in effect.items()), encoding="utf-8")
    return manifest


def _effect_settings(true_hr: float, confounding: float | None) -> dict:
    """The effect model's settings as delivery.yaml and the manifest record them: none by default."""
    if true_hr == 1 and confounding is None:
        return {}
    return {"true_hr": float(true_hr), "confounding": float(confounding or 0.0)}


def _nhs_written_with_spaces(sim: Simulation, seed: int) -> tuple[pd.Series, pd.Series]:
    """Which NHS numbers each UK centre prints as '999 123 4567'. A transferred patient's
    number is spaced at exactly one of the two centres, so linking must normalise it."""
    r = rng(seed, 30)
    persons = sim.persons.index
    ldn = pd.Series(r.random(len(persons)) < 0.2, index=persons)
    shf = pd.Series(r.random(len(persons)) < 0.1, index=persons)
    moved = sim.admissions.loc[sim.admissions["kind"].eq("transfer_merged"), "person"].to_numpy()
    at_ldn = r.random(len(moved)) < 0.5
    ldn[moved], shf[moved] = at_ldn, ~at_ldn
    return ldn, shf


def _manifest(sim: Simulation, rendered: list, patients: int, iv_patients: int, seed: int, extract_date: str,
              effect: dict) -> dict:
    adm = sim.admissions
    local = pd.concat([part.local_ids for part in rendered])
    cohort = adm[adm["kind"].eq("cohort")]
    by_route = cohort.groupby(["centre", "route_group"]).size()
    counted = sim.labs.loc[sim.labs["test"].eq("platelets") & sim.labs["day"].le(0), "episode"]
    no_count = ~cohort["episode"].isin(counted)
    listing = pd.DataFrame({"centre": adm["centre"], "local_id": local.reindex(adm.index), "category": adm["kind"],
                            "route_group": adm["route_group"]}).sort_values(["centre", "local_id"], kind="stable")
    dirt = pd.concat([centres.finalise(part) for part in rendered], ignore_index=True)
    leaving = dirt[dirt["scope"].eq("row")].fillna({"sheet": ""}).drop_duplicates(["file", "sheet", "row"])
    leaving = leaving.groupby(["file", "sheet"]).size()
    files = [{"centre": t.centre, "file": t.file, "sheet": t.sheet, "data_rows": len(t.frame),
              "rows_expected_excluded": int(leaving.get((t.file, t.sheet or ""), 0))}
             for part in rendered for t in part.tables]
    return {
        "synthetic": True,
        "generator": {"name": "stormcohort.synth", "version": GENERATOR_VERSION, "seed": seed, "patients": patients,
                      "iv_patients": iv_patients, **effect},
        "extract_date": extract_date,
        "cohort": {
            "patients": int(len(cohort)), "IV": int((cohort["route_group"] == "IV").sum()),
            "SC": int((cohort["route_group"] == "SC").sum()),
            "by_centre": {c: int((cohort["centre"] == c).sum()) for c in CENTRES},
            "by_centre_and_route": {c: {g: int(by_route.get((c, g), 0)) for g in ("IV", "SC")} for c in CENTRES},
            # no platelet count up to the day of the first dose: a missing baseline value
            "without_baseline_platelets": int(no_count.sum()),
        },
        "admissions": {"total": int(len(adm)), "by_centre": {c: int((adm["centre"] == c).sum()) for c in CENTRES}},
        "non_cohort_admissions": {reason: int((adm["kind"] == reason).sum()) for reason in NON_COHORT_REASONS},
        "files": files,
        "cases": _cases(adm, local),
        "without_baseline_platelets": listing.loc[listing.index.isin(no_count.index[no_count]),
                                                  ["centre", "local_id"]].to_dict(orient="records"),
        "dirty_values": dirt.astype(object).where(dirt.notna(), None).to_dict(orient="records"),
        "admission_list": listing.to_dict(orient="records"),
    }


def _cases(adm: pd.DataFrame, local: pd.Series) -> list[dict]:
    """The planted cases, and the patients who died before a planned switch to IV, by local id;
    a prevalent user's 2018 admission and a transfer's receiving one as related_local_id."""
    died_early = adm["kind"].eq("cohort") & adm["planned_iv"] & adm["route_group"].eq("SC")
    found = pd.concat([adm[adm["case"].ne("")], adm[died_early].assign(case="died_before_planned_iv")])
    pairs = found.loc[found["case"].isin(["prevalent_user", "transfer_discharge_missing"]), ["person"]]
    pairs = pairs.reset_index(names="row").merge(adm[["person"]].reset_index(names="other"), on="person")
    related = pairs[pairs["row"] != pairs["other"]].set_index("row")["other"].map(local)
    listing = pd.DataFrame({"case": found["case"], "centre": found["centre"], "local_id": local.reindex(found.index),
                            "category": found["kind"], "route_group": found["route_group"],
                            "related_local_id": related.reindex(found.index),
                            "description": found["case"].map(cases.CASES)})
    listing["_order"] = listing["case"].map({c: i for i, c in enumerate(cases.CASES)})
    listing = listing.sort_values(["_order", "centre", "local_id"], kind="stable").drop(columns="_order")
    return listing.astype(object).where(listing.notna(), None).to_dict(orient="records")


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m stormcohort.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, help="cohort patients after the cohort rules (a new delivery)")
    parser.add_argument("--update-from", metavar="DIR", help="derive an updated delivery from this delivery instead")
    parser.add_argument("--new-patients", type=int, default=3,
                        help="with --update-from: new cohort patients (default 3)")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="delivery folder to write")
    parser.add_argument("--iv-patients", type=int, default=None, help="cohort patients in the IV group "
                        "(default round(patients * 18/46))")
    parser.add_argument("--true-hr", type=float, default=1.0, help="hazard ratio of death on IV, from its first "
                        "dose on (default 1: no effect); anything else turns the effect model on")
    parser.add_argument("--confounding", type=float, default=None, help="strength of confounding by indication: "
                        "log-odds of IV and log hazard of death per SD of the baseline HScore (turns the effect model "
                        "on; default: the embedded generator's own allocation, or 0 with --true-hr)")
    parser.add_argument("--extract-date", default=None, help="the centres' export date, YYYY-MM-DD (default "
                        f"{DEFAULT_EXTRACT_DATE}; with --update-from, 92 days after the old one)")
    args = parser.parse_args(argv)
    if (args.patients is None) == (args.update_from is None):
        parser.error("give either --patients N (a new delivery) or --update-from DIR (an updated one)")
    if args.update_from is not None:
        from stormcohort.synth.update import changes_summary, derive_update
        if args.true_hr != 1 or args.confounding is not None:
            parser.error("--true-hr and --confounding make a new delivery (--patients N), not an update")
        try:
            result = derive_update(args.update_from, args.out, args.seed, args.extract_date, args.new_patients)
        except ValueError as err:
            parser.error(str(err))
        print(f"{args.out}: updated from {args.update_from}: {changes_summary(result)}")
        return
    args.extract_date = args.extract_date or DEFAULT_EXTRACT_DATE
    try:
        manifest = generate(args.out, args.patients, args.seed, args.iv_patients, args.extract_date, args.true_hr,
                            args.confounding)
    except ValueError as err:
        parser.error(str(err))
    c = manifest["cohort"]
    print(f"{args.out}: {manifest['admissions']['total']} admissions; cohort {c['patients']} "
          f"({c['IV']} IV, {c['SC']} SC); {len(manifest['dirty_values'])} dirty values")
