"""Readers for the three export formats: CSV folder, Excel workbook, REDCap export.

A reader knows file formats and nothing about cohorts. It returns every data row of every
file as text (cells stripped, the centre's missing markers as NA), indexed by the row number
a human sees: for CSV the physical line (header = line 1), for Excel the sheet's row number
(title lines count). Structural problems raise ExtractError naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stormcohort.errors import ExtractError

REDCAP_INSTRUMENT = "redcap_repeat_instrument"
REDCAP_RECORD = "record_id"
REDCAP_INSTANCE = "redcap_repeat_instance"  # read but not needed: rows are kept in file order
# REDCap's own data-dictionary layout.
DICTIONARY_FIELD = "Variable / Field Name"
DICTIONARY_TYPE = "Field Type"
DICTIONARY_CHOICES = "Choices, Calculations, OR Slider Labels"
# REDCap field types whose codes are implied rather than listed in the dictionary.
IMPLIED_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}


@dataclass
class Extract:
    """One centre's delivery as text tables."""

    files: dict[str, pd.DataFrame]  # file label -> every data row (index = human row number)
    sources: list[tuple[str, dict]]  # (file label, source entry of the centre map)
    # REDCap: every field of the data dictionary -> {code: label} (empty for fields that are not coded)
    choices: dict[str, dict[str, str]] = field(default_factory=dict)


def file_label(centre_map: dict, source: dict) -> str:
    """How the ledger and accounting name a source's file: `patients.csv`, `book.xlsx:Sheet`."""
    if "sheet" in source:
        return f"{centre_map['workbook']}:{source['sheet']}"
    if "instrument" in source:
        return centre_map["data_file"]
    return source["file"]


def _tidy(frame: pd.DataFrame, missing_values: list[str], first_row: int) -> pd.DataFrame:
    """Strip cells, turn missing markers into NA, number rows from `first_row`, drop blank rows."""
    frame = frame.astype(str).apply(lambda column: column.str.strip())
    frame = frame.mask(frame.isin(missing_values))
    frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
    return frame.dropna(how="all")


def _header(names) -> list[str]:
    # An Excel-exported CSV read without `-sig` would keep the byte-order mark on the first name.
    return [str(name).strip().lstrip("\ufeff") for name in names]


def read_csv_text(path: Path, label: str, encoding: str, header_row: int, missing_values: list[str]) -> pd.DataFrame:
    """A CSV file as text; index = physical line number (the header is line `header_row`)."""
    if not path.is_file():
        raise ExtractError(f"{label}: file not found (expected {path.name} in {path.parent})")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding=encoding,
                            skiprows=header_row - 1, skip_blank_lines=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ExtractError(f"{label}: unreadable CSV ({error}); expected {encoding} text with a header on line {header_row}") from error
    frame.columns = _header(frame.columns)
    return _tidy(frame, missing_values, header_row + 1)


def read_workbook(path: Path, label: str, sheets: list[str], header_row: int, missing_values: list[str]) -> dict[str, pd.DataFrame]:
    """The named sheets of a workbook as text (through python-calamine); index = sheet row number.

    Date cells become `YYYY-MM-DD HH:MM:SS` text and whole numbers lose Excel's `.0`, so one
    parser handles typed and true dates alike.
    """
    if not path.is_file():
        raise ExtractError(f"{label}: file not found (expected the workbook {path.name} in {path.parent})")
    try:
        with pd.ExcelFile(path, engine="calamine") as book:
            missing = [s for s in sheets if s not in book.sheet_names]
            if missing:
                raise ExtractError(f"{label}: sheet {missing[0]!r} not found (expected sheets: {', '.join(sheets)}; "
                                   f"the workbook has: {', '.join(book.sheet_names)})")
            raw = book.parse(sheet_name=sheets, header=None, dtype=object, na_filter=False)
    except ExtractError:
        raise
    except Exception as error:  # calamine raises its own types for corrupt or non-Excel files
        raise ExtractError(f"{label}: unreadable workbook ({type(error).__name__}: {error}); expected an .xlsx file") from error
    frames = {}
    for sheet, cells in raw.items():
        if len(cells) < header_row:
            raise ExtractError(f"{label}:{sheet}: no header row (expected column headers on row {header_row})")
        body = cells.iloc[header_row:].copy()
        body.columns = _header(cells.iloc[header_row - 1])
        frames[sheet] = _tidy(body, missing_values, header_row + 1)
    return frames


