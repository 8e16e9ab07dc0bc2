"""Rule forest: cox.csv + logistic.csv + rate_ratios.csv -> forest.csv and the forest plot."""
import pandas as pd

from stormcohort.analyses.forest import forest_rows
from stormcohort.figures import save
from stormcohort.io import rule_logger, write_csv
from stormcohort.plots.forest import forest_figure

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
tables = {name: pd.read_csv(sm.input[name]) for name in ("cox", "logistic", "rate_ratios")}
rows = forest_rows(tables["cox"], tables["logistic"], tables["rate_ratios"], sm.params.cfg)
log.info("forest: %d rows, %d plotted", len(rows), int(rows["plotted"].sum()))
for _, r in rows[~rows["plotted"]].iterrows():
    log.info("not plotted: %s %s %s: %s", r["measure"], r["outcome"], r["model"], r["note"])
write_csv(rows, sm.output.table)
save(forest_figure(rows, synthetic=sm.params.synthetic), sm.output.png, sm.output.svg)
log.info("done")
