"""Rule flow_diagram: attrition.csv -> figures/flow.png."""
import pandas as pd

from stormcohort.analyses.result import AnalysisResult, write_outputs
from stormcohort.figures import flow_diagram
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
attrition = pd.read_csv(sm.input.attrition)
write_outputs(AnalysisResult(tables={}, figures={"flow": lambda: flow_diagram(attrition, sm.params.synthetic)}),
              sm.output, log)
