"""Rule safety: dataset + anakinra + adverse events + hepatotoxicity -> safety tables, swimmer plot, safety.json."""
import pandas as pd

from stormcohort.analyses.result import write_outputs
from stormcohort.analyses.safety import safety_analysis
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset, anakinra = pd.read_csv(sm.input.dataset), pd.read_csv(sm.input.anakinra)
adverse_events, hepatotoxicity = pd.read_csv(sm.input.adverse_events), pd.read_csv(sm.input.hepatotoxicity)
log.info("safety: %d patients, %d regimens, %d adverse events", len(dataset), len(anakinra), len(adverse_events))
result = safety_analysis(dataset, anakinra, adverse_events, hepatotoxicity, sm.params.cfg, sm.params.follow_up_days,
                         synthetic=sm.params.synthetic)
write_outputs(result, sm.output, log)
