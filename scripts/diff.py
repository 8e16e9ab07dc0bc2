"""Rule diff: an older run's outputs and this run's -> results/<run>/diff/."""
from stormcohort.diff import compare, read_tables, write_diff
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
runs = {}
for run, name in (("old", sm.params.old_run), ("new", sm.params.new_run)):
    paths = {key[len(run) + 1:]: path for key, path in sm.input.items() if key.startswith(f"{run}_")}
    runs[run] = read_tables(paths, name=name.rstrip("/").rsplit("/", 1)[-1], where=name)
log.info("comparing %s (old) with %s (new)", sm.params.old_run, sm.params.new_run)
result = compare(runs["old"], runs["new"], default_outcome=sm.params.default_outcome)
write_diff(result, dict(sm.output.items()), synthetic=sm.params.synthetic)
summary = result.summary()
log.info("patients: %(added)d added, %(removed)d removed, %(changed)d changed", summary["patients"])
log.info("effect estimates: %d compared, conclusion moved for %d", summary["effects"],
         summary["effects_conclusion_moved"])
