"""The cleaning policy: one defect per variant of a valid extract, and the ledger entry it must give.

Row numbers are the ones a human sees: LDN/BHM data row i is CSV line i + 2, SHF data row i is
sheet row i + 4.
"""

from datetime import datetime

import pandas as pd
import pytest

from stormcohort.ingest import ingest_centre
from stormcohort.ingest.ledger import REDACTED, accounting
from tests.ingest_fixtures import (
    EXTRACT_DATE,
    KEY,
    bhm_data,
    bhm_row,
    centre_map,
    ldn_tables,
    shf_sheets,
    write_bhm,
    write_ldn,
    write_shf,
)


def accounted(result):
    """rows_in == kept + excluded, and excluded == distinct rows with a scope=row entry, per file."""
    row_entries = result.ledger[result.ledger["scope"] == "row"].drop_duplicates(["file", "row"])
    excluded = row_entries.groupby("file").size()
    for file, rows_in, kept, out in result.accounting[["file", "rows_in", "rows_kept",
                                                       "rows_excluded"]].itertuples(index=False):
        assert rows_in == kept + out
        assert out == excluded.get(file, 0)
    return result


def ldn(tmp_path, change):
    tables = ldn_tables()
    change(tables)
    write_ldn(tmp_path, tables)
    return accounted(ingest_centre(tmp_path, "LDN", centre_map("LDN"), KEY, EXTRACT_DATE))


def shf(tmp_path, change):
    sheets = shf_sheets()
    change(sheets)
    write_shf(tmp_path, sheets)
    return accounted(ingest_centre(tmp_path, "SHF", centre_map("SHF"), KEY, EXTRACT_DATE))


def bhm(tmp_path, change):
    data = bhm_data()
    data = change(data) if change else data
    write_bhm(tmp_path, data)
    return accounted(ingest_centre(tmp_path, "BHM", centre_map("BHM"), KEY, EXTRACT_DATE))


def entries(result, **where):
    ledger = result.ledger
    for column, value in where.items():
        ledger = ledger[ledger[column] == value]
    return ledger


def only_entry(result):
    assert len(result.ledger) == 1, result.ledger.to_string()
    return result.ledger.iloc[0]


def set_cell(frame, i, column, value):
    frame.loc[i, column] = value


# ------------------------------------------------------------------------------ rows that leave


def test_duplicate_row_keeps_the_first(tmp_path):
    r = ldn(tmp_path, lambda t: t.update({"labs.csv": pd.concat([t["labs.csv"], t["labs.csv"].iloc[[1]]])}))
    e = only_entry(r)
    assert (e["file"], e["row"], e["rule"], e["scope"]) == ("labs.csv", 6, "duplicate_row", "row")
    assert "row 3" in e["reason"]
    assert len(r.tables["labs"]) == 4


def test_duplicate_row_in_redcap_export(tmp_path):
    r = bhm(tmp_path, lambda d: pd.concat([d, d.iloc[[1]]], ignore_index=True))
    e = only_entry(r)
    assert (e["file"], e["row"], e["rule"]) == ("BHM_HLH_DATA.csv", 9, "duplicate_row")
    assert len(r.tables["anakinra"]) == 3


def test_missing_admission_link(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["anakinra.csv"], 0, "Admission_ID", ""))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["rule"], e["scope"]) == \
        ("anakinra.csv", 2, "Admission_ID", "missing_key", "row")
    assert len(r.tables["anakinra"]) == 2


def test_missing_ae_grade(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["adverse_events.csv"], 1, "CTCAE_Grade", ""))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["rule"]) == ("adverse_events.csv", 3, "CTCAE_Grade", "missing_key")


def test_ae_grade_outside_1_to_5_is_an_unknown_code(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["adverse_events.csv"], 0, "CTCAE_Grade", "7"))
    e = only_entry(r)
    assert (e["row"], e["value"], e["rule"], e["scope"]) == (2, "7", "unknown_code", "row")


