"""An updated delivery end to end: the generator derives it from the embedded example, the
workflow runs both, and `--config compare_to=` writes diff/ (both runs are shared,
tests/workflow_runs.py: the embedded delivery's, and the update's with the same configuration).
The diff must show exactly the changes the generator lists in synth_changes.json: the same
patients added, removed and changed (mapped from local admission ids to patient keys through
the keys ingest wrote), the same ledger entries, the new column ignored, and no identifier
anywhere in diff/.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from stormcohort.delivery import resolve_key
from stormcohort.diff import OUTPUTS, TABLE1_KEYS, TABLE1_QUANTITIES, read_table1
from stormcohort.ingest import load_centre_map, read_identifiers
from stormcohort.outputs import output
from stormcohort.privacy import identifier_set, scan
from stormcohort.pseudonym import admission_key
from tests.workflow_runs import EMBEDDED_RUN, UPDATE_RUN, workflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "raw" / "example"
OLD, NEW = EMBEDDED_RUN, UPDATE_RUN
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
# Dataset fields a corrected source value may move (derived from it by the cohort rules).
FOLLOWS = {
    "weight_kg": {"weight_kg", "max_dose_mg_per_kg_day"},
    "death_date": {"time_to_death_days", "length_of_stay_days", "time_to_fever_days"},
    "labs:crp": {"labs"},
}
FIRST = {"weight_kg": "weight_kg", "death_date": "time_to_death_days", "labs:crp": "labs"}


@pytest.fixture(scope="module")
def runs(embedded_run, update_run):
    update, changes, new = update_run
    return {"old": embedded_run, "new": new, "update": update, "changes": changes}


def diff_table(runs, name: str) -> pd.DataFrame:
    return pd.read_csv(runs["new"] / "diff" / f"{name}.csv", dtype=str, keep_default_na=False)


def local_admission_id(delivery: Path, centre: str, local_id: str) -> str:
    """The centre's own admission id behind a manifest-style local id, as ingest builds it
    (identifiers are read in memory only, to compute the same keyed hash)."""
    if centre == "LDN":
        return local_id
    if centre == "BHM":
        return local_id.removeprefix("record_id ")
    row = int(local_id.removeprefix("Patients row "))
    sheet = openpyxl.load_workbook(delivery / "SHF" / "SHF_HLH_registry.xlsx", read_only=True)["Patients"]
    header = next(sheet.iter_rows(min_row=3, max_row=3, values_only=True))
    values = dict(zip(header, next(sheet.iter_rows(min_row=row, max_row=row, values_only=True))))
    return f"{values['Hospital number']}|{values['Admission date']:%Y-%m-%d}"


def patient_key(run: Path, delivery: Path, centre: str, local_id: str) -> str:
    """Local admission id -> admission_key (the keyed hash) -> patient_key, through ingest's own table."""
    p = CONFIG["pseudonymisation"]
    key = resolve_key(p["key_env"], True, p["synthetic_default_key"])
    wanted = admission_key(centre, pd.Series([local_admission_id(delivery, centre, local_id)]), key).iloc[0]
    admissions = pd.read_parquet(run / "clean" / centre / "admissions.parquet")
    found = admissions.loc[admissions["admission_key"] == wanted, "person_key"]
    assert len(found) == 1, f"{centre} {local_id}: admission not found in {run.name}"
    return found.iloc[0]


def expected_keys(runs) -> dict[str, dict[str, dict]]:
    listed = runs["changes"]["patients"]
    where = {"added": (runs["new"], runs["update"]), "removed": (runs["old"], EXAMPLE),
             "changed": (runs["new"], runs["update"])}
    return {kind: {patient_key(*where[kind], c["centre"], c["local_id"]): c for c in listed[kind]} for kind in listed}


def test_the_update_is_what_the_generator_says(runs):
    changes = runs["changes"]
    assert json.loads((runs["update"] / "synth_changes.json").read_text()) == changes
    assert [len(changes["patients"][k]) for k in ("added", "removed", "changed")] == [3, 1, 3]
    assert {c["field"] for c in changes["patients"]["changed"]} == set(FOLLOWS)


