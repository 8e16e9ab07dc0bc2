"""The synthetic registry generator: reproducibility, the export contract, the manifest,
identifiers and privacy properties. Files are read back with plain csv/pandas/openpyxl
readers (not stormcohort.ingest), so these tests do not depend on the pipeline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from stormcohort.synth import criteria, generate, main
from stormcohort.synth.cases import CASES
from stormcohort.synth.centres import BHM_LABS, LDN_CODES, SHF_BLOODS
from stormcohort.synth.update import derive_update, read_extract, write_extract

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "raw" / "example"
WORKBOOK = "SHF_HLH_registry.xlsx"

# Column lists as written in /work/shared/registry-extracts.md (the input contract).
LDN_COLUMNS = {
    "patients.csv": ["MRN", "NHS_Number", "Surname", "Forename", "DOB", "Sex", "Postcode"],
    "admissions.csv": ["MRN", "Admission_ID", "Admit_Date", "Discharge_Date", "Primary_Diagnosis", "Trigger_Category",
                       "Trigger_Detail", "Weight_kg", "Max_Temp_C", "Hepatomegaly", "Splenomegaly",
                       "Known_Immunosuppression", "BM_Haemophagocytosis", "ICU_Admission", "ICU_Days", "SC_Oedema",
                       "Neuro_Involvement", "Outcome", "Date_of_Death", "Last_Seen_Date", "Fever_Resolution_Date"],
    "anakinra.csv": ["Admission_ID", "Start_Date", "Stop_Date", "Route", "Dose_mg", "Frequency",
                     "Infusion_Rate_mg_per_h"],
    "labs.csv": ["Admission_ID", "Sample_Time", "Test", "Result", "Units"],
    "adverse_events.csv": ["Admission_ID", "Event_Date", "Event", "CTCAE_Grade", "Serious"],
}
SHF_COLUMNS = {
    "Patients": ["Hospital number", "NHS no.", "Name", "Date of birth", "Gender", "Admission date", "Discharge date",
                 "Diagnosis", "Trigger", "Trigger detail", "Weight (kg)", "Peak temperature (°C)", "Liver enlarged",
                 "Spleen enlarged", "Immunosuppressed", "Marrow haemophagocytosis", "Critical care",
                 "Critical care days", "Oedema", "CNS involvement", "Status", "Date of death", "Date last seen",
                 "Afebrile date"],
    "Dosing": ["Hospital number", "Admission date", "Route", "Dose", "Frequency", "From", "To"],
    "Bloods": ["Hospital number", "Date", "Ferritin (ug/L)", "CRP (mg/L)", "Platelets (10^9/L)", "Hb (g/L)",
               "WBC (10^9/L)", "Neutrophils (10^9/L)", "Fibrinogen (g/L)", "Triglycerides (mmol/L)", "ALT (U/L)",
               "AST (U/L)", "Bilirubin (umol/L)", "Creatinine (umol/L)", "sCD25 (U/mL)"],
    "Adverse events": ["Hospital number", "Date", "Event", "Grade", "Serious"],
}
BHM_FORMS = {
    "admission": ["record_id", "mrn", "first_name", "last_name", "dob", "sex", "zip", "adm_date", "dc_date", "dx",
                  "trigger", "trigger_detail", "weight_kg", "tmax_f", "hepatomegaly", "splenomegaly", "immunosupp",
                  "bm_hemophagocytosis", "picu", "picu_days", "edema", "cns", "died", "death_date", "last_fu_date",
                  "afebrile_date"],
    "anakinra_dosing": ["ana_start", "ana_stop", "ana_route", "ana_dose_mg", "ana_freq", "ana_rate_mgkgh"],
    "labs": ["lab_date", "ferritin_ngml", "crp_mgdl", "plt_kul", "hgb_gdl", "wbc_kul", "anc_kul", "fibrinogen_mgdl",
             "tg_mgdl", "alt_ul", "ast_ul", "tbili_mgdl", "creat_mgdl", "scd25_uml"],
    "adverse_event": ["ae_date", "ae_term", "ae_grade", "ae_serious"],
}
REDCAP_DICTIONARY_COLUMNS = [
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?",
    "Field Annotation"]
YES_NO_FIELDS = ["hepatomegaly", "splenomegaly", "immunosupp", "picu", "edema", "cns", "died", "ae_serious"]


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_ldn(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "LDN" / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def read_shf(folder: Path, sheet: str) -> pd.DataFrame:
    return pd.read_excel(folder / "SHF" / WORKBOOK, sheet_name=sheet, header=2, dtype=object, na_values=["NA"],
                         keep_default_na=False)


def read_bhm(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "BHM" / "BHM_HLH_DATA.csv", dtype=str, keep_default_na=False)


def ldn_dates(values) -> pd.Series:
    """LDN dates as written: dd/mm/yyyy, or yyyy-mm-dd where a case plants one; '' is missing."""
    values = pd.Series(values, dtype=object).replace("", None)
    iso = values.str.fullmatch(r"\d{4}-\d{2}-\d{2}").eq(True)
    return pd.to_datetime(values.where(~iso), format="%d/%m/%Y").fillna(
        pd.to_datetime(values.where(iso), format="%Y-%m-%d"))


def shf_dates(values) -> pd.Series:
    """SHF date cells, dates a clerk typed as text ('03-Feb-2019'), and NA / empty cells."""
    values = pd.Series(list(values), dtype=object)
    typed = values.map(lambda v: isinstance(v, str) and v != "NA")
    out = pd.to_datetime(values.where(values.map(lambda v: isinstance(v, datetime))))
    out[typed] = pd.to_datetime(values[typed], format="%d-%b-%Y")
    return out


def bhm_admissions(out: Path) -> pd.DataFrame:
    data = read_bhm(out)
    return data[data["redcap_repeat_instrument"] == ""]


def written_admissions(out: Path) -> pd.DataFrame:
    """Every admission as the files hold it, by (centre, local_id) as the manifest names it;
    `person` links a person's admissions (NHS number at the UK centres)."""
    ldn, people = read_ldn(out, "admissions.csv"), read_ldn(out, "patients.csv").set_index("MRN")
    shf, bhm = read_shf(out, "Patients"), bhm_admissions(out)
    nhs = lambda v: v.astype(str).str.replace(" ", "").str.replace(r"\.0$", "", regex=True)  # noqa: E731
    parts = [
        pd.DataFrame({"centre": "LDN", "local_id": ldn["Admission_ID"],
                      "person": nhs(ldn["MRN"].map(people["NHS_Number"])),
                      "dob": ldn_dates(ldn["MRN"].map(people["DOB"])),
                      **{k: ldn_dates(ldn[c]) for k, c in (("admit", "Admit_Date"), ("discharge", "Discharge_Date"),
                                                          ("death", "Date_of_Death"), ("last_seen", "Last_Seen_Date"),
                                                          ("fever", "Fever_Resolution_Date"))},
                      "died": ldn["Outcome"].map({"Died": True, "Alive": False}),
                      "weight": pd.to_numeric(ldn["Weight_kg"], errors="coerce")}),
        pd.DataFrame({"centre": "SHF", "local_id": [f"Patients row {i + 4}" for i in range(len(shf))],
                      "person": nhs(shf["NHS no."]), "dob": shf_dates(shf["Date of birth"]),
                      **{k: shf_dates(shf[c]) for k, c in (("admit", "Admission date"), ("discharge", "Discharge date"),
                                                          ("death", "Date of death"), ("last_seen", "Date last seen"),
                                                          ("fever", "Afebrile date"))},
                      "died": shf["Status"].map({"Deceased": True, "Alive": False}),
                      "weight": pd.to_numeric(shf["Weight (kg)"], errors="coerce"),
                      "hospital_number": shf["Hospital number"].astype(str)}),
        pd.DataFrame({"centre": "BHM", "local_id": "record_id " + bhm["record_id"], "person": "bhm:" + bhm["mrn"],
                      "dob": pd.to_datetime(bhm["dob"]),
                      **{k: pd.to_datetime(bhm[c].replace("", None)) for k, c in (
                          ("admit", "adm_date"), ("discharge", "dc_date"), ("death", "death_date"),
                          ("last_seen", "last_fu_date"), ("fever", "afebrile_date"))},
                      "died": bhm["died"].map({"1": True, "0": False}),
                      "weight": pd.to_numeric(bhm["weight_kg"], errors="coerce")}),
    ]
    return pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True).set_index(["centre", "local_id"])


