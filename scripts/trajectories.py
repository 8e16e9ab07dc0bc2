"""Rule trajectories: labs -> trajectories.csv, trajectories_daily.csv, figure, trajectories.json."""
import pandas as pd

from stormcohort.analyses.result import write_outputs
from stormcohort.analyses.trajectories import trajectories_analysis
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
labs = pd.read_parquet(sm.input.labs)
log.info("trajectories: %d lab results", len(labs))
write_outputs(trajectories_analysis(labs, sm.params.cfg, synthetic=sm.params.synthetic), sm.output, log)
