"""Rule privacy_check: fail the run if an identifier of the raw extracts is in an output or log."""
from pathlib import Path

from stormcohort.ingest import load_centre_map, read_identifiers
from stormcohort.io import rule_logger
from stormcohort.privacy import identifier_set, scan

sm = snakemake  # noqa: F821 - provided by Snakemake
log = rule_logger(sm)
identifiers = set()
for centre, centre_map in zip(sm.params.centres, sm.input.centre_maps):
    identifiers |= read_identifiers(Path(sm.input.delivery_yaml).parent, centre, load_centre_map(centre_map))
searched = identifier_set(identifiers)
own_log = Path(sm.log[0]).resolve()
# every rule's log: the folder of this rule's own log
logs = [p for p in sorted(own_log.parent.glob("*.log")) if p != own_log]
paths = [*sm.input.outputs, *map(str, logs)]
findings = scan(paths, searched)
if findings:
    raise SystemExit("privacy check failed: identifiers of the raw extracts found in\n  " + "\n  ".join(findings))
Path(sm.output[0]).write_text(
    f"privacy check passed: {len(searched)} identifier strings searched in {len(paths)} files; none found\n",
    encoding="utf-8")
log.info("searched %d identifier strings in %d files: none found", len(searched), len(paths))
