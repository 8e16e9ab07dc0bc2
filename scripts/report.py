"""Rule report: the pipeline's outputs -> report.html (+ report_shareable.html), provenance.json,
tables/exposure.csv."""
from pathlib import Path

from stormcohort.io import rule_logger, write_csv, write_json
from stormcohort.report.disclosure import Policy
from stormcohort.report.provenance import provenance, relative
from stormcohort.report.render import build_context, load_results, render
from stormcohort.report.sections import exposure_summary

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
out = str(Path(sm.output.provenance).parent)  # results/<run>
config, delivery = dict(sm.params.config), dict(sm.params.delivery)
log.info("reading the results of %s", out)
data = load_results(out, config["centres"])
exposure = exposure_summary(data["dataset"], data["anakinra"])
write_csv(exposure, sm.output.exposure)
log.info("hashing %d input files and %d result files", len(sm.input.raw), len(sm.input.results))
prov = provenance(inputs=sm.input.raw, artefacts=[*sm.input.results, sm.output.exposure], config=config, out=out,
                  lineage_rows=sm.params.lineage, delivery=delivery)
write_json(prov, sm.output.provenance)
diff = [relative(p, out) for p in sm.input.diff if p.endswith(".html")]
common = dict(config=config, delivery=delivery, provenance=prov, exposure=exposure, diff=diff[0] if diff else None)
Path(sm.output.html).write_text(render(build_context(data, policy=Policy(), share=False, **common)), encoding="utf-8")
log.info("wrote %s", sm.output.html)
if "shareable" in sm.output.keys():
    policy = Policy.from_config(config["disclosure"])
    html = render(build_context(data, policy=policy, share=True, **common))
    Path(sm.output.shareable).write_text(html, encoding="utf-8")
    log.info("wrote %s (%s)", sm.output.shareable, policy.describe())
log.info("done")