def read_redcap_dictionary(path: Path, label: str, encoding: str) -> dict[str, dict[str, str]]:
    """Every field of a REDCap data dictionary -> {code: label} (empty when the field is not coded)."""
    dictionary = read_csv_text(path, label, encoding, 1, [""])
    absent = [c for c in (DICTIONARY_FIELD, DICTIONARY_TYPE, DICTIONARY_CHOICES) if c not in dictionary]
    if absent:
        raise ExtractError(f"{label}: column {absent[0]!r} not found (expected REDCap's data-dictionary layout)")
    choices = {}
    # One line per field of the project: small and independent of the number of patients.
    for name, kind, text in dictionary[[DICTIONARY_FIELD, DICTIONARY_TYPE, DICTIONARY_CHOICES]].itertuples(index=False):
        choices[name] = {}
        if kind in IMPLIED_CHOICES:
            choices[name] = IMPLIED_CHOICES[kind]
        elif kind in {"radio", "dropdown", "checkbox"} and isinstance(text, str):
            pairs = [item.split(",", 1) for item in text.split("|")]
            if any(len(pair) != 2 for pair in pairs):
                raise ExtractError(f"{label}: field {name!r}: choices {text!r} not in REDCap's '1, Label | 2, Label' form")
            choices[name] = {code.strip(): label_text.strip() for code, label_text in pairs}
    return choices


def used_columns(source: dict) -> set[str]:
    return set(source["columns"]) | set(source.get("tests", {}))


def required_columns(source: dict) -> set[str]:
    return used_columns(source) - set(source.get("optional_columns", []))


def check_columns(frame: pd.DataFrame, label: str, sources: list[dict], system: set[str], known: set[str],
                  log: logging.Logger | None) -> None:
    """Missing required columns (the map's, plus the format's `system` columns) stop the run;
    columns neither mapped nor `known` to the format are logged once and ignored."""
    needed = set().union(system, *map(required_columns, sources))
    absent = sorted(needed - set(frame.columns))
    if absent:
        raise ExtractError(f"{label}: required column {absent[0]!r} not found "
                           f"(missing: {', '.join(absent)}; the file has: {', '.join(frame.columns)})")
    unknown = sorted(set(frame.columns) - set().union(known, *map(used_columns, sources)))
    if unknown and log is not None:
        log.info("%s: %d column(s) not in the centre map, ignored: %s", label, len(unknown), ", ".join(unknown))


def read_extract(folder: Path, centre_map: dict, log: logging.Logger | None = None) -> Extract:
    """Read every file a centre map names from the centre's delivery folder."""
    folder = Path(folder)
    centre = centre_map["centre"]
    encoding = centre_map.get("encoding", "utf-8-sig")
    header_row = centre_map["header_row"]
    missing_values = centre_map["missing_values"]
    sources = [(file_label(centre_map, s), s) for s in centre_map["sources"]]
    fmt = centre_map["format"]
    files: dict[str, pd.DataFrame] = {}
    choices: dict[str, dict[str, str]] = {}
    if fmt == "csv_folder":
        for label, source in sources:
            files[label] = read_csv_text(folder / source["file"], f"{centre}/{label}", encoding, header_row, missing_values)
    elif fmt == "excel_workbook":
        book = centre_map["workbook"]
        sheets = read_workbook(folder / book, f"{centre}/{book}", [s["sheet"] for _, s in sources], header_row, missing_values)
        files = {label: sheets[source["sheet"]] for label, source in sources}
    else:  # redcap
        data, dictionary = centre_map["data_file"], centre_map["dictionary_file"]
        choices = read_redcap_dictionary(folder / dictionary, f"{centre}/{dictionary}", encoding)
        files[data] = read_csv_text(folder / data, f"{centre}/{data}", encoding, header_row, missing_values)
    for label, frame in files.items():
        in_file = [s for lab, s in sources if lab == label]
        system, known = set(), set()
        if fmt == "redcap":  # REDCap's own columns, including each form's `<form>_complete` status
            system = {REDCAP_RECORD, REDCAP_INSTRUMENT}
            known = system | {REDCAP_INSTANCE} | {c for c in frame.columns if c.endswith("_complete")}
        check_columns(frame, f"{centre}/{label}", in_file, system, known, log)
        if fmt == "redcap":
            undefined = sorted(set().union(*map(used_columns, in_file)) - {REDCAP_RECORD} - set(choices))
            if undefined:
                raise ExtractError(f"{centre}/{centre_map['dictionary_file']}: field {undefined[0]!r} not in the data dictionary "
                                   f"(missing: {', '.join(undefined)})")
        if log is not None:
            log.info("%s/%s: %d data rows read", centre, label, len(frame))
    return Extract(files=files, sources=sources, choices=choices)


def source_rows(frame: pd.DataFrame, source: dict) -> pd.DataFrame:
    """The rows of a file that belong to one source (REDCap: one repeating instrument)."""
    if "instrument" not in source:
        return frame
    return frame[frame[REDCAP_INSTRUMENT].fillna("") == source["instrument"]]
