"""Rule report: the analyses' summary tables, models and figures -> report.html, provenance.json,
tables/table1.html."""
from pathlib import Path

from stormcohort.disclosure import Policy
from stormcohort.io import rule_logger, write_json
from stormcohort.report.provenance import provenance, relative
from stormcohort.report.render import build_context, load_results, render, table1_page

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
out = str(Path(sm.output.provenance).parent)  # results/<run>: provenance records paths relative to it
config, delivery = dict(sm.params.config), dict(sm.params.delivery)
data = load_results(sm.input)
results = [p for name, paths in sm.input.items() if name not in ("raw", "diff")
           for p in ([paths] if isinstance(paths, str) else paths)]
log.info("hashing %d input files and %d result files", len(sm.input.raw), len(results))
prov = provenance(inputs=sm.input.raw, artefacts=results, config=config, out=out, lineage_rows=sm.params.lineage,
                  delivery=delivery)
write_json(prov, sm.output.provenance)
diff = [relative(p, out) for p in sm.input.diff if p.endswith(".html")]
context = build_context(data, config=config, delivery=delivery, provenance=prov, policy=Policy(), share=False,
                        diff=diff[0] if diff else None)
Path(sm.output.html).write_text(render(context), encoding="utf-8")
Path(sm.output.table1_html).write_text(table1_page(data, synthetic=bool(delivery.get("synthetic"))),
                                       encoding="utf-8")
log.info("wrote %s and %s", sm.output.html, sm.output.table1_html)
