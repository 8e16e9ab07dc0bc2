"""Rule safety: dataset + anakinra + labs + adverse events -> safety tables, swimmer plot, safety.json."""
import pandas as pd

from stormcohort.analyses.safety import safety_analysis
from stormcohort.figures import save
from stormcohort.io import rule_logger, write_csv, write_json
from stormcohort.plots.swimmer import swimmer_figure

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
cfg = dict(sm.params.cfg)
dataset = pd.read_csv(sm.input.dataset)
anakinra = pd.read_csv(sm.input.anakinra)
labs = pd.read_parquet(sm.input.labs)
adverse_events = pd.read_csv(sm.input.adverse_events)
log.info("safety: %d patients, %d regimens, %d adverse events", len(dataset), len(anakinra), len(adverse_events))
result = safety_analysis(dataset, anakinra, labs, adverse_events, cfg, sm.params.hepatotoxicity)
log.info("patient-days on anakinra: %s", result["model"]["exposure"])
write_csv(result["events"], sm.output.events)
write_csv(result["rates"], sm.output.rates)
write_csv(result["ratios"], sm.output.ratios)
write_csv(result["hepatotoxicity"], sm.output.hepatotoxicity)
write_json(result["model"], sm.output.model)
log.info("drawing the swimmer plot")
args = dict(synthetic=sm.params.synthetic, max_patients=cfg["swimmer_max_patients"],
            severe_grade=cfg["severe_grade"], horizon=cfg["window_days"][1])
save(swimmer_figure(result["swimmer"], **args), sm.output.png, sm.output.svg)
log.info("done")