def test_diff_names_exactly_the_patients_the_generator_changed(runs):
    expected = expected_keys(runs)
    patients = diff_table(runs, "patients")
    for kind in ("added", "removed", "changed"):
        assert set(patients.loc[patients["change"] == kind, "patient_key"]) == set(expected[kind]), kind
    by_key = patients.set_index("patient_key")
    for key, change in expected["added"].items():
        assert by_key.loc[key, "route_group_new"] == change["route_group"]
        assert by_key.loc[key, "centre_new"] == change["centre"]
    for key, change in expected["removed"].items():
        assert by_key.loc[key, "route_group_old"] == change["route_group"]
    for key, change in expected["changed"].items():
        fields = set(by_key.loc[key, "fields_changed"].split(";"))
        assert FIRST[change["field"]] in fields and fields <= FOLLOWS[change["field"]], (change["field"], fields)


def test_changed_values_are_shown_old_and_new(runs):
    expected = expected_keys(runs)["changed"]
    fields = diff_table(runs, "patient_fields")
    rows = diff_table(runs, "patient_rows")
    for key, change in expected.items():
        if change["field"] == "weight_kg":
            old, new = change["description"].removeprefix("weight corrected: ").removesuffix(" kg").split(" -> ")
            weight = fields[(fields["patient_key"] == key) & (fields["field"] == "weight_kg")].iloc[0]
            assert (float(weight["old"]), float(weight["new"])) == (float(old), float(new))
        if change["field"] == "death_date":
            death = fields[(fields["patient_key"] == key) & (fields["field"] == "time_to_death_days")].iloc[0]
            shift = int(change["description"].split(": ")[1].split(" ")[0])
            assert float(death["new"]) - float(death["old"]) == shift
        if change["field"] == "labs:crp":
            mine = rows[rows["patient_key"] == key]
            assert mine["status"].tolist() == ["removed", "added"] and mine["row"].str.startswith("test=crp;").all()
            old, new = change["description"].split(": ")[1].split(" mg/L")[0].split(" -> ")
            assert [r.split("; ")[1] for r in mine["row"]] == [f"value={old}", f"value={new}"]
    assert set(rows["patient_key"]) <= set(expected)


def test_ledger_diff_is_the_entries_the_generator_added_and_removed(runs):
    entries = diff_table(runs, "ledger_entries")
    for status in ("added", "removed"):
        found = Counter((e["centre"], e["file"], e["column"], e["rule"], e["scope"])
                        for e in entries[entries["status"] == status].to_dict(orient="records"))
        listed = Counter((e["centre"], e["file"], e["column"] or "", e["rule"], e["scope"])
                         for e in runs["changes"]["ledger"][status])
        assert found == listed, status
    assert not entries.apply(lambda r: "Ward" in " ".join(r), axis=1).any()


def test_new_column_is_ignored_by_the_reader(runs):
    column = runs["changes"]["columns_added"][0]
    assert column["column"] in (runs["update"] / "LDN" / column["file"]).read_text(encoding="utf-8-sig").splitlines()[0]
    log = (runs["new"] / "logs" / "ingest_LDN.log").read_text(encoding="utf-8")
    assert "Ward" in next(line for line in log.splitlines() if "ignored" in line)


def test_attrition_counts_follow_the_changes(runs):
    attrition = diff_table(runs, "attrition").set_index("step")
    cohort = runs["changes"]["cohort"]
    assert int(attrition.loc["final_cohort", "n_remaining_new"]) == cohort["patients"] == 48
    assert int(attrition.loc["route_IV", "n_remaining_new"]) == cohort["IV"]
    assert int(attrition.loc["route_SC", "n_remaining_new"]) == cohort["SC"]
    assert int(attrition.loc["final_cohort", "change"]) == 3 - 1
    summary = json.loads((runs["new"] / "diff" / "summary.json").read_text())
    assert summary["patients"] == {"added": 3, "removed": 1, "changed": 3} and summary["synthetic"] is True


