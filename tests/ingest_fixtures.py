"""Small, valid raw extracts for the three centres, written as each centre delivers them.

Each builder returns raw tables (column order as exported) that a test may alter (one defect
each) before writing them to a temporary delivery. Row numbers a human sees: LDN and BHM
data row i is CSV line i + 2; SHF data row i is sheet row i + 4 (two title lines, header).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd

from stormcohort.ingest import load_centre_map

ROOT = Path(__file__).resolve().parent.parent
KEY = b"test-key-not-secret"
EXTRACT_DATE = date(2020, 6, 30)
SHARED_NHS = "4857773456"  # the same person at LDN (written with spaces) and SHF (an Excel number)


def centre_map(centre: str) -> dict:
    return load_centre_map(ROOT / "config" / "centres" / f"{centre}.yaml")


def frame(columns: str, rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[c.strip() for c in columns.split("|")], dtype=object)


# ----------------------------------------------------------------------------------------------- LDN

def ldn_tables() -> dict[str, pd.DataFrame]:
    return {
        "patients.csv": frame("MRN|NHS_Number|Surname|Forename|DOB|Sex|Postcode", [
            ["L001", "485 777 3456", "Smithson", "Alicia", "02/03/1970", "F", "SW1A 1AA"],
            ["L002", "9434765919", "Brownlow", "Roberto", "15/07/1985", "M", "N1 9GU"],
        ]),
        "admissions.csv": frame(
            "MRN|Admission_ID|Admit_Date|Discharge_Date|Primary_Diagnosis|Trigger_Category|Trigger_Detail|"
            "Weight_kg|Max_Temp_C|Hepatomegaly|Splenomegaly|Known_Immunosuppression|BM_Haemophagocytosis|"
            "ICU_Admission|ICU_Days|SC_Oedema|Neuro_Involvement|Outcome|Date_of_Death|Last_Seen_Date|"
            "Fever_Resolution_Date", [
                ["L001", "ADM1", "10/02/2019", "28/02/2019", "Secondary HLH", "Infection", "EBV", "70.5", "39.4",
                 "Y", "Y", "N", "Y", "Y", "5", "N", "N", "Alive", "", "30/05/2019", "14/02/2019"],
                ["L002", "ADM2", "05/03/2019", "20/03/2019", "Macrophage activation syndrome", "Rheumatic", "AOSD",
                 "82", "40.1", "N", "Y", "Y", "Not done", "N", "", "Y", "N", "Died", "20/03/2019", "20/03/2019", ""],
            ]),
        "anakinra.csv": frame("Admission_ID|Start_Date|Stop_Date|Route|Dose_mg|Frequency|Infusion_Rate_mg_per_h", [
            ["ADM1", "11/02/2019", "14/02/2019", "SC", "100", "BD", ""],
            ["ADM1", "15/02/2019", "20/02/2019", "IV", "", "Continuous", "10"],
            ["ADM2", "06/03/2019", "18/03/2019", "IV", "200", "QDS", ""],
        ]),
        "labs.csv": frame("Admission_ID|Sample_Time|Test|Result|Units", [
            ["ADM1", "10/02/2019 09:30", "FERR", "12000", "ug/L"],
            ["ADM1", "10/02/2019 09:30", "CRP", "150", "mg/L"],
            ["ADM2", "05/03/2019 10:00", "FERR", ">100000", "ug/L"],
            ["ADM2", "05/03/2019 10:00", "CRP", "<5", "mg/L"],
        ]),
        "adverse_events.csv": frame("Admission_ID|Event_Date|Event|CTCAE_Grade|Serious", [
            ["ADM1", "16/02/2019", "Transaminitis", "2", "N"],
            ["ADM2", "10/03/2019", "Line infection", "3", "Y"],
        ]),
    }


def write_ldn(delivery: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """CSV as the LDN warehouse exports it: UTF-8 with BOM, CRLF line ends."""
    folder = delivery / "LDN"
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(folder / name, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return delivery


# ----------------------------------------------------------------------------------------------- SHF

SHF_PATIENT_COLUMNS = (
    "Hospital number|NHS no.|Name|Date of birth|Gender|Admission date|Discharge date|Diagnosis|Trigger|"
    "Trigger detail|Weight (kg)|Peak temperature (°C)|Liver enlarged|Spleen enlarged|Immunosuppressed|"
    "Marrow haemophagocytosis|Critical care|Critical care days|Oedema|CNS involvement|Status|Date of death|"
    "Date last seen|Afebrile date"
)
SHF_BLOODS_COLUMNS = (
    "Hospital number|Date|Ferritin (ug/L)|CRP (mg/L)|Platelets (10^9/L)|Hb (g/L)|WBC (10^9/L)|"
    "Neutrophils (10^9/L)|Fibrinogen (g/L)|Triglycerides (mmol/L)|ALT (U/L)|AST (U/L)|Bilirubin (umol/L)|"
    "Creatinine (umol/L)|sCD25 (U/mL)"
)


def shf_sheets() -> dict[str, pd.DataFrame]:
    return {
        "Patients": frame(SHF_PATIENT_COLUMNS, [
            ["S100", int(SHARED_NHS), "SMITHSON, Alicia", datetime(1970, 3, 2), "Female", datetime(2019, 3, 1),
             datetime(2019, 3, 20), "Secondary HLH", "Infection", "EBV", 70, 38.9, "Yes", "No", "No", "NA", "Yes", 3,
             "No", "No", "Alive", "NA", datetime(2019, 6, 1), "03-Mar-2019"],
            ["S200", "612 345 6789", "KOWALSKI, Piotr", datetime(2005, 1, 1), "Male", "03-Feb-2019",
             datetime(2019, 2, 25), "Macrophage activation syndrome", "Rheumatic", "Systemic JIA", 50, 39.5, "Yes",
             "Yes", "No", "Yes", "No", "NA", "No", "Yes", "Deceased", datetime(2019, 2, 25), datetime(2019, 2, 25),
             "NA"],
        ]),
        "Dosing": frame("Hospital number|Admission date|Route|Dose|Frequency|From|To", [
            ["S100", datetime(2019, 3, 1), "subcutaneous", "100mg", "twice daily", datetime(2019, 3, 2),
             datetime(2019, 3, 5)],
            ["S100", datetime(2019, 3, 1), "i.v. infusion", "96mg", "continuous", datetime(2019, 3, 6),
             datetime(2019, 3, 9)],
            ["S200", "03-Feb-2019", "intravenous", "2mg/kg", "6 hourly", datetime(2019, 2, 4), "NA"],
        ]),
        "Bloods": frame(SHF_BLOODS_COLUMNS, [
            ["S100", datetime(2019, 3, 1), 15000, 120, 45, 85, 2.1, 0.9, 1.1, 3.5, 80, 150, 20, 70, 5000],
            ["S200", "04-Feb-2019", 30000, "NA", 30, 90, 1.5, 0.5, "NA", 4.1, 200, 300, 35, 60, "NA"],
        ]),
        "Adverse events": frame("Hospital number|Date|Event|Grade|Serious", [
            ["S100", datetime(2019, 3, 4), "Injection site reaction", 1, "No"],
        ]),
    }


def write_shf(delivery: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    """The SHF workbook: two title lines above each sheet's header row; dates as date cells."""
    folder = delivery / "SHF"
    folder.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, table in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append(["Sheffield HLH registry"])
        sheet.append(["Export date: 30-Jun-2020"])
        sheet.append(list(table.columns))
        for record in table.itertuples(index=False):
            sheet.append([None if v is None or v == "" else v for v in record])
    book.save(folder / "SHF_HLH_registry.xlsx")
    return delivery


