"""Bad input, tried as a hostile centre would: a catalogue of the ways a delivery can be wrong.

Each case writes a small delivery (tests/ingest_fixtures.py) with one defect into tmp_path,
calls `ingest_centre` on it, and states the behaviour it expects:

  STOP   an ExtractError whose message names the file (and line or row, column), what was
         expected and the fix (`Fix: ...`); never a bare traceback;
  ROWS   rows leave, each with a reason in the exclusions ledger; the rest goes on;
  VALUE  a value is set to missing or changed, with a scope=value ledger entry;
  PARSE  the value is read correctly (often: the tables equal the clean delivery's).

Every case that does not stop passes `assert_accounted`: for every input file rows_in =
rows_kept + rows_excluded, rows_excluded = the rows holding a scope=row ledger entry, and
rows_in = the data rows of the raw file, counted here independently of the readers (csv module,
openpyxl). No message, ledger value, log line or output table of any case holds an identifier
of the raw extract; identifier checks are booleans, so a failing assertion never prints one.

A few STOP cases also run through the real `snakemake` command line: exit status non-zero,
the message on stderr without a traceback, and no output of that centre left behind.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from stormcohort.errors import ExtractError
from stormcohort.ingest import ingest_centre, read_identifiers
from stormcohort.ingest.ledger import REDACTED
from stormcohort.ingest.readers import file_label
from stormcohort.ingest.scrub import SCRUBBED
from stormcohort.io import write_csv, write_parquet
from stormcohort.privacy import identifier_set, scan
from tests.ingest_fixtures import (
    EXTRACT_DATE,
    KEY,
    ROOT,
    bhm_data,
    bhm_dictionary,
    bhm_row,
    centre_map,
    edit_workbook,
    ldn_csv_text,
    ldn_tables,
    shf_sheets,
    write_all,
    write_bhm,
    write_bytes,
    write_delivery_yaml,
    write_ldn,
    write_shf,
)

CENTRES = ("LDN", "SHF", "BHM")
BOOK = "SHF_HLH_registry.xlsx"


# ------------------------------------------------------------------------------ shared helpers


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The clean delivery: its results per centre and the identifiers of its raw extracts."""
    delivery = write_all(tmp_path_factory.mktemp("clean"))
    results = {c: ingest_centre(delivery, c, centre_map(c), KEY, EXTRACT_DATE) for c in CENTRES}
    identifiers = set()
    for c in CENTRES:
        identifiers |= read_identifiers(delivery, c, centre_map(c))
    return results, identifier_set(identifiers)


def leaks(texts, identifiers: set[str], where: Path) -> bool:
    """Whether any text holds an identifier (the privacy scanner's test; never the values)."""
    where.write_text("\n".join(map(str, texts)), encoding="utf-8")
    return bool(scan([where], identifiers))


def raw_data_rows(delivery: Path, centre: str) -> dict[str, int]:
    """Data rows of each raw file, counted without stormcohort's readers: the records below the
    first record naming a mapped column, holding at least one cell that is not a missing marker."""
    m = centre_map(centre)
    missing = set(m["missing_values"])
    counts = {}
    for source in m["sources"]:
        label = file_label(m, source)
        names = {c.casefold() for c in source["columns"]} | {c.casefold() for c in source.get("tests", {})}
        if "sheet" in source:
            book = openpyxl.load_workbook(delivery / centre / m["workbook"], read_only=True)
            sheet = next(book[n] for n in book.sheetnames if n.strip().casefold() == source["sheet"].casefold())
            records = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        else:
            name = source.get("file") or m["data_file"]
            text = (delivery / centre / name).read_bytes().decode("utf-8-sig", errors="replace").lstrip("\ufeff")
            records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=m.get("delimiter", ","))]
        header = next(i for i, r in enumerate(records) if {" ".join(c.split()).casefold() for c in r} & names)
        counts[label] = sum(any(c.strip() not in missing for c in r) for r in records[header + 1:])
    return counts


def assert_accounted(result, delivery: Path, centre: str) -> None:
    """The accounting invariant, per file, and rows_in = the raw file's data rows."""
    row_entries = result.ledger[result.ledger["scope"] == "row"].drop_duplicates(["file", "row"])
    excluded = row_entries.groupby("file").size()
    raw = raw_data_rows(delivery, centre)
    acc = result.accounting.set_index("file")
    assert sorted(acc.index) == sorted(raw), "accounting lists other files than the delivery"
    for file, rows_in, kept, out in result.accounting[["file", "rows_in", "rows_kept", "rows_excluded"]].itertuples(index=False):
        assert rows_in == kept + out, f"{file}: rows_in {rows_in} != kept {kept} + excluded {out}"
        assert out == excluded.get(file, 0), f"{file}: {out} excluded but {excluded.get(file, 0)} rows with a row entry"
        assert rows_in == raw[file], f"{file}: rows_in {rows_in} but the raw file has {raw[file]} data rows"
    assert set(row_entries["file"]) <= set(acc.index), "a ledger entry names a file that is not in the accounting"