def test_unparseable_admission_date_drops_the_admission_and_orphans_its_rows(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["admissions.csv"], 1, "Admit_Date", "31/02/2019"))
    e = entries(r, rule="unparseable_date").iloc[0]
    assert (e["file"], e["row"], e["column"], e["value"], e["scope"]) == \
        ("admissions.csv", 3, "Admit_Date", "31/02/2019", "row")
    assert "dd/mm/yyyy" in e["reason"]
    assert len(r.tables["admissions"]) == 1
    orphans = entries(r, rule="orphan")
    assert set(zip(orphans["file"], orphans["row"])) == \
        {("anakinra.csv", 4), ("labs.csv", 4), ("labs.csv", 5), ("adverse_events.csv", 3)}


def test_date_in_another_unambiguous_format_is_read_with_a_value_entry(tmp_path):
    def change(t):
        set_cell(t["admissions.csv"], 1, "Admit_Date", "2019-03-05")  # ISO in a dd/mm/yyyy map
        set_cell(t["admissions.csv"], 0, "Discharge_Date", "28 February 2019")
        set_cell(t["anakinra.csv"], 2, "Start_Date", "6-Mar-2019")
        set_cell(t["labs.csv"], 0, "Sample_Time", "2019-02-10T09:30")
    r = ldn(tmp_path, change)
    got = {(e.file, e.row, e.column, e.value, e.scope) for e in entries(r, rule="date_format_differs").itertuples()}
    assert got == {("admissions.csv", 3, "Admit_Date", "2019-03-05", "value"),
                   ("admissions.csv", 2, "Discharge_Date", "28 February 2019", "value"),
                   ("anakinra.csv", 4, "Start_Date", "6-Mar-2019", "value"),
                   ("labs.csv", 2, "Sample_Time", "2019-02-10T09:30", "value")}, r.ledger.to_string()
    assert set(r.ledger["rule"]) == {"date_format_differs"}
    reasons = entries(r, rule="date_format_differs").set_index("column")["reason"]
    assert "dd/mm/yyyy" in reasons["Admit_Date"] and "read as yyyy-mm-dd (ISO)" in reasons["Admit_Date"]
    assert "read as dd Month yyyy" in reasons["Discharge_Date"]
    assert "read as dd-Mon-yyyy" in reasons["Start_Date"]
    assert "read as yyyy-mm-ddTHH:MM (ISO)" in reasons["Sample_Time"]
    adm = r.tables["admissions"].set_index("diagnosis")
    assert len(adm) == 2 and len(r.tables["patients"]) == 2
    assert adm.loc["mas", "admit_date"] == pd.Timestamp("2019-03-05")
    assert adm.loc["shlh", "discharge_date"] == pd.Timestamp("2019-02-28")
    assert pd.Timestamp("2019-03-06") in set(r.tables["anakinra"]["start"])
    assert pd.Timestamp("2019-02-10 09:30") in set(r.tables["labs"]["sample_time"])
    assert len(r.tables["anakinra"]) == 3 and len(r.tables["labs"]) == 4 and len(r.tables["adverse_events"]) == 2


@pytest.mark.parametrize("centre, text", [("LDN", "2019-02-31"), ("LDN", "12/31/2019"), ("BHM", "01/02/2019")])
def test_ambiguous_or_impossible_date_in_another_format_still_leaves(tmp_path, centre, text):
    if centre == "LDN":
        r = ldn(tmp_path, lambda t: set_cell(t["admissions.csv"], 1, "Admit_Date", text))
        file, row, column = "admissions.csv", 3, "Admit_Date"
    else:
        r = bhm(tmp_path, lambda d: d.assign(adm_date=d["adm_date"].mask(d.index == 0, text)))  # ISO map
        file, row, column = "BHM_HLH_DATA.csv", 2, "adm_date"
    e = entries(r, rule="unparseable_date")
    assert [tuple(x) for x in e[["file", "row", "column", "value", "scope"]].to_numpy()] == \
        [(file, row, column, text, "row")]
    assert entries(r, rule="date_format_differs").empty
    assert len(r.tables["admissions"]) == 1


