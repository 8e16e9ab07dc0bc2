"""Readers for the three export formats: CSV folder, Excel workbook, REDCap export.

A reader knows file formats and nothing about cohorts. It returns every data row of every
file as text (cells stripped, the centre's missing markers as NA), indexed by the row number
a human sees: for CSV the physical line where the record starts (header = line 1 unless title
lines precede it), for Excel the sheet's row number (title lines count).

What a reader tolerates, and what stops the run (ExtractError naming the file, and the line,
sheet or column, then the fix; never a cell's value):
  - the header is searched for in the first rows when it is not where the map says (title
    lines added or removed): the row holding most of the map's column names, logged;
    no such row stops the run (with a note when the lines are split by another separator);
  - column names differing only in case or spacing are read under the map's spelling (logged);
    a missing required column stops the run naming the columns the map does not know
    (the likely renames); a column name given twice stops it;
  - Excel sheets are found by name, whatever their order (case and surrounding spaces
    ignored); a missing sheet stops the run;
  - an empty (0-byte) file stops the run; a file with only its header has no rows;
  - bytes that are not valid text in the map's `encoding` stop the run naming line and column,
    unless the map names a `fallback_encoding`: such cells are then read in it and listed in
    `Extract.recoded` (a scope=value ledger entry each);
  - a CSV line with more or fewer fields than the header (an unquoted separator or line break
    in a field, a truncated line) cannot be read: listed in `Extract.malformed` (the row leaves
    with a scope=row ledger entry). A trailing empty field (a stray separator) is tolerated.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd

from stormcohort.errors import ExtractError

REDCAP_INSTRUMENT = "redcap_repeat_instrument"
REDCAP_RECORD = "record_id"
REDCAP_INSTANCE = "redcap_repeat_instance"  # read but not needed: rows are kept in file order
# REDCap's own data-dictionary layout.
DICTIONARY_FIELD = "Variable / Field Name"
DICTIONARY_TYPE = "Field Type"
DICTIONARY_CHOICES = "Choices, Calculations, OR Slider Labels"
DICTIONARY_COLUMNS = {DICTIONARY_FIELD, DICTIONARY_TYPE, DICTIONARY_CHOICES}
# REDCap field types whose codes are implied rather than listed in the dictionary.
IMPLIED_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}
# The header is searched for in this many rows (lines) from the top of a file or sheet.
HEADER_SEARCH_ROWS = 20
SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}
# Bytes that did not decode, as `surrogateescape` keeps them (U+DC80-U+DCFF).
STRAY_BYTE = re.compile("[\udc80-\udcff]")


@dataclass
class Extract:
    """One centre's delivery as text tables."""

    files: dict[str, pd.DataFrame]  # file label -> every readable data row (index = human row number)
    sources: list[tuple[str, dict]]  # (file label, source entry of the centre map)
    # REDCap: every field of the data dictionary -> {code: label} (empty for fields that are not coded)
    choices: dict[str, dict[str, str]] = field(default_factory=dict)
    # file label -> why each unreadable row (index = row number) could not be split into columns
    malformed: dict[str, pd.Series] = field(default_factory=dict)
    # (file label, column, texts indexed by row) of cells read with the map's fallback encoding
    recoded: list[tuple[str, str, pd.Series]] = field(default_factory=list)
    # (file label, column, error texts indexed by row) of Excel error cells (`#N/A`...), read as missing
    spreadsheet_errors: list[tuple[str, str, pd.Series]] = field(default_factory=list)


@dataclass
class Table:
    """One file or sheet as read."""

    frame: pd.DataFrame
    malformed: pd.Series  # row number -> reason
    recoded: list[tuple[str, pd.Series]] = field(default_factory=list)
    errors: list[tuple[str, pd.Series]] = field(default_factory=list)  # Excel error cells per column


def file_label(centre_map: dict, source: dict) -> str:
    """How the ledger and accounting name a source's file: `patients.csv`, `book.xlsx:Sheet`."""
    if "sheet" in source:
        return f"{centre_map['workbook']}:{source['sheet']}"
    if "instrument" in source:
        return centre_map["data_file"]
    return source["file"]


