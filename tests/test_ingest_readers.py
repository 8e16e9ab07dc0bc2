"""Each centre's reader on a valid extract: values, codes and units arrive canonical; structural
problems stop the run naming the file; no identifier reaches an output table."""

import logging

import pandas as pd
import pytest
import yaml

from stormcohort.canonical import COLUMNS, TABLES
from stormcohort.errors import ExtractError
from stormcohort.ingest import ingest_centre, load_centre_map, read_identifiers
from stormcohort.io import write_csv, write_parquet
from stormcohort.privacy import identifier_set, scan
from stormcohort.pseudonym import person_key
from tests.ingest_fixtures import (
    EXTRACT_DATE,
    KEY,
    ROOT,
    SHARED_NHS,
    bhm_data,
    bhm_dictionary,
    centre_map,
    ldn_tables,
    shf_sheets,
    write_all,
    write_bhm,
    write_ldn,
    write_shf,
)


def ingest(delivery, centre, **kw):
    return ingest_centre(delivery, centre, centre_map(centre), KEY, EXTRACT_DATE, **kw)


@pytest.fixture(scope="module")
def delivery(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("delivery"))


@pytest.fixture(scope="module")
def results(delivery):
    return {c: ingest(delivery, c) for c in ["LDN", "SHF", "BHM"]}


@pytest.mark.parametrize("centre", ["LDN", "SHF", "BHM"])
def test_valid_extract_gives_every_table_and_an_empty_ledger(results, centre):
    r = results[centre]
    assert set(r.tables) == set(TABLES)
    for name in TABLES:
        assert list(r.tables[name].columns) == COLUMNS[name]
    assert r.ledger.empty
    assert (r.accounting["rows_in"] == r.accounting["rows_kept"]).all()
    assert r.accounting["rows_in"].sum() > 0


def test_ldn_csv_with_bom_and_crlf(results):
    r = results["LDN"]
    adm = r.tables["admissions"].set_index("diagnosis_text")
    first = adm.loc["Secondary HLH"]
    assert first["diagnosis"] == "shlh" and first["trigger_category"] == "infection"
    assert first["admit_date"] == pd.Timestamp("2019-02-10")
    assert first["weight_kg"] == 70.5 and first["icu_days"] == 5
    assert first["age_years"] == round((pd.Timestamp("2019-02-10") - pd.Timestamp("1970-03-02")).days / 365.25, 2)
    second = adm.loc["Macrophage activation syndrome"]
    assert second["diagnosis"] == "mas" and bool(second["died"]) is True
    assert pd.isna(second["bm_haemophagocytosis"])  # "Not done": known, not recorded, no ledger entry
    assert pd.isna(second["icu_days"])
    assert sorted(r.tables["patients"]["sex"]) == ["F", "M"]


def test_ldn_dosing_daily_doses(results):
    doses = results["LDN"].tables["anakinra"].sort_values("start").reset_index(drop=True)
    assert doses["route"].tolist() == ["SC", "IV", "IV"]
    assert doses["frequency"].tolist() == ["BD", "CONT", "QDS"]
    assert doses["continuous"].tolist() == [False, True, False]
    assert doses["daily_dose_mg"].tolist() == [200.0, 10.0 * 24, 800.0]
    assert doses.loc[1, "rate_mg_per_h"] == 10.0 and pd.isna(doses.loc[1, "dose_mg"])


def test_ldn_lab_qualifiers(results):
    labs = results["LDN"].tables["labs"]
    found = set(zip(labs["test"], labs["value"], labs["qualifier"], labs["unit"]))
    assert found == {("ferritin", 12000.0, "", "ug/L"), ("crp", 150.0, "", "mg/L"),
                     ("ferritin", 100000.0, ">", "ug/L"), ("crp", 5.0, "<", "mg/L")}


def test_same_person_at_ldn_and_shf_has_one_key(results):
    shared = person_key(pd.Series([SHARED_NHS]), "any", pd.Series(["x"]), KEY).iloc[0]
    assert shared in set(results["LDN"].tables["patients"]["person_key"])
    assert shared in set(results["SHF"].tables["patients"]["person_key"])


