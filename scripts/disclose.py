"""Rule disclose: the safety rates, rate ratios and forest estimates recomputed from the disclosed
counts, and the forest plot redrawn from them, for the shareable report."""
import pandas as pd

from stormcohort.disclosure import Policy, disclosed_forest, disclosed_rates, disclosed_ratios
from stormcohort.figures import save
from stormcohort.io import rule_logger, write_csv
from stormcohort.plots.forest import forest_figure

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
policy = Policy.from_config(sm.params.disclosure)
log.info("disclosure: %s", policy.describe())
per, conf = float(sm.params.safety["per"]), float(sm.params.safety["conf_level"])
rates = disclosed_rates(pd.read_csv(sm.input.rates), policy, per, conf)
ratios = disclosed_ratios(pd.read_csv(sm.input.ratios), policy, conf)
forest = disclosed_forest(pd.read_csv(sm.input.forest), ratios, pd.read_csv(sm.input.counts),
                          pd.read_csv(sm.input.km), policy)
write_csv(rates, sm.output.rates)
write_csv(ratios, sm.output.ratios)
write_csv(forest, sm.output.forest)
save(forest_figure(forest, synthetic=sm.params.synthetic), sm.output.png)
log.info("%d of %d forest estimates withheld", int(forest["note"].astype(str).str.startswith("withheld").sum()),
         len(forest))