def assert_no_identifier_anywhere(result, identifiers: set[str], tmp_path: Path) -> None:
    """No identifier in the ledger, or in any canonical table as written."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    paths = [out / "ledger.csv"]
    write_csv(result.ledger, paths[0])
    for name, table in result.tables.items():
        write_parquet(table, out / f"{name}.parquet")
        paths.append(out / f"{name}.parquet")
    found = scan(paths, identifiers)
    assert not found, f"identifier found in: {found}"  # scan names file and line only


def entries(result, **where) -> pd.DataFrame:
    ledger = result.ledger
    for column, value in where.items():
        ledger = ledger[ledger[column] == value]
    return ledger


def one(result, **where) -> pd.Series:
    found = entries(result, **where)
    assert len(found) == 1, f"expected one ledger entry {where}, found {len(found)}: {found[['file', 'row', 'column', 'rule', 'scope']].to_dict('records')}"
    return found.iloc[0]


def keys(result) -> set[tuple]:
    """(file, row, column, rule, scope) of every ledger entry."""
    return set(result.ledger[["file", "row", "column", "rule", "scope"]].itertuples(index=False, name=None))


def same_tables(result, clean_result, but: tuple[str, ...] = ()) -> None:
    for name, table in result.tables.items():
        if name not in but:
            pd.testing.assert_frame_equal(table, clean_result.tables[name], obj=name)


# ------------------------------------------------------------------------------ writing a defect


def ldn(change=None):
    """Defect: edit the LDN tables (a dict of DataFrames) before they are written."""
    def write(d: Path):
        tables = ldn_tables()
        if change:
            change(tables)
        write_ldn(d, tables)
    return write


def ldn_text(name: str, edit: Callable[[str], str], encoding: str = "utf-8-sig", change=None):
    """Defect: write the LDN delivery, then replace one file by an edit of its CSV text."""
    def write(d: Path):
        tables = ldn_tables()
        if change:
            change(tables)
        write_ldn(d, tables)
        write_bytes(d, "LDN", name, edit(ldn_csv_text(tables[name])).encode(encoding))
    return write


def shf(change=None, edit=None):
    """Defect: edit the SHF sheets (DataFrames) before writing, and/or the workbook after (openpyxl)."""
    def write(d: Path):
        sheets = shf_sheets()
        if change:
            change(sheets)
        write_shf(d, sheets)
        if edit:
            edit_workbook(d, edit)
    return write


def bhm(change=None, dictionary=None, text=None, encoding="utf-8"):
    """Defect: edit the REDCap export (DataFrame) / dictionary, or its CSV text."""
    def write(d: Path):
        data = bhm_data()
        data = change(data) if change else data
        write_bhm(d, data, dictionary(bhm_dictionary()) if dictionary else None)
        if text:
            write_bytes(d, "BHM", "BHM_HLH_DATA.csv", text(data.to_csv(index=False)).encode(encoding))
    return write


def both(*defects):
    def write(d: Path):
        for defect in defects:
            defect(d)
    return write


def cell(frame: pd.DataFrame, i: int, column: str, value) -> None:
    frame.loc[i, column] = value


def at(frame: pd.DataFrame, mask, column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[mask(frame), column] = value
    return frame


def add_rows(tables: dict, name: str, rows: list[list]) -> None:
    tables[name] = pd.concat([tables[name], pd.DataFrame(rows, columns=tables[name].columns, dtype=object)],
                             ignore_index=True)


def title_lines(count: int):
    """Workbook edit: `count` title lines above each header instead of two."""
    def edit(book):
        for sheet in book.worksheets:
            if count > 2:
                sheet.insert_rows(1, count - 2)
                sheet.cell(1, 1).value = "CONFIDENTIAL - registry extract"
            else:
                sheet.delete_rows(1, 2 - count)
    return edit


@dataclass
class Case:
    id: str
    centre: str
    defect: Callable[[Path], None]
    stop: tuple[str, ...] = ()  # STOP: regular expressions the message must match
    check: Callable | None = None  # other cases: check(result, clean_result)


# ------------------------------------------------------------------------------ the catalogue

STOPS = [
    # -- empty and unreadable files
    Case("empty-file-csv", "LDN", both(ldn(), lambda d: write_bytes(d, "LDN", "labs.csv", b"")),
         stop=(r"^LDN/labs\.csv: the file is empty \(0 bytes\); expected a header line", r"Fix: ask the centre to re-export")),
    Case("empty-file-workbook", "SHF", both(shf(), lambda d: write_bytes(d, "SHF", BOOK, b"")),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx: the file is empty \(0 bytes\)", r"Fix: ask the centre to re-export the workbook")),
    Case("empty-file-redcap", "BHM", both(bhm(), lambda d: write_bytes(d, "BHM", "BHM_HLH_DATA.csv", b"")),
         stop=(r"^BHM/BHM_HLH_DATA\.csv: the file is empty",)),
    Case("binary-file-named-csv", "LDN", both(ldn(), lambda d: write_bytes(d, "LDN", "labs.csv", bytes(range(256)) * 40)),
         stop=(r"^LDN/labs\.csv: no header line found, and the file holds NUL bytes",
               r"Fix: ask the centre to re-export as 'CSV UTF-8'")),
    Case("utf16-file-without-bom", "LDN", ldn_text("labs.csv", lambda t: t, encoding="utf-16-le"),
         stop=(r"^LDN/labs\.csv: no header line found, and the file holds NUL bytes: UTF-16 text",)),
    Case("field-of-200000-characters", "LDN", ldn_text("labs.csv", lambda t: t.replace("12000", "9" * 200_000)),
         stop=(r"^LDN/labs\.csv: not readable as CSV \(field larger than field limit",)),
    Case("not-a-workbook", "SHF", both(shf(), lambda d: write_bytes(d, "SHF", BOOK, b"PK\x03\x04 truncated zip")),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx: unreadable workbook", r"Fix: ask the centre to send the workbook again")),
    Case("workbook-cut-off-in-transfer", "SHF",
         both(shf(), lambda d: write_bytes(d, "SHF", BOOK, (d / "SHF" / BOOK).read_bytes()[:3000])),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx: unreadable workbook \(not a complete \.xlsx archive",)),
    # -- columns
    Case("missing-required-column", "LDN", ldn(lambda t: t.update({"anakinra.csv": t["anakinra.csv"].drop(columns="Route")})),
         stop=(r"^LDN/anakinra\.csv: required column 'Route' not found", r"Fix: .*config/centres/LDN\.yaml")),
    Case("renamed-column", "LDN", ldn(lambda t: t.update({"anakinra.csv": t["anakinra.csv"].rename(columns={"Dose_mg": "Dose (mg)"})})),
         stop=(r"^LDN/anakinra\.csv: required column 'Dose_mg' not found", r"columns the map does not know: 'Dose \(mg\)'",
               r"Fix: if the centre renamed or dropped the column, update the source's `columns:` in config/centres/LDN\.yaml")),
    Case("renamed-column-in-sheet", "SHF", shf(lambda s: s.update({"Patients": s["Patients"].rename(columns={"Weight (kg)": "Weight"})})),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx:Patients: required column 'Weight \(kg\)' not found",
               r"columns the map does not know: 'Weight'", r"config/centres/SHF\.yaml")),
    Case("renamed-redcap-field", "BHM", bhm(lambda d: d.rename(columns={"ana_dose_mg": "ana_dose"})),
         stop=(r"^BHM/BHM_HLH_DATA\.csv: required column 'ana_dose_mg' not found", r"'ana_dose'")),
    Case("column-twice", "LDN", ldn_text("labs.csv", lambda t: t.replace("Units\r\n", "Result\r\n", 1)),
         stop=(r"^LDN/labs\.csv: column 'Result' appears twice in the header \(line 1: columns 4 and 5\)",
               r"Fix: ask the centre to re-export with one column per field")),
    # -- delimiter, encoding, header
    Case("semicolon-delimiter", "LDN",
         ldn_text("admissions.csv", lambda t: t.replace(",", ";"),
                  change=lambda t: cell(t["admissions.csv"], 0, "Trigger_Detail", "EBV, reactivated")),
         stop=(r"^LDN/admissions\.csv: the columns are separated by semicolons \(';'\); expected commas \(','\)",
               r"Fix: ask the centre to re-export with commas, or set `delimiter: ';'` in config/centres/LDN\.yaml")),
    Case("tab-delimiter-redcap", "BHM", bhm(text=lambda t: t.replace(",", "\t")),
         stop=(r"^BHM/BHM_HLH_DATA\.csv: the columns are separated by tabs",)),
    Case("latin1-byte-without-fallback", "BHM",
         bhm(lambda d: at(d, lambda f: f.index == 5, "trigger_detail", "EBV, 40°C"), text=lambda t: t, encoding="latin-1"),
         stop=(r"^BHM/BHM_HLH_DATA\.csv: line 7, column 'trigger_detail': byte 0xB0 is not utf-8-sig text",
               r"Fix: ask the centre to re-export the file as UTF-8, or set `fallback_encoding: cp1252` in config/centres/BHM\.yaml")),
    Case("byte-neither-utf8-nor-cp1252", "LDN",
         lambda d: (ldn()(d), write_bytes(d, "LDN", "admissions.csv",
                                          ldn_csv_text(ldn_tables()["admissions.csv"]).replace("EBV", "EBV#").encode("utf-8").replace(b"#", b"\x81"))),
         stop=(r"^LDN/admissions\.csv: line 2, column 'Trigger_Detail': byte 0x81 is neither utf-8-sig nor cp1252 text",)),
    Case("header-byte-neither-utf8-nor-cp1252", "LDN",
         lambda d: (ldn()(d), write_bytes(d, "LDN", "labs.csv", b"\xef\xbb\xbfAdmission_ID,Sample_Time,Test,Result,Units\x9d\r\n")),
         stop=(r"^LDN/labs\.csv: line 1, column '\(header\)': byte 0x9D is neither utf-8-sig nor cp1252 text",)),
    Case("utf16-file", "LDN", ldn_text("labs.csv", lambda t: t, encoding="utf-16"),
         stop=(r"^LDN/labs\.csv: the file is UTF-16 text", r"Fix: ask the centre to re-export as 'CSV UTF-8', or set `encoding: utf-16`")),
    Case("whitespace-only-file", "BHM", both(bhm(), lambda d: write_bytes(d, "BHM", "BHM_HLH_DATA.csv", b"  \r\n\r\n")),
         stop=(r"^BHM/BHM_HLH_DATA\.csv: the file is empty \(6 bytes\)",)),
    Case("csv-without-header-line", "LDN", ldn_text("patients.csv", lambda t: t.split("\r\n", 1)[1]),
         stop=(r"^LDN/patients\.csv: no header line found", r"the map expects the header on line 1")),
    Case("header-row-deleted", "SHF", shf(edit=lambda b: b["Patients"].delete_rows(3)),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx:Patients: no header row found: none of the first 20 rows",
               r"the map expects the header on row 3", r"Fix: ask the centre to restore the header row")),
    # -- sheets
    Case("sheet-renamed", "SHF", shf(edit=lambda b: setattr(b["Bloods"], "title", "Blood results")),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx: sheet 'Bloods' not found \(expected sheets: .*; the workbook has: .*Blood results",
               r"Fix: ask the centre to restore the sheet's name, or, if it was renamed for good, change `sheet: Bloods` in config/centres/SHF\.yaml")),
    Case("empty-sheet", "SHF", shf(edit=lambda b: b["Adverse events"].delete_rows(1, 10)),
         stop=(r"^SHF/SHF_HLH_registry\.xlsx:Adverse events: no header row found",)),
    Case("sheet-deleted", "SHF", shf(lambda s: s.pop("Dosing")), stop=(r"sheet 'Dosing' not found",)),
    # -- REDCap dictionary
    Case("dictionary-missing-coded-field", "BHM", bhm(dictionary=lambda d: d[d["Variable / Field Name"] != "sex"]),
         stop=(r"^BHM/BHM_HLH_DataDictionary\.csv: field 'sex' not in the data dictionary",
               r"Fix: export the data dictionary together with the data")),
    Case("dictionary-in-another-layout", "BHM", bhm(dictionary=lambda d: d.rename(columns={"Field Type": "Type"})),
         stop=(r"^BHM/BHM_HLH_DataDictionary\.csv: column 'Field Type' not found", r"Fix: download the data dictionary again")),
]


def _lab_units(t):
    labs = t["labs.csv"]
    labs.loc[0, "Units"] = "ng/mL"  # ferritin 12000 ng/mL = 12000 ug/L
    labs.loc[1, ["Result", "Units"]] = ["2.5", "mg/dl"]  # CRP mg/dL x 10
    add_rows(t, "labs.csv", [
        ["ADM1", "11/02/2019 08:00", "BILI", "20", "µmol/L"],
        ["ADM1", "11/02/2019 08:00", "CREAT", "1.0", "mg/dL"],
        ["ADM1", "12/02/2019 08:00", "CREAT", "70", "umol/l"],
        ["ADM1", "11/02/2019 08:00", "PLT", "45", "x10^9/l"],
        ["ADM1", "11/02/2019 08:00", "HB", "8.5", "g/dL"],
        ["ADM1", "11/02/2019 08:00", "ALT", "80", "iu/l"],
        ["ADM1", "11/02/2019 08:00", "CRP", "15", "mmol/L"],  # not a unit of CRP: line 12
        ["ADM1", "11/02/2019 08:00", "FERR", "900", "pmol/L"],  # not convertible by a fixed factor here
    ])


def check_units(r, c):
    assert keys(r) == {("labs.csv", 12, "Units", "unknown_unit", "row"), ("labs.csv", 13, "Units", "unknown_unit", "row")}
    assert "mg/L" in one(r, row=12)["reason"]
    labs = r.tables["labs"]
    values = {(t, v) for t, v in zip(labs["test"], labs["value"].round(6))}
    assert {("ferritin", 12000.0), ("crp", 25.0), ("bilirubin", 20.0), ("creatinine", 88.4), ("creatinine", 70.0), ("platelets", 45.0),
            ("hb", 85.0), ("alt", 80.0)} <= values
    assert set(labs["unit"]) <= {"ug/L", "mg/L", "umol/L", "10^9/L", "g/L", "U/L"}


def check_scrubbed(column_by_table: dict[str, tuple[str, str]], ledger_keys: set[tuple]):
    """Free text with an identifier: replaced by [redacted], the rest kept; value-level entries."""
    def check(r, c):
        assert ledger_keys <= keys(r)
        for entry in entries(r, rule="identifier_in_text").itertuples():
            assert entry.value == REDACTED and entry.scope == "value"
        for table, (column, expected) in column_by_table.items():
            assert expected in set(r.tables[table][column].dropna())
    return check


def _readmission_dup(s):
    dup = s["Patients"].iloc[[0]].assign(**{"Weight (kg)": 75})
    s["Patients"] = pd.concat([s["Patients"], dup], ignore_index=True)


RUNS_ON = [
    # -- empty of rows
    Case("header-only-labs", "LDN", ldn(lambda t: t.update({"labs.csv": t["labs.csv"].iloc[:0]})),
         check=lambda r, c: (same_tables(r, c, but=("labs",)), r.tables["labs"].empty or pytest.fail("labs not empty"),
                             r.ledger.empty or pytest.fail("ledger not empty"))),
    Case("header-only-admissions", "LDN", ldn(lambda t: t.update({"admissions.csv": t["admissions.csv"].iloc[:0]})),
         check=lambda r, c: (
             r.tables["admissions"].empty and r.tables["anakinra"].empty or pytest.fail("rows kept without admission"),
             set(entries(r, rule="orphan")["file"]) == {"anakinra.csv", "labs.csv", "adverse_events.csv"} or pytest.fail("orphans"),
             len(r.tables["patients"]) == 2 or pytest.fail("patients"))),
    Case("header-only-patients-sheet", "SHF", shf(lambda s: s.update({"Patients": s["Patients"].iloc[:0]})),
         check=lambda r, c: (all(t.empty for t in r.tables.values()) or pytest.fail("tables not empty"),
                             len(entries(r, rule="orphan")) == 6 or pytest.fail("orphans"))),
    Case("header-only-redcap", "BHM", bhm(lambda d: d.iloc[:0]),
         check=lambda r, c: all(t.empty for t in r.tables.values()) or pytest.fail("tables not empty")),
    Case("blank-lines-between-records", "LDN",
         ldn_text("labs.csv", lambda t: t.replace("\r\nADM2", "\r\n\r\n,,,,\r\nADM2", 1),
                  change=lambda t: cell(t["labs.csv"], 2, "Result", "haemolysed")),
         check=lambda r, c: keys(r) == {("labs.csv", 6, "Result", "unparseable_value", "row")} or pytest.fail(str(keys(r)))),
    Case("two-exports-concatenated", "LDN", ldn_text("labs.csv", lambda t: t + t),
         check=lambda r, c: (same_tables(r, c),
                             keys(r) == {("labs.csv", 6, "Sample_Time", "unparseable_date", "row")}
                             | {("labs.csv", n, "", "duplicate_row", "row") for n in (7, 8, 9, 10)} or pytest.fail(str(keys(r))))),
    Case("every-lab-row-leaves", "LDN",
         ldn(lambda t: t["labs.csv"].update(pd.DataFrame({"Result": ["haemolysed", "clotted", "QNS", "?"]}))),
         check=lambda r, c: (r.tables["labs"].empty or pytest.fail("labs not empty"),
                             set(r.ledger["rule"]) == {"unparseable_value"} or pytest.fail(str(keys(r))))),
    # -- layout the pipeline reads the same
    Case("extra-unknown-columns", "LDN", ldn(lambda t: t.update({n: f.assign(Ward="W1", Extracted_By="batch") for n, f in t.items()})),
         check=lambda r, c: same_tables(r, c)),
    Case("extra-unknown-column-in-sheet", "SHF", shf(lambda s: s.update({"Bloods": s["Bloods"].assign(**{"ESR (mm/h)": 40})})),
         check=lambda r, c: same_tables(r, c)),
    Case("extra-unknown-redcap-field", "BHM", bhm(lambda d: d.assign(ethnicity="", adm_complete="2")),
         check=lambda r, c: same_tables(r, c)),
    Case("column-order-changed", "LDN", ldn(lambda t: t.update({n: f[list(reversed(f.columns))] for n, f in t.items()})),
         check=lambda r, c: same_tables(r, c)),
    Case("column-order-changed-in-sheets", "SHF", shf(lambda s: s.update({n: f[list(reversed(f.columns))] for n, f in s.items()})),
         check=lambda r, c: same_tables(r, c)),
    Case("column-order-changed-redcap", "BHM", bhm(lambda d: d[list(d.columns[:3]) + list(reversed(d.columns[3:]))]),
         check=lambda r, c: same_tables(r, c)),
    Case("column-names-in-other-case-and-spacing", "LDN",
         ldn(lambda t: t.update({"admissions.csv": t["admissions.csv"].rename(columns={"Weight_kg": "weight_KG", "Outcome": " Outcome "})})),
         check=lambda r, c: same_tables(r, c)),
    Case("no-bom-and-lf-line-ends", "LDN",
         lambda d: [write_bytes(d, "LDN", n, f.to_csv(index=False, lineterminator="\n").encode("utf-8")) for n, f in ldn_tables().items()],
         check=lambda r, c: same_tables(r, c)),
    Case("bom-and-crlf-in-redcap", "BHM", bhm(text=lambda t: "\ufeff" + t.replace("\n", "\r\n")),
         check=lambda r, c: same_tables(r, c)),
    Case("trailing-separator-on-every-line", "LDN", ldn_text("labs.csv", lambda t: t.replace("\r\n", ",\r\n")),
         check=lambda r, c: same_tables(r, c)),
    Case("quoted-line-break-in-free-text", "LDN",
         ldn(lambda t: (cell(t["adverse_events.csv"], 0, "Event", "Transaminitis,\r\nALT 300"),
                        cell(t["adverse_events.csv"], 1, "CTCAE_Grade", "9"))),
         check=lambda r, c: (keys(r) == {("adverse_events.csv", 4, "CTCAE_Grade", "unknown_code", "row")} or pytest.fail(str(keys(r))),
                             r.tables["adverse_events"]["term"].tolist() == ["alt_ast_increased"] or pytest.fail("term"))),
    Case("title-line-above-csv-header", "LDN",
         ldn_text("labs.csv", lambda t: "LDN warehouse extract,,,,\r\n" + t, change=lambda t: cell(t["labs.csv"], 2, "Result", "haemolysed")),
         check=lambda r, c: keys(r) == {("labs.csv", 5, "Result", "unparseable_value", "row")} or pytest.fail(str(keys(r)))),
    Case("sheet-order-changed", "SHF", shf(edit=lambda b: b.move_sheet("Adverse events", offset=-3)),
         check=lambda r, c: same_tables(r, c)),
    Case("sheet-name-in-other-case-and-spacing", "SHF", shf(edit=lambda b: setattr(b["Bloods"], "title", "bloods ")),
         check=lambda r, c: same_tables(r, c)),
    Case("three-title-lines", "SHF",
         shf(lambda s: cell(s["Dosing"], 1, "Route", "intrathecal"), edit=title_lines(3)),
         check=lambda r, c: (same_tables(r, c, but=("anakinra",)),
                             keys(r) == {(f"{BOOK}:Dosing", 6, "Route", "unknown_code", "row")} or pytest.fail(str(keys(r))))),
    Case("one-title-line", "SHF", shf(lambda s: cell(s["Dosing"], 1, "Route", "intrathecal"), edit=title_lines(1)),
         check=lambda r, c: keys(r) == {(f"{BOOK}:Dosing", 4, "Route", "unknown_code", "row")} or pytest.fail(str(keys(r)))),
    Case("bare-cr-line-ends", "LDN", ldn_text("labs.csv", lambda t: t.replace("\r\n", "\r")),
         check=lambda r, c: same_tables(r, c)),
    Case("nul-byte-in-a-field", "LDN", ldn_text("labs.csv", lambda t: t.replace("12000", "12\x00000")),
         check=lambda r, c: keys(r) == {("labs.csv", 2, "Result", "unparseable_value", "row")} or pytest.fail(str(keys(r)))),
    # -- encoding
    Case("latin1-degree-sign-in-free-text", "LDN",
         ldn_text("admissions.csv", lambda t: t, encoding="latin-1",
                  change=lambda t: cell(t["admissions.csv"], 0, "Trigger_Detail", "EBV, fever 40°C")),
         check=lambda r, c: (
             keys(r) == {("admissions.csv", 2, "Trigger_Detail", "recoded_text", "value")} or pytest.fail(str(keys(r))),
             "cp1252" in one(r)["reason"] or pytest.fail("reason"),
             "EBV, fever 40°C" in set(r.tables["admissions"]["trigger_detail"]) or pytest.fail("text"))),
    Case("latin1-letter-in-surname", "LDN",
         ldn_text("patients.csv", lambda t: t, encoding="latin-1", change=lambda t: cell(t["patients.csv"], 1, "Surname", "Brownlée")),
         check=lambda r, c: (same_tables(r, c), one(r)["value"] == REDACTED or pytest.fail("surname shown in the ledger"))),
    # -- lines that cannot be split into the header's columns
    Case("unquoted-comma-in-free-text", "LDN",
         ldn_text("adverse_events.csv", lambda t: t.replace("Line infection", "Line infection, Hickman")),
         check=lambda r, c: (keys(r) == {("adverse_events.csv", 3, "", "malformed_row", "row")} or pytest.fail(str(keys(r))),
                             "6 fields, expected 5" in one(r)["reason"] or pytest.fail("reason"),
                             len(r.tables["adverse_events"]) == 1 or pytest.fail("rest kept"))),
    Case("truncated-last-line", "LDN", ldn_text("labs.csv", lambda t: t[: t.rindex("<5")]),
         check=lambda r, c: (keys(r) == {("labs.csv", 5, "", "malformed_row", "row")} or pytest.fail(str(keys(r))),
                             len(r.tables["labs"]) == 3 or pytest.fail("rest kept"))),
    # -- codes
    Case("code-not-in-dictionary-required", "BHM", bhm(lambda d: at(d, lambda f: f.index == 1, "ana_route", "7")),
         check=lambda r, c: (keys(r) == {("BHM_HLH_DATA.csv", 3, "ana_route", "unknown_code", "row")} or pytest.fail(str(keys(r))),
                             "3 (SubQ)" in one(r)["reason"] or pytest.fail("reason"))),
    Case("code-not-in-dictionary-optional", "BHM", bhm(lambda d: at(d, lambda f: f.index == 0, "sex", "3")),
         check=lambda r, c: (keys(r) == {("BHM_HLH_DATA.csv", 2, "sex", "unknown_code", "value")} or pytest.fail(str(keys(r))),
                             r.tables["patients"]["sex"].isna().sum() == 1 or pytest.fail("sex"))),
    Case("diagnosis-code-not-in-dictionary", "BHM", bhm(lambda d: at(d, lambda f: f.index == 5, "dx", "9")),
         check=lambda r, c: (("BHM_HLH_DATA.csv", 7, "dx", "unknown_code", "row") in keys(r) or pytest.fail(str(keys(r))),
                             ("BHM_HLH_DATA.csv", 8, "record_id", "orphan", "row") in keys(r) or pytest.fail("child"))),
    # -- duplicates
    Case("duplicated-row", "LDN", ldn(lambda t: t.update({"labs.csv": pd.concat([t["labs.csv"], t["labs.csv"].iloc[[1]]])})),
         check=lambda r, c: (same_tables(r, c), keys(r) == {("labs.csv", 6, "", "duplicate_row", "row")} or pytest.fail(str(keys(r))))),
    Case("duplicated-row-in-sheet", "SHF", shf(lambda s: s.update({"Dosing": pd.concat([s["Dosing"], s["Dosing"].iloc[[0]]])})),
         check=lambda r, c: (same_tables(r, c), keys(r) == {(f"{BOOK}:Dosing", 7, "", "duplicate_row", "row")} or pytest.fail(str(keys(r))))),
    Case("duplicated-row-redcap", "BHM", bhm(lambda d: pd.concat([d, d.iloc[[4]]], ignore_index=True)),
         check=lambda r, c: (same_tables(r, c), keys(r) == {("BHM_HLH_DATA.csv", 9, "", "duplicate_row", "row")} or pytest.fail(str(keys(r))))),
    Case("duplicated-admission-id-conflicting", "LDN",
         ldn(lambda t: add_rows(t, "admissions.csv", [t["admissions.csv"].iloc[0].tolist()[:2] + ["12/02/2019"] + t["admissions.csv"].iloc[0].tolist()[3:]])),
         check=lambda r, c: (same_tables(r, c), keys(r) == {("admissions.csv", 4, "Admission_ID", "duplicate_key", "row")} or pytest.fail(str(keys(r))))),
    Case("duplicated-patient-id-conflicting", "LDN",
         ldn(lambda t: add_rows(t, "patients.csv", [t["patients.csv"].iloc[0].tolist()[:4] + ["03/02/1970", "F", "SW1A 1AA"]])),
         check=lambda r, c: (same_tables(r, c), one(r)["value"] == REDACTED or pytest.fail("MRN shown"),
                             keys(r) == {("patients.csv", 4, "MRN", "duplicate_key", "row")} or pytest.fail(str(keys(r))))),
    Case("duplicated-redcap-record-conflicting", "BHM",
         bhm(lambda d: pd.concat([d, d.iloc[[0]].assign(weight_kg="31")], ignore_index=True)),
         check=lambda r, c: (same_tables(r, c), keys(r) == {("BHM_HLH_DATA.csv", 9, "record_id", "duplicate_key", "row")} or pytest.fail(str(keys(r))))),
    Case("duplicated-admission-in-sheet-conflicting", "SHF", shf(_readmission_dup),
         check=lambda r, c: (same_tables(r, c), (one(r)["rule"], one(r)["row"], one(r)["value"]) == ("duplicate_key", 6, REDACTED) or pytest.fail("entry"))),
    # -- dates
    Case("date-month-first", "LDN", ldn(lambda t: cell(t["admissions.csv"], 1, "Admit_Date", "12/31/2019")),
         check=lambda r, c: (("admissions.csv", 3, "Admit_Date", "unparseable_date", "row") in keys(r) or pytest.fail(str(keys(r))),
                             "dd/mm/yyyy" in one(r, rule="unparseable_date")["reason"] or pytest.fail("reason"),
                             set(entries(r, rule="orphan")["file"]) == {"anakinra.csv", "labs.csv", "adverse_events.csv"} or pytest.fail("children"))),
    Case("date-ambiguous-read-per-map", "LDN", ldn(lambda t: cell(t["admissions.csv"], 0, "Discharge_Date", "03/04/2019")),
         check=lambda r, c: (r.ledger.empty or pytest.fail(str(keys(r))),
                             pd.Timestamp("2019-04-03") in set(r.tables["admissions"]["discharge_date"]) or pytest.fail("3 April"))),
    Case("iso-admission-date-in-ldn", "LDN", ldn(lambda t: cell(t["admissions.csv"], 1, "Admit_Date", "2019-03-05")),
         check=lambda r, c: (same_tables(r, c),
                             keys(r) == {("admissions.csv", 3, "Admit_Date", "date_format_differs", "value")} or pytest.fail(str(keys(r))),
                             (one(r)["value"], "read as yyyy-mm-dd (ISO)" in one(r)["reason"]) == ("2019-03-05", True) or pytest.fail("entry"))),
    Case("written-month-dates-in-ldn", "LDN",
         ldn(lambda t: (cell(t["anakinra.csv"], 0, "Start_Date", "11 Feb 2019"), cell(t["adverse_events.csv"], 1, "Event_Date", "10 March 2019"))),
         check=lambda r, c: (same_tables(r, c),
                             keys(r) == {("anakinra.csv", 2, "Start_Date", "date_format_differs", "value"),
                                         ("adverse_events.csv", 3, "Event_Date", "date_format_differs", "value")} or pytest.fail(str(keys(r))))),
    Case("date-impossible-31-feb", "LDN", ldn(lambda t: cell(t["anakinra.csv"], 2, "Start_Date", "31/02/2019")),
         check=lambda r, c: keys(r) == {("anakinra.csv", 4, "Start_Date", "unparseable_date", "row")} or pytest.fail(str(keys(r)))),
    Case("date-impossible-typed-in-sheet", "SHF", shf(lambda s: cell(s["Dosing"], 0, "From", "31-Feb-2019")),
         check=lambda r, c: keys(r) == {(f"{BOOK}:Dosing", 4, "From", "unparseable_date", "row")} or pytest.fail(str(keys(r)))),
    Case("date-impossible-redcap", "BHM", bhm(lambda d: at(d, lambda f: f.index == 3, "lab_date", "2019-02-31")),
         check=lambda r, c: keys(r) == {("BHM_HLH_DATA.csv", 5, "lab_date", "unparseable_date", "row")} or pytest.fail(str(keys(r)))),
    Case("dob-shaped-like-iso-but-no-date", "BHM", bhm(lambda d: at(d, lambda f: f.index == 0, "dob", "2012-13-45")),
         check=lambda r, c: (keys(r) == {("BHM_HLH_DATA.csv", 2, "dob", "unparseable_date", "value")} or pytest.fail(str(keys(r))),
                             one(r)["value"] == REDACTED or pytest.fail("date of birth shown"))),
    Case("date-year-1900", "LDN",
         ldn(lambda t: (cell(t["admissions.csv"], 0, "Admit_Date", "01/01/1900"), cell(t["admissions.csv"], 1, "Discharge_Date", "01/01/1900"),
                        cell(t["patients.csv"], 1, "DOB", "01/01/1900"))),
         check=lambda r, c: (
             {("admissions.csv", 2, "Admit_Date", "implausible_value", "row"), ("admissions.csv", 3, "Discharge_Date", "implausible_value", "value"),
              ("patients.csv", 3, "DOB", "implausible_value", "value")} <= keys(r) or pytest.fail(str(keys(r))),
             "before 1990-01-01" in one(r, row=2, file="admissions.csv")["reason"] or pytest.fail("reason"),
             r.tables["admissions"][["discharge_date", "age_years"]].isna().all().all() or pytest.fail("missing"))),
    Case("date-after-extract-date", "LDN",
         ldn(lambda t: (cell(t["labs.csv"], 0, "Sample_Time", "01/07/2020 09:00"), cell(t["admissions.csv"], 1, "Date_of_Death", "01/07/2020"))),
         check=lambda r, c: keys(r) == {("labs.csv", 2, "Sample_Time", "implausible_value", "row"),
                                        ("admissions.csv", 3, "Date_of_Death", "implausible_value", "value")} or pytest.fail(str(keys(r)))),
    Case("date-after-extract-date-in-sheet", "SHF", shf(lambda s: cell(s["Bloods"], 0, "Date", datetime(2021, 3, 1))),
         check=lambda r, c: keys(r) == {(f"{BOOK}:Bloods", 4, "Date", "implausible_value", "row")} or pytest.fail(str(keys(r)))),
    Case("stop-before-start", "LDN", ldn(lambda t: cell(t["anakinra.csv"], 0, "Stop_Date", "01/02/2019")),
         check=lambda r, c: keys(r) == {("anakinra.csv", 2, "Stop_Date", "stop_before_start", "row")} or pytest.fail(str(keys(r)))),
    Case("stop-before-start-in-sheet", "SHF", shf(lambda s: cell(s["Dosing"], 0, "To", datetime(2019, 3, 1))),
         check=lambda r, c: keys(r) == {(f"{BOOK}:Dosing", 4, "To", "stop_before_start", "row")} or pytest.fail(str(keys(r)))),
    Case("stop-before-start-redcap", "BHM", bhm(lambda d: at(d, lambda f: f.index == 1, "ana_stop", "2019-04-01")),
         check=lambda r, c: keys(r) == {("BHM_HLH_DATA.csv", 3, "ana_stop", "stop_before_start", "row")} or pytest.fail(str(keys(r)))),
    Case("discharge-before-admission", "LDN", ldn(lambda t: cell(t["admissions.csv"], 0, "Discharge_Date", "01/02/2019")),
         check=lambda r, c: (keys(r) == {("admissions.csv", 2, "Discharge_Date", "implausible_value", "value")} or pytest.fail(str(keys(r))),
                             "before the admission date" in one(r)["reason"] or pytest.fail("reason"))),
    # -- doses and weights
    Case("dose-negative", "LDN", ldn(lambda t: cell(t["anakinra.csv"], 0, "Dose_mg", "-100")),
         check=lambda r, c: (keys(r) == {("anakinra.csv", 2, "Dose_mg", "implausible_value", "row")} or pytest.fail(str(keys(r))),
                             one(r)["value"] == "-100" or pytest.fail("value"))),
    Case("dose-100-g-as-mg", "LDN", ldn(lambda t: cell(t["anakinra.csv"], 2, "Dose_mg", "100000")),
         check=lambda r, c: keys(r) == {("anakinra.csv", 4, "Dose_mg", "implausible_value", "row")} or pytest.fail(str(keys(r)))),
    Case("infusion-rate-negative", "LDN", ldn(lambda t: cell(t["anakinra.csv"], 1, "Infusion_Rate_mg_per_h", "-10")),
         check=lambda r, c: keys(r) == {("anakinra.csv", 3, "Infusion_Rate_mg_per_h", "implausible_value", "row")} or pytest.fail(str(keys(r)))),
    Case("dose-absurd-in-sheet", "SHF", shf(lambda s: cell(s["Dosing"], 0, "Dose", "100000mg")),
         check=lambda r, c: keys(r) == {(f"{BOOK}:Dosing", 4, "Dose", "implausible_value", "row")} or pytest.fail(str(keys(r)))),
    Case("dose-negative-redcap", "BHM", bhm(lambda d: at(d, lambda f: f.index == 6, "ana_dose_mg", "-5")),
         check=lambda r, c: keys(r) == {("BHM_HLH_DATA.csv", 8, "ana_dose_mg", "implausible_value", "row")} or pytest.fail(str(keys(r)))),
    Case("weight-negative-and-absurd", "LDN",
         ldn(lambda t: (cell(t["admissions.csv"], 0, "Weight_kg", "-70"), cell(t["admissions.csv"], 1, "Weight_kg", "7000"))),
         check=lambda r, c: (keys(r) == {("admissions.csv", 2, "Weight_kg", "implausible_value", "value"),
                                         ("admissions.csv", 3, "Weight_kg", "implausible_value", "value")} or pytest.fail(str(keys(r))),
                             r.tables["admissions"]["weight_kg"].isna().all() or pytest.fail("weights kept"))),
    Case("weight-absurd-leaves-per-kg-dose-missing", "SHF", shf(lambda s: cell(s["Patients"], 1, "Weight (kg)", 5000)),
         check=lambda r, c: (keys(r) == {(f"{BOOK}:Patients", 5, "Weight (kg)", "implausible_value", "value"),
                                         (f"{BOOK}:Dosing", 6, "Dose", "dose_per_kg_without_weight", "value")} or pytest.fail(str(keys(r))),
                             len(r.tables["anakinra"]) == 3 or pytest.fail("dose row left"),
                             r.tables["anakinra"]["dose_mg"].isna().sum() == 2 or pytest.fail("mg dose not missing"))),
    Case("per-kg-iv-dose-without-weight-then-sc", "SHF",
         shf(lambda s: (cell(s["Patients"], 1, "Weight (kg)", "NA"),
                        s["Dosing"].loc[2, ["Route", "Dose", "Frequency", "To"]].update(
                            pd.Series(["i.v. infusion", "2mg/kg", "continuous", datetime(2019, 2, 6)],
                                      index=["Route", "Dose", "Frequency", "To"])),
                        add_rows(s, "Dosing", [["S200", "03-Feb-2019", "s/c", "65mg", "twice daily", datetime(2019, 2, 7), "NA"]]))),
         check=lambda r, c: (keys(r) == {(f"{BOOK}:Dosing", 6, "Dose", "dose_per_kg_without_weight", "value")} or pytest.fail(str(keys(r))),
                             one(r)["value"] == "2mg/kg" or pytest.fail("value"),
                             r.tables["anakinra"].sort_values("start")["route"].tolist() == ["IV", "SC", "SC", "IV"]
                             or pytest.fail("routes"))),
    Case("excel-error-cells", "SHF",
         shf(edit=lambda b: [setattr(b[sheet][ref], "value", err) for sheet, ref, err in (
             ("Patients", "K4", "#VALUE!"), ("Bloods", "C5", "#DIV/0!"), ("Dosing", "D6", "#N/A"),
             ("Bloods", "D4", "#REF!"), ("Bloods", "E4", "#NAME?"), ("Bloods", "F4", "#NUM!"), ("Bloods", "G4", "#NULL!"))]),
         check=lambda r, c: (keys(r) == {(f"{BOOK}:Patients", 4, "Weight (kg)", "spreadsheet_error", "value"),
                                         (f"{BOOK}:Bloods", 5, "Ferritin (ug/L)", "spreadsheet_error", "value"),
                                         (f"{BOOK}:Dosing", 6, "Dose", "spreadsheet_error", "value"),
                                         *{(f"{BOOK}:Bloods", 4, col, "spreadsheet_error", "value") for col in (
                                             "CRP (mg/L)", "Platelets (10^9/L)", "Hb (g/L)", "WBC (10^9/L)")}}
                             or pytest.fail(str(keys(r))),
                             set(r.ledger["value"]) == {"#VALUE!", "#DIV/0!", "#N/A", "#REF!", "#NAME?", "#NUM!", "#NULL!"}
                             or pytest.fail(str(set(r.ledger["value"]))),
                             r.tables["admissions"]["weight_kg"].isna().sum() == 1 or pytest.fail("weight"),
                             len(r.tables["labs"]) == len(c.tables["labs"]) - 5 or pytest.fail("lab cells"))),
    # -- units and lab results
    Case("lab-units-in-other-forms", "LDN", ldn(_lab_units), check=check_units),
    Case("lab-results-qualified-and-text", "LDN",
         ldn(lambda t: (cell(t["labs.csv"], 0, "Result", "< 5"), cell(t["labs.csv"], 2, "Result", "> 100000"),
                        cell(t["labs.csv"], 3, "Result", "haemolysed"))),
         check=lambda r, c: (keys(r) == {("labs.csv", 5, "Result", "unparseable_value", "row")} or pytest.fail(str(keys(r))),
                             set(zip(r.tables["labs"]["value"], r.tables["labs"]["qualifier"])) == {(5.0, "<"), (150.0, ""), (100000.0, ">")}
                             or pytest.fail("values"))),
    Case("ferritin-printed-below-500", "LDN", ldn(lambda t: cell(t["labs.csv"], 0, "Result", "<500")),
         check=lambda r, c: (r.ledger.empty or pytest.fail(str(keys(r))), same_tables(r, c, but=("labs",)),
                             set(r.tables["labs"].query("test == 'ferritin'")[["value", "qualifier"]].itertuples(
                                 index=False, name=None)) == {(500.0, "<"), (100000.0, ">")} or pytest.fail("values"))),
    # -- outcomes
    # a date of death is a death whatever the outcome says (a blank outcome is ledgered)
    Case("death-date-without-outcome", "LDN", ldn(lambda t: cell(t["admissions.csv"], 1, "Outcome", "")),
         check=lambda r, c: (keys(r) == {("admissions.csv", 3, "Outcome", "death_flag_missing", "value")}
                             or pytest.fail(str(keys(r))), same_tables(r, c))),
    Case("death-flag-without-date", "LDN", ldn(lambda t: cell(t["admissions.csv"], 1, "Date_of_Death", "")),
         check=lambda r, c: (r.ledger.empty or pytest.fail(str(keys(r))), same_tables(r, c, but=("admissions",)),
                             r.tables["admissions"].loc[r.tables["admissions"]["died"].eq(True), "death_date"].isna().tolist()
                             == [True] or pytest.fail("death"))),
    # -- orphans
    Case("doses-for-an-admission-that-does-not-exist", "LDN",
         ldn(lambda t: (add_rows(t, "patients.csv", [["L003", "", "Newman", "Ola", "01/01/1980", "F", "E1 6AN"]]),
                        add_rows(t, "anakinra.csv", [["ADM3", "12/02/2019", "", "SC", "100", "OD", ""]]))),
         check=lambda r, c: (keys(r) == {("anakinra.csv", 5, "Admission_ID", "orphan", "row")} or pytest.fail(str(keys(r))),
                             len(r.tables["patients"]) == 3 or pytest.fail("patient without admission kept"))),
    Case("doses-for-a-patient-without-admission-in-sheet", "SHF",
         shf(lambda s: s.update({"Dosing": pd.concat([s["Dosing"], s["Dosing"].iloc[[0]].assign(**{"Hospital number": "S300"})])})),
         check=lambda r, c: (keys(r) == {(f"{BOOK}:Dosing", 7, "Hospital number + Admission date", "orphan", "row")} or pytest.fail(str(keys(r))),
                             one(r)["value"] == REDACTED or pytest.fail("hospital number shown"))),
    Case("redcap-record-without-admission-form", "BHM",
         bhm(lambda d: pd.concat([d, pd.DataFrame([bhm_row("3", "anakinra_dosing", "1", ana_start="2019-05-02", ana_route="3",
                                                             ana_dose_mg="50", ana_freq="1")], columns=d.columns)], ignore_index=True)),
         check=lambda r, c: keys(r) == {("BHM_HLH_DATA.csv", 9, "record_id", "orphan", "row")} or pytest.fail(str(keys(r)))),
    Case("admission-without-patient", "LDN", ldn(lambda t: cell(t["admissions.csv"], 1, "MRN", "L999")),
         check=lambda r, c: (("admissions.csv", 3, "MRN", "orphan", "row") in keys(r) or pytest.fail(str(keys(r))),
                             one(r, file="admissions.csv")["value"] == REDACTED or pytest.fail("MRN shown"),
                             set(entries(r, rule="orphan")["file"]) == {"admissions.csv", "anakinra.csv", "labs.csv", "adverse_events.csv"}
                             or pytest.fail("children"))),
    # -- identifiers where they do not belong
    Case("identifiers-in-free-text", "LDN",
         ldn(lambda t: (cell(t["admissions.csv"], 0, "Trigger_Detail", "EBV; contact of SMITHSON family"),
                        cell(t["adverse_events.csv"], 1, "Event", "Line infection, NHS no 485 777 3456"))),
         check=check_scrubbed({"admissions": ("trigger_detail", f"EBV; contact of {SCRUBBED} family"),
                               "adverse_events": ("term_text", f"Line infection, NHS no {SCRUBBED}")},
                              {("admissions.csv", 2, "Trigger_Detail", "identifier_in_text", "value"),
                               ("adverse_events.csv", 3, "Event", "identifier_in_text", "value")})),
    Case("identifiers-in-free-text-in-sheet", "SHF",
         shf(lambda s: (cell(s["Patients"], 1, "Trigger detail", "Systemic JIA (NHS 6123456789)"),
                        cell(s["Adverse events"], 0, "Event", "Injection site reaction - Alicia"))),
         check=check_scrubbed({"admissions": ("trigger_detail", f"Systemic JIA (NHS {SCRUBBED})"),
                               "adverse_events": ("term_text", f"Injection site reaction - {SCRUBBED}")},
                              {(f"{BOOK}:Patients", 5, "Trigger detail", "identifier_in_text", "value"),
                               (f"{BOOK}:Adverse events", 4, "Event", "identifier_in_text", "value")})),
    Case("identifiers-in-free-text-redcap", "BHM",
         bhm(lambda d: at(d, lambda f: f.index == 0, "trigger_detail", "sJIA, sibling of Ostrowsky M9002")),
         check=check_scrubbed({"admissions": ("trigger_detail", f"sJIA, sibling of {SCRUBBED} {SCRUBBED}")},
                              {("BHM_HLH_DATA.csv", 2, "trigger_detail", "identifier_in_text", "value")})),
    Case("nhs-shaped-number-of-nobody-in-free-text", "LDN",
         ldn(lambda t: cell(t["adverse_events.csv"], 0, "Event", "Transaminitis, ref 9990001112")),
         check=check_scrubbed({"adverse_events": ("term_text", f"Transaminitis, ref {SCRUBBED}")},
                              {("adverse_events.csv", 2, "Event", "identifier_in_text", "value")})),
    Case("identifier-typed-into-a-code-field", "LDN",
         ldn(lambda t: (cell(t["patients.csv"], 0, "Sex", "Smithson"), cell(t["admissions.csv"], 1, "Trigger_Category", "Brownlow"))),
         check=lambda r, c: (keys(r) == {("patients.csv", 2, "Sex", "unknown_code", "value"),
                                         ("admissions.csv", 3, "Trigger_Category", "unknown_code", "value")} or pytest.fail(str(keys(r))),
                             set(r.ledger["value"]) == {REDACTED} or pytest.fail("identifier shown in the ledger"))),
]


# ------------------------------------------------------------------------------ the tests


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in STOPS])
def test_stops_with_a_message_naming_file_and_fix(case, clean, tmp_path, caplog):
    _, identifiers = clean
    case.defect(tmp_path / "d")
    with caplog.at_level(logging.INFO), pytest.raises(ExtractError) as info:
        ingest_centre(tmp_path / "d", case.centre, centre_map(case.centre), KEY, EXTRACT_DATE, log=logging.getLogger("t"))
    message = str(info.value)
    assert not leaks([message, *caplog.messages], identifiers, tmp_path / "message.txt"), \
        "an identifier is in the error message or the log"
    assert "Fix: " in message and info.value.fix
    assert "Traceback" not in message
    for pattern in case.stop:
        assert pd.Series([message]).str.contains(pattern, regex=True).iloc[0], f"{pattern!r} not in: {message}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in RUNS_ON])
def test_bad_rows_are_accounted_for_and_the_rest_goes_on(case, clean, tmp_path, caplog):
    results, identifiers = clean
    case.defect(tmp_path / "d")
    with caplog.at_level(logging.INFO):
        result = ingest_centre(tmp_path / "d", case.centre, centre_map(case.centre), KEY, EXTRACT_DATE,
                               log=logging.getLogger("t"))
    assert not leaks(caplog.messages, identifiers, tmp_path / "log.txt"), "an identifier is in the log"
    assert_no_identifier_anywhere(result, identifiers, tmp_path)
    assert_accounted(result, tmp_path / "d", case.centre)
    case.check(result, results[case.centre])


def test_catalogue_ids_are_unique():
    ids = [c.id for c in STOPS + RUNS_ON]
    assert len(ids) == len(set(ids))


def test_clean_delivery_is_accounted_for(clean, tmp_path_factory):
    delivery = write_all(tmp_path_factory.mktemp("again"))
    for centre in CENTRES:
        assert_accounted(clean[0][centre], delivery, centre)


# ------------------------------------------------------------------------------ through snakemake

CLI_CASES = [c for c in STOPS if c.id in {"empty-file-csv", "sheet-renamed", "dictionary-missing-coded-field"}]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CLI_CASES])
def test_snakemake_stops_without_traceback_or_partial_outputs(case, clean, tmp_path):
    _, identifiers = clean
    delivery = write_delivery_yaml(write_all(tmp_path / "delivery"))
    case.defect(delivery)
    run = f"pytest_bad_{os.getpid()}_{case.id}"
    out = ROOT / "results" / run
    shutil.rmtree(out, ignore_errors=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", f"results/{run}/clean/{case.centre}/accounting.csv", "--cores", "1",
             "--config", f"delivery={delivery}", f"run={run}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        log = out / "logs" / f"ingest_{case.centre}.log"
        texts = [done.stdout, done.stderr, log.read_text(encoding="utf-8") if log.exists() else ""]
        assert not leaks(texts, identifiers, tmp_path / "cli.txt"), "an identifier is in snakemake's output or the log"
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        assert f"ERROR ingest {case.centre}: " in done.stderr and "Fix: " in done.stderr, done.stderr[-3000:]
        assert pd.Series([done.stderr]).str.contains(case.stop[0].lstrip("^"), regex=True).iloc[0], done.stderr[-3000:]
        left = sorted(p.name for p in (out / "clean" / case.centre).glob("*")) if (out / "clean" / case.centre).exists() else []
        assert left == [], f"partial outputs left: {left}"
        assert "extract not ingested" in texts[2]
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ------------------------------------------------------------------------------ random hostile edits
# Seeded edits of the clean delivery: hostile cell values, or bytes deleted, inserted, changed,
# cut off or lines shuffled. Whatever they do, ingest stops with an ExtractError or accounts for
# every row. Seeds 100, 140 (cells) and 2, 18, 111 (bytes) found bugs (an ISO-shaped non-date
# as a date of birth; every lab row leaving; an undecodable header byte; NUL and bare CR).

HOSTILE_CELLS = ["", " ", "NA", "-1", "0", "1e309", "nan", "inf", "-", "<", ">", "<>5", "1/1/1", "00/00/0000",
                 "9999-99-99", "2019-13-01", "31/12/9999", "29/02/2019", "29/02/2020", "1,000", "١٢٣", "１２", "\t",
                 "\"", "'", ";", ",", "\r", "\n", "x" * 500, "100 mg/kg/h", "mg", "2 mg/kg", "1e3", "0x10", "+5", "--5",
                 "5-", "5.5.5", "grade 3", "Grade 9", "3.0", "None", "null", "TRUE", "yes", "Y", "n", "Not done", "IV",
                 "SC", "iv", "Continuous", "QDS", "OD", "7", "99", "-100", "100000", "01/01/1900", "01/07/2020",
                 "2020-07-01", "2019-02-03 25:61", "03-Feb-2019", "ug/L", "mg/dl", "µmol/L", "x10^9/L"]


def _edit_cells(frame: pd.DataFrame, rng) -> pd.DataFrame:
    frame = frame.copy()
    for _ in range(rng.randint(1, 4)):
        if len(frame) == 0:
            break
        i = rng.randrange(len(frame))
        column = rng.choice(list(frame.columns))
        frame.iloc[i, frame.columns.get_loc(column)] = rng.choice(HOSTILE_CELLS)
    return frame


def _edit_bytes(data: bytes, rng) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        op = rng.randrange(6)
        if not b:
            break
        i = rng.randrange(len(b))
        if op == 0:
            del b[i]
        elif op == 1:
            b.insert(i, rng.choice(b'",;\r\n\t\x00\xb0\xe9\xff '))
        elif op == 2:
            b[i] = rng.randrange(256)
        elif op == 3:
            b[:] = b[: rng.randrange(len(b))]
        elif op == 4:
            b.insert(i, ord('"'))
        else:
            lines = bytes(b).split(b"\n")
            rng.shuffle(lines)
            b[:] = b"\n".join(lines)
    return bytes(b)


def _hostile_cells(seed: int, d: Path) -> str:
    rng = random.Random(seed)
    centre = rng.choice(CENTRES)
    if centre == "LDN":
        write_ldn(d, {k: _edit_cells(v, rng) if rng.random() < 0.5 else v for k, v in ldn_tables().items()})
    elif centre == "SHF":
        write_shf(d, {k: _edit_cells(v, rng) if rng.random() < 0.5 else v for k, v in shf_sheets().items()})
    else:
        write_bhm(d, _edit_cells(bhm_data(), rng))
    return centre


def _hostile_bytes(seed: int, d: Path) -> str:
    rng = random.Random(seed)
    centre = rng.choice(CENTRES)
    write_all(d)
    path = rng.choice(sorted((d / centre).iterdir()))  # the SHF workbook too: a damaged zip
    path.write_bytes(_edit_bytes(path.read_bytes(), rng))
    return centre


@pytest.mark.parametrize("edit, seed", [(e, s) for e in ("cells", "bytes") for s in (0, 1, 3, 5, 8)]
                         + [("cells", 100), ("cells", 140), ("bytes", 2), ("bytes", 18), ("bytes", 111)])
def test_random_hostile_edits_stop_cleanly_or_are_accounted_for(edit, seed, clean, tmp_path):
    _, identifiers = clean
    centre = (_hostile_cells if edit == "cells" else _hostile_bytes)(seed, tmp_path / "d")
    try:
        result = ingest_centre(tmp_path / "d", centre, centre_map(centre), KEY, EXTRACT_DATE)
    except ExtractError as error:
        assert "Fix: " in str(error)
        return
    assert_accounted(result, tmp_path / "d", centre)
    assert_no_identifier_anywhere(result, identifiers, tmp_path)