def map_path(centre: str) -> str:
    return f"config/centres/{centre}.yaml"


def _key(name) -> str:
    """Column and sheet names compared without case or differences in spacing."""
    return " ".join(str(name).split()).casefold()


def _shown(names, limit: int = 8) -> str:
    names = [repr(n) for n in names]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _tidy(frame: pd.DataFrame, missing_values: list[str], index) -> pd.DataFrame:
    """Strip cells, turn missing markers into NA, number rows by `index`, drop blank rows."""
    frame = frame.astype(str).apply(lambda column: column.str.strip())
    frame = frame.mask(frame.isin(missing_values))
    frame.index = pd.Index(np.asarray(index, dtype="int64"), name="row")
    return frame.dropna(how="all")


def _header(names) -> list[str]:
    """Header cells as column names: stripped (and an Excel-exported CSV's byte-order mark
    removed); an empty cell is an `(unnamed column N)`."""
    names = [str(name).strip().lstrip("\ufeff").strip() for name in names]
    return [name or f"(unnamed column {i + 1})" for i, name in enumerate(names)]


def _locate_header(rows: list[list], expected: set[str], map_row: int | None) -> int | None:
    """Position (in `rows`) of the header: the map's row when it holds as many expected column
    names as any of the first rows, else the first row holding most; None when none holds any."""
    keys = {_key(c) for c in expected}
    scores = [len(keys & {_key(c) for c in row}) for row in rows[:HEADER_SEARCH_ROWS]]
    best = max(scores, default=0)
    if best == 0:
        return None
    if map_row is not None and map_row < len(scores) and scores[map_row] == best:
        return map_row
    return scores.index(best)


