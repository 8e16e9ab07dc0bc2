"""Rule report_shareable: the report with every count disclosed (config `disclosure:`), the
estimates built on counts as the `disclose` rule recomputed them, no patient-level figure."""
import json
from pathlib import Path

from stormcohort.disclosure import Policy
from stormcohort.io import rule_logger
from stormcohort.report.render import build_context, load_results, render

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
config, delivery = dict(sm.params.config), dict(sm.params.delivery)
policy = Policy.from_config(config["disclosure"])
prov = json.loads(Path(sm.input.provenance).read_text(encoding="utf-8"))
context = build_context(load_results(sm.input), config=config, delivery=delivery, provenance=prov, policy=policy,
                        share=True)
Path(sm.output.html).write_text(render(context), encoding="utf-8")
log.info("wrote %s (%s)", sm.output.html, policy.describe())