def test_every_estimate_and_table1_cell_is_compared(runs):
    effects = pd.read_csv(runs["new"] / "diff" / "effects.csv")
    new_iv = sum(int((pd.read_csv(runs["new"] / "tables" / f"{t}.csv")["term"] == "route_group[IV]").sum())
                 for t in ("cox", "logistic", "rate_ratios"))
    effect = pd.read_csv(runs["new"] / "tables" / "effect.csv")  # the target trial's ratios, IV vs SC too
    new_iv += int(effect["measure"].isin(["hazard_ratio", "risk_ratio", "odds_ratio"]).sum())
    assert int(effects["iv_vs_sc"].sum()) == new_iv
    both = effects[effects["status"] == "both"]
    assert len(both) == len(effects)  # same models in both runs
    known = both.dropna(subset=["lcl_old", "ucl_old", "lcl_new", "ucl_new"])
    excludes = lambda lcl, ucl: (lcl > 1) | (ucl < 1)  # noqa: E731
    moved = excludes(known["lcl_old"], known["ucl_old"]) != excludes(known["lcl_new"], known["ucl_new"])
    assert (known["conclusion_moved"] == moved).all() and not both.drop(known.index)["conclusion_moved"].any()
    table1 = diff_table(runs, "table1")
    cells = set()  # every Table 1 cell filled in either run: (variable, level, group, quantity)
    for run in ("old", "new"):
        t1 = read_table1(runs[run] / output("describe", "table1")).melt(TABLE1_KEYS, TABLE1_QUANTITIES, "quantity")
        cells |= set(t1.dropna()[[*TABLE1_KEYS, "quantity"]].itertuples(index=False))
    assert len(table1) == len(cells)
    n = table1[(table1["variable"] == "patients") & (table1["group"] == "overall")
               & (table1["quantity"] == "count")].iloc[0]
    assert (float(n["old"]), float(n["new"]), n["changed"]) == (46, 48, "True")


def test_diff_has_no_identifier_of_either_delivery(runs):
    identifiers = set()
    for delivery in (EXAMPLE, runs["update"]):
        for centre in CONFIG["centres"]:
            centre_map = load_centre_map(ROOT / "config" / "centres" / f"{centre}.yaml")
            identifiers |= read_identifiers(delivery, centre, centre_map)
    files = sorted(str(p) for p in (runs["new"] / "diff").iterdir()) + [str(runs["new"] / "logs" / "diff.log")]
    assert len(files) == len(OUTPUTS) + 3  # the CSVs, summary.json, diff.html and the log
    assert scan(files, identifier_set(identifiers)) == []
    assert scan([str(runs["update"] / "synth_changes.json")], identifier_set(identifiers)) == []
    assert "none found" in (runs["new"] / "checks" / "privacy.txt").read_text()


def test_diff_html_is_self_contained(runs):
    page = (runs["new"] / "diff" / "diff.html").read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
    for key in diff_table(runs, "patients")["patient_key"]:
        assert key in page


def test_without_compare_to_there_is_no_diff_and_reruns_do_nothing(runs):
    assert not (runs["old"] / "diff").exists()
    dry = workflow(OLD, "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-2000:]
    dry = workflow(NEW, "--dry-run", delivery=runs["update"], compare_to=f"results/{OLD}")
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-2000:]


def test_compare_to_something_that_is_not_a_run_stops_with_a_message(runs):
    dry = workflow(OLD, "--dry-run", compare_to="results/no_such_run")
    assert dry.returncode != 0 and "not a finished run" in dry.stdout + dry.stderr
    dry = workflow(OLD, "--dry-run", compare_to=f"results/{OLD}")
    assert dry.returncode != 0 and "is this run itself" in dry.stdout + dry.stderr
