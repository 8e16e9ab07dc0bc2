"""One centre's delivery -> canonical tables, exclusions ledger and row accounting."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from stormcohort.canonical import COLUMNS, LAB_UNITS
from stormcohort.errors import ExtractError
from stormcohort.ingest.clean import (
    Codebook,
    Context,
    Rows,
    clean_admissions,
    clean_adverse_events,
    clean_anakinra,
    clean_labs,
    clean_patients,
    read_dates,
)
from stormcohort.ingest.ledger import Ledger, accounting
from stormcohort.ingest.readers import REDCAP_INSTRUMENT, Extract, read_extract, source_rows
from stormcohort.privacy import ISO_DATE, MIN_DIGITS, MIN_LENGTH, identifier_set, normalise
from stormcohort.pseudonym import normalise_nhs

# Deterministic row order of each table (ties keep the file's row order).
SORT_KEYS = {
    "patients": ["person_key"],
    "admissions": ["admission_key"],
    "anakinra": ["admission_key", "start", "stop", "route", "continuous", "dose_mg", "rate_mg_per_h"],
    "labs": ["admission_key", "sample_time", "test", "value", "qualifier"],
    "adverse_events": ["admission_key", "event_date", "term", "grade"],
}


@dataclass
class CleanResult:
    tables: dict[str, pd.DataFrame]  # canonical.TABLES: validated, canonical column order, sorted
    ledger: pd.DataFrame  # canonical.LEDGER_COLUMNS, sorted by file, row, column
    accounting: pd.DataFrame  # canonical.ACCOUNTING_COLUMNS, one row per input data file


def drop_duplicate_rows(frame: pd.DataFrame, file: str, ledger: Ledger) -> pd.DataFrame:
    """Exact duplicates of an earlier row of the same file leave (the first is kept)."""
    duplicate = frame.duplicated(keep="first")
    if duplicate.any():
        group = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup()
        first = pd.Series(frame.index, index=frame.index).groupby(group).transform("first")
        ledger.add(file, pd.Series("", index=frame.index[duplicate], dtype=object), "", "duplicate_row",
                   "exact duplicate of row " + first[duplicate].astype(str) + " (first kept)", "row")
    return frame[~duplicate]


def _finish(table: pd.DataFrame, name: str, centre: str) -> pd.DataFrame:
    """Canonical column order and dtypes, deterministic row order, schema-validated."""
    from stormcohort.ingest.schema import SCHEMAS  # pandera: imported by the jobs that validate, not privacy_check

    table = table.assign(centre=centre)
    table = table.sort_values(SORT_KEYS[name], kind="mergesort", na_position="first")[COLUMNS[name]]
    table = table.reset_index(drop=True)
    for column, spec in SCHEMAS[name].columns.items():  # an empty table (or all-missing column) keeps its type
        if str(spec.dtype) == "str" and table[column].dtype != object and table[column].isna().all():
            table[column] = table[column].astype(object)
    text_columns = [c for c in table.columns if table[c].dtype == object]
    table[text_columns] = table[text_columns].astype(object).where(table[text_columns].notna(), None)
    return SCHEMAS[name].validate(table)


def _tables(centre: str, people: Rows, admissions: Rows, anakinra: list[Rows], labs: list[pd.DataFrame],
            adverse_events: list[Rows]) -> dict[str, pd.DataFrame]:
    patients = people.values.groupby("person_key", sort=True).agg(sex=("sex", "first")).reset_index()
    lab_results = pd.concat(labs, ignore_index=True)
    tables = {
        "patients": patients.astype({"sex": object}),
        "admissions": admissions.values,
        "anakinra": pd.concat([r.values for r in anakinra]),
        "labs": lab_results.assign(unit=lab_results["test"].map(LAB_UNITS)),
        "adverse_events": pd.concat([r.values for r in adverse_events]),
    }
    return {name: _finish(table, name, centre) for name, table in tables.items()}


def ingest_centre(delivery_dir: Path, centre: str, centre_map: dict, key: bytes, extract_date: date,
                  log: logging.Logger | None = None) -> CleanResult:
    """Read, clean and pseudonymise one centre's extract (`<delivery_dir>/<centre>/`)."""
    if centre_map["centre"] != centre:
        raise ExtractError(f"centre map is for {centre_map['centre']!r}, not {centre!r}")
    extract = read_extract(Path(delivery_dir) / centre, centre_map, log)
    identifiers = identifier_forms(extract_identifiers(extract, centre_map))
    ledger = Ledger(centre, centre_map["identifiers"], identifiers)
    ctx = Context(centre, centre_map, Codebook(centre_map, extract.choices), key, pd.Timestamp(extract_date),
                  identifiers)
    for label, reasons in extract.malformed.items():
        ledger.add(label, pd.Series("", index=reasons.index, dtype=object), "", "malformed_row", reasons, "row")
    for label, column, texts in extract.recoded:
        ledger.add(label, texts, column, "recoded_text",
                   f"bytes not valid {centre_map.get('encoding', 'utf-8-sig')} text, read as "
                   f"{centre_map.get('fallback_encoding')} (fallback_encoding); value kept", "value")
    for label, column, texts in extract.spreadsheet_errors:
        ledger.add(label, texts, column, "spreadsheet_error",
                   "the cell holds a spreadsheet error (e.g. #N/A, #VALUE!, #DIV/0!), not a value; read as missing",
                   "value")
    files = {label: drop_duplicate_rows(frame, label, ledger) for label, frame in extract.files.items()}
    if centre_map["format"] == "redcap":
        _exclude_unknown_instruments(files, extract.sources, ledger)

    by_role: dict[str, list[Rows]] = {}
    for label, source in extract.sources:
        by_role.setdefault(source["role"], []).append(Rows(label, source, source_rows(files[label], source), ledger))
    patients = by_role.get("patients", [None])[0]
    admissions = by_role["admissions"][0]
    if patients is not None:
        clean_patients(patients, ctx)
    clean_admissions(admissions, ctx, patients)
    linked = admissions.values[["local_id", "patient_id", "admit_date", "discharge_date", "admission_key", "weight_kg"]]
    for rows in by_role["anakinra"]:
        clean_anakinra(rows, ctx, linked)
    labs = [clean_labs(rows, ctx, linked) for rows in by_role["labs"]]
    for rows in by_role["adverse_events"]:
        clean_adverse_events(rows, ctx, linked)

    tables = _tables(centre, patients or admissions, admissions, by_role["anakinra"], labs, by_role["adverse_events"])
    entries = ledger.frame()
    kept: dict[str, pd.Index] = {}
    for rows in (r for group in by_role.values() for r in group):
        kept[rows.file] = kept.get(rows.file, pd.Index([], dtype="int64")).union(rows.raw.index)
    rows_in = {label: frame.index.union(extract.malformed[label].index) for label, frame in extract.files.items()}
    counts = accounting(centre, rows_in, kept, entries)
    if log is not None:
        for file, rows_in, rows_kept, rows_excluded in counts[["file", "rows_in", "rows_kept",
                                                                "rows_excluded"]].itertuples(index=False):
            log.info("%s/%s: %d rows in, %d kept, %d excluded", centre, file, rows_in, rows_kept, rows_excluded)
        for (rule, scope), n in entries.groupby(["rule", "scope"]).size().items():
            log.info("%s: ledger %s (%s): %d", centre, rule, scope, n)
    return CleanResult(tables=tables, ledger=entries, accounting=counts)


