"""A fourth centre is a data-only change: its centre map, its folder in the delivery and its code in
`centres`, no code edit.

The fourth centre, MAN, is the worked example of config/README.md ("Adding a centre"): its map is
read from there, so the documented map is the tested one. Its delivery is LDN's export of the
embedded delivery written the way MAN's system writes it: other file and column names, `;` as
separator, no byte-order mark, `-` for missing, dates `dd.mm.yyyy` and ISO sample times, other codes,
temperature in degF and CRP, Hb, ferritin and platelets in US-style units. The people are LDN's
under new hospital, NHS and episode numbers, so to the pipeline they are new people. The whole
workflow then runs once, in a copy of the project (slow: about a minute).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stormcohort.errors import ExtractError
from stormcohort.ingest.centre_map import lab_uln, load_centre_maps

ROOT = Path(__file__).resolve().parent.parent
RUN = "four"
CENTRES = ["LDN", "SHF", "BHM", "MAN"]
DATES = ["dob", "admit_date", "discharge_date", "death_date", "last_seen_date", "fever_resolution_date",
         "start", "stop", "event_date"]
FLAGS = ["hepatomegaly", "splenomegaly", "immunosuppression", "bm_haemophagocytosis", "icu", "oedema", "cns",
         "serious"]
# canonical test -> (factor from LDN's canonical unit to MAN's unit, the unit as MAN's lab prints it)
MAN_UNITS = {"crp": (0.1, "mg/dL"), "hb": (0.1, "g/dL"), "ferritin": (1, "ng/mL"), "platelets": (1, "10³/µL")}


def readme_map() -> dict:
    """The MAN centre map shown in config/README.md, section "Adding a centre"."""
    text = (ROOT / "config" / "README.md").read_text(encoding="utf-8").split("## Adding a centre", 1)[1]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, flags=re.S).group(1))


def _centre_map(centre: str) -> dict:
    return yaml.safe_load((ROOT / "config" / "centres" / f"{centre}.yaml").read_text(encoding="utf-8"))


def _reformat(values: pd.Series, fmt_in: str, fmt_out: str) -> pd.Series:
    parsed = pd.to_datetime(values, format=fmt_in, errors="coerce")
    return parsed.dt.strftime(fmt_out).where(parsed.notna(), values)


def _to_man(table: pd.DataFrame, lab_codes: dict[str, str]) -> pd.DataFrame:
    """LDN's rows (columns as canonical fields) as MAN writes them."""
    t = table.copy()
    if "patient_id" in t:
        t["patient_id"] = "MN" + t["patient_id"].str[2:]
    if "admission_id" in t:
        t["admission_id"] = "EP" + t["admission_id"].str[3:]
    if "nhs_number" in t:
        digits = t["nhs_number"].str.replace(" ", "")
        assert digits.str.fullmatch(r"999\d{7}").all()  # LDN's are 999...: 888... are new people
        t["nhs_number"] = "888-" + digits.str[3:6] + "-" + digits.str[6:]
    for field in set(DATES) & set(t.columns):
        t[field] = _reformat(t[field], "%d/%m/%Y", "%d.%m.%Y")
    if "sample_time" in t:
        t["sample_time"] = _reformat(t["sample_time"], "%d/%m/%Y %H:%M", "%Y-%m-%dT%H:%M")
    for field in set(FLAGS) & set(t.columns):
        t[field] = t[field].replace({"Y": "Yes", "N": "No"})
    if "sex" in t:
        t["sex"] = t["sex"].replace({"M": "Male", "F": "Female"})
    if "died" in t:
        t["died"] = t["died"].replace({"Died": "Deceased"})
    if "max_temp_c" in t:
        celsius = pd.to_numeric(t["max_temp_c"], errors="coerce")
        t["max_temp_c"] = (celsius * 1.8 + 32).map("{:.2f}".format).where(celsius.notna(), t["max_temp_c"])
    if "test" in t:
        test = t["test"].map(_centre_map("LDN")["codes"]["lab_test"])
        parts = t["result"].str.extract(r"^([<>]?)(\d+(?:\.\d+)?)$")
        for name, (factor, unit) in MAN_UNITS.items():
            rows = (test == name) & parts[1].notna()
            scaled = (parts.loc[rows, 1].astype(float) * factor).map("{:g}".format)
            t.loc[rows, "result"] = parts.loc[rows, 0] + scaled
            t.loc[rows, "unit"] = unit
        t["test"] = test.map(lab_codes)
    return t.replace("", "-")


