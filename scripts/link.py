"""Rule link: union the centres' clean tables; one person across centres."""
import pandas as pd

from stormcohort.canonical import TABLES
from stormcohort.io import rule_logger, write_csv, write_parquet
from stormcohort.link import link_centres

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
clean = {c: {t: pd.read_parquet(sm.input[t][i]) for t in TABLES} for i, c in enumerate(sm.params.centres)}
linked, summary = link_centres(clean)
for table in TABLES:
    write_parquet(linked[table], sm.output[table])
write_csv(summary, sm.output.summary)
log.info("linked %d people, %d admissions; %d people seen at more than one centre",
         len(linked["patients"]), len(linked["admissions"]), int((linked["patients"]["n_centres"] > 1).sum()))
