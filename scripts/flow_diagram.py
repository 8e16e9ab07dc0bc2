"""Rule flow_diagram: attrition.csv -> figures/flow.png."""
import pandas as pd

from stormcohort.figures import flow_diagram, save
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
rule_logger(sm).info("drawing the flow diagram")
save(flow_diagram(pd.read_csv(sm.input[0]), sm.params.synthetic), sm.output[0])
