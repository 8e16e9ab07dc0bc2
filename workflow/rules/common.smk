# Paths and values every rule shares, resolved once from the validated config.
import dataclasses
import functools
from pathlib import Path

from stormcohort.delivery import content_sha256, read_delivery
from stormcohort.ingest.centre_map import lab_uln, load_centre_maps

CENTRES = config["centres"]
HEPATOTOXICITY_TESTS = config["analyses"]["hepatotoxicity"]["tests"]
# Each configured centre's map, checked now, before any job runs: it exists, is valid, is the
# map of that centre and has an upper limit of normal for every hepatotoxicity test.
CENTRE_MAPS = load_centre_maps(CENTRES, "config/centres", uln_tests=HEPATOTOXICITY_TESTS)
# {centre: {test: ULN}} from the maps' `lab_uln`: the hepatotoxicity analyses' `uln` setting
# (outcomes.smk). The resolved config records it too, as analyses.hepatotoxicity.uln, for the
# report's methods text and provenance.json, which read the config.
CENTRE_ULN = lab_uln(CENTRE_MAPS, HEPATOTOXICITY_TESTS)
config["analyses"]["hepatotoxicity"]["uln"] = CENTRE_ULN
DELIVERY = Path(config["delivery"])
DELIVERY_META = read_delivery(DELIVERY, CENTRES)  # each centre has a folder of files
# Rerun on content, not on modification times. The delivered files are `ancient`: a newer mtime
# alone (a fresh checkout, a copy, `touch`) never reruns anything, at any file size (Snakemake's
# own checksum fallback only covers files under --max-checksum-file-size, 1 MB). Their content
# reaches the DAG through ingest's `inputs_sha256` param (params trigger): a changed file reruns
# its centre's ingest, and every rule that reads the delivery also depends on ingest's outputs.
DELIVERY_META = dataclasses.replace(
    DELIVERY_META, files={c: [ancient(f) for f in files] for c, files in DELIVERY_META.files.items()})
RUN = config.get("run") or DELIVERY.name
OUT = f"results/{RUN}"
TABLES = ["patients", "admissions", "anakinra", "labs", "adverse_events"]


def centre_files(wildcards):
    """Every file the centre delivered (`ancient`): a change to the content of any of them reruns
    that centre, through `centre_inputs_sha256`."""
    return DELIVERY_META.files[wildcards.centre]


@functools.cache
def _centre_inputs_sha256(centre: str) -> str:
    delivered = content_sha256([*DELIVERY_META.files[centre], DELIVERY / "delivery.yaml"], DELIVERY)
    return f"{delivered}:{content_sha256([f'config/centres/{centre}.yaml'], 'config/centres')}"


def centre_inputs_sha256(wildcards) -> str:
    """Content of everything ingest reads for one centre (its files, delivery.yaml, its centre
    map), as the param that reruns ingest when, and only when, that content changes."""
    return _centre_inputs_sha256(wildcards.centre)


# Each analysis rules file appends the files its rules make; `rule all` asks for them.
ANALYSIS_TARGETS = []
# The cohort-level diff's outputs (workflow/rules/diff.smk), [] unless `compare_to` is set.
DIFF_TARGETS = []