def written_doses(out: Path) -> pd.DataFrame:
    """Every dosing row: centre, local_id, start, stop, route (IV, SC or the unknown code), dose text."""
    ldn, shf, bhm = read_ldn(out, "anakinra.csv"), read_shf(out, "Dosing"), read_bhm(out)
    patients = read_shf(out, "Patients")
    shf_local = pd.Series([f"Patients row {i + 4}" for i in range(len(patients))],
                          index=pd.MultiIndex.from_arrays([patients["Hospital number"].astype(str),
                                                           shf_dates(patients["Admission date"])]))
    shf_route = {"intravenous": "IV", "i.v. infusion": "IV", "subcutaneous": "SC", "s/c": "SC"}
    bhm = bhm[bhm["redcap_repeat_instrument"] == "anakinra_dosing"]
    parts = [
        pd.DataFrame({"centre": "LDN", "local_id": ldn["Admission_ID"], "start": ldn_dates(ldn["Start_Date"]),
                      "stop": ldn_dates(ldn["Stop_Date"]), "route": ldn["Route"], "dose": ldn["Dose_mg"]}),
        pd.DataFrame({"centre": "SHF", "local_id": shf_local.reindex(pd.MultiIndex.from_arrays(
                          [shf["Hospital number"].astype(str), shf_dates(shf["Admission date"])])).to_numpy(),
                      "start": shf_dates(shf["From"]), "stop": shf_dates(shf["To"]),
                      "route": shf["Route"].map(shf_route).fillna(shf["Route"]), "dose": shf["Dose"].astype(str)}),
        pd.DataFrame({"centre": "BHM", "local_id": "record_id " + bhm["record_id"],
                      "start": pd.to_datetime(bhm["ana_start"]),
                      "stop": pd.to_datetime(bhm["ana_stop"].replace("", None)),
                      "route": bhm["ana_route"].map({"1": "IV", "2": "IV", "3": "SC"}).fillna(bhm["ana_route"]),
                      "dose": bhm["ana_dose_mg"]}),
    ]
    return pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True)


def written_labs(out: Path) -> pd.DataFrame:
    """Every lab result: centre, local_id, date, test (canonical name), value (a '<'/'>' dropped; NaN
    if not a number). SHF Bloods rows go to the patient's admission on or before the sample date."""
    ldn = read_ldn(out, "labs.csv")
    tests = {code: test for test, code in LDN_CODES.items()}
    parts = [pd.DataFrame({"centre": "LDN", "local_id": ldn["Admission_ID"],
                           "date": pd.to_datetime(ldn["Sample_Time"], format="%d/%m/%Y %H:%M").dt.normalize(),
                           "test": ldn["Test"].map(tests), "text": ldn["Result"]})]
    bloods = read_shf(out, "Bloods").assign(date=lambda d: shf_dates(d["Date"]).to_numpy(),
                                            hospital_number=lambda d: d["Hospital number"].astype(str))
    adm = written_admissions(out).loc["SHF"].reset_index()[["local_id", "hospital_number", "admit"]]
    bloods = pd.merge_asof(bloods.sort_values("date"), adm.sort_values("admit"), left_on="date", right_on="admit",
                           by="hospital_number")
    long = bloods.melt(id_vars=["local_id", "date"], value_vars=list(SHF_BLOODS.values()), var_name="column",
                       value_name="text")
    parts.append(long.assign(centre="SHF", test=long["column"].map({c: t for t, c in SHF_BLOODS.items()}),
                             text=long["text"].astype(str)).drop(columns="column"))
    bhm = read_bhm(out)
    bhm = bhm[bhm["redcap_repeat_instrument"] == "labs"]
    fields = {field: test for test, (field, _, _) in BHM_LABS.items()}
    long = bhm.melt(id_vars=["record_id", "lab_date"], value_vars=list(fields), var_name="field", value_name="text")
    parts.append(pd.DataFrame({"centre": "BHM", "local_id": "record_id " + long["record_id"],
                               "date": pd.to_datetime(long["lab_date"]), "test": long["field"].map(fields),
                               "text": long["text"]}))
    labs = pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True)
    labs["value"] = pd.to_numeric(labs["text"].str.lstrip("<>"), errors="coerce")
    return labs[labs["value"].notna()].reset_index(drop=True)


def first_dose(out: Path) -> pd.Series:
    doses = written_doses(out)
    return doses[doses["route"].isin(["IV", "SC"])].groupby(["centre", "local_id"])["start"].min()


def planted(manifest: dict, case: str) -> pd.DataFrame:
    cases = pd.DataFrame(manifest["cases"], columns=["case", "centre", "local_id", "category", "route_group",
                                                     "related_local_id", "description"])
    return cases[cases["case"] == case]


def nhs_valid(number: str) -> bool:
    digits = [int(c) for c in number]
    check = 11 - sum(d * w for d, w in zip(digits[:9], range(10, 1, -1))) % 11
    return len(digits) == 10 and (0 if check == 11 else check) == digits[9] and check != 10


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth500")
    return out, generate(out, patients=500, seed=11)


# ----------------------------------------------------------------------------- reproducibility
def test_regenerating_the_embedded_delivery_is_byte_identical(tmp_path):
    meta = yaml.safe_load((EXAMPLE / "delivery.yaml").read_text())
    gen = meta["generator"]
    generate(tmp_path, patients=gen["patients"], seed=gen["seed"])
    assert (gen["patients"], gen["seed"]) == (46, 20200601)
    assert files_of(tmp_path) == files_of(EXAMPLE)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, patients=30, seed=5)
    generate(b, patients=30, seed=5)
    generate(c, patients=30, seed=6)
    assert files_of(a) == files_of(b)
    first, other = files_of(a), files_of(c)
    changed = [name for name in first if first[name] != other[name]]
    assert {"LDN/labs.csv", "SHF/" + WORKBOOK, "BHM/BHM_HLH_DATA.csv"} <= set(changed)


def test_embedded_delivery_reproduces_the_viewpoint_counts():
    manifest = json.loads((EXAMPLE / "synth_manifest.json").read_text())
    assert manifest["cohort"]["patients"] == 46
    assert (manifest["cohort"]["IV"], manifest["cohort"]["SC"]) == (18, 28)
    assert manifest["non_cohort_admissions"]["transfer_merged"] == 1
    assert manifest["non_cohort_admissions"]["prevalent_user"] == 1
    listed = pd.DataFrame(manifest["cases"])["case"].value_counts()
    assert (listed.reindex([c for c in CASES if c != "died_before_planned_iv"]) == 1).all(), listed.to_dict()
    meta = yaml.safe_load((EXAMPLE / "delivery.yaml").read_text())
    assert meta["extract_date"].isoformat() == "2020-06-30" and meta["synthetic"] is True


