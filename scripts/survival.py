"""Rule survival: analysis dataset -> km, km_risk, logrank, cox, ph_test, the KM figure, survival.json."""
import pandas as pd

from stormcohort.analyses.result import write_outputs
from stormcohort.analyses.survival import survival_analysis
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset = pd.read_csv(sm.input.dataset)
log.info("survival: %d patients, follow-up %d days", len(dataset), sm.params.follow_up_days)
result = survival_analysis(dataset, sm.params.cfg, sm.params.follow_up_days, synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