def test_unparseable_sample_time(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["labs.csv"], 2, "Sample_Time", "yesterday"))
    e = only_entry(r)
    assert (e["row"], e["column"], e["rule"], e["scope"]) == (4, "Sample_Time", "unparseable_date", "row")


def test_unknown_redcap_route_code(tmp_path):
    r = bhm(tmp_path, lambda d: d.assign(ana_route=d["ana_route"].mask(d.index == 1, "7")))
    e = only_entry(r)
    assert (e["row"], e["column"], e["value"], e["rule"]) == (3, "ana_route", "7", "unknown_code")
    assert "3 (SubQ)" in e["reason"]
    assert len(r.tables["anakinra"]) == 2


def test_unknown_route_spelling(tmp_path):
    r = shf(tmp_path, lambda s: set_cell(s["Dosing"], 1, "Route", "intrathecal"))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["rule"]) == ("SHF_HLH_registry.xlsx:Dosing", 5, "Route", "unknown_code")


def test_unknown_lab_test_and_unit(tmp_path):
    def change(t):
        set_cell(t["labs.csv"], 0, "Test", "XYZ")
        set_cell(t["labs.csv"], 1, "Units", "mmol/L")
    r = ldn(tmp_path, change)
    assert list(zip(r.ledger["row"], r.ledger["column"], r.ledger["rule"])) == \
        [(2, "Test", "unknown_code"), (3, "Units", "unknown_unit")]
    assert len(r.tables["labs"]) == 2


def test_stop_before_start(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["anakinra.csv"], 0, "Stop_Date", "01/02/2019"))
    e = only_entry(r)
    assert (e["row"], e["column"], e["rule"], e["scope"]) == (2, "Stop_Date", "stop_before_start", "row")


def test_haemolysed_result_leaves(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["labs.csv"], 0, "Result", "haemolysed"))
    e = only_entry(r)
    assert (e["row"], e["column"], e["value"], e["rule"], e["scope"]) == \
        (2, "Result", "haemolysed", "unparseable_value", "row")


def test_implausible_lab_result_leaves(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["labs.csv"], 0, "Result", "900000"))
    e = only_entry(r)
    assert (e["row"], e["rule"], e["scope"]) == (2, "implausible_value", "row")


@pytest.mark.parametrize("dose, rule", [("lots", "unparseable_value"), ("20000", "implausible_value")])
def test_bad_dose_leaves(tmp_path, dose, rule):
    r = ldn(tmp_path, lambda t: set_cell(t["anakinra.csv"], 2, "Dose_mg", dose))
    e = only_entry(r)
    assert (e["row"], e["column"], e["value"], e["rule"], e["scope"]) == (4, "Dose_mg", dose, rule, "row")


def test_implausible_redcap_dose_leaves(tmp_path):
    r = bhm(tmp_path, lambda d: d.assign(ana_dose_mg=d["ana_dose_mg"].mask(d.index == 6, "5000")))
    e = only_entry(r)
    assert (e["row"], e["column"], e["rule"]) == (8, "ana_dose_mg", "implausible_value")


def test_orphan_rows(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["labs.csv"], 3, "Admission_ID", "ADM9"))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["value"], e["rule"]) == ("labs.csv", 5, "Admission_ID", "ADM9",
                                                                         "orphan")


def test_orphan_by_hospital_number_is_redacted(tmp_path):
    r = shf(tmp_path, lambda s: set_cell(s["Bloods"], 1, "Hospital number", "S999"))
    e = only_entry(r)
    assert (e["file"], e["row"], e["rule"], e["scope"]) == ("SHF_HLH_registry.xlsx:Bloods", 5, "orphan", "row")
    assert e["value"] == REDACTED and "Hospital number" in e["column"]


