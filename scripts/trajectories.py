"""Rule trajectories: labs -> trajectories.csv, trajectories_daily.csv, figure, trajectories.json."""
import pandas as pd

from stormcohort.analyses.trajectories import trajectories_analysis
from stormcohort.figures import save
from stormcohort.io import rule_logger, write_csv, write_json
from stormcohort.plots.trajectories import trajectories_figure

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
cfg = dict(sm.params.cfg)
labs = pd.read_parquet(sm.input.labs)
log.info("trajectories: %d lab results; mixed models for %s", len(labs), ", ".join(cfg["tests"]))
table, daily, data, model = trajectories_analysis(labs, cfg)
for test, m in model["models"].items():
    log.info("%s: %s patients, %s samples, random effects %s", test, m["n_patients"], m["n_obs"], m["random_effects"])
    for note in filter(None, [m["reason"], m["fallback_reason"], *m["warnings"]]):
        log.warning("%s: %s", test, note)
write_csv(table, sm.output.table)
write_csv(daily, sm.output.daily)
write_json(model, sm.output.model)
log.info("drawing the trajectories figure")
args = dict(tests=cfg["tests"], days=cfg["days"], synthetic=sm.params.synthetic,
            max_patients=cfg["max_lines_per_group"], table=table)
save(trajectories_figure(data, daily, **args), sm.output.png, sm.output.svg)
log.info("done")