def test_shf_workbook(results):
    r = results["SHF"]
    adm = r.tables["admissions"].set_index("diagnosis")
    typed = adm.loc["mas"]  # admission date typed as text 03-Feb-2019
    assert typed["admit_date"] == pd.Timestamp("2019-02-03")
    assert bool(typed["died"]) is True  # "Deceased"
    assert pd.isna(typed["icu_days"]) and pd.isna(typed["fever_resolution_date"])  # "NA"
    assert typed["age_years"] == round((pd.Timestamp("2019-02-03") - pd.Timestamp("2005-01-01")).days / 365.25, 2)
    cell = adm.loc["shlh"]
    assert cell["fever_resolution_date"] == pd.Timestamp("2019-03-03")  # text date in a date column
    assert pd.isna(cell["bm_haemophagocytosis"])


def test_shf_dosing_spellings_and_per_kg_doses(results):
    doses = results["SHF"].tables["anakinra"].sort_values("start").reset_index(drop=True)
    # S200 (50 kg): intravenous 2 mg/kg 6-hourly -> 100 mg x 4
    assert doses.loc[0, ["route", "continuous", "dose_mg", "frequency", "daily_dose_mg"]].tolist() == \
        ["IV", False, 100.0, "QDS", 400.0]
    assert pd.isna(doses.loc[0, "stop"])
    # S100: subcutaneous 100mg twice daily; then an i.v. infusion prescribed as 96 mg per 24 h
    assert doses.loc[1, ["route", "continuous", "dose_mg", "daily_dose_mg"]].tolist() == ["SC", False, 100.0, 200.0]
    assert doses.loc[2, ["route", "continuous", "frequency", "rate_mg_per_h", "daily_dose_mg"]].tolist() == \
        ["IV", True, "CONT", 4.0, 96.0]


def test_shf_wide_bloods_become_one_row_per_result(results):
    labs = results["SHF"].tables["labs"]
    per_sample = labs.groupby("sample_time")["test"].count()
    assert per_sample[pd.Timestamp("2019-03-01")] == 13
    assert per_sample[pd.Timestamp("2019-02-04")] == 10  # three NA cells
    s100 = labs[labs["sample_time"] == pd.Timestamp("2019-03-01")].set_index("test")
    assert s100.loc["ferritin", "value"] == 15000 and s100.loc["ferritin", "unit"] == "ug/L"
    assert s100.loc["hb", "value"] == 85 and s100.loc["scd25", "unit"] == "U/mL"
    admissions = results["SHF"].tables["admissions"].set_index("admission_key")
    for key, when in labs.groupby("admission_key")["sample_time"].min().items():
        assert admissions.loc[key, "admit_date"] <= when


def test_bhm_us_units_become_canonical(results):
    labs = results["BHM"].tables["labs"].set_index("test")["value"]
    assert labs["crp"] == pytest.approx(25.0)  # 2.5 mg/dL
    assert labs["hb"] == pytest.approx(85.0)  # 8.5 g/dL
    assert labs["fibrinogen"] == pytest.approx(1.5)  # 150 mg/dL
    assert labs["triglycerides"] == pytest.approx(354.28 / 88.57)
    assert labs["bilirubin"] == pytest.approx(17.1)  # 1 mg/dL
    assert labs["creatinine"] == pytest.approx(0.5 * 88.4)
    assert labs["ferritin"] == 9000 and labs["platelets"] == 80
    adm = results["BHM"].tables["admissions"].set_index("diagnosis")
    assert adm.loc["mas", "max_temp_c"] == pytest.approx(38.5)  # 101.3 °F
    assert adm.loc["shlh", "max_temp_c"] == pytest.approx(39.0)  # 102.2 °F


