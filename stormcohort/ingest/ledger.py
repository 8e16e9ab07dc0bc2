"""The exclusions ledger and the per-file row accounting.

Every input data row is either kept or has a `scope=row` ledger entry; `scope=value` entries
record a single value of a kept row that was set to missing or changed (an identifier scrubbed
from free text, bytes read in the fallback encoding). Values of identifier columns, and any
value holding one of the centre's identifiers (a name typed into a code field), are written
as `<redacted>`; reasons never quote a value, so the ledger is safe to publish within results/.
"""

from __future__ import annotations

import pandas as pd

from stormcohort.canonical import ACCOUNTING_COLUMNS, LEDGER_COLUMNS
from stormcohort.ingest.scrub import holds_identifier

REDACTED = "<redacted>"
SCOPES = ("row", "value")
# Each rule, and how its entries were handled: what the report's data-conflicts table says. A row
# that leaves takes what hangs on it: an admission its patient's episode (unless another admission
# remains), a dose row its regimen (which may change the route or the index date).
ROW_LEFT = "row excluded"
RULES = {
    "duplicate_row": ROW_LEFT + " (an exact duplicate; the first kept)",
    "duplicate_key": ROW_LEFT + " (a second row for the same id; the first kept)",
    "missing_key": ROW_LEFT + " (no id to link it)",
    "malformed_row": ROW_LEFT + " (another number of fields than the header)",
    "orphan": ROW_LEFT + " (its admission or patient is not in the extract, or left)",
    "unparseable_date": "a required date: row excluded (an admission leaves with its records); "
                        "an optional date: set to missing",
    "unknown_code": "a required field: row excluded; an optional one: set to missing",
    "unknown_unit": ROW_LEFT + " (a lab unit without a conversion)",
    "implausible_value": "a required value: row excluded; an optional value: set to missing "
                         "(a date of death before the admission: the death kept, at an unknown date)",
    "stop_before_start": ROW_LEFT + " (a regimen stopping before it starts)",
    "unparseable_value": "a dose or long-format result: row excluded; a wide-layout cell: set to missing",
    "identifier_in_text": "identifier replaced by [redacted], the row kept",
    "recoded_text": "bytes read in the fallback encoding, the row kept",
    "dose_per_kg_without_weight": "regimen kept (route and dates), its mg dose missing: maximum dose not evaluable",
    "spreadsheet_error": "an Excel error cell read as missing",
    "date_format_differs": "read in the one way the date can be read, the row kept",
    "death_conflict": "outcome alive but a date of death: counted as a death",
    "death_flag_missing": "outcome blank but a date of death: counted as a death",
}


class Ledger:
    """Collects ledger entries for one centre, one vectorised batch at a time."""

    def __init__(self, centre: str, identifier_columns: list[str], identifiers: set[str] = frozenset()):
        self.centre = centre
        self.identifier_columns = set(identifier_columns)
        self.identifiers = identifiers  # normalised identifier strings (privacy.identifier_set)
        self._batches: list[pd.DataFrame] = []

    def add(self, file: str, values: pd.Series, column: str, rule: str, reason: str | pd.Series, scope: str) -> None:
        """One entry per element of `values` (index = row numbers; the raw cell texts)."""
        if scope not in SCOPES:
            raise ValueError(f"ledger scope {scope!r} is not one of {SCOPES}")
        if rule not in RULES:
            raise ValueError(f"ledger rule {rule!r} is not one of ledger.RULES (add it with its handling)")
        if values.empty:
            return
        identifying = any(part in self.identifier_columns for part in column.split(" + "))
        shown = pd.Series(REDACTED, index=values.index) if identifying else values.astype(object).fillna("")
        if not identifying and self.identifiers:
            shown = shown.mask(holds_identifier(shown, self.identifiers), REDACTED)
        self._batches.append(pd.DataFrame({
            "centre": self.centre, "file": file, "row": values.index.to_numpy(dtype="int64"), "column": column,
            "value": shown.astype(str).to_numpy(), "rule": rule,
            "reason": reason.to_numpy() if isinstance(reason, pd.Series) else reason, "scope": scope,
        }))

    def frame(self) -> pd.DataFrame:
        """All entries, sorted by file, row and column."""
        if not self._batches:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else object) for c in LEDGER_COLUMNS})
        entries = pd.concat(self._batches, ignore_index=True)[LEDGER_COLUMNS]
        return entries.sort_values(["file", "row", "column", "rule"], kind="mergesort").reset_index(drop=True)


def accounting(centre: str, rows_in: dict[str, pd.Index], rows_kept: dict[str, pd.Index],
               ledger: pd.DataFrame) -> pd.DataFrame:
    """rows_in / rows_kept / rows_excluded per input file, checking that every row is accounted for.

    A row is kept when it reached a canonical table; excluded when it has a scope=row
    entry. A row that is both, or neither, is a bug in ingest, so it stops the run.
    """
    excluded_entries = ledger[ledger["scope"] == "row"]
    records = []
    for file, all_rows in rows_in.items():
        kept = pd.Index(rows_kept.get(file, pd.Index([]))).unique()
        excluded = pd.Index(excluded_entries.loc[excluded_entries["file"] == file, "row"]).unique()
        both = kept.intersection(excluded)
        lost = all_rows.difference(kept.union(excluded))
        if len(both) or len(lost):
            raise AssertionError(f"{centre}/{file}: rows both kept and excluded {list(both[:5])}, "
                                 f"rows neither kept nor excluded {list(lost[:5])}")
        if len(kept) + len(excluded) != len(all_rows):
            raise AssertionError(f"{centre}/{file}: rows_in {len(all_rows)} != kept {len(kept)} "
                                 f"+ excluded {len(excluded)}")
        records.append((centre, file, len(all_rows), len(kept), len(excluded)))
    return (pd.DataFrame(records, columns=ACCOUNTING_COLUMNS).sort_values("file", kind="mergesort")
            .reset_index(drop=True))


def ledger_summary(ledger: pd.DataFrame, centre: str) -> pd.DataFrame:
    """The ledger by file, rule and scope: its entries, the columns they touch and how the rule's
    entries were handled (what the report shows; the ledger itself lists each row and value)."""
    columns = ["centre", "file", "rule", "scope", "columns", "entries", "handling"]
    if ledger.empty:
        return pd.DataFrame(columns=columns)
    g = ledger.assign(column=ledger["column"].astype("string")).groupby(["file", "rule", "scope"], sort=True)
    out = g.agg(columns=("column", lambda c: ", ".join(sorted(set(c.dropna())))), entries=("row", "size"))
    out = out.reset_index().assign(centre=centre)
    return out.assign(handling=out["rule"].map(RULES))[columns]
