# Paths and values every rule shares, resolved once from the validated config.
import dataclasses
import functools
from pathlib import Path

from stormcohort.canonical import TABLES
from stormcohort.delivery import content_sha256, read_delivery
from stormcohort.ingest.centre_map import lab_uln, load_centre_maps
from stormcohort.labels import primary_outcome
from stormcohort.outputs import ANALYSES, OUTPUTS, output

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
# Multiplicity, said once: the primary outcome's column (analyses.comparison.primary_outcome: death by day H)
# and the secondary family's outcomes; every other estimate is exploratory.
PRIMARY_OUTCOME = primary_outcome(config["analyses"]["comparison"]["primary_outcome"],
                                  config["cohort"]["follow_up_days"])
SECONDARY_OUTCOMES = config["analyses"]["comparison"]["secondary_outcomes"]
OUT = f"results/{RUN}"


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


# ----------------------------------------------------------------------------- outputs
# Every output path is declared once, in stormcohort/outputs.py; the rules take theirs from here.
# Outputs shown in `snakemake --report`: (rule, name) -> caption file, category, subcategory.
CAPTIONS = {
    ("link", "summary"): ("link_summary.rst", "1. Participants", None),
    ("cohort", "attrition"): ("attrition.rst", "1. Participants", None),
    ("describe", "png"): ("flow.rst", "1. Participants", None),
    ("describe", "table1"): ("table1.rst", "2. Baseline", None),
    ("describe", "exposure"): ("exposure.rst", "2. Baseline", None),
    ("describe", "follow_up"): ("follow_up.rst", "2. Baseline", None),
    ("describe", "dictionary"): ("data_dictionary.rst", "7. Data dictionary", None),
    ("comparison", "protocol"): ("comparison.rst", "3. Comparative effectiveness", "Primary estimate"),
    ("comparison", "effect"): ("comparison.rst", "3. Comparative effectiveness", "Primary estimate"),
    ("comparison", "survival_png"): ("comparison.rst", "3. Comparative effectiveness", "Primary estimate"),
    ("comparison", "balance"): ("balance.rst", "3. Comparative effectiveness", "Balance and overlap"),
    ("comparison", "love_png"): ("balance.rst", "3. Comparative effectiveness", "Balance and overlap"),
    ("comparison", "overlap"): ("overlap.rst", "3. Comparative effectiveness", "Balance and overlap"),
    ("comparison", "weights"): ("overlap.rst", "3. Comparative effectiveness", "Balance and overlap"),
    ("comparison", "overlap_png"): ("overlap.rst", "3. Comparative effectiveness", "Balance and overlap"),
    ("comparison", "sensitivity"): ("sensitivity.rst", "3. Comparative effectiveness", "Sensitivity"),
    ("comparison", "evalues"): ("sensitivity.rst", "3. Comparative effectiveness", "Sensitivity"),
    ("comparison", "sensitivity_forest_png"): ("sensitivity.rst", "3. Comparative effectiveness", "Sensitivity"),
    ("survival", "km"): ("km.rst", "4. Outcomes", "Survival"),
    ("survival", "cox"): ("cox.rst", "4. Outcomes", "Survival"),
    ("survival", "ph_test"): ("ph_test.rst", "4. Outcomes", "Survival"),
    ("survival", "png"): ("km.rst", "4. Outcomes", "Survival"),
    ("competing_risks", "cif_summary"): ("cif.rst", "4. Outcomes", "Competing risks"),
    ("competing_risks", "png"): ("cif.rst", "4. Outcomes", "Competing risks"),
    ("competing_risks", "cif_tests"): ("cif_tests.rst", "4. Outcomes", "Competing risks"),
    ("binary_outcomes", "counts"): ("binary.rst", "4. Outcomes", "Binary outcomes"),
    ("binary_outcomes", "logistic"): ("binary.rst", "4. Outcomes", "Binary outcomes"),
    ("trajectories", "table"): ("trajectories.rst", "4. Outcomes", "Trajectories"),
    ("trajectories", "png"): ("trajectories.rst", "4. Outcomes", "Trajectories"),
    ("safety", "events"): ("safety.rst", "5. Safety", None),
    ("safety", "rates"): ("safety.rst", "5. Safety", None),
    ("safety", "ratios"): ("safety.rst", "5. Safety", None),
    ("safety", "first_severe"): ("safety.rst", "5. Safety", None),
    ("hepatotoxicity", "summary"): ("safety.rst", "5. Safety", None),
    ("safety", "png"): ("swimmer.rst", "5. Safety", None),
    ("forest", "table"): ("forest.rst", "6. All estimates", None),
    ("forest", "png"): ("forest.rst", "6. All estimates", None),
    ("report", "html"): ("report.rst", "0. Cohort report", None),
}


def out(rule, name, centre=None):
    """One declared output of ``rule`` under results/<run>/."""
    return f"{OUT}/{output(rule, name, centre)}"


def declared(rule):
    """A rule's declared outputs as its ``output:`` takes them: under results/<run>/, wrapped in
    ``report()`` where the Snakemake report shows them."""
    paths = {}
    for name in OUTPUTS[rule]:
        path = out(rule, name)
        if (rule, name) in CAPTIONS:
            caption, category, subcategory = CAPTIONS[(rule, name)]
            path = report(path, caption=f"../report/{caption}", category=category, subcategory=subcategory)
        paths[name] = path
    return paths


def per_centre(rule, name):
    """One declared output of a per-centre rule, for every configured centre."""
    return [out(rule, name, c) for c in CENTRES]


# The rules of this run: the optional ones only when configured.
RUN_RULES = ["ingest", "link", "cohort", *ANALYSES, "report",
             *(["disclose", "report_shareable"] if config.get("disclosure") else []),
             *(["diff"] if config.get("compare_to") else [])]
# Everything this run makes but the privacy check's own report, which scans all of it.
RUN_OUTPUTS = [f"{OUT}/{p}" for rule in RUN_RULES for name in OUTPUTS[rule]
               for p in ([output(rule, name, c) for c in CENTRES] if "{centre}" in OUTPUTS[rule][name]
                         else [output(rule, name)])]