def test_bhm_codes_come_from_the_data_dictionary(results):
    r = results["BHM"]
    adm = r.tables["admissions"].set_index("diagnosis")
    assert adm.loc["mas", "diagnosis_text"] == "MAS" and adm.loc["mas", "trigger_category"] == "rheumatic"
    assert pd.isna(adm.loc["mas", "bm_haemophagocytosis"]) and bool(adm.loc["shlh", "bm_haemophagocytosis"])
    assert bool(adm.loc["mas", "hepatomegaly"]) and not bool(adm.loc["mas", "immunosuppression"])
    assert r.tables["adverse_events"]["term"].tolist() == ["infusion_reaction"]
    doses = r.tables["anakinra"].set_index("start")
    sc = doses.loc[pd.Timestamp("2019-04-02")]
    assert [sc["route"], sc["frequency"], sc["daily_dose_mg"]] == ["SC", "BD", 120.0]
    infusion = doses.loc[pd.Timestamp("2019-04-06")]  # 0.1 mg/kg/h x 30 kg
    assert [infusion["route"], bool(infusion["continuous"])] == ["IV", True]
    assert infusion["rate_mg_per_h"] == pytest.approx(3.0) and infusion["daily_dose_mg"] == pytest.approx(72.0)
    push = doses.loc[pd.Timestamp("2019-06-11")]
    assert [push["route"], bool(push["continuous"]), push["daily_dose_mg"]] == ["IV", False, 300.0]


def test_changed_export_with_reordered_and_extra_columns_reads_the_same(tmp_path, results, caplog):
    tables = ldn_tables()
    admissions = tables["admissions.csv"]
    tables["admissions.csv"] = admissions[list(reversed(admissions.columns))].assign(Ward="W1", Consultant="X")
    write_ldn(tmp_path, tables)
    with caplog.at_level(logging.INFO):
        changed = ingest(tmp_path, "LDN", log=logging.getLogger("test"))
    for name in TABLES:
        pd.testing.assert_frame_equal(changed.tables[name], results["LDN"].tables[name])
    notes = [m for m in caplog.messages if "not in the centre map" in m]
    assert len(notes) == 1 and "Consultant, Ward" in notes[0] and "admissions.csv" in notes[0]


def test_optional_column_may_be_absent(tmp_path):
    m = yaml.safe_load((ROOT / "config" / "centres" / "LDN.yaml").read_text(encoding="utf-8"))
    m["sources"][0]["optional_columns"] = ["Postcode"]
    (tmp_path / "LDN.yaml").write_text(yaml.safe_dump(m), encoding="utf-8")
    tables = ldn_tables()
    tables["patients.csv"] = tables["patients.csv"].drop(columns="Postcode")
    write_ldn(tmp_path / "d", tables)
    r = ingest_centre(tmp_path / "d", "LDN", load_centre_map(tmp_path / "LDN.yaml"), KEY, EXTRACT_DATE)
    assert len(r.tables["patients"]) == 2


# ------------------------------------------------------------------------------ structural errors


def test_missing_file_names_it(tmp_path):
    write_ldn(tmp_path, ldn_tables())
    (tmp_path / "LDN" / "labs.csv").unlink()
    with pytest.raises(ExtractError, match=r"LDN/labs\.csv: file not found"):
        ingest(tmp_path, "LDN")


def test_missing_sheet_names_it(tmp_path):
    sheets = shf_sheets()
    del sheets["Bloods"]
    write_shf(tmp_path, sheets)
    with pytest.raises(ExtractError, match=r"SHF/SHF_HLH_registry\.xlsx: sheet 'Bloods' not found \(expected sheets: "):
        ingest(tmp_path, "SHF")


def test_missing_required_column_names_file_and_column(tmp_path):
    tables = ldn_tables()
    tables["anakinra.csv"] = tables["anakinra.csv"].drop(columns="Route")
    write_ldn(tmp_path, tables)
    with pytest.raises(ExtractError, match=r"LDN/anakinra\.csv: required column 'Route' not found"):
        ingest(tmp_path, "LDN")


def test_missing_column_in_a_sheet_names_the_sheet(tmp_path):
    sheets = shf_sheets()
    sheets["Dosing"] = sheets["Dosing"].drop(columns="From")
    write_shf(tmp_path, sheets)
    with pytest.raises(ExtractError, match=r"SHF_HLH_registry\.xlsx:Dosing: required column 'From' not found"):
        ingest(tmp_path, "SHF")


def test_unreadable_workbook(tmp_path):
    (tmp_path / "SHF").mkdir()
    (tmp_path / "SHF" / "SHF_HLH_registry.xlsx").write_bytes(b"this is not a workbook")
    with pytest.raises(ExtractError, match=r"SHF/SHF_HLH_registry\.xlsx: unreadable workbook"):
        ingest(tmp_path, "SHF")


