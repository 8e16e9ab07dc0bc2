"""Rule hepatotoxicity: analysis dataset + labs + anakinra -> cohort/hepatotoxicity.csv (per patient),
tables/hepatotoxicity.csv."""
import pandas as pd

from stormcohort.analyses.hepatotoxicity import hepatotoxicity_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset, labs, anakinra = pd.read_csv(sm.input.dataset), pd.read_parquet(sm.input.labs), pd.read_csv(sm.input.anakinra)
log.info("hepatotoxicity: %d patients, %d lab results", len(dataset), len(labs))
write_outputs(hepatotoxicity_analysis(dataset, labs, sm.params.cfg, anakinra=anakinra, baseline=sm.params.baseline),
              sm.output, log)
