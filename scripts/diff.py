"""Rule diff: an older run's outputs and this run's -> results/<run>/diff/."""
from pathlib import Path

from stormcohort.diff import compare, read_run, write_diff
from stormcohort.io import rule_logger

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
old_run, new_run = Path(sm.params.old_run), Path(sm.params.new_run)
log.info("comparing %s (old) with %s (new)", old_run, new_run)
result = compare(read_run(old_run), read_run(new_run, sm.params.centres), default_outcome=sm.params.default_outcome)
write_diff(result, dict(sm.output.items()), synthetic=sm.params.synthetic)
summary = result.summary()
log.info("patients: %(added)d added, %(removed)d removed, %(changed)d changed", summary["patients"])
log.info("effect estimates: %d compared, conclusion moved for %d", summary["effects"],
         summary["effects_conclusion_moved"])