# ----------------------------------------------------------------------------------------------- BHM

BHM_COLUMNS = (
    "record_id|redcap_repeat_instrument|redcap_repeat_instance|mrn|first_name|last_name|dob|sex|zip|adm_date|"
    "dc_date|dx|trigger|trigger_detail|weight_kg|tmax_f|hepatomegaly|splenomegaly|immunosupp|bm_hemophagocytosis|"
    "picu|picu_days|edema|cns|died|death_date|last_fu_date|afebrile_date|ana_start|ana_stop|ana_route|ana_dose_mg|"
    "ana_freq|ana_rate_mgkgh|lab_date|ferritin_ngml|crp_mgdl|plt_kul|hgb_gdl|wbc_kul|anc_kul|fibrinogen_mgdl|"
    "tg_mgdl|alt_ul|ast_ul|tbili_mgdl|creat_mgdl|scd25_uml|ae_date|ae_term|ae_grade|ae_serious"
)


def bhm_row(record: str, instrument: str = "", instance: str = "", **values: str) -> list[str]:
    """One REDCap export row: every field empty except those given."""
    names = BHM_COLUMNS.split("|")
    row = [""] * len(names)
    row[:3] = [record, instrument, instance]
    for name, value in values.items():
        row[names.index(name)] = value
    return row


