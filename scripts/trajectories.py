"""Rule trajectories: labs + dataset -> trajectories.csv, trajectories_daily.csv, figure, trajectories.json."""
import pandas as pd

from stormcohort.analyses.result import write_outputs
from stormcohort.analyses.trajectories import trajectories_analysis
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
labs, dataset = pd.read_parquet(sm.input.labs), pd.read_csv(sm.input.dataset)
log.info("trajectories: %d lab results, %d patients", len(labs), len(dataset))
result = trajectories_analysis(labs, sm.params.cfg, dataset=dataset, follow_up_days=sm.params.follow_up_days,
                               synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
