"""Rule binary_outcomes: dataset + labs + adverse events + hepatotoxicity -> binary_outcomes.csv, logistic.csv, json."""
import pandas as pd

from stormcohort.analyses.binary import binary_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset, labs = pd.read_csv(sm.input.dataset), pd.read_parquet(sm.input.labs)
adverse_events, hepatotoxicity = pd.read_csv(sm.input.adverse_events), pd.read_csv(sm.input.hepatotoxicity)
log.info("binary outcomes: %d patients, %d lab results, %d adverse events",
         len(dataset), len(labs), len(adverse_events))
write_outputs(binary_analysis(dataset, labs, adverse_events, hepatotoxicity, sm.params.cfg), sm.output, log)
