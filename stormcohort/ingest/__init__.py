"""Ingest: read each centre's extract as delivered and clean it into the canonical tables.

Readers (`readers.py`) know the three export formats; the centre map (config/centres/<C>.yaml,
`centre_map.py`) says which raw column is which field, with codes, formats and units;
`clean.py` applies the cleaning policy; `ledger.py` records every row that leaves and every
value set to missing. Identifiers are read only to hash them, derive age and scan for leaks.

Cleaning policy (rules of the exclusions ledger):
  scope=row   duplicate_row, missing_key, unparseable_date, unknown_code (required fields),
              stop_before_start, unparseable_value / implausible_value (doses, long-format
              lab results), orphan (no such admission or patient), duplicate_key (a second
              row for the same admission or patient id that is not an exact duplicate)
  scope=value optional dates, clinical numbers, flags, sex, trigger, NHS number and cells of
              wide lab layouts that fail are set to missing; the row is kept
"""

from stormcohort.ingest.centre import CleanResult, ingest_centre, read_identifiers
from stormcohort.ingest.centre_map import load_centre_map

__all__ = ["CleanResult", "ingest_centre", "load_centre_map", "read_identifiers"]
