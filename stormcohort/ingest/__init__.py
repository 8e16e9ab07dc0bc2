"""Ingest: read each centre's extract as delivered and clean it into the canonical tables.

Readers (`readers.py`) know the three export formats; the centre map (config/centres/<C>.yaml,
`centre_map.py`) says which raw column is which field, with codes, formats and units;
`clean.py` applies the cleaning policy; `ledger.py` records every row that leaves and every
value set to missing. Identifiers are read only to hash them, derive age and scan for leaks.

Structural problems stop the run with an ExtractError naming the file (line or row, column),
what was expected and the fix, never a cell's value: a missing or empty (0-byte) file, sheet or
required column (renamed columns are listed as such), a column name given twice, no header in
the first 20 lines/rows, another field separator than the map's, bytes that are not valid in
the map's `encoding` (unless it names a `fallback_encoding`), a REDCap field missing from the
data dictionary. Tolerated and logged: title lines added or removed above the header (it is
searched for), column and sheet names differing only in case or spacing, columns and sheets in
another order, unknown extra columns, a byte-order mark or not, CRLF or LF, a trailing
separator, a file with only its header (no rows).

Cleaning policy (rules of the exclusions ledger):
  scope=row   duplicate_row, missing_key, malformed_row (a CSV line with another number of fields
              than the header), unparseable_date, unknown_code (required fields),
              unknown_unit (a long-format lab unit with no conversion to the canonical one),
              implausible_value (required dates after the extract date or before 1990-01-01;
              doses and rates outside their plausible range, negative ones included;
              long-format lab results), stop_before_start, unparseable_value (doses,
              long-format lab results such as `haemolysed`), orphan (no such admission or
              patient), duplicate_key (a second row for the same admission or patient id that
              is not an exact duplicate: the first is kept)
  scope=value optional dates (also: before 1990-01-01, or before the admission date),
              clinical numbers, flags, sex, trigger, NHS number and cells of wide lab layouts
              that fail are set to missing, the row kept; identifier_in_text: a direct
              identifier typed into free text (trigger detail, diagnosis, adverse-event text)
              is replaced by `[redacted]`; recoded_text: bytes read in the fallback encoding;
              dose_per_kg_without_weight: a per-kg dose or rate of an admission without a
              weight (the row is kept, its mg dose missing); spreadsheet_error: an Excel error
              cell (#N/A, #VALUE!, #DIV/0!...) in a read column, its error text shown, then missing;
              date_format_differs: a date not in the map's formats that can be read in only one
              way (ISO yyyy-mm-dd, with or without a time; a month in letters, 8-Jan-2019,
              8 January 2019) is read so, the row kept (ambiguous ones, 01/02/2019 in an ISO
              map, are unparseable_date); death_conflict / death_flag_missing: a date of death
              with the outcome `alive` / blank: counted as a death (a date of death is a death; one
              before the admission date is set to missing and the death kept, at an unknown date)
Lab units are compared ignoring case, spaces and the spellings of micro and powers of ten, and
converted when the unit is a known form of the test's quantity (`units.KNOWN_UNITS`, e.g.
ferritin ng/mL = ug/L, CRP mg/dL x 10) or the map's `lab_unit_conversions`. Ledger values
never show an identifier: identifier columns, and any value holding one of the centre's
identifiers, are written `<redacted>`.
"""

from stormcohort.ingest.centre import CleanResult, ingest_centre, read_identifiers
from stormcohort.ingest.centre_map import load_centre_map

__all__ = ["CleanResult", "ingest_centre", "load_centre_map", "read_identifiers"]