def test_orphan_redcap_instance(tmp_path):
    r = bhm(tmp_path, lambda d: pd.concat(
        [d, pd.DataFrame([bhm_row("3", "labs", "1", lab_date="2019-05-01", crp_mgdl="1")], columns=d.columns)],
        ignore_index=True))
    e = only_entry(r)
    assert (e["row"], e["column"], e["value"], e["rule"]) == (9, "record_id", "3", "orphan")


def test_unknown_redcap_instrument(tmp_path):
    r = bhm(tmp_path, lambda d: pd.concat(
        [d, pd.DataFrame([bhm_row("1", "imaging", "1")], columns=d.columns)], ignore_index=True))
    e = only_entry(r)
    assert (e["row"], e["column"], e["value"], e["rule"], e["scope"]) == \
        (9, "redcap_repeat_instrument", "imaging", "unknown_code", "row")


def test_second_record_for_the_same_patient_id(tmp_path):
    r = ldn(tmp_path, lambda t: t.update({"patients.csv": pd.concat(
        [t["patients.csv"], t["patients.csv"].iloc[[0]].assign(Sex="M")])}))
    e = only_entry(r)
    assert (e["file"], e["row"], e["rule"], e["value"]) == ("patients.csv", 4, "duplicate_key", REDACTED)
    assert r.tables["patients"]["sex"].tolist().count("F") == 1


def test_admission_date_after_the_extract_date(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["admissions.csv"], 0, "Admit_Date", "01/07/2020"))
    assert (entries(r, file="admissions.csv")["rule"] == "implausible_value").all()
    assert len(r.tables["admissions"]) == 1


# ------------------------------------------------------------------------------ values set to missing


def test_weight_in_grams_becomes_missing(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["admissions.csv"], 0, "Weight_kg", "72500"))
    e = only_entry(r)
    assert (e["row"], e["column"], e["value"], e["rule"], e["scope"]) == (2, "Weight_kg", "72500",
                                                                          "implausible_value", "value")
    assert r.tables["admissions"]["weight_kg"].isna().sum() == 1 and len(r.tables["admissions"]) == 2


def test_bad_optional_values_become_missing(tmp_path):
    def change(t):
        set_cell(t["admissions.csv"], 0, "Discharge_Date", "32/13/2019")
        set_cell(t["admissions.csv"], 0, "Hepatomegaly", "Maybe")
        set_cell(t["patients.csv"], 1, "Sex", "X")
        set_cell(t["admissions.csv"], 1, "Max_Temp_C", "hot")
    r = ldn(tmp_path, change)
    got = set(zip(r.ledger["file"], r.ledger["row"], r.ledger["column"], r.ledger["rule"], r.ledger["scope"]))
    assert got == {("admissions.csv", 2, "Discharge_Date", "unparseable_date", "value"),
                   ("admissions.csv", 2, "Hepatomegaly", "unknown_code", "value"),
                   ("patients.csv", 3, "Sex", "unknown_code", "value"),
                   ("admissions.csv", 3, "Max_Temp_C", "unparseable_value", "value")}
    adm = r.tables["admissions"].set_index("diagnosis")
    assert pd.isna(adm.loc["shlh", "discharge_date"]) and pd.isna(adm.loc["shlh", "hepatomegaly"])
    assert pd.isna(adm.loc["mas", "max_temp_c"])
    assert r.tables["patients"]["sex"].isna().sum() == 1
    assert len(adm) == 2


def test_bad_cell_in_wide_bloods_leaves_only_that_cell(tmp_path):
    r = shf(tmp_path, lambda s: set_cell(s["Bloods"], 0, "CRP (mg/L)", "haemolysed"))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["value"], e["rule"], e["scope"]) == \
        ("SHF_HLH_registry.xlsx:Bloods", 4, "CRP (mg/L)", "haemolysed", "unparseable_value", "value")
    labs = r.tables["labs"]
    first = labs[labs["sample_time"] == pd.Timestamp("2019-03-01")]
    assert len(first) == 12 and "crp" not in set(first["test"])


