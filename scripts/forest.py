"""Rule forest: cox.csv + logistic.csv + rate_ratios.csv -> forest.csv and the forest plot."""
import pandas as pd

from stormcohort.analyses.forest import forest_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
tables = {name: pd.read_csv(sm.input[name]) for name in ("cox", "logistic", "rate_ratios")}
result = forest_analysis(**tables, cfg=sm.params.cfg, labels=sm.params.labels,
                         primary_outcome=sm.params.primary_outcome,
                         secondary_outcomes=list(sm.params.secondary_outcomes), synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