def bhm_data() -> pd.DataFrame:
    return frame(BHM_COLUMNS, [
        bhm_row("1", mrn="M9001", first_name="Avaline", last_name="Quinterro", dob="2012-05-01", sex="2",
                zip="35203", adm_date="2019-04-01", dc_date="2019-04-20", dx="2", trigger="2",
                trigger_detail="sJIA", weight_kg="30", tmax_f="101.3", hepatomegaly="1", splenomegaly="1",
                immunosupp="0", bm_hemophagocytosis="2", picu="1", picu_days="4", edema="0", cns="0", died="0",
                last_fu_date="2019-07-01", afebrile_date="2019-04-03"),
        bhm_row("1", "anakinra_dosing", "1", ana_start="2019-04-02", ana_stop="2019-04-05", ana_route="3",
                ana_dose_mg="60", ana_freq="2"),
        bhm_row("1", "anakinra_dosing", "2", ana_start="2019-04-06", ana_stop="2019-04-10", ana_route="2",
                ana_freq="5", ana_rate_mgkgh="0.1"),
        bhm_row("1", "labs", "1", lab_date="2019-04-01", ferritin_ngml="9000", crp_mgdl="2.5", plt_kul="80",
                hgb_gdl="8.5", wbc_kul="3", anc_kul="1.2", fibrinogen_mgdl="150", tg_mgdl="354.28", alt_ul="60",
                ast_ul="120", tbili_mgdl="1", creat_mgdl="0.5", scd25_uml="4000"),
        bhm_row("1", "adverse_event", "1", ae_date="2019-04-05", ae_term="6", ae_grade="2", ae_serious="0"),
        bhm_row("2", mrn="M9002", first_name="Benedikt", last_name="Ostrowsky", dob="2009-11-20", sex="1",
                zip="35233", adm_date="2019-06-10", dc_date="2019-06-30", dx="1", trigger="1",
                trigger_detail="EBV", weight_kg="40", tmax_f="102.2", hepatomegaly="0", splenomegaly="1",
                immunosupp="0", bm_hemophagocytosis="1", picu="0", edema="0", cns="1", died="0",
                last_fu_date="2019-09-01"),
        bhm_row("2", "anakinra_dosing", "1", ana_start="2019-06-11", ana_route="1", ana_dose_mg="100", ana_freq="3"),
    ])


def bhm_dictionary() -> pd.DataFrame:
    radio = {
        "sex": "1, Male | 2, Female",
        "dx": "1, sHLH | 2, MAS | 3, familial HLH | 4, other",
        "trigger": "1, infection | 2, rheumatic | 3, malignancy | 4, idiopathic",
        "bm_hemophagocytosis": "0, no | 1, yes | 2, not done",
        "ana_route": "1, IV push | 2, IV continuous | 3, SubQ",
        "ana_freq": "1, daily | 2, q12h | 3, q8h | 4, q6h | 5, continuous",
        "ae_term": "1, ALT/AST increased | 2, bacterial infection | 3, fungal infection | 4, viral infection | "
                   "5, injection site reaction | 6, infusion reaction | 7, neutropenia | 8, thrombocytopenia | "
                   "9, DRESS/eosinophilia | 10, anaphylaxis | 11, other",
        "ae_grade": "1, 1 | 2, 2 | 3, 3 | 4, 4 | 5, 5",
    }
    yesno = {"hepatomegaly", "splenomegaly", "immunosupp", "picu", "edema", "cns", "died", "ae_serious"}
    forms = {"ana": "anakinra_dosing", "lab": "labs", "ae": "adverse_event"}
    names = [n for n in BHM_COLUMNS.split("|") if not n.startswith("redcap_")]
    rows = []
    for name in names:
        form = next((f for prefix, f in forms.items() if name.startswith(prefix + "_")), "admission")
        if name.endswith(("_kul", "_mgdl", "_ngml", "_ul", "_uml")):
            form = "labs"
        kind = "radio" if name in radio else "yesno" if name in yesno else "text"
        rows.append([name, form, "", kind, name.replace("_", " "), radio.get(name, ""),
                     "", "", "", "", "", "", "", "", "", "", "", ""])
    return pd.DataFrame(rows, columns=[
        "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
        "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
        "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
        "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
        "Matrix Ranking?", "Field Annotation"])


def write_bhm(delivery: Path, data: pd.DataFrame, dictionary: pd.DataFrame | None = None) -> Path:
    folder = delivery / "BHM"
    folder.mkdir(parents=True, exist_ok=True)
    data.to_csv(folder / "BHM_HLH_DATA.csv", index=False)
    (bhm_dictionary() if dictionary is None else dictionary).to_csv(folder / "BHM_HLH_DataDictionary.csv", index=False)
    return delivery


def write_all(delivery: Path) -> Path:
    write_ldn(delivery, ldn_tables())
    write_shf(delivery, shf_sheets())
    write_bhm(delivery, bhm_data())
    return delivery


# ----------------------------------------------------------------------------------------------- raw edits

def ldn_csv_text(table: pd.DataFrame) -> str:
    """One LDN table as the warehouse writes it (CRLF line ends; the BOM is added when written)."""
    return table.to_csv(index=False, lineterminator="\r\n")


def write_bytes(delivery: Path, centre: str, name: str, data: bytes) -> Path:
    """Overwrite one delivered file with exactly these bytes (a hostile centre's version of it)."""
    path = delivery / centre / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def edit_workbook(delivery: Path, edit) -> Path:
    """Apply `edit(openpyxl.Workbook)` to the SHF workbook of a written delivery and save it."""
    path = delivery / "SHF" / "SHF_HLH_registry.xlsx"
    book = openpyxl.load_workbook(path)
    edit(book)
    book.save(path)
    return path


def write_delivery_yaml(delivery: Path, extract_date: date = EXTRACT_DATE) -> Path:
    (delivery / "delivery.yaml").write_text(f"extract_date: {extract_date.isoformat()}\nsynthetic: true\n",
                                            encoding="utf-8")
    return delivery
