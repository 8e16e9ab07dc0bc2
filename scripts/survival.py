"""Rule survival: analysis dataset -> km.csv, logrank.csv, cox.csv, ph_test.csv, km figure, survival.json."""
import pandas as pd

from stormcohort.analyses.survival import survival_analysis
from stormcohort.figures import save
from stormcohort.io import rule_logger, write_csv, write_json
from stormcohort.plots.km import km_figure

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
cfg = dict(sm.params.cfg)
dataset = pd.read_csv(sm.input.dataset)
log.info("survival: %d patients; Kaplan-Meier, log-rank, Cox (adjusted for %s), cox.zph",
         len(dataset), ", ".join(cfg["adjust_for"]) or "nothing")
result = survival_analysis(dataset, cfg)
for name in ("km", "logrank", "cox", "ph_test"):
    write_csv(getattr(result, name), sm.output[name])
for warning in result.model["warnings"]:
    log.warning(warning)
write_json(result.model, sm.output.model)
log.info("drawing the Kaplan-Meier figure")
fig_args = dict(days=cfg["risk_table_days"], synthetic=sm.params.synthetic)
save(km_figure(result.curves, result.risk_table, result.km, result.logrank, **fig_args), sm.output.png, sm.output.svg)
log.info("done")