def test_implausible_redcap_lab_cell(tmp_path):
    r = bhm(tmp_path, lambda d: d.assign(hgb_gdl=d["hgb_gdl"].mask(d.index == 3, "85")))  # g/L typed as g/dL
    e = only_entry(r)
    assert (e["row"], e["column"], e["rule"], e["scope"]) == (5, "hgb_gdl", "implausible_value", "value")
    assert "hb" not in set(r.tables["labs"]["test"])


def test_unparseable_date_of_birth_is_redacted(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["patients.csv"], 0, "DOB", "1970-02-30"))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["value"], e["scope"]) == ("patients.csv", 2, "DOB", REDACTED, "value")
    assert r.tables["admissions"]["age_years"].isna().sum() == 1


def test_implausible_age_points_at_the_date_of_birth(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["patients.csv"], 1, "DOB", "15/07/1885"))
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["value"], e["rule"]) == \
        ("patients.csv", 3, "DOB", REDACTED, "implausible_value")


def test_shf_typed_dates_and_spellings_need_no_ledger_entry(tmp_path):
    def change(s):
        set_cell(s["Dosing"], 0, "Dose", "100 mg")
        set_cell(s["Dosing"], 0, "Route", "s/c")
        set_cell(s["Dosing"], 0, "From", "02-Mar-2019")
        set_cell(s["Patients"], 0, "NHS no.", "485 777 3456")
    r = shf(tmp_path, change)
    assert r.ledger.empty
    first = r.tables["anakinra"].sort_values("start").iloc[1]
    assert (first["route"], first["dose_mg"], first["start"]) == ("SC", 100.0, pd.Timestamp("2019-03-02"))


def test_infusion_written_as_a_rate(tmp_path):
    r = shf(tmp_path, lambda s: set_cell(s["Dosing"], 1, "Dose", "0.1 mg/kg/h"))  # S100 weighs 70 kg
    assert r.ledger.empty
    infusion = r.tables["anakinra"].query("continuous").iloc[0]
    assert infusion["rate_mg_per_h"] == pytest.approx(7.0) and infusion["daily_dose_mg"] == pytest.approx(168.0)
    assert pd.isna(infusion["dose_mg"])


def test_bloods_go_to_the_admission_whose_stay_holds_their_date(tmp_path):
    """S100 is readmitted on 2019-05-10: a sample 2 days before it belongs to the readmission,
    a sample after the first discharge with no admission close ahead to the first stay."""
    def change(s):
        readmission = s["Patients"].iloc[[0]].assign(**{"Admission date": datetime(2019, 5, 10),
                                                        "Discharge date": datetime(2019, 5, 20),
                                                        "Afebrile date": "NA"})
        s["Patients"] = pd.concat([s["Patients"], readmission], ignore_index=True)
        late = s["Bloods"].iloc[[0]].assign(Date=datetime(2019, 4, 1))
        before_readmission = s["Bloods"].iloc[[0]].assign(Date=datetime(2019, 5, 8), **{"Hb (g/L)": 101})
        s["Bloods"] = pd.concat([s["Bloods"], late, before_readmission], ignore_index=True)
    r = shf(tmp_path, change)
    assert r.ledger.empty
    admit = r.tables["admissions"].set_index("admission_key")["admit_date"]
    labs = r.tables["labs"].query("test == 'hb'").assign(admit=lambda d: d["admission_key"].map(admit))
    stay = dict(zip(labs["sample_time"], labs["admit"]))
    assert stay[pd.Timestamp("2019-04-01")] == pd.Timestamp("2019-03-01")
    assert stay[pd.Timestamp("2019-05-08")] == pd.Timestamp("2019-05-10")