# ----------------------------------------------------------------------------- the contract
def test_ldn_files_follow_the_contract(big):
    out, _ = big
    assert sorted(p.name for p in (out / "LDN").iterdir()) == sorted(LDN_COLUMNS)
    for name, columns in LDN_COLUMNS.items():
        raw = (out / "LDN" / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), f"{name}: no byte-order mark"
        assert raw.count(b"\r\n") == raw.count(b"\n"), f"{name}: not CRLF throughout"
        assert list(read_ldn(out, name).columns) == columns
    adm = read_ldn(out, "admissions.csv")
    manifest = big[1]
    iso = adm["Admission_ID"].isin(planted(manifest, "iso_admission_date")["local_id"])
    assert adm.loc[~iso, "Admit_Date"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
    assert iso.sum() == round(500 / 46) and adm.loc[iso, "Admit_Date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert read_ldn(out, "labs.csv")["Sample_Time"].str.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}").all()
    assert set(read_ldn(out, "anakinra.csv")["Frequency"]) <= {"OD", "BD", "TDS", "QDS", "6-hourly", "Continuous"}
    assert set(adm["BM_Haemophagocytosis"]) == {"Y", "N", "Not done"}
    blank = adm["Admission_ID"].isin(planted(manifest, "death_date_without_flag")["local_id"])
    assert set(adm.loc[~blank, "Outcome"]) == {"Alive", "Died"} and set(adm.loc[blank, "Outcome"]) == {""}
    assert set(read_ldn(out, "labs.csv")["Test"]) >= {"FERR", "CRP", "PLT", "HB", "WBC", "NEUT", "FIB", "TRIG", "ALT",
                                                      "AST", "BILI", "CREAT", "SCD25"}


def test_shf_workbook_follows_the_contract(big):
    out, _ = big
    assert [p.name for p in (out / "SHF").iterdir()] == [WORKBOOK]
    wb = openpyxl.load_workbook(out / "SHF" / WORKBOOK, read_only=True)
    assert wb.sheetnames == list(SHF_COLUMNS)
    for sheet, columns in SHF_COLUMNS.items():
        rows = list(wb[sheet].iter_rows(min_row=1, max_row=4, values_only=True))
        assert rows[0][0] and not any(rows[0][1:]), f"{sheet}: title line 1"
        assert rows[1][0] == "Export date: 30-Jun-2020"
        assert list(rows[2]) == columns
    patients = read_shf(out, "Patients")
    assert patients["Admission date"].map(lambda v: isinstance(v, datetime)).all()  # real date cells
    blank = planted(big[1], "death_date_without_flag").query("centre == 'SHF'")["local_id"]
    status = patients["Status"].set_axis([f"Patients row {i + 4}" for i in range(len(patients))])
    assert set(status.drop(blank)) == {"Alive", "Deceased"} and status[blank].isna().all() and len(blank)
    assert set(patients["Gender"]) == {"Male", "Female"}
    routes = set(read_shf(out, "Dosing")["Route"])
    assert {"intravenous", "subcutaneous", "i.v. infusion", "s/c"} <= routes
    assert set(read_shf(out, "Dosing")["Frequency"]) <= {"once daily", "twice daily", "three times daily", "6 hourly",
                                                         "continuous"}


def test_bhm_is_a_redcap_raw_export_with_its_dictionary(big):
    out, _ = big
    assert sorted(p.name for p in (out / "BHM").iterdir()) == ["BHM_HLH_DATA.csv", "BHM_HLH_DataDictionary.csv"]
    data = read_bhm(out)
    expected = ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for form, fields in BHM_FORMS.items():
        expected += [f for f in fields if f != "record_id"] + [f"{form}_complete"]
    assert list(data.columns) == expected
    first_rows = data.drop_duplicates("record_id")
    assert (first_rows["redcap_repeat_instrument"] == "").all() and (first_rows["adm_date"] != "").all()
    repeats = data[data["redcap_repeat_instrument"] != ""]
    assert set(repeats["redcap_repeat_instrument"]) == {"anakinra_dosing", "labs", "adverse_event"}
    numbered = repeats.groupby(["record_id", "redcap_repeat_instrument"])["redcap_repeat_instance"].agg(list)
    assert all(list(map(int, v)) == list(range(1, len(v) + 1)) for v in numbered)
    for form in BHM_FORMS:  # a form's _complete is filled exactly on that form's rows
        on_form = data["redcap_repeat_instrument"].eq("" if form == "admission" else form)
        assert data.loc[on_form, f"{form}_complete"].isin(["0", "1", "2"]).all()
        assert (data.loc[~on_form, f"{form}_complete"] == "").all()
    assert data["adm_date"].replace("", np.nan).dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    dictionary = pd.read_csv(out / "BHM" / "BHM_HLH_DataDictionary.csv", dtype=str, keep_default_na=False)
    assert list(dictionary.columns) == REDCAP_DICTIONARY_COLUMNS
    fields = dictionary.set_index("Variable / Field Name")
    assert fields.index.tolist() == [f for fs in BHM_FORMS.values() for f in fs]
    assert (fields.loc[YES_NO_FIELDS, "Field Type"] == "yesno").all()
    assert (fields.loc[YES_NO_FIELDS, "Choices, Calculations, OR Slider Labels"] == "").all()
    assert fields.loc["sex", "Choices, Calculations, OR Slider Labels"] == "1, Male | 2, Female"
    assert (fields.loc["ana_route", "Choices, Calculations, OR Slider Labels"]
            == "1, IV push | 2, IV continuous | 3, SubQ")
    assert set(fields.index[fields["Identifier?"] == "y"]) == {"mrn", "first_name", "last_name", "dob", "zip"}


# ----------------------------------------------------------------------------- the manifest
def admissions_per_centre(out: Path) -> dict[str, int]:
    return {"LDN": len(read_ldn(out, "admissions.csv")), "SHF": len(read_shf(out, "Patients")),
            "BHM": int((read_bhm(out)["redcap_repeat_instrument"] == "").sum())}


def test_manifest_counts_are_consistent(big):
    out, manifest = big
    cohort = manifest["cohort"]
    assert cohort["patients"] == 500 and cohort["IV"] == round(500 * 18 / 46) and cohort["IV"] + cohort["SC"] == 500
    assert sum(cohort["by_centre"].values()) == 500
    assert all(sum(r.values()) == cohort["by_centre"][c] for c, r in cohort["by_centre_and_route"].items())
    # Centre split ~ 19:15:12.
    assert abs(cohort["by_centre"]["LDN"] - 500 * 19 / 46) <= 1 and abs(cohort["by_centre"]["BHM"] - 500 * 12 / 46) <= 1
    extra = manifest["non_cohort_admissions"]
    assert all(n >= 1 for n in extra.values())
    assert 0.35 * 500 <= sum(extra.values()) <= 0.5 * 500
    assert manifest["admissions"]["total"] == 500 + sum(extra.values())
    assert manifest["admissions"]["by_centre"] == admissions_per_centre(out)
    listing = pd.DataFrame(manifest["admission_list"])
    assert listing["local_id"].is_unique and len(listing) == manifest["admissions"]["total"]
    assert listing["category"].value_counts().drop("cohort").to_dict() == {k: v for k, v in extra.items()}
    assert (listing["route_group"] != "").sum() == 500
    # Every admission's local id is in its centre's file.
    ldn_ids = set(read_ldn(out, "admissions.csv")["Admission_ID"])
    assert set(listing.loc[listing["centre"] == "LDN", "local_id"]) == ldn_ids


def test_every_dirty_value_is_where_the_manifest_says(big):
    out, manifest = big
    dirt = pd.DataFrame(manifest["dirty_values"])
    needed = {("LDN", "labs.csv", "<5"), ("LDN", "labs.csv", ">100000"), ("LDN", "labs.csv", "haemolysed"),
              ("LDN", "labs.csv", "<500"), ("SHF", WORKBOOK, "haemolysed"), ("SHF", WORKBOOK, "2mg/kg")}
    assert needed <= set(zip(dirt["centre"], dirt["file"], dirt["value"]))
    assert {"duplicate_row", "stop_before_start", "unknown_code", "unparseable_value", "implausible_value", "orphan",
            "date_format_differs", "dose_per_kg_without_weight"} <= set(dirt["rule"].dropna())
    assert set(dirt["expected"]) == {"row_excluded", "value_missing", "kept_with_note", "kept_with_qualifier", "parsed",
                                     "missing"}
    assert dirt["scope"].isna().eq(dirt["rule"].isna()).all()  # a ledger entry exactly where a rule is named
    assert dirt.loc[dirt["column"].eq("Dose_mg"), "value"].str.contains("mg").all()
    # Every planted case changed cells, each noted once with its name.
    assert set(dirt["case"].dropna()) == set(CASES) - {"prevalent_user", "died_before_planned_iv"}
    assert not dirt.duplicated(["file", "sheet", "row", "column"]).any()
    lines = {name: (out / "LDN" / name).read_bytes().decode("utf-8-sig").split("\r\n") for name in LDN_COLUMNS}
    ldn = {name: read_ldn(out, name) for name in LDN_COLUMNS}
    wb = openpyxl.load_workbook(out / "SHF" / WORKBOOK)
    bhm = (out / "BHM" / "BHM_HLH_DATA.csv").read_text().split("\n")
    header_bhm = bhm[0].split(",")
    for d in dirt.itertuples():
        if d.centre == "LDN":
            line = lines[d.file][d.row - 1]
            if d.rule == "duplicate_row":
                assert line == lines[d.file][d.row - 2]
            elif d.value != "<redacted>":
                assert ldn[d.file].loc[d.row - 2, d.column] == d.value, (d.file, d.row, d.value)
        elif d.centre == "SHF":
            ws = wb[d.sheet]
            cells = [c.value for c in ws[d.row]]
            if d.rule == "duplicate_row":
                assert cells == [c.value for c in ws[d.row - 1]]
            else:
                header = [c.value for c in ws[3]]
                value = cells[header.index(d.column)]
                assert d.value == "<redacted>" or ("" if value is None else str(value)) == d.value
        else:
            row = bhm[d.row - 1].split(",")
            assert row[header_bhm.index(d.column)] == d.value
    files = pd.DataFrame(manifest["files"])
    leaving = dirt[dirt["scope"] == "row"].fillna({"sheet": ""}).groupby(["file", "sheet"])["row"].nunique()
    got = files.fillna({"sheet": ""}).set_index(["file", "sheet"])["rows_expected_excluded"]
    assert got[got > 0].sort_index().to_dict() == leaving.sort_index().to_dict()


def test_row_leaving_dirt_never_touches_a_baseline_lab_or_first_dose(big):
    """Baseline labs are the samples of the 7 days before the first dose (one on the day of the
    dose does not count: doses carry no time). No lab row that leaves is one of them (a
    duplicate leaves its original behind), no haemolysed result is within a day of the first
    dose, and no dosing row that leaves is a first dose."""
    out, manifest = big
    dirt = pd.DataFrame(manifest["dirty_values"])
    labs = read_ldn(out, "labs.csv")
    dose = read_ldn(out, "anakinra.csv")
    first_dose = dose[dose["Route"].isin(["IV", "SC"])].assign(
        start=lambda d: ldn_dates(d["Start_Date"]).to_numpy()).groupby("Admission_ID")["start"].min()
    adm = read_ldn(out, "admissions.csv")
    index = first_dose.combine_first(ldn_dates(adm["Admit_Date"]).set_axis(adm["Admission_ID"]))  # no dose: admission
    leaving = dirt[(dirt["file"] == "labs.csv") & dirt["scope"].eq("row") & dirt["rule"].ne("duplicate_row")]
    samples = labs.iloc[leaving["row"].to_numpy() - 2]
    when = pd.to_datetime(samples["Sample_Time"], format="%d/%m/%Y %H:%M").dt.normalize()
    offset = (when - samples["Admission_ID"].map(index)).dt.days  # NaN for an orphan's unknown admission
    assert len(offset) and not offset.between(-7, -1).any()
    assert (offset[leaving["value"].eq("haemolysed").to_numpy()] >= 2).all()
    extra = dirt[dirt["rule"].isin(["stop_before_start", "unknown_code"]) & (dirt["file"] == "anakinra.csv")]
    for row in extra["row"]:
        line = dose.iloc[row - 2]
        assert pd.to_datetime(line["Start_Date"], format="%d/%m/%Y") > first_dose[line["Admission_ID"]]


# ----------------------------------------------------------------------------- identifiers and privacy
def test_identifiers_are_unique_fake_and_valid(big):
    out, _ = big
    ldn, shf, bhm = read_ldn(out, "patients.csv"), read_shf(out, "Patients"), read_bhm(out)
    bhm = bhm[bhm["redcap_repeat_instrument"] == ""]
    assert ldn["MRN"].is_unique and ldn["MRN"].str.len().ge(7).all()
    shf_people = shf.drop_duplicates("Hospital number")
    assert shf_people["Hospital number"].astype(str).str.len().ge(7).all()
    assert bhm.drop_duplicates("mrn")["mrn"].str.len().ge(7).all()
    all_mrns = pd.concat([ldn["MRN"], shf_people["Hospital number"], bhm.drop_duplicates("mrn")["mrn"]])
    assert all_mrns.is_unique
    nhs_ldn = ldn["NHS_Number"].str.replace(" ", "")
    nhs_shf = shf_people["NHS no."].astype(str).str.replace(" ", "")
    assert nhs_ldn.map(nhs_valid).all() and nhs_shf.map(nhs_valid).all()
    assert nhs_ldn.str.startswith("999").all()  # NHS England's reserved test range
    assert nhs_ldn.is_unique and nhs_shf.is_unique
    # Transferred patients: same number at both UK centres, spaced at exactly one of them.
    shared = set(nhs_ldn) & set(nhs_shf)
    assert len(shared) == round(500 / 46)
    for number in shared:
        written = [ldn.loc[nhs_ldn == number, "NHS_Number"].iloc[0],
                   str(shf_people.loc[nhs_shf == number, "NHS no."].iloc[0])]
        assert sorted(" " in w for w in written) == [False, True]
    names = pd.concat([ldn["Surname"] + "|" + ldn["Forename"], shf_people["Name"].str.title().str.replace(", ", "|"),
                       bhm.drop_duplicates("mrn").pipe(lambda b: b["last_name"] + "|" + b["first_name"])])
    assert names.str.lower().drop_duplicates().size == len(ldn) + len(shf_people) + bhm["mrn"].nunique() - len(shared)
    assert ldn["Postcode"].str.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2}").all()
    assert bhm["zip"].str.fullmatch(r"\d{5}").all()


