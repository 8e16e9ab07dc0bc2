"""Rule ingest: one centre's extract -> canonical Parquet tables, ledger, accounting."""
from pathlib import Path

from stormcohort.delivery import read_delivery, resolve_key
from stormcohort.ingest import ingest_centre, load_centre_map
from stormcohort.io import rule_logger, write_csv, write_parquet

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
centre = sm.wildcards.centre
delivery = read_delivery(sm.params.delivery, [centre])
key = resolve_key(sm.params.key_env, delivery.synthetic, sm.params.synthetic_default_key)
result = ingest_centre(Path(sm.params.delivery), centre, load_centre_map(sm.input.centre_map), key,
                       delivery.extract_date, log=log)
for path in sm.output.tables:
    write_parquet(result.tables[Path(path).stem], path)
write_csv(result.ledger, sm.output.ledger)
write_csv(result.accounting, sm.output.accounting)
log.info("%s: %d rows kept, %d ledger entries", centre, int(result.accounting["rows_kept"].sum()), len(result.ledger))
