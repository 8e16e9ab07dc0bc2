"""Rule cohort: linked tables + config rules -> attrition, analysis dataset, long tables."""
from datetime import date

import pandas as pd

from stormcohort.canonical import TABLES
from stormcohort.cohort import conflicts_summary, data_dictionary, derive_cohort
from stormcohort.io import as_written, rule_logger, write_csv, write_parquet

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
linked = {t: pd.read_parquet(sm.input[t]) for t in TABLES}
result = derive_cohort(linked, sm.params.cohort, date.fromisoformat(sm.params.extract_date))
write_csv(result.attrition, sm.output.attrition)
write_csv(result.dataset, sm.output.dataset)
write_csv(data_dictionary(sm.params.cohort["follow_up_days"]), sm.output.dictionary)
write_csv(result.assessed, sm.output.episodes)
write_csv(result.anakinra, sm.output.anakinra)
write_parquet(as_written(result.labs), sm.output.labs)  # the digits the CSV had
write_csv(result.adverse_events, sm.output.adverse_events)
write_csv(result.conflicts, sm.output.conflicts)
write_csv(conflicts_summary(result.conflicts), sm.output.conflicts_summary)
for row in result.attrition.itertuples():
    log.info("%-20s remaining %5d  excluded %s", row.step, row.n_remaining, row.n_excluded)
for rule, n in result.conflicts["rule"].value_counts().sort_index().items():
    log.info("data conflict %-20s %5d patient(s)", rule, n)