def test_no_name_is_a_word_used_elsewhere_in_the_delivery(big):
    out, _ = big
    ldn, shf, bhm = read_ldn(out, "patients.csv"), read_shf(out, "Patients"), read_bhm(out)
    name_words = set(ldn["Surname"]) | set(ldn["Forename"]) | set(bhm["first_name"]) | set(bhm["last_name"])
    name_words |= set(shf["Name"].str.split(", ").explode())
    name_words = {w.lower() for n in name_words if n for w in re.split(r"[- ]", n)}
    identifier_cols = {"MRN", "NHS_Number", "Surname", "Forename", "DOB", "Postcode", "Hospital number", "NHS no.",
                       "Name", "Date of birth", "mrn", "first_name", "last_name", "dob", "zip"}
    text = []
    for p in (out / "LDN").iterdir():
        frame = read_ldn(out, p.name)
        text += list(frame.columns) + frame.drop(columns=identifier_cols & set(frame.columns)).stack().tolist()
    for sheet in SHF_COLUMNS:
        frame = read_shf(out, sheet)
        text += list(frame.columns) + (frame.drop(columns=identifier_cols & set(frame.columns)).stack()
                                       .astype(str).tolist())
    text += bhm.drop(columns=list(identifier_cols & set(bhm.columns))).stack().tolist()
    text += (out / "BHM" / "BHM_HLH_DataDictionary.csv").read_text().split()
    text += (ROOT / "config" / "config.yaml").read_text().split()
    words = {w for t in text for w in re.findall(r"[a-z]+", str(t).lower())}
    assert name_words and not (name_words & words)


def test_no_date_of_birth_is_an_event_date(big):
    out, _ = big
    dates = set()
    for name in ("admissions.csv", "anakinra.csv", "labs.csv", "adverse_events.csv"):
        frame = read_ldn(out, name)
        for col in frame.columns:
            if col.endswith(("Date", "_Time")):
                dates |= set(frame[col].str[:10])
    ldn_dobs = set(read_ldn(out, "patients.csv")["DOB"])
    iso = set(ldn_dates(sorted(d for d in dates if d)).dt.date)
    for sheet in SHF_COLUMNS:
        frame = read_shf(out, sheet)
        for col in frame.columns:
            if col != "Date of birth":
                iso |= {v.date() for v in frame[col] if isinstance(v, datetime)}
    bhm = read_bhm(out)
    for col in bhm.columns:
        if col.endswith(("_date", "_start", "_stop")) and col != "dob":
            iso |= {pd.Timestamp(v).date() for v in bhm[col] if v}
    dobs = {pd.to_datetime(d, format="%d/%m/%Y").date() for d in ldn_dobs}
    dobs |= {v.date() for v in read_shf(out, "Patients")["Date of birth"]}
    dobs |= {pd.Timestamp(v).date() for v in bhm["dob"] if v}
    assert len(iso) > 300 and not (dobs & iso)
    assert max(dobs) < min(iso) and max(dobs).year < min(iso).year  # no dd/mm vs mm/dd confusion either