def write_man_delivery(ldn: Path, man: Path, man_map: dict) -> None:
    """LDN's files as MAN's: the two maps say which file and column holds which field."""
    man.mkdir()
    ldn_sources = {s["role"]: s for s in _centre_map("LDN")["sources"]}
    lab_codes = {canonical: raw for raw, canonical in man_map["codes"]["lab_test"].items()}
    for source in man_map["sources"]:
        ldn_source = ldn_sources[source["role"]]
        table = pd.read_csv(ldn / ldn_source["file"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
        table = _to_man(table.rename(columns=ldn_source["columns"]), lab_codes)
        to_raw = {field: raw for raw, field in source["columns"].items()}
        table.rename(columns=to_raw)[list(to_raw.values())].to_csv(
            man / source["file"], sep=";", index=False, encoding="utf-8", lineterminator="\n")


def copy_project(dest: Path, man_map: dict) -> Path:
    """The workflow and its config (without data or results) in `dest`, with MAN's map added."""
    shutil.copy(ROOT / "Snakefile", dest)
    for folder in ("workflow", "scripts", "config"):
        shutil.copytree(ROOT / folder, dest / folder)
    (dest / "config" / "centres" / "MAN.yaml").write_text(yaml.safe_dump(man_map, sort_keys=False), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project whose delivery data/raw/four holds the embedded delivery plus MAN. No
    file of the package or the workflow changes."""
    proj = copy_project(tmp_path_factory.mktemp("fourth_centre"), readme_map())
    delivery = proj / "data" / "raw" / RUN
    shutil.copytree(ROOT / "data" / "raw" / "example", delivery)
    write_man_delivery(delivery / "LDN", delivery / "MAN", readme_map())
    return proj


def snakemake(proj: Path, *args: str, centres=CENTRES) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"delivery=data/raw/{RUN}",
                           f"centres=[{','.join(centres)}]", *args], cwd=proj, capture_output=True, text=True)


def test_the_documented_map_is_valid_and_carries_its_ulns(tmp_path):
    (tmp_path / "MAN.yaml").write_text(yaml.safe_dump(readme_map()), encoding="utf-8")
    maps = load_centre_maps(["MAN"], tmp_path, uln_tests=["alt", "ast"])
    assert lab_uln(maps, ["alt", "ast"]) == {"MAN": {"alt": 35, "ast": 35}}


def test_a_centre_without_its_ulns_stops_before_any_job(tmp_path):
    man_map = readme_map()
    del man_map["lab_uln"]["ast"]
    proj = copy_project(tmp_path, man_map)
    with pytest.raises(ExtractError, match=r"MAN\.yaml: lab_uln: no upper limit of normal for ast \(centre MAN"):
        load_centre_maps(CENTRES, proj / "config" / "centres", uln_tests=["alt", "ast"])
    dry = snakemake(proj, "--dry-run")  # the centre maps are checked before the delivery is read
    message = dry.stdout + dry.stderr
    assert dry.returncode != 0
    assert "config/centres/MAN.yaml: lab_uln: no upper limit of normal for ast (centre MAN" in message
    assert "Fix: add `lab_uln: {alt: <ALT ULN in U/L>, ast: <AST ULN in U/L>}`" in message
    assert not (proj / "results").exists()


@pytest.mark.slow
def test_a_fourth_centre_runs_end_to_end_through_config_only(project):
    done = snakemake(project)
    assert done.returncode == 0, done.stderr[-4000:]
    out = project / "results" / RUN

    # cleaning: every row of MAN's files kept or excluded, exactly as LDN's rows
    man, ldn = (pd.read_csv(out / "clean" / c / "accounting.csv") for c in ("MAN", "LDN"))
    assert (man["rows_in"] == man["rows_kept"] + man["rows_excluded"]).all()
    assert set(man["file"]) == {s["file"] for s in readme_map()["sources"]}
    assert man[["rows_in", "rows_kept"]].sum().tolist() == ldn[["rows_in", "rows_kept"]].sum().tolist()

    # canonical units: MAN's degF, mg/dL, g/dL, ng/mL and 10³/µL read as LDN's degC, mg/L, g/L, ug/L, 10^9/L
    def clean(centre: str, table: str, columns: list[str]) -> pd.DataFrame:
        frame = pd.read_parquet(out / "clean" / centre / f"{table}.parquet")[columns]
        return frame.sort_values(columns).reset_index(drop=True)

    labs = [clean(c, "labs", ["sample_time", "test", "unit", "value", "qualifier"]) for c in ("MAN", "LDN")]
    assert len(labs[0]) == len(labs[1]) > 1000
    assert labs[0].drop(columns="value").equals(labs[1].drop(columns="value"))
    assert np.allclose(labs[0]["value"], labs[1]["value"], rtol=1e-12)
    admissions = [clean(c, "admissions", ["admit_date", "max_temp_c", "died", "icu"]) for c in ("MAN", "LDN")]
    assert admissions[0].equals(admissions[1])

    # linked, cohort and analyses: MAN's people are new people; the other centres' cohort is unchanged
    linked = pd.read_parquet(out / "linked" / "admissions.parquet")
    assert (linked["centre"] == "MAN").sum() == man.loc[man["file"] == "episodes.csv", "rows_kept"].item()
    attrition = pd.read_csv(out / "cohort" / "attrition.csv").set_index("step")["n_remaining"]
    embedded = json.loads((ROOT / "data" / "raw" / "example" / "synth_manifest.json").read_text())
    assert attrition["all_admissions"] == embedded["admissions"]["total"] + (linked["centre"] == "MAN").sum()
    dataset = pd.read_csv(out / "cohort" / "analysis_dataset.csv")
    n_man = int((dataset["centre"] == "MAN").sum())
    assert n_man > 10 and (dataset["centre"] != "MAN").sum() == 46
    assert attrition["final_cohort"] == 46 + n_man
    table1 = pd.read_csv(out / "tables" / "table1.csv")
    patients = table1[table1["variable"].eq("patients") & table1["group"].eq("overall")]["count"]
    assert patients.tolist() == [46 + n_man]
    assert "MAN" in (out / "report.html").read_text(encoding="utf-8")
    assert "none found" in (out / "checks" / "privacy.txt").read_text(encoding="utf-8")
