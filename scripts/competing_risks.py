"""Rule competing_risks: analysis dataset -> cif.csv, cif_summary.csv, cif figure, competing_risks.json."""
import pandas as pd

from stormcohort.analyses.competing import competing_risks_analysis
from stormcohort.figures import save
from stormcohort.io import rule_logger, write_csv, write_json
from stormcohort.plots.cif import cif_figure

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
cfg = dict(sm.params.cfg)
dataset = pd.read_csv(sm.input.dataset)
log.info("competing risks: %d patients; Aalen-Johansen CIF of fever resolution, death competing", len(dataset))
result = competing_risks_analysis(dataset, cfg)
write_csv(result.cif, sm.output.cif)
write_csv(result.summary, sm.output.summary)
for warning in result.model["warnings"]:
    log.warning(warning)
write_json(result.model, sm.output.model)
log.info("drawing the cumulative incidence figure")
fig_args = dict(days=cfg["risk_table_days"], synthetic=sm.params.synthetic)
save(cif_figure(result.curves, result.risk_table, **fig_args), sm.output.png, sm.output.svg)
log.info("done")