# ----------------------------------------------------------------------------- clinical plausibility
def test_ages_routes_and_triggers_are_plausible(big):
    out, _ = big
    people = read_ldn(out, "patients.csv").set_index("MRN")
    adm = read_ldn(out, "admissions.csv")
    born = pd.to_datetime(pd.Series(people.loc[adm["MRN"], "DOB"].to_numpy()), format="%d/%m/%Y")
    admit = ldn_dates(adm["Admit_Date"])
    age = (admit - born).dt.days / 365.25
    assert age.min() >= 18 and age.max() <= 85
    shf = read_shf(out, "Patients")
    age_shf = (pd.to_datetime(shf["Admission date"]) - pd.to_datetime(shf["Date of birth"])).dt.days / 365.25
    assert age_shf.min() >= 14 and age_shf.max() <= 80
    bhm = read_bhm(out)
    bhm = bhm[bhm["redcap_repeat_instrument"] == ""]
    age_bhm = (pd.to_datetime(bhm["adm_date"]) - pd.to_datetime(bhm["dob"])).dt.days / 365.25
    assert age_bhm.min() >= 0.5 and age_bhm.max() <= 18
    # COVID-19 only from 2020.
    covid = admit[adm["Trigger_Detail"].eq("COVID-19")]
    assert (covid >= "2020-01-01").all()
    # Injection-site reactions only with SC doses, infusion reactions only with IV ones.
    routes = read_ldn(out, "anakinra.csv").groupby("Admission_ID")["Route"].agg(set)
    ae = read_ldn(out, "adverse_events.csv")
    assert ae["Event"].eq("Injection site reaction").any() and ae["Event"].eq("Infusion reaction").any()
    assert all("SC" in routes[a] for a in ae.loc[ae["Event"].eq("Injection site reaction"), "Admission_ID"])
    assert all("IV" in routes[a] for a in ae.loc[ae["Event"].eq("Infusion reaction"), "Admission_ID"])
    # Paediatric daily doses 1-12 mg/kg/day for SC and IV push (BHM).
    doses = read_bhm(out).query("redcap_repeat_instrument == 'anakinra_dosing' and ana_dose_mg != ''")
    weight = bhm.set_index("record_id")["weight_kg"].astype(float)
    per_day = doses["ana_dose_mg"].astype(float) * doses["ana_freq"].map({"1": 1, "2": 2, "3": 3, "4": 4}) \
        / doses["record_id"].map(weight).to_numpy()
    assert per_day.between(1, 12).mean() > 0.9


def test_iv_goes_to_sicker_patients_and_the_count_is_exact(big, tmp_path):
    out, manifest = big
    listing = pd.DataFrame(manifest["admission_list"])
    cohort = listing[(listing["category"] == "cohort") & (listing["centre"] == "LDN")].set_index("local_id")
    adm = read_ldn(out, "admissions.csv").set_index("Admission_ID").loc[cohort.index]
    icu = adm["ICU_Admission"].eq("Y").groupby(cohort["route_group"]).mean()
    assert icu["IV"] > icu["SC"] + 0.1
    small = generate(tmp_path, patients=40, seed=3, iv_patients=7)
    assert (small["cohort"]["IV"], small["cohort"]["SC"]) == (7, 33)


def test_ldn_core_patients_clear_the_definition_on_their_baseline_labs(big):
    """On the LDN files as written: the latest labs before the day of the first dose (days -7..-1;
    doses carry no time, so a same-day sample never counts) give an HScore far above 169 for every
    cohort admission (and prevalent user), and far below it for the sepsis ones."""
    out, manifest = big
    listing = pd.DataFrame(manifest["admission_list"]).query("centre == 'LDN'").set_index("local_id")["category"]
    adm = read_ldn(out, "admissions.csv").set_index("Admission_ID")
    labs = read_ldn(out, "labs.csv")
    labs = labs[labs["Admission_ID"].isin(adm.index) & ~labs["Result"].isin(["haemolysed"])].drop_duplicates()
    labs["value"] = pd.to_numeric(labs["Result"].str.lstrip("<>"))
    labs["qualified"] = labs["Result"].str.match(r"[<>]")
    labs["time"] = pd.to_datetime(labs["Sample_Time"], format="%d/%m/%Y %H:%M")
    index = first_dose(out).loc["LDN"].reindex(adm.index).fillna(ldn_dates(adm["Admit_Date"]).set_axis(adm.index))
    labs["offset"] = (labs["time"].dt.normalize() - labs["Admission_ID"].map(index)).dt.days
    before = labs[labs["offset"].between(-7, -1)].sort_values("time")
    latest = before.drop_duplicates(["Admission_ID", "Test"], keep="last")
    base = latest.pivot(index="Admission_ID", columns="Test", values="value")
    qualified = latest.pivot(index="Admission_ID", columns="Test", values="qualified")
    tests = {"FERR": "ferritin", "PLT": "platelets", "HB": "hb", "WBC": "wbc", "NEUT": "neutrophils",
             "FIB": "fibrinogen", "TRIG": "triglycerides", "AST": "ast", "SCD25": "scd25"}
    f = base.rename(columns=tests).reindex(columns=list(tests.values())).reindex(adm.index)
    f["max_temp_c"] = adm["Max_Temp_C"].astype(float)
    for col, src in (("hepatomegaly", "Hepatomegaly"), ("splenomegaly", "Splenomegaly"),
                     ("immunosuppression", "Known_Immunosuppression")):
        f[col] = adm[src].eq("Y")
    f["bm_haemophagocytosis"] = adm["BM_Haemophagocytosis"].map({"Y": "yes", "N": "no", "Not done": "not_done"})
    score = pd.Series(criteria.hscore(f), index=f.index)
    category = listing.reindex(f.index)
    # the admissions without a baseline platelet count lose at most the cytopenia item's 34 points
    unplated = [r["local_id"] for r in manifest["without_baseline_platelets"] if r["centre"] == "LDN"]
    assert len(unplated) and f.loc[unplated, "platelets"].isna().all()
    core = category.isin(["cohort", "prevalent_user"])
    assert score[core & ~score.index.isin(unplated)].min() >= criteria.HSCORE_MIN_CORE
    assert score[unplated].min() >= criteria.HSCORE_MIN_CORE - 34 > 169
    assert score[category == "not_meeting_criteria"].max() <= criteria.HSCORE_MAX_NOT_MEETING
    # No baseline value, as printed, sits within 6% of a cut-off of HScore, HLH-2004 or MAS 2016
    # ('<500' says below 500; '>100000' is far above every ferritin cut-off).
    printed = f.mask(qualified.rename(columns=tests).reindex(columns=f.columns).reindex(f.index).eq(True))
    for test, cutoffs in criteria.CUTOFFS.items():
        ratio = printed.loc[category == "cohort", test].dropna().to_numpy()[:, None] / np.array(cutoffs)
        assert not ((ratio > 1 / 1.06) & (ratio < 1.06)).any(), test
    # The '<500' ferritins are the baseline ones of their (cohort) admissions.
    below = planted(manifest, "ferritin_below_500")["local_id"]
    assert len(below) and (base.loc[below, "FERR"] == 500).all() and qualified.loc[below, "FERR"].all()


SCORE_LABS = {"ferritin", "triglycerides", "fibrinogen", "ast", "hb", "platelets", "wbc", "neutrophils", "crp", "alt"}


def test_every_core_admission_has_its_diagnostic_labs_before_the_first_dose(big):
    """Patients are diagnosed before they are treated: every cohort admission (and every
    prevalent user's) has, at every centre, a sample date 1-3 days before the first dose with all
    the score labs (and CRP, ALT), so a baseline taken only before the first dose finds them."""
    out, manifest = big
    listing = pd.DataFrame(manifest["admission_list"]).set_index(["centre", "local_id"])["category"]
    core = listing.index[listing.isin(["cohort", "prevalent_user"])]
    labs = written_labs(out).merge(first_dose(out).rename("first").reset_index(), on=["centre", "local_id"])
    before = labs[(labs["date"] - labs["first"]).dt.days.between(-3, -1)]
    panels = before.groupby(["centre", "local_id", "date"])["test"].agg(set)
    # ... but the patients the manifest lists without a platelet count before their first dose
    unplated = pd.MultiIndex.from_frame(pd.DataFrame(manifest["without_baseline_platelets"]))
    assert manifest["cohort"]["without_baseline_platelets"] == len(unplated) > 0
    without = panels.index.droplevel(2).isin(unplated)
    complete = pd.Series([(SCORE_LABS - {"platelets"} if w else SCORE_LABS) <= got for w, got in zip(without, panels)],
                         index=panels.index)
    complete = complete.groupby(level=["centre", "local_id"]).any().reindex(core, fill_value=False)
    assert len(core) >= 500 and complete.all(), complete[~complete].index.tolist()
    dosed_before = labs[labs["test"].eq("platelets") & (labs["date"] <= labs["first"])]
    assert not pd.MultiIndex.from_frame(dosed_before[["centre", "local_id"]]).isin(unplated).any()


