"""Rule disclose: the safety rates, rate ratios and forest estimates recomputed from the disclosed
counts, and the forest plot redrawn from them, for the shareable report."""
import pandas as pd

from stormcohort.analyses.result import write_outputs
from stormcohort.disclosure import Policy, disclosed_estimates
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
policy = Policy.from_config(sm.params.disclosure)
log.info("disclosure: %s", policy.describe())
tables = {name: pd.read_csv(sm.input[name]) for name in ("rates", "ratios", "forest", "counts", "km")}
result = disclosed_estimates(**tables, policy=policy, per=float(sm.params.safety["per"]),
                             conf_level=float(sm.params.safety["conf_level"]), synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
