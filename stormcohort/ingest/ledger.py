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
    """The ledger by file, rule and scope: its entries and the columns they touch (what the report
    shows; the ledger itself lists each row and value)."""
    columns = ["centre", "file", "rule", "scope", "columns", "entries"]
    if ledger.empty:
        return pd.DataFrame(columns=columns)
    g = ledger.assign(column=ledger["column"].astype("string")).groupby(["file", "rule", "scope"], sort=True)
    out = g.agg(columns=("column", lambda c: ", ".join(sorted(set(c.dropna())))), entries=("row", "size"))
    return out.reset_index().assign(centre=centre)[columns]