def test_per_kg_dose_without_weight_keeps_the_row_with_the_mg_dose_missing(tmp_path):
    """Route, start and stop are known: the row stays (the route cohort and index date do not
    move), its mg dose is missing (not 0) with a scope=value entry."""
    def change(s):
        set_cell(s["Patients"], 1, "Weight (kg)", "NA")
        s["Dosing"].loc[2, ["Route", "Dose", "Frequency", "To"]] = ["i.v. infusion", "2mg/kg", "continuous",
                                                                     datetime(2019, 2, 6)]
        s["Dosing"].loc[3] = ["S200", "03-Feb-2019", "s/c", "65mg", "twice daily", datetime(2019, 2, 7), "NA"]
    r = shf(tmp_path, change)
    e = only_entry(r)
    assert (e["file"], e["row"], e["column"], e["value"], e["rule"], e["scope"]) == \
        ("SHF_HLH_registry.xlsx:Dosing", 6, "Dose", "2mg/kg", "dose_per_kg_without_weight", "value")
    doses = r.tables["anakinra"].sort_values("start")
    s200 = doses[doses["start"] < pd.Timestamp("2019-03-01")]
    assert list(s200["route"]) == ["IV", "SC"]
    iv = s200.iloc[0]
    assert iv["start"] == pd.Timestamp("2019-02-04") and iv["continuous"]
    assert pd.isna(iv["dose_mg"]) and pd.isna(iv["rate_mg_per_h"]) and pd.isna(iv["daily_dose_mg"])
    assert s200.iloc[1]["daily_dose_mg"] == pytest.approx(130.0)


# ------------------------------------------------------------------------------ accounting


def test_ledger_is_sorted_by_file_row_column(tmp_path):
    def change(t):
        set_cell(t["labs.csv"], 3, "Result", "haemolysed")
        set_cell(t["admissions.csv"], 1, "Weight_kg", "0")
        set_cell(t["admissions.csv"], 0, "Max_Temp_C", "60")
        set_cell(t["admissions.csv"], 0, "ICU_Days", "999")
    r = ldn(tmp_path, change)
    keys = list(zip(r.ledger["file"], r.ledger["row"], r.ledger["column"]))
    assert keys == sorted(keys) and len(keys) == 4


def test_accounting_refuses_a_row_that_is_neither_kept_nor_excluded():
    ledger = pd.DataFrame({"centre": ["LDN"], "file": ["labs.csv"], "row": [3], "column": [""], "value": [""],
                           "rule": ["duplicate_row"], "reason": [""], "scope": ["row"]})
    rows_in = {"labs.csv": pd.Index([2, 3, 4])}
    assert accounting("LDN", rows_in, {"labs.csv": pd.Index([2, 4])}, ledger)["rows_excluded"].tolist() == [1]
    with pytest.raises(AssertionError, match=r"neither kept nor excluded \[4\]"):
        accounting("LDN", rows_in, {"labs.csv": pd.Index([2])}, ledger)
    with pytest.raises(AssertionError, match=r"both kept and excluded \[3\]"):
        accounting("LDN", rows_in, {"labs.csv": pd.Index([2, 3, 4])}, ledger)


def test_ledger_summary_counts_entries_by_file_rule_and_scope():
    from stormcohort.ingest.ledger import RULES, ledger_summary

    ledger = pd.DataFrame({"file": ["a.csv", "a.csv", "a.csv", "b.csv"], "row": [1, 2, 3, 4],
                           "column": ["x", "y", None, "x"], "value": ["1", "2", "", "3"],
                           "rule": ["orphan", "orphan", "spreadsheet_error", "orphan"], "reason": [""] * 4,
                           "scope": ["row", "row", "value", "row"]})
    s = ledger_summary(ledger, "LDN")
    orphan, error = RULES["orphan"], RULES["spreadsheet_error"]
    assert s.values.tolist() == [["LDN", "a.csv", "orphan", "row", "x, y", 2, orphan],
                                 ["LDN", "a.csv", "spreadsheet_error", "value", "", 1, error],
                                 ["LDN", "b.csv", "orphan", "row", "x", 1, orphan]]
    assert ledger_summary(ledger.iloc[:0], "LDN").empty