def _exclude_unknown_instruments(files: dict[str, pd.DataFrame], sources: list[tuple[str, dict]],
                                 ledger: Ledger) -> None:
    """REDCap rows of a repeating instrument the centre map does not know leave the file."""
    for label in {label for label, _ in sources}:
        known = [s["instrument"] for lab, s in sources if lab == label]
        frame = files[label]
        stray = ~frame[REDCAP_INSTRUMENT].fillna("").isin(known)
        ledger.add(label, frame.loc[stray, REDCAP_INSTRUMENT], REDCAP_INSTRUMENT, "unknown_code",
                   "repeating instrument not in the centre map "
                   f"(expected one of: {', '.join(repr(k) for k in known)})", "row")
        files[label] = frame[~stray]


def identifier_forms(identifiers: set[str]) -> set[str]:
    """`privacy.identifier_set`, safe for a raw value shaped like an ISO date that is no date
    (`2019-13-45` typed as a date of birth): such a value is kept in its normalised form only."""
    not_dates = {v for v in identifiers
                 if (m := ISO_DATE.match(str(v).strip())) and not 1 <= int(m.group(2)) <= 12}
    return identifier_set(identifiers - not_dates) | {
        f for f in map(normalise, not_dates) if len(f) >= (MIN_DIGITS if f.isdigit() else MIN_LENGTH)}


def read_identifiers(delivery_dir: Path, centre: str, centre_map: dict) -> set[str]:
    """Every direct-identifier string of a centre's raw extract, in the forms a leak could take.

    Names (each part of `SURNAME, Forename` too), MRNs / hospital numbers, NHS numbers with and
    without spaces, dates of birth as written and as ISO YYYY-MM-DD, postcodes and ZIPs.
    """
    # Only the files (sheets) with an identifier column: not the lab results, which are most of
    # the bytes of a large delivery.
    columns = set(centre_map["identifiers"])
    holding = [s for s in centre_map["sources"] if columns & set(s["columns"])]
    return extract_identifiers(read_extract(Path(delivery_dir) / centre, {**centre_map, "sources": holding}),
                               centre_map)


def extract_identifiers(extract: Extract, centre_map: dict) -> set[str]:
    """`read_identifiers` of an extract already read."""
    identifier_columns = set(centre_map["identifiers"])
    found: set[str] = set()
    for label, frame in extract.files.items():
        fields = {column: field for lab, source in extract.sources if lab == label
                  for column, field in source["columns"].items() if column in identifier_columns}
        for column, field in fields.items():
            if column not in frame:
                continue
            values = frame[column].dropna()
            found.update(values)
            if field == "nhs_number":
                digits = normalise_nhs(values).dropna()
                found.update(digits)
                found.update(digits.str[:3] + " " + digits.str[3:6] + " " + digits.str[6:])
            elif field == "dob":
                found.update(read_dates(values, centre_map["date_formats"])[0].dropna().dt.strftime("%Y-%m-%d"))
            elif field == "full_name":
                found.update(values.str.split(",").explode().str.strip().dropna())
    found.discard("")
    return found