def _check_header(columns: list[str], label: str, expected: set[str], where: str, centre: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(columns):
        if name in seen and _key(name) in {_key(c) for c in expected}:
            raise ExtractError(f"{label}: column {name!r} appears twice in the header ({where}: columns "
                               f"{seen[name] + 1} and {i + 1}), so its values are ambiguous",
                               f"ask the centre to re-export with one column per field, or rename the copy "
                               f"that is not wanted (the map {map_path(centre)} reads {name!r})")
        seen.setdefault(name, i)


def _unique(columns: list[str]) -> list[str]:
    """Repeated names of columns nobody reads made unique (`X (column 7)`)."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(columns):
        out.append(name if name not in seen else f"{name} (column {i + 1})")
        seen.add(name)
    return out


def _match_columns(frame: pd.DataFrame, label: str, expected: set[str], log: logging.Logger | None) -> pd.DataFrame:
    """Columns spelled differently from the map only in case or spacing take the map's spelling."""
    by_key: dict[str, list[str]] = {}
    for column in frame.columns:
        by_key.setdefault(_key(column), []).append(column)
    renames = {}
    for name in sorted(expected - set(frame.columns)):
        candidates = [c for c in by_key.get(_key(name), []) if c not in expected]
        if len(candidates) == 1:
            renames[candidates[0]] = name
    if renames and log is not None:
        log.info("%s: %d column(s) read under the centre map's spelling: %s", label, len(renames),
                 ", ".join(f"{a!r} as {b!r}" for a, b in renames.items()))
    return frame.rename(columns=renames)


# ------------------------------------------------------------------------------------------ CSV


def _csv_records(text: str, delimiter: str, limit: int | None = None) -> tuple[list[int], list[list[str]], list[int]]:
    """The non-blank records (the first `limit`), the physical line each starts on and the last
    line each uses (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    lines, records, ends, previous = [], [], [], 0
    for record in reader:
        if record:
            lines.append(previous + 1)
            records.append(record)
            ends.append(reader.line_num)
            if limit is not None and len(records) >= limit:
                break
        previous = reader.line_num
    return lines, records, ends


def _fast_frame(text: str, skip_lines: int, names: list[str], delimiter: str):
    """The records after the first `skip_lines` lines through pandas' C parser, with the line each
    starts on, when every record has exactly the header's number of fields; None otherwise.

    The field count of every record is checked first, over the bytes: separators and line ends
    count outside quotes only (RFC 4180 quoting, where the parity of the quotes so far tells
    inside from outside). The C parser would silently pad a short record."""
    if "\x00" in text or text.count("\r") != text.count("\r\n"):
        # The C parser would cut a field at a NUL byte, and counts lines otherwise than the csv
        # module where a bare CR ends one: read record by record.
        return None
    start = 0
    for _ in range(skip_lines):
        start = text.find("\n", start) + 1
        if start == 0:
            return pd.DataFrame(columns=names, dtype=object), np.array([], dtype="int64")
    body = text[start:]
    b = np.frombuffer(body.encode("utf-8", "surrogateescape"), dtype=np.uint8)
    if b.size == 0:
        return pd.DataFrame(columns=names, dtype=object), np.array([], dtype="int64")
    newline = b == ord("\n")
    separator = b == ord(delimiter)
    if '"' in body:  # inside quotes after an odd number of them (uint8 wraps, its parity holds)
        outside = (np.cumsum(b == ord('"'), dtype=np.uint8) & 1) == 0
        newline_outside, separator = newline & outside, separator & outside
    else:
        newline_outside = newline
    ends = np.flatnonzero(newline_outside)
    if ends.size == 0 or ends[-1] != b.size - 1:
        ends = np.append(ends, b.size)
    starts = np.concatenate([[0], ends[:-1] + 1])
    at = np.flatnonzero(separator)
    fields = np.searchsorted(at, ends) - np.searchsorted(at, starts) + 1
    length = ends - starts
    blank = (length == 0) | ((length == 1) & (b[np.minimum(starts, b.size - 1)] == ord("\r")))
    if (fields[~blank] != len(names)).any():
        return None
    lines = skip_lines + 1 + np.searchsorted(np.flatnonzero(newline), starts[~blank])
    try:
        frame = pd.read_csv(io.StringIO(body), header=None, names=names, sep=delimiter, dtype=str, engine="c",
                            keep_default_na=False, na_filter=False, skip_blank_lines=True, index_col=False)
    except (pd.errors.ParserError, ValueError):
        return None
    return (frame, lines) if len(frame) == len(lines) else None


def _stray_error(label: str, line: int, column: str, text: str, encoding: str, fallback: str | None, centre: str):
    byte = ord(STRAY_BYTE.search(text).group()) - 0xDC00
    if fallback:
        return ExtractError(f"{label}: line {line}, column {column!r}: byte 0x{byte:02X} is neither {encoding} "
                            f"nor {fallback} text", "ask the centre to re-export the file as UTF-8")
    return ExtractError(f"{label}: line {line}, column {column!r}: byte 0x{byte:02X} is not {encoding} text "
                        f"(expected the whole file in {encoding})",
                        f"ask the centre to re-export the file as UTF-8, or set `fallback_encoding: cp1252` in "
                        f"{map_path(centre)} to read such bytes as Windows-1252 (each such value is noted in the "
                        f"ledger), or set `encoding:` there if the whole file is in another encoding")


def _recode(texts: pd.Series, fallback: str) -> pd.Series:
    """Undecodable bytes (kept as surrogates) decoded one by one in the fallback encoding."""
    return texts.map(lambda v: STRAY_BYTE.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode(fallback), v))


def read_csv_text(path: Path, label: str, centre_map: dict, expected: set[str],
                  log: logging.Logger | None = None, *, malformed_stops: bool = False) -> Table:
    """A CSV file as text; index = the physical line each record starts on."""
    centre = centre_map["centre"]
    encoding = centre_map.get("encoding", "utf-8-sig")
    fallback = centre_map.get("fallback_encoding")
    delimiter = centre_map.get("delimiter", ",")
    header_row = centre_map["header_row"]
    if not path.is_file():
        raise ExtractError(f"{label}: file not found (expected {path.name} in {path.parent})",
                           "ask the centre for the missing file, or correct the file name in " + map_path(centre))
    raw = path.read_bytes()
    if not raw.strip():
        raise ExtractError(f"{label}: the file is empty ({len(raw)} bytes); expected a header line naming the "
                           f"columns ({_shown(sorted(expected), 4)}) and one line per record",
                           "ask the centre to re-export the file; a file without records still needs its header line")
    if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and "16" not in encoding:
        raise ExtractError(f"{label}: the file is UTF-16 text (Excel's 'Unicode text'); expected {encoding}",
                           "ask the centre to re-export as 'CSV UTF-8', "
                           f"or set `encoding: utf-16` in {map_path(centre)}")
    try:
        text, stray = raw.decode(encoding), False
    except UnicodeDecodeError:
        text, stray = raw.decode(encoding, errors="surrogateescape"), True
    text = text.lstrip("\ufeff")  # a byte-order mark under a plain utf-8 map
    try:
        lines, records, ends = _csv_records(text, delimiter, HEADER_SEARCH_ROWS)
    except csv.Error as error:
        raise ExtractError(f"{label}: not readable as CSV ({error})",
                           "ask the centre to re-export the file as CSV") from None
    at = _locate_header(records, expected, next((i for i, n in enumerate(lines) if n == header_row), None))
    if at is None:
        if "\x00" in text[:2000]:
            raise ExtractError(f"{label}: no header line found, and the file holds NUL bytes: UTF-16 text or not a "
                               f"text file at all; expected {encoding} text",
                               "ask the centre to re-export as 'CSV UTF-8' "
                               f"(or set `encoding: utf-16` in {map_path(centre)})")
        for other, name in SEPARATORS.items():
            try:
                elsewhere = _locate_header(_csv_records(text, other, HEADER_SEARCH_ROWS)[1], expected, None)
            except csv.Error:
                elsewhere = None
            if other != delimiter and elsewhere is not None:
                raise ExtractError(
                    f"{label}: the columns are separated by {name} ({other!r}); expected {SEPARATORS[delimiter]} "
                    f"({delimiter!r})",
                    f"ask the centre to re-export with {SEPARATORS[delimiter]}, or set `delimiter: {other!r}` in "
                    f"{map_path(centre)} if it now always exports so")
        raise ExtractError(
            f"{label}: no header line found: none of the first {HEADER_SEARCH_ROWS} lines names any expected column "
            f"({_shown(sorted(expected), 4)}); the map expects the header on line {header_row}",
            f"ask the centre to re-export with the header line, or correct the column names in {map_path(centre)}")
    header = _header(records[at])
    if stray and any(STRAY_BYTE.search(name) for name in header):
        if not fallback:
            column = next(n for n in header if STRAY_BYTE.search(n))
            raise _stray_error(label, lines[at], "(header)", column, encoding, None, centre)
        try:
            header = _recode(pd.Series(header, dtype=object), fallback).tolist()
        except UnicodeDecodeError:
            column = next(n for n in header if STRAY_BYTE.search(n))
            raise _stray_error(label, lines[at], "(header)", column, encoding, fallback, centre) from None
    _check_header(header, label, expected, f"line {lines[at]}", centre)
    if lines[at] != header_row and log is not None:
        log.info("%s: header found on line %d (the centre map says line %d)", label, lines[at], header_row)
    n = len(header)
    names = _unique(header)
    reasons = pd.Series(dtype=object, index=pd.Index([], dtype="int64", name="row"))
    fast = _fast_frame(text, ends[at], names, delimiter)
    if fast is not None:
        frame, data_lines = fast
    else:  # a record with another number of fields than the header: read record by record
        try:
            lines, records, _ = _csv_records(text, delimiter)
        except csv.Error as error:
            raise ExtractError(f"{label}: not readable as CSV ({error})",
                               "ask the centre to re-export the file as CSV") from None
        data, data_lines = records[at + 1:], lines[at + 1:]
        lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        # A stray separator at the end of a line (an empty extra field) is harmless.
        for i in np.flatnonzero(lengths > n):
            if not any(cell.strip() for cell in data[i][n:]):
                data[i] = data[i][:n]
                lengths[i] = n
        bad = lengths != n
        blank = np.array([not any(c.strip() for c in data[i]) for i in np.flatnonzero(bad)], dtype=bool)
        rows = np.flatnonzero(bad)[~blank]
        reasons = pd.Series([f"line has {lengths[i]} fields, expected {n} (the header's): an unquoted "
                             f"{SEPARATORS.get(delimiter, 'separators')[:-1]} or line break inside a field, or a "
                             f"truncated line; row not readable" for i in rows],
                            index=pd.Index([data_lines[i] for i in rows], dtype="int64", name="row"), dtype=object)
        if malformed_stops and len(reasons):
            raise ExtractError(f"{label}: line {reasons.index[0]}: {reasons.iloc[0]}",
                               "ask the centre to re-export the file with quoted fields")
        keep = np.flatnonzero(~bad)
        data, data_lines = [data[i] for i in keep], [data_lines[i] for i in keep]
        frame = pd.DataFrame(data, columns=pd.Index(names), dtype=object) if data else \
            pd.DataFrame(columns=names, dtype=object)
    frame = _tidy(frame, centre_map["missing_values"], data_lines)
    recoded = []
    if stray:
        for column in frame.columns:
            hit = frame[column].str.contains(STRAY_BYTE, na=False)
            if not hit.any():
                continue
            if not fallback:
                raise _stray_error(label, int(frame.index[hit.to_numpy()][0]), column, frame[column][hit].iloc[0],
                                   encoding, None, centre)
            try:
                frame.loc[hit, column] = _recode(frame.loc[hit, column], fallback)
            except UnicodeDecodeError:
                for line, value in frame.loc[hit, column].items():
                    try:
                        _recode(pd.Series([value]), fallback)
                    except UnicodeDecodeError:
                        raise _stray_error(label, int(line), column, value, encoding, fallback, centre) from None
            recoded.append((column, frame.loc[hit, column]))
    return Table(frame, reasons, recoded)


# ---------------------------------------------------------------------------------------- Excel


def _check_archive(path: Path, label: str) -> None:
    """An .xlsx file is a zip archive: a damaged or cut-off one stops the run (calamine would read
    what it can of it)."""
    fix = "ask the centre to send the workbook again (Excel Workbook .xlsx, not truncated in transfer)"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise ExtractError(f"{label}: unreadable workbook (not a complete .xlsx archive: {error}); expected an "
                           ".xlsx file", fix) from None
    if damaged is not None:
        raise ExtractError(f"{label}: unreadable workbook (damaged part {damaged!r} fails its checksum); expected "
                           "an .xlsx file", fix)


XLSX_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
XLSX_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
XLSX_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
CELL_REF = re.compile(r"^([A-Z]+)([0-9]+)$")


def _error_cells(path: Path, sheets: list[str]) -> dict[str, list[tuple[int, int, str]]]:
    """Excel error cells (`#N/A`, `#VALUE!`, `#DIV/0!`...: `t="e"` in the sheet's XML) of the named
    sheets as (sheet row, 0-based column, error text). calamine reads them as empty cells."""
    found: dict[str, list[tuple[int, int, str]]] = {sheet: [] for sheet in sheets}
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
            return found
        targets = {rel.get("Id"): rel.get("Target", "")
                   for rel in ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels")).iter(XLSX_PACKAGE_REL)}
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        parts = {sheet.get("name"): targets.get(sheet.get(XLSX_REL), "") for sheet in book.iter(f"{XLSX_MAIN}sheet")}
        for sheet in sheets:
            target = parts.get(sheet, "")
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            if part not in names:
                continue
            data = archive.read(part)
            if b't="e"' not in data:  # most sheets: no error cell, no parse
                continue
            for cell in ElementTree.fromstring(data).iter(f"{XLSX_MAIN}c"):
                ref = CELL_REF.match(cell.get("r", ""))
                if cell.get("t") != "e" or ref is None:
                    continue
                column = 0
                for letter in ref.group(1):
                    column = column * 26 + ord(letter) - ord("A") + 1
                value = cell.find(f"{XLSX_MAIN}v")
                text = value.text if value is not None and value.text else "#ERROR"
                found[sheet].append((int(ref.group(2)), column - 1, text.strip()))
    return found


def read_workbook(path: Path, label: str, centre_map: dict, expected: dict[str, set[str]],
                  log: logging.Logger | None = None) -> dict[str, Table]:
    """The named sheets of a workbook as text (through python-calamine); index = sheet row number.

    Date cells become `YYYY-MM-DD HH:MM:SS` text and whole numbers lose Excel's `.0`, so one
    parser handles typed and true dates alike.
    Error cells (`#N/A`, `#VALUE!`, `#DIV/0!`, `#REF!`, `#NAME?`, `#NUM!`, `#NULL!`), which calamine
    reads as empty, are found in the sheet's XML: missing, and listed in `Table.errors`.
    """
    centre = centre_map["centre"]
    header_row = centre_map["header_row"]
    if not path.is_file():
        raise ExtractError(f"{label}: file not found (expected the workbook {path.name} in {path.parent})",
                           "ask the centre for the workbook, or correct `workbook:` in " + map_path(centre))
    if path.stat().st_size == 0:
        raise ExtractError(f"{label}: the file is empty (0 bytes); expected an .xlsx workbook",
                           "ask the centre to re-export the workbook")
    _check_archive(path, label)
    try:
        with pd.ExcelFile(path, engine="calamine") as book:
            names = book.sheet_names
            found = {}
            for sheet in expected:
                close = [n for n in names if n == sheet] or [n for n in names if _key(n) == _key(sheet)]
                if len(close) != 1:
                    raise ExtractError(
                        f"{label}: sheet {sheet!r} not found (expected sheets: {', '.join(expected)}; "
                        f"the workbook has: {', '.join(names)})",
                        f"ask the centre to restore the sheet's name, or, if it was renamed for good, change "
                        f"`sheet: {sheet}` in {map_path(centre)}")
                found[sheet] = close[0]
                if close[0] != sheet and log is not None:
                    log.info("%s: sheet %r read as %r", label, close[0], sheet)
            raw = book.parse(sheet_name=list(found.values()), header=None, dtype=object, na_filter=False)
        error_cells = _error_cells(path, list(found.values()))
    except ExtractError:
        raise
    except Exception as error:  # calamine raises its own types for corrupt or non-Excel files
        raise ExtractError(f"{label}: unreadable workbook ({type(error).__name__}); expected an .xlsx file",
                           "ask the centre to re-export the workbook as .xlsx (Excel Workbook)") from error
    tables = {}
    for sheet, actual in found.items():
        cells = raw[actual]
        head = cells.iloc[:HEADER_SEARCH_ROWS].astype(str).to_numpy().tolist()
        at = _locate_header(head, expected[sheet], header_row - 1)
        if at is None:
            raise ExtractError(
                f"{label}:{sheet}: no header row found: none of the first {HEADER_SEARCH_ROWS} rows names any "
                f"expected column ({_shown(sorted(expected[sheet]), 4)}); "
                f"the map expects the header on row {header_row}",
                f"ask the centre to restore the header row, or correct the column names in {map_path(centre)}")
        if at + 1 != header_row and log is not None:
            log.info("%s:%s: header found on row %d (the centre map says row %d)", label, sheet, at + 1, header_row)
        columns = _header(cells.iloc[at])
        _check_header(columns, f"{label}:{sheet}", expected[sheet], f"row {at + 1}", centre)
        body = cells.iloc[at + 1:].copy()
        body.columns = _unique(columns)
        # Columns beyond the header with nothing in them are not columns.
        unnamed_empty = [c for c in body.columns
                         if c.startswith("(unnamed column") and (body[c].astype(str).str.strip() == "").all()]
        body = body.drop(columns=unnamed_empty)
        # Error cells of read columns hold their error text until tidied (a row of errors is not a
        # blank row), then are missing, each listed for a scope=value ledger entry.
        names = _unique(columns)
        errors = pd.DataFrame([(row, names[column], text) for row, column, text in error_cells[actual]
                               if row >= at + 2 and column < len(names) and names[column] in body.columns],
                              columns=["row", "column", "text"])
        for row, name, text in errors.itertuples(index=False):  # one per error cell: few
            body.iloc[row - (at + 2), body.columns.get_loc(name)] = text
        frame = _tidy(body, centre_map["missing_values"], range(at + 2, at + 2 + len(body)))
        listed = []
        for name, group in errors.groupby("column", sort=True):
            texts = pd.Series(group["text"].to_numpy(), index=pd.Index(group["row"], dtype="int64", name="row"),
                              dtype=object)
            frame.loc[texts.index, name] = pd.NA
            listed.append((name, texts))
        tables[sheet] = Table(frame, pd.Series(dtype=object, index=pd.Index([], dtype="int64", name="row")),
                              errors=listed)
    return tables


# --------------------------------------------------------------------------------------- REDCap


def read_redcap_dictionary(path: Path, label: str, centre_map: dict) -> dict[str, dict[str, str]]:
    """Every field of a REDCap data dictionary -> {code: label} (empty when the field is not coded)."""
    dictionary_map = {**centre_map, "header_row": 1, "missing_values": [""]}
    dictionary = read_csv_text(path, label, dictionary_map, DICTIONARY_COLUMNS, malformed_stops=True).frame
    absent = [c for c in (DICTIONARY_FIELD, DICTIONARY_TYPE, DICTIONARY_CHOICES) if c not in dictionary]
    if absent:
        raise ExtractError(f"{label}: column {absent[0]!r} not found (expected REDCap's data-dictionary layout)",
                           "download the data dictionary again from REDCap (Project Setup > Data Dictionary) "
                           "without editing it")
    choices = {}
    # One line per field of the project: small and independent of the number of patients.
    for name, kind, text in dictionary[[DICTIONARY_FIELD, DICTIONARY_TYPE, DICTIONARY_CHOICES]].itertuples(index=False):
        choices[name] = {}
        if kind in IMPLIED_CHOICES:
            choices[name] = IMPLIED_CHOICES[kind]
        elif kind in {"radio", "dropdown", "checkbox"} and isinstance(text, str):
            pairs = [item.split(",", 1) for item in text.split("|")]
            if any(len(pair) != 2 for pair in pairs):
                raise ExtractError(f"{label}: field {name!r}: choices not in REDCap's '1, Label | 2, Label' form",
                                   "download the data dictionary again from REDCap without editing it")
            choices[name] = {code.strip(): label_text.strip() for code, label_text in pairs}
    return choices


# ------------------------------------------------------------------------------------- columns


def used_columns(source: dict) -> set[str]:
    return set(source["columns"]) | set(source.get("tests", {}))


def required_columns(source: dict) -> set[str]:
    return used_columns(source) - set(source.get("optional_columns", []))


def check_columns(frame: pd.DataFrame, label: str, sources: list[dict], system: set[str], known: set[str],
                  centre: str, log: logging.Logger | None) -> None:
    """Missing required columns (the map's, plus the format's `system` columns) stop the run;
    columns neither mapped nor `known` to the format are logged once and ignored."""
    needed = set().union(system, *map(required_columns, sources))
    unknown = [c for c in frame.columns if c not in set().union(known, system, *map(used_columns, sources))]
    absent = sorted(needed - set(frame.columns))
    if absent:
        renamed = f"; columns the map does not know: {_shown(unknown)}" if unknown else ""
        raise ExtractError(f"{label}: required column {absent[0]!r} not found (missing: {_shown(absent)}{renamed})",
                           f"if the centre renamed or dropped the column, update the source's `columns:` in "
                           f"{map_path(centre)} (or list it under `optional_columns:`); otherwise ask the centre "
                           f"for the agreed export")
    if unknown and log is not None:
        log.info("%s: %d column(s) not in the centre map, ignored: %s", label, len(unknown), ", ".join(sorted(unknown)))


def read_extract(folder: Path, centre_map: dict, log: logging.Logger | None = None) -> Extract:
    """Read every file a centre map names from the centre's delivery folder."""
    folder = Path(folder)
    centre = centre_map["centre"]
    sources = [(file_label(centre_map, s), s) for s in centre_map["sources"]]
    fmt = centre_map["format"]
    system = {REDCAP_RECORD, REDCAP_INSTRUMENT} if fmt == "redcap" else set()
    expected: dict[str, set[str]] = {}
    for label, source in sources:
        expected.setdefault(label, set(system)).update(used_columns(source))
    tables: dict[str, Table] = {}
    choices: dict[str, dict[str, str]] = {}
    if fmt == "csv_folder":
        for label, source in sources:
            tables[label] = read_csv_text(folder / source["file"], f"{centre}/{label}", centre_map, expected[label],
                                          log)
    elif fmt == "excel_workbook":
        book = centre_map["workbook"]
        sheets = read_workbook(folder / book, f"{centre}/{book}", centre_map,
                               {s["sheet"]: expected[label] for label, s in sources}, log)
        tables = {label: sheets[source["sheet"]] for label, source in sources}
    else:  # redcap
        data, dictionary = centre_map["data_file"], centre_map["dictionary_file"]
        choices = read_redcap_dictionary(folder / dictionary, f"{centre}/{dictionary}", centre_map)
        tables[data] = read_csv_text(folder / data, f"{centre}/{data}", centre_map, expected[data], log)
    files, malformed, recoded, spreadsheet_errors = {}, {}, [], []
    for label, table in tables.items():
        in_file = [s for lab, s in sources if lab == label]
        known = set()
        if fmt == "redcap":  # REDCap's own columns, including each form's `<form>_complete` status
            known = system | {REDCAP_INSTANCE} | {c for c in table.frame.columns if c.endswith("_complete")}
        frame = _match_columns(table.frame, f"{centre}/{label}", expected[label], log)
        check_columns(frame, f"{centre}/{label}", in_file, system, known, centre, log)
        if fmt == "redcap":
            undefined = sorted(set().union(*map(used_columns, in_file)) - {REDCAP_RECORD} - set(choices))
            if undefined:
                raise ExtractError(
                    f"{centre}/{centre_map['dictionary_file']}: field {undefined[0]!r} not in the data dictionary "
                    f"(missing: {_shown(undefined)}); its codes cannot be read",
                    f"export the data dictionary together with the data (both from the same REDCap project, "
                    f"same day), or remove the field from {map_path(centre)} if the project dropped it")
        files[label] = frame
        malformed[label] = table.malformed
        renames = dict(zip(table.frame.columns, frame.columns))
        recoded += [(label, renames.get(column, column), texts) for column, texts in table.recoded]
        spreadsheet_errors += [(label, renames.get(column, column), texts) for column, texts in table.errors]
        if log is not None:
            log.info("%s/%s: %d data rows read", centre, label, len(frame) + len(table.malformed))
            if len(table.malformed):
                log.info("%s/%s: %d line(s) not readable (field count differs from the header)", centre, label,
                         len(table.malformed))
            for column, texts in table.recoded:
                log.info("%s/%s: %d value(s) of column %r read as %s", centre, label, len(texts), column,
                         centre_map.get("fallback_encoding"))
    return Extract(files=files, sources=sources, choices=choices, malformed=malformed, recoded=recoded,
                   spreadsheet_errors=spreadsheet_errors)


def source_rows(frame: pd.DataFrame, source: dict) -> pd.DataFrame:
    """The rows of a file that belong to one source (REDCap: one repeating instrument)."""
    if "instrument" not in source:
        return frame
    return frame[frame[REDCAP_INSTRUMENT].fillna("") == source["instrument"]]