def episode_doses(out: Path, manifest: dict) -> pd.DataFrame:
    """Dosing rows of each cohort episode (a transfer's two admissions), by the cohort admission's
    (centre, local_id)."""
    listing = pd.DataFrame(manifest["admission_list"]).set_index(["centre", "local_id"])
    adm = written_admissions(out).join(listing)
    episode = adm[adm["category"].isin(["cohort", "transfer_merged"])].reset_index()
    owner = episode[episode["category"] == "cohort"].set_index("person")[["centre", "local_id"]]
    episode[["owner_centre", "owner_id"]] = owner.reindex(episode["person"]).to_numpy()
    doses = written_doses(out).merge(episode[["centre", "local_id", "owner_centre", "owner_id"]],
                                     on=["centre", "local_id"])
    return doses.drop(columns=["centre", "local_id"]).rename(columns={"owner_centre": "centre", "owner_id": "local_id"})


def test_deaths_fall_when_they_fall_and_the_route_group_follows_the_doses(big):
    """No death is moved after a switch to IV: some cohort patients die within 5 days of the first
    dose; no dose starts after a death; the IV group is exactly the patients given an IV dose."""
    out, manifest = big
    listing = pd.DataFrame(manifest["admission_list"]).set_index(["centre", "local_id"])
    cohort = listing[listing["category"] == "cohort"]
    doses = episode_doses(out, manifest)
    given = doses[doses["route"].isin(["IV", "SC"])]  # not the rows with a route code nobody maps
    iv = given.groupby(["centre", "local_id"])["route"].agg(lambda r: r.eq("IV").any()).reindex(cohort.index)
    assert iv.notna().all() and (iv == cohort["route_group"].eq("IV")).all()
    assert iv.sum() == manifest["cohort"]["IV"]
    adm = written_admissions(out)
    death = adm.groupby("person")["death"].max()  # a transfer's death is on the second admission
    deaths = adm.loc[cohort.index, "person"].map(death).set_axis(cohort.index).dropna()
    first = given.groupby(["centre", "local_id"])["start"].min()
    days_to_death = (deaths - first.reindex(deaths.index)).dt.days
    assert (days_to_death < 6).sum() >= 5 and (days_to_death >= 0).all()
    last_start = given.groupby(["centre", "local_id"])["start"].max().reindex(deaths.index)
    assert (last_start <= deaths).all()


def test_a_death_before_the_planned_switch_to_iv_leaves_the_patient_sc(tmp_path):
    """Seed 6 (60 patients) happens to hold a patient planned to go from SC to IV who died before
    the switch: the manifest lists them, the files show SC doses only, and the IV group still
    holds exactly the IV patients asked for."""
    manifest = generate(tmp_path, patients=60, seed=6)
    early = planted(manifest, "died_before_planned_iv").set_index(["centre", "local_id"])
    assert len(early) == 1 and (early["route_group"] == "SC").all() and (early["category"] == "cohort").all()
    doses = episode_doses(tmp_path, manifest).set_index(["centre", "local_id"]).loc[early.index]
    adm = written_admissions(tmp_path).loc[early.index]
    assert set(doses["route"]) == {"SC"} and adm["died"].all()
    assert ((adm["death"] - doses["start"].min()).dt.days <= 4).all() and (doses["start"] <= adm["death"].max()).all()
    assert manifest["cohort"]["IV"] == round(60 * 18 / 46)


