"""Rule competing_risks: analysis dataset -> cif, cif_summary, cif_risk, cif_tests, the CIF figure,
competing_risks.json."""
import pandas as pd

from stormcohort.analyses.competing import competing_risks_analysis
from stormcohort.analyses.result import write_outputs
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset = pd.read_csv(sm.input.dataset)
log.info("competing risks: %d patients", len(dataset))
write_outputs(competing_risks_analysis(dataset, sm.params.cfg, synthetic=sm.params.synthetic), sm.output, log)
