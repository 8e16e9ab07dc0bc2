"""Rule ingest: one centre's extract -> canonical Parquet tables, ledger, accounting.

A structural problem of the extract (ExtractError) ends the job with its message on stderr and
in the rule's log, without a traceback: the message names the file and the fix. Snakemake then
removes whatever outputs of the job exist, so no partial outputs of the centre remain.
"""
import sys
from pathlib import Path

from stormcohort.canonical import TABLES
from stormcohort.delivery import read_delivery, resolve_key
from stormcohort.errors import ExtractError
from stormcohort.ingest import ingest_centre, load_centre_map
from stormcohort.ingest.ledger import ledger_summary
from stormcohort.io import rule_logger, write_csv, write_parquet

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
centre = sm.wildcards.centre
delivery_dir = Path(sm.input.delivery_yaml).parent
try:
    delivery = read_delivery(delivery_dir, [centre])
    key = resolve_key(sm.params.key_env, delivery.synthetic, sm.params.synthetic_default_key)
    result = ingest_centre(delivery_dir, centre, load_centre_map(sm.input.centre_map), key,
                           delivery.extract_date, log=log)
except ExtractError as error:
    log.error("%s: extract not ingested: %s", centre, error)
    print(f"ERROR ingest {centre}: {error}", file=sys.stderr)
    sys.exit(1)
for table in TABLES:
    write_parquet(result.tables[table], sm.output[table])
write_csv(result.ledger, sm.output.ledger)
write_csv(ledger_summary(result.ledger, centre), sm.output.ledger_summary)
write_csv(result.accounting, sm.output.accounting)
log.info("%s: %d rows kept, %d ledger entries", centre, int(result.accounting["rows_kept"].sum()), len(result.ledger))
