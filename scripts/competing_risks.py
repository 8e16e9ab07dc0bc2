"""Rule competing_risks: analysis dataset and the target trial's per-patient weights -> cif,
cif_summary, cif_risk, cif_tests (with the weighted models), the CIF figure, competing_risks.json."""
import pandas as pd

from stormcohort.analyses.competing import competing_risks_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset = pd.read_csv(sm.input.dataset)
weights = pd.read_csv(sm.input.weights)
log.info("competing risks: %d patients; %d with target-trial weights (%s)", len(dataset), len(weights),
         sm.params.estimand)
result = competing_risks_analysis(dataset, sm.params.cfg, weights=weights, estimand=sm.params.estimand,
                                  grace_days=sm.params.grace_days, synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
