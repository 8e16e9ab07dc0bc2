"""Rule comparison: dataset + long tables -> the target-trial tables, figures and model summary."""
import pandas as pd

from stormcohort.analyses.comparison import comparison_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset, labs = pd.read_csv(sm.input.dataset), pd.read_parquet(sm.input.labs)
adverse_events, hepatotoxicity = pd.read_csv(sm.input.adverse_events), pd.read_csv(sm.input.hepatotoxicity)
cfg = sm.params.cfg
log.info("comparison: %d patients, grace %d days, %d bootstrap replicates (seed %d)", len(dataset),
         cfg["grace_days"], cfg["bootstrap_replicates"], cfg["bootstrap_seed"])
result = comparison_analysis(dataset, labs, adverse_events, hepatotoxicity, sm.params.cohort, sm.params.binary, cfg,
                             synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