def test_excel_error_cells_are_ledgered_and_read_as_missing(tmp_path):
    """`#DIV/0!`, `#N/A`, `#VALUE!` cells (calamine reads them as empty): a scope=value entry each
    with the error text, then missing."""
    def change(s):
        set_cell(s["Patients"], 0, "Weight (kg)", "#VALUE!")
        set_cell(s["Bloods"], 0, "Ferritin (ug/L)", "#DIV/0!")
        set_cell(s["Bloods"], 1, "CRP (mg/L)", "#N/A")
    r = shf(tmp_path, change)
    found = set(zip(r.ledger["file"], r.ledger["row"], r.ledger["column"], r.ledger["value"], r.ledger["rule"],
                    r.ledger["scope"]))
    assert found == {
        ("SHF_HLH_registry.xlsx:Patients", 4, "Weight (kg)", "#VALUE!", "spreadsheet_error", "value"),
        ("SHF_HLH_registry.xlsx:Bloods", 4, "Ferritin (ug/L)", "#DIV/0!", "spreadsheet_error", "value"),
        ("SHF_HLH_registry.xlsx:Bloods", 5, "CRP (mg/L)", "#N/A", "spreadsheet_error", "value"),
    }
    assert r.tables["admissions"]["weight_kg"].isna().sum() == 1
    assert len(r.tables["labs"].query("test == 'ferritin'")) == 1


def test_fahrenheit_is_converted_exactly_not_rounded(tmp_path):
    """101.111 degF is 38.395 degC: rounded to two decimals it would be 38.4 (or 38.39), on the
    other side of the HScore's 38.4 cut-off from the measurement; 103.1 degF is exactly 39.5."""
    r = bhm(tmp_path, lambda d: d.assign(tmax_f=d["tmax_f"].replace({"101.3": "101.111", "102.2": "103.1"})))
    assert r.ledger.empty
    temps = sorted(r.tables["admissions"]["max_temp_c"])
    assert temps[0] == 38.395 and temps[1] == 39.5


def test_a_recorded_death_is_never_lost(tmp_path):
    """A date of death is a death whatever the outcome column says (a conflict is ledgered); a date
    before the admission is set to missing but the death kept; a flag without a date stays a death."""
    def change(t):
        adm = t["admissions.csv"]
        set_cell(adm, 0, "Outcome", "Alive")          # alive, with a date of death: conflict
        set_cell(adm, 0, "Date_of_Death", "01/03/2019")
        set_cell(adm, 1, "Outcome", "")               # blank outcome, dated before the admission
        set_cell(adm, 1, "Date_of_Death", "01/01/2019")
    r = ldn(tmp_path, change)
    adm = r.tables["admissions"].set_index("diagnosis")
    assert adm["died"].tolist() == [True, True]
    assert adm.loc["shlh", "death_date"] == pd.Timestamp("2019-03-01")
    assert pd.isna(adm.loc["mas", "death_date"])
    got = {(e.row, e.column, e.rule, e.scope) for e in r.ledger.itertuples()}
    assert got == {(2, "Outcome", "death_conflict", "value"), (3, "Outcome", "death_flag_missing", "value"),
                   (3, "Date_of_Death", "implausible_value", "value")}, r.ledger.to_string()
    assert "kept as a death" in entries(r, column="Date_of_Death")["reason"].iloc[0]


def test_a_death_flag_without_a_date_stays_a_death(tmp_path):
    r = ldn(tmp_path, lambda t: set_cell(t["admissions.csv"], 1, "Date_of_Death", ""))
    adm = r.tables["admissions"].set_index("diagnosis")
    assert adm.loc["mas", "died"] == True and pd.isna(adm.loc["mas", "death_date"])  # noqa: E712
    assert r.ledger.empty


def test_a_ledger_rule_without_its_handling_is_refused():
    from stormcohort.ingest.ledger import Ledger

    with pytest.raises(ValueError, match="not one of ledger.RULES"):
        Ledger("LDN", []).add("a.csv", pd.Series(["x"], index=[2]), "Col", "made_up_rule", "why", "value")