def test_planted_cases_are_what_they_claim(big):
    """Each planted case read back from the files: n of each (half the transfers, at least one),
    cohort patients all but the prevalent user, each what its description says."""
    out, manifest = big
    n = round(500 / 46)
    cases = pd.DataFrame(manifest["cases"]).set_index(["centre", "local_id"])
    listing = pd.DataFrame(manifest["admission_list"]).set_index(["centre", "local_id"])
    counts = cases["case"].value_counts().drop("died_before_planned_iv", errors="ignore").to_dict()
    transfers = manifest["non_cohort_admissions"]["transfer_merged"]
    assert counts == {c: n for c in CASES if c != "died_before_planned_iv"} | {
        "transfer_discharge_missing": -(-transfers // 2)}
    assert (cases["category"] == np.where(cases["case"] == "prevalent_user", "prevalent_user", "cohort")).all()
    assert (cases.index.get_level_values("local_id").value_counts() == 1).all()  # one case per admission
    adm, first = written_admissions(out), first_dose(out)
    doses = written_doses(out).set_index(["centre", "local_id"])
    related = cases["related_local_id"].dropna()
    related = pd.Series(list(zip(related.map(listing.reset_index().set_index("local_id")["centre"]), related)),
                        index=related.index)

    def of(case: str) -> pd.DataFrame:
        return adm.loc[cases.index[cases["case"] == case]]

    kids = of("dose_per_kg_without_weight")  # a child at SHF on IV, prescribed per kg, no weight recorded
    assert set(kids.index.get_level_values("centre")) == {"SHF"} and kids["weight"].isna().all()
    assert ((kids["admit"] - kids["dob"]).dt.days / 365.25 < 18).all()
    assert (listing.loc[kids.index, "route_group"] == "IV").all()
    per_kg_iv = doses.loc[kids.index].eval("route == 'IV' and dose == '2mg/kg'")
    assert per_kg_iv.groupby(level=["centre", "local_id"]).any().all()
    flag = of("death_flag_without_date")
    assert flag["died"].eq(True).all() and flag["death"].isna().all() and (flag["last_seen"] == flag["discharge"]).all()
    date = of("death_date_without_flag")
    assert date["died"].isna().all() and date["death"].notna().all()
    none = of("no_follow_up_dates")
    assert none[["discharge", "last_seen", "death"]].isna().all().all() and none["died"].eq(False).all()
    assert doses.loc[none.index, "stop"].isna().all() and first.reindex(none.index).notna().all()
    fever = of("fever_resolved_before_index")
    assert ((fever["fever"] < first.reindex(fever.index)) & (fever["fever"] >= fever["admit"])).all()
    below = of("ferritin_below_500")  # its '<500' is the baseline ferritin: see the LDN core test
    assert set(below.index.get_level_values("centre")) == {"LDN"}
    iso = of("iso_admission_date")
    written = read_ldn(out, "admissions.csv").set_index("Admission_ID")["Admit_Date"]
    written = written[iso.index.get_level_values("local_id")]
    assert set(iso.index.get_level_values("centre")) == {"LDN"} and written.str.fullmatch(r"2019-\d{2}-\d{2}").all()
    # A transfer: the sending centre's discharge and last-seen missing, the receiving admission of the same
    # person at the other UK centre within 7 days of the first admission.
    moved = of("transfer_discharge_missing")
    arrival = adm.loc[related[moved.index].tolist()]
    assert moved[["discharge", "last_seen"]].isna().all().all()
    assert (arrival["person"].to_numpy() == moved["person"].to_numpy()).all()
    assert (listing.loc[arrival.index, "category"] == "transfer_merged").all()
    assert (arrival.index.get_level_values("centre") != moved.index.get_level_values("centre")).all()
    gap = (arrival["admit"].to_numpy() - moved["admit"].to_numpy()) / np.timedelta64(1, "D")
    assert ((gap >= 0) & (gap <= 7)).all()
    # A prevalent user: the same person's 2018 admission with anakinra, then a 2019 admission.
    prevalent = of("prevalent_user")
    earlier = adm.loc[related[prevalent.index].tolist()]
    assert (earlier["person"].to_numpy() == prevalent["person"].to_numpy()).all()
    assert (listing.loc[earlier.index, "category"] == "outside_window").all()
    assert (earlier["admit"] < "2019-01-01").all()
    assert first.reindex(earlier.index).notna().all() and first.reindex(prevalent.index).notna().all()
    assert prevalent["admit"].between("2019-01-01", "2019-12-31").all()


# ----------------------------------------------------------------------------- command line
def test_command_line_writes_a_delivery_and_rejects_bad_arguments(tmp_path, capsys):
    done = subprocess.run([sys.executable, "-m", "stormcohort.synth", "--patients", "12", "--seed", "1", "--out",
                           str(tmp_path / "d")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "cohort 12" in done.stdout and (tmp_path / "d" / "delivery.yaml").is_file()
    for bad, named in ((["--iv-patients", "13"], "--iv-patients 13"), (["--extract-date", "2019-06-30"], "2019-06-30"),
                       (["--extract-date", "30/06/2020"], "30/06/2020")):
        with pytest.raises(SystemExit):
            main(["--patients", "12", "--seed", "1", "--out", str(tmp_path / "e"), *bad])
        assert named in capsys.readouterr().err
    assert not (tmp_path / "e").exists()  # nothing half-written


# ----------------------------------------------------------------------------- effect model
def effect_cohort(true_hr: float, confounding: float | None, patients: int = 2000, seed: int = 4):
    from stormcohort.synth.clinical import clinical_course

    ep, f, c = clinical_course(patients, round(patients * 18 / 46), seed, pd.Timestamp("2020-06-30"), 0, true_hr,
                               confounding)
    keep = ep["kind"].eq("cohort").to_numpy()
    return ep[keep], f[keep], c[keep]


def test_effect_model_death_time_inverts_the_cumulative_hazard():
    from stormcohort.synth.clinical import baseline_cumhaz, death_time, inverse_cumhaz

    t = np.array([0.0, 0.5, 3.0, 40.0, 90.0, 200.0])
    assert np.allclose(inverse_cumhaz(baseline_cumhaz(t)), t) and baseline_cumhaz(90.0) == pytest.approx(1.0)
    assert np.isinf(inverse_cumhaz(baseline_cumhaz(np.inf)))  # past the limit: never
    e, eta = np.array([0.05, 0.3, 0.9, 3.0]), np.log(0.5)
    no_iv = death_time(e, eta, 0.0, np.inf, 0.6)
    assert np.allclose(baseline_cumhaz(no_iv[:2]) * 0.5, e[:2]) and np.isinf(no_iv[2:]).all()
    # hazard ratio 1: the IV start changes nothing; IV from day 0: the hazard times 0.6 throughout
    assert np.array_equal(death_time(e, eta, 0.0, 0.0, 1.0), no_iv)
    on_iv = death_time(e, eta, 0.0, 0.0, 0.6)
    assert np.allclose(baseline_cumhaz(on_iv[:1]) * 0.5 * 0.6, e[:1]) and (on_iv >= no_iv).all()
    # IV from day 3: before it, as without IV; a transferred patient has no hazard before its start
    switch = death_time(e, eta, 0.0, 3.0, 0.6)
    assert np.array_equal(switch[no_iv < 3], no_iv[no_iv < 3]) and (switch >= no_iv).all()
    assert (death_time(e, eta, 6.0, np.inf, 0.6) >= 6).all()


def test_effect_model_plans_iv_by_day_with_confounding_by_hscore():
    """Exactly the IV patients asked for, 70% starting on IV and 7.5% switching on each of days 1-4;
    some planned for a switch die before it and stay SC; the HScore raises the chance of IV and
    of death; with confounding 0 it raises neither."""
    ep, f, c = effect_cohort(1.0, 1.0)
    iv_day = c["effect_iv_day"]
    assert iv_day.notna().sum() == round(2000 * 18 / 46)
    assert iv_day.value_counts().sort_index().to_dict() == dict(zip([0.0, 1.0, 2.0, 3.0, 4.0], [548, 59, 59, 59, 58]))
    died_first = c["effect_plan_day"].notna() & iv_day.isna()
    assert died_first.sum() > 0 and (c.loc[died_first, "death_day"] < c.loc[died_first, "effect_plan_day"]).all()
    assert (c.loc[iv_day.notna(), "death_day"].fillna(np.inf) >= iv_day.dropna()).all()
    assert c["iv"].equals(c["effect_plan_day"].notna())
    severity = c["effect_severity"]
    assert severity[iv_day.notna()].mean() > severity[iv_day.isna()].mean() + 0.7
    early = iv_day.le(2)
    assert severity[iv_day.eq(0)].mean() > severity[iv_day.between(1, 4)].mean() and early.sum() > 0
    dead = c["death_day"].le(90)
    assert severity[dead].mean() > severity[~dead].mean() + 0.3
    _, _, c0 = effect_cohort(1.0, 0.0)
    s0, iv0, dead0 = c0["effect_severity"], c0["effect_iv_day"].notna(), c0["death_day"].le(90)
    assert abs(s0[iv0].mean() - s0[~iv0].mean()) < 0.15 and abs(s0[dead0].mean() - s0[~dead0].mean()) < 0.15
    assert 0.18 < dead0.mean() < 0.32  # the embedded generator's mortality, about a quarter


def test_effect_model_true_hr_changes_only_deaths_on_iv():
    """Same seed, HR 1 and 0.6: the same plan and patients, SC patients die on the same days,
    no IV patient dies earlier, and fewer IV patients die."""
    _, _, one = effect_cohort(1.0, 1.0)
    _, _, low = effect_cohort(0.6, 1.0)
    assert one["effect_iv_day"].equals(low["effect_iv_day"]) and one["effect_plan_day"].equals(low["effect_plan_day"])
    sc = one["effect_iv_day"].isna()
    assert one.loc[sc, "death_day"].equals(low.loc[sc, "death_day"])
    assert (low.loc[~sc, "death_day"].fillna(np.inf) >= one.loc[~sc, "death_day"].fillna(np.inf)).all()
    assert low.loc[~sc, "death_day"].le(90).sum() < 0.8 * one.loc[~sc, "death_day"].le(90).sum()


def test_effect_model_delivery_records_its_settings(tmp_path, capsys):
    """Given, the settings are in delivery.yaml and the manifest; the files are a usual delivery with
    the IV group asked for; without them neither records anything (the embedded delivery's bytes)."""
    manifest = generate(tmp_path / "d", patients=60, seed=2, true_hr=0.6, confounding=1.0)
    assert {"true_hr": 0.6, "confounding": 1.0}.items() <= manifest["generator"].items()
    assert (manifest["cohort"]["IV"], manifest["cohort"]["SC"]) == (23, 37)
    meta = yaml.safe_load((tmp_path / "d" / "delivery.yaml").read_text())
    assert (meta["generator"]["true_hr"], meta["generator"]["confounding"]) == (0.6, 1.0)
    only_hr = generate(tmp_path / "e", patients=30, seed=2, true_hr=0.5)
    assert only_hr["generator"]["confounding"] == 0.0
    assert "true_hr" not in generate(tmp_path / "f", patients=30, seed=2)["generator"]
    main(["--patients", "30", "--seed", "2", "--out", str(tmp_path / "g"), "--true-hr", "0.5"])
    assert files_of(tmp_path / "g") == files_of(tmp_path / "e")
    for bad, named in ((["--true-hr", "0"], "--true-hr 0"), (["--true-hr", "-1"], "--true-hr -1")):
        with pytest.raises(SystemExit):
            main(["--patients", "30", "--seed", "2", "--out", str(tmp_path / "h"), *bad])
        assert named in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--update-from", str(tmp_path / "d"), "--seed", "2", "--out", str(tmp_path / "i"), "--confounding", "1"])
    assert "not an update" in capsys.readouterr().err
    assert not (tmp_path / "h").exists() and not (tmp_path / "i").exists()


# ----------------------------------------------------------------------------- updated deliveries
@pytest.fixture(scope="module")
def updated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("update") / "update1"
    return out, derive_update(EXAMPLE, out, seed=2)


def test_reading_a_delivery_and_writing_it_back_is_byte_identical(tmp_path):
    write_extract(read_extract(EXAMPLE), tmp_path, pd.Timestamp("2020-06-30"))
    assert files_of(tmp_path) == {name: data for name, data in files_of(EXAMPLE).items() if "/" in name}


def test_update_is_deterministic(updated, tmp_path):
    out, changes = updated
    derive_update(EXAMPLE, tmp_path / "again", seed=2)
    assert files_of(tmp_path / "again") == files_of(out)
    other = derive_update(EXAMPLE, tmp_path / "other", seed=3)
    assert other["patients"] != changes["patients"]


def ldn_rows_of(frame: pd.DataFrame, name: str, admission_id: str, patients: pd.DataFrame) -> pd.Series:
    if name == "patients.csv":
        return frame["MRN"].isin(patients.loc[patients["Admission_ID"] == admission_id, "MRN"])
    return frame["Admission_ID"] == admission_id


def test_update_changes_exactly_what_it_lists(updated):
    out, changes = updated
    listed = changes["patients"]
    removed = [c for c in listed["removed"]]
    added = {c["centre"]: c for c in listed["added"]}
    changed = {c["field"]: c for c in listed["changed"]}
    death = changed["death_date"]
    assert [c["centre"] for c in removed] == ["LDN"] and set(added) == {"LDN", "SHF", "BHM"}
    assert (changed["weight_kg"]["centre"], changed["labs:crp"]["centre"], len(changed)) == ("LDN", "SHF", 3)
    # The date of death goes to BHM if it has a suitable death, else LDN, else SHF; the dates
    # recorded as that day move with it.
    assert death["centre"] in {"BHM", "LDN", "SHF"} and death["column"] in death["columns_changed"]
    assert len(set(death["columns_changed"]) - {death["column"]}) <= 2
    old_adm, new_adm = read_ldn(EXAMPLE, "admissions.csv"), read_ldn(out, "admissions.csv")
    # LDN: the withdrawn patient's rows are gone, the new patient's rows come last, one weight corrected.
    assert list(new_adm.columns) == LDN_COLUMNS["admissions.csv"][:4] + ["Ward"] + LDN_COLUMNS["admissions.csv"][4:]
    for name in LDN_COLUMNS:
        old, new = read_ldn(EXAMPLE, name), read_ldn(out, name).drop(columns="Ward", errors="ignore")
        kept = old[~ldn_rows_of(old, name, removed[0]["local_id"], old_adm)].reset_index(drop=True)
        appended = new.iloc[len(kept):]
        # Every file but adverse_events.csv (a patient may have none) gains the new patient's rows.
        assert ldn_rows_of(appended, name, added["LDN"]["local_id"], new_adm).all()
        assert len(appended) >= (name != "adverse_events.csv")
        differs = (new.iloc[:len(kept)].reset_index(drop=True) != kept).stack()
        cells = {(kept.loc[i, "Admission_ID"], c) for i, c in differs[differs].index}
        expected = {(changed["weight_kg"]["local_id"], "Weight_kg")} if name == "admissions.csv" else set()
        if name == "admissions.csv" and death["centre"] == "LDN":
            expected |= {(death["local_id"], c) for c in death["columns_changed"]}
        assert cells == expected
    new_weight = new_adm.loc[new_adm["Admission_ID"] == added["LDN"]["local_id"], "Weight_kg"].iloc[0]
    assert float(new_weight) > 1000  # typed in grams: the ledger entry the changes list as added
    # SHF: one CRP cell of Bloods corrected; every sheet gains the new patient's rows at its end.
    for sheet in SHF_COLUMNS:
        old, new = read_shf(EXAMPLE, sheet), read_shf(out, sheet)
        appended = new.iloc[len(old):]
        assert len(appended) >= (sheet != "Adverse events") and appended["Hospital number"].nunique() <= 1
        assert not appended["Hospital number"].isin(old["Hospital number"]).any()
        head = new.iloc[:len(old)].astype(str)
        differs = (head != old.astype(str)).stack()
        expected = {(changed["labs:crp"]["row"] - 4, "CRP (mg/L)")} if sheet == "Bloods" else set()
        if sheet == "Patients" and death["centre"] == "SHF":
            expected = {(death["row"] - 4, c) for c in death["columns_changed"]}
        assert set(differs[differs].index) == expected
    assert read_shf(out, "Patients").index[-1] + 4 == int(added["SHF"]["local_id"].split()[-1])
    # BHM: a new record at the end; nothing else changes but a corrected death.
    old, new = read_bhm(EXAMPLE), read_bhm(out)
    differs = (new.iloc[:len(old)] != old).stack()
    expected = {(death["row"] - 2, c) for c in death["columns_changed"]} if death["centre"] == "BHM" else set()
    assert set(differs[differs].index) == expected
    assert set(new.iloc[len(old):]["record_id"]) == {added["BHM"]["local_id"].removeprefix("record_id ")}
    meta = yaml.safe_load((out / "delivery.yaml").read_text())
    assert ((meta["extract_date"].isoformat(), meta["synthetic"]) == ("2020-09-30", True)
            == (changes["extract_date"], True))
    wb = openpyxl.load_workbook(out / "SHF" / WORKBOOK, read_only=True)
    assert next(wb["Bloods"].iter_rows(min_row=2, max_row=2, values_only=True))[0] == "Export date: 30-Sep-2020"
    assert (changes["cohort"]["patients"], changes["cohort"]["IV"] + changes["cohort"]["SC"]) == (48, 48)


def test_update_keeps_identifiers_unique_and_out_of_its_change_list(updated):
    out, _ = updated
    ldn, shf, bhm = read_ldn(out, "patients.csv"), read_shf(out, "Patients"), read_bhm(out)
    bhm = bhm[bhm["redcap_repeat_instrument"] == ""]
    mrns = pd.concat([ldn["MRN"], shf["Hospital number"].drop_duplicates().astype(str), bhm["mrn"].drop_duplicates()])
    assert mrns.is_unique
    nhs_ldn = ldn["NHS_Number"].str.replace(" ", "")
    nhs_shf = shf.drop_duplicates("Hospital number")["NHS no."].astype(str).str.replace(" ", "")
    assert nhs_ldn.is_unique and nhs_shf.is_unique and nhs_ldn.map(nhs_valid).all()
    identifiers = set(mrns) | set(nhs_ldn) | set(nhs_shf) | set(ldn["NHS_Number"]) | set(ldn["Surname"]) \
        | set(ldn["Forename"]) | set(ldn["DOB"]) | set(ldn["Postcode"]) | set(bhm["first_name"]) \
        | set(bhm["last_name"]) | set(bhm["dob"]) | set(bhm["zip"]) | set(shf["Name"].str.split(", ").explode())
    listed = (out / "synth_changes.json").read_text()
    assert not [i for i in identifiers if i and i in listed]


def test_update_command_line_and_its_errors(tmp_path, capsys):
    main(["--update-from", str(EXAMPLE), "--seed", "2", "--out", str(tmp_path / "u")])
    assert "3 patients added, 1 withdrawn" in capsys.readouterr().out
    assert (tmp_path / "u" / "synth_changes.json").is_file()
    (tmp_path / "bare").mkdir()
    for args, named in ((["--patients", "5", "--update-from", str(EXAMPLE)], "either --patients"),
                        (["--update-from", str(tmp_path / "bare")], "synth_manifest.json"),
                        (["--update-from", str(EXAMPLE), "--extract-date", "2020-01-30"], "2020-01-30")):
        with pytest.raises(SystemExit):
            main([*args, "--seed", "2", "--out", str(tmp_path / "e")])
        assert named in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_update_of_a_larger_delivery(big, tmp_path):
    out, manifest = big
    changes = derive_update(out, tmp_path / "u", seed=5, new_patients=4)
    listed = changes["patients"]
    assert [c["centre"] for c in listed["added"]] == ["LDN", "LDN", "SHF", "BHM"]
    assert len(listed["removed"]) == 1 and len(listed["changed"]) == 3
    assert changes["cohort"]["patients"] == manifest["cohort"]["patients"] + 4 - 1
    assert admissions_per_centre(tmp_path / "u") == {
        c: manifest["admissions"]["by_centre"][c] + sum(a["centre"] == c for a in listed["added"])
        - sum(r["centre"] == c for r in listed["removed"]) for c in ("LDN", "SHF", "BHM")}
