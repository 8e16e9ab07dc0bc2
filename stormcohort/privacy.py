"""Scan outputs for the direct identifiers of the raw extracts.

Identifiers and output text are compared after the same normalisation (lower case,
letters and digits only), over single tokens and runs of two or three tokens, so
`485 777 3456`, `4857773456`, `SW1A 1AA` and `1985-03-02` / `02/03/1985` are all caught.
Findings name the file and line, never the identifier itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
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
    return [d + m + y, m + d + y, d + MONTHS[int(m) - 1] + y]


def identifier_set(identifiers) -> set[str]:
    """Normalised identifier strings (dates in their other written forms too)."""
    forms = [f for value in identifiers for f in (normalise(value), *_date_forms(value))]
    return {f for f in forms if len(f) >= (MIN_DIGITS if f.isdigit() else MIN_LENGTH)}


def _lines(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        lines = []
        for name in table.column_names:
            values = pd.Series(table.column(name).to_pandas()).dropna().unique()
            lines.extend(f"{name}: {v}" for v in values)
        return lines
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _grams(line: str) -> set[str]:
    tokens = TOKEN.findall(line.lower())
    grams = set(tokens)
    grams.update(a + b for a, b in zip(tokens, tokens[1:]))
    grams.update(a + b + c for a, b, c in zip(tokens, tokens[1:], tokens[2:]))
    return grams


def scan(paths, identifiers: set[str]) -> list[str]:
    """Return one finding per (file, line) holding an identifier: 'file:line'."""
    findings = []
    for path in map(Path, paths):
        if path.suffix in {".png", ".pdf", ".zip"}:
            continue
        for number, line in enumerate(_lines(path), start=1):
            if not _grams(line).isdisjoint(identifiers):
                where = "value" if path.suffix == ".parquet" else "line"
                findings.append(f"{path}: {where} {number}")
    return findings
