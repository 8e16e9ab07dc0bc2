"""Rule binary_outcomes: dataset + labs + adverse events -> binary_outcomes.csv, logistic.csv, binary_outcomes.json."""
import pandas as pd

from stormcohort.analyses.binary import binary_analysis
from stormcohort.io import rule_logger, write_csv, write_json

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
dataset = pd.read_csv(sm.input.dataset)
labs = pd.read_parquet(sm.input.labs)
adverse_events = pd.read_csv(sm.input.adverse_events)
log.info("binary outcomes: %d patients, %d lab results, %d adverse events", len(dataset), len(labs),
         len(adverse_events))
counts, table, model = binary_analysis(dataset, labs, adverse_events, sm.params.cfg, sm.params.hepatotoxicity)
for _, r in counts[counts["group"].eq("overall")].iterrows():
    log.info("%s: %d events in %d evaluable patients (%d not evaluable)", r["outcome"], r["events"], r["n"],
             r["not_evaluable"])
for _, r in table[table["term"].eq("route_group[IV]") & table["note"].notna()].iterrows():
    log.warning("%s %s %s: %s", r["outcome"], r["model"], r["method"], r["note"])
write_csv(counts, sm.output.counts)
write_csv(table, sm.output.logistic)
write_json(model, sm.output.model)
log.info("done")
