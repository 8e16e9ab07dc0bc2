"""Rule describe: analysis dataset + anakinra -> table1, exposure, follow_up and data_dictionary tables."""
import pandas as pd

from stormcohort.analyses.describe import describe_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset, anakinra = pd.read_csv(sm.input.dataset), pd.read_csv(sm.input.anakinra)
log.info("describe: %d patients, %d regimens", len(dataset), len(anakinra))
result = describe_analysis(dataset, anakinra, pd.read_csv(sm.input.attrition), follow_up_days=sm.params.follow_up_days,
                           synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
