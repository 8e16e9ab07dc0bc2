"""Scan outputs for the direct identifiers of the raw extracts.

Identifiers and output text are compared after the same normalisation (lower case,
letters and digits only), over single tokens and runs of two or three tokens, so
`485 777 3456`, `4857773456`, `SW1A 1AA` and `1985-03-02` / `02/03/1985` are all caught.
Findings name the file and line, never the identifier itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TOKEN = re.compile(r"[a-z0-9]+")
MIN_LENGTH = 3  # shorter strings are too common to be evidence of a leak
# A bare number of fewer digits (a 5-digit ZIP) is indistinguishable from a lab value or a
# count; such identifiers are kept out of results structurally (ingest never maps them).
MIN_DIGITS = 7


def normalise(value: str) -> str:
    return "".join(TOKEN.findall(str(value).lower()))


ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()


def _date_forms(value: str) -> list[str]:
    """An ISO date as it may be written elsewhere: dd/mm/yyyy, mm/dd/yyyy, dd-Mon-yyyy."""
    match = ISO_DATE.match(str(value).strip())
    if not match:
        return []
    y, m, d = match.groups()
    if not 1 <= int(m) <= 12:
        return []
    return [d + m + y, m + d + y, d + MONTHS[int(m) - 1] + y]


def identifier_set(identifiers) -> set[str]:
    """Normalised identifier strings (dates in their other written forms too)."""
    forms = [f for value in identifiers for f in (normalise(value), *_date_forms(value))]
    return {f for f in forms if len(f) >= (MIN_DIGITS if f.isdigit() else MIN_LENGTH)}


# Numbers written in parts: dates (02/03/1985, 1985-03-02) and spaced NHS numbers.
SPLIT_NUMBER = re.compile(r"(?<![0-9])(?:[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2}"
                          r"|[0-9]{3}[ -][0-9]{3}[ -][0-9]{4})(?![0-9])")


def _grams(text: str) -> set[str]:
    """Tokens, and runs of two or three tokens joined unless they are all digits: joining
    arbitrary numbers (coordinates, table cells) would invent 8-digit 'dates'. Numbers
    written in parts are matched by their own patterns instead."""
    tokens = TOKEN.findall(text.lower())
    grams = set(tokens)
    grams.update(a + b for a, b in zip(tokens, tokens[1:]) if not (a + b).isdigit())
    grams.update(a + b + c for a, b, c in zip(tokens, tokens[1:], tokens[2:]) if not (a + b + c).isdigit())
    grams.update(normalise(m) for m in SPLIT_NUMBER.findall(text))
    return grams


def _leaks(values: pd.Series, identifiers: set[str]) -> pd.Series:
    """Which of these distinct texts hold an identifier. Plain numbers with fewer than
    MIN_DIGITS digits (most cells of a results table) cannot, and are not tokenised."""
    unique = pd.Series(values, dtype=object).astype(str)
    short_number = unique.str.fullmatch(r"-?[0-9.eE+-]*") & unique.str.count(r"[0-9]").lt(MIN_DIGITS)
    candidates = unique[~short_number]
    return candidates[[not _grams(v).isdisjoint(identifiers) for v in candidates]]


def _distinct_text(distinct: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Distinct values of a column and, aligned, the text to search: a date as YYYY-MM-DD; a
    number only when its integer part has MIN_DIGITS digits or more (an NHS number or MRN
    stored as a number; the digits of a fraction are not an identifier); anything else as
    written."""
    if pd.api.types.is_datetime64_any_dtype(distinct):
        return distinct, distinct.dt.strftime("%Y-%m-%d")
    if pd.api.types.is_numeric_dtype(distinct) and not pd.api.types.is_bool_dtype(distinct):
        distinct = distinct[distinct.abs() >= 10 ** (MIN_DIGITS - 1)]
        return distinct, pd.Series([f"{v:.0f}" for v in distinct], index=distinct.index, dtype=object)
    return distinct, distinct.astype(str)


def _scan_table(path: Path, identifiers: set[str]) -> list[str]:
    """Tables are scanned column by column, each distinct value once, found by Arrow (millions
    of lab rows are never turned into Python objects): a CSV as text, a Parquet file by the
    type of each column. Timestamps count as their dates (a date of birth is a date: times of
    day only multiply the values). Row 1 is the header line of a CSV, data rows follow."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        table = pa.Table.from_pandas(pd.read_csv(path, dtype=str, keep_default_na=False), preserve_index=False)
    header = set(_leaks(pd.Series(table.column_names, dtype=object), identifiers))
    findings = [f"{path}: row 1, column {c}" for c in table.column_names if c in header]
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_timestamp(column.type):
            column = pc.floor_temporal(column, unit="day")
        distinct, text = _distinct_text(pd.Series(pc.unique(column).drop_null().to_pandas()))
        leaked = distinct[text.isin(_leaks(text, identifiers))]
        if len(leaked):
            rows = np.flatnonzero(column.to_pandas().isin(leaked))
            findings.extend(f"{path}: row {r + 2}, column {name}" for r in rows)
    return findings


DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+")


def _scan_text(path: Path, identifiers: set[str]) -> list[str]:
    """Other text (HTML, JSON, SVG, logs) line by line; embedded base64 images are skipped."""
    text = DATA_URI.sub(" ", path.read_text(encoding="utf-8", errors="replace"))
    return [f"{path}: line {n}" for n, line in enumerate(text.splitlines(), start=1)
            if not _grams(line).isdisjoint(identifiers)]


def scan(paths, identifiers: set[str]) -> list[str]:
    """One finding per place holding an identifier ('file: row R, column C' or 'file: line N');
    the identifier itself is never named."""
    findings = []
    for path in map(Path, paths):
        if path.suffix in {".png", ".pdf", ".zip"}:
            continue
        scanner = _scan_table if path.suffix in {".csv", ".parquet"} else _scan_text
        findings.extend(scanner(path, identifiers))
    return findings