def test_redcap_field_missing_from_the_dictionary(tmp_path):
    dictionary = bhm_dictionary()
    write_bhm(tmp_path, bhm_data(), dictionary[dictionary["Variable / Field Name"] != "ana_route"])
    with pytest.raises(ExtractError,
                       match=r"BHM/BHM_HLH_DataDictionary\.csv: field 'ana_route' not in the data dictionary"):
        ingest(tmp_path, "BHM")


def test_redcap_dictionary_in_another_layout(tmp_path):
    write_bhm(tmp_path, bhm_data(), bhm_dictionary().rename(columns={"Field Type": "type"}))
    with pytest.raises(ExtractError, match=r"BHM_HLH_DataDictionary\.csv: column 'Field Type' not found"):
        ingest(tmp_path, "BHM")


def test_wrong_centre_map(delivery):
    with pytest.raises(ExtractError, match="centre map is for 'SHF'"):
        ingest_centre(delivery, "LDN", centre_map("SHF"), KEY, EXTRACT_DATE)


# ------------------------------------------------------------------------------ identifiers


def test_read_identifiers_lists_every_form_a_leak_could_take(delivery):
    ldn = read_identifiers(delivery, "LDN", centre_map("LDN"))
    assert {"Smithson", "Alicia", "L001", "485 777 3456", "4857773456", "02/03/1970", "1970-03-02", "SW1A 1AA"} <= ldn
    assert {"943 476 5919", "9434765919"} <= ldn
    shf = read_identifiers(delivery, "SHF", centre_map("SHF"))
    assert {"SMITHSON", "Alicia", "S100", "4857773456", "485 777 3456", "1970-03-02", "612 345 6789",
            "6123456789"} <= shf
    bhm = read_identifiers(delivery, "BHM", centre_map("BHM"))
    assert {"Avaline", "Quinterro", "M9001", "2012-05-01", "35203"} <= bhm


@pytest.mark.parametrize("centre", ["LDN", "SHF", "BHM"])
def test_no_identifier_in_any_output_table(tmp_path, delivery, results, centre):
    """The workflow's own privacy scanner finds nothing in the written outputs."""
    searched = identifier_set(read_identifiers(delivery, centre, centre_map(centre)))
    r = results[centre]
    paths = []
    for name, table in r.tables.items():
        write_parquet(table, tmp_path / f"{name}.parquet")
        write_csv(table, tmp_path / f"{name}.csv")
        paths += [tmp_path / f"{name}.parquet", tmp_path / f"{name}.csv"]
    assert len(searched) >= 10
    assert scan(paths, searched) == []


def test_log_names_no_identifier(tmp_path, caplog):
    """Progress lines of a run with dirty rows (some in identifier columns) carry no identifier."""
    tables = ldn_tables()
    tables["patients.csv"].loc[1, "DOB"] = "not a date"
    tables["labs.csv"].loc[0, "Admission_ID"] = "ADM9"
    write_ldn(tmp_path, tables)
    with caplog.at_level(logging.INFO):
        ingest(tmp_path, "LDN", log=logging.getLogger("test"))
    log_file = tmp_path / "ingest.log"
    log_file.write_text("\n".join(caplog.messages), encoding="utf-8")
    assert len(caplog.messages) >= 5
    assert scan([log_file], identifier_set(read_identifiers(tmp_path, "LDN", centre_map("LDN")))) == []


def test_files_with_only_a_header_give_empty_valid_tables(tmp_path):
    sheets = shf_sheets()
    sheets["Bloods"] = sheets["Bloods"].iloc[:0]
    sheets["Adverse events"] = sheets["Adverse events"].iloc[:0]
    write_shf(tmp_path, sheets)
    r = ingest(tmp_path, "SHF")
    assert r.tables["labs"].empty and r.tables["adverse_events"].empty
    assert str(r.tables["labs"]["sample_time"].dtype) == "datetime64[ns]"
    assert len(r.tables["anakinra"]) == 3
    assert r.accounting.set_index("file").loc["SHF_HLH_registry.xlsx:Bloods", "rows_in"] == 0
