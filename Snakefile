# stormcohort: registry extracts in, cohort report out. Run with `make run`, or
# `snakemake --cores 2 [--config delivery=PATH]` inside the project's environment.
from importlib.resources import files

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


if "uln" in config.get("analyses", {}).get("hepatotoxicity", {}):
    raise WorkflowError("config analyses.hepatotoxicity.uln: the upper limits of normal are each centre's `lab_uln` in "
                        "config/centres/<C>.yaml now. Fix: move them there and remove `uln` (config/README.md)")
validate(config, str(files("stormcohort") / "schemas" / "config.schema.yaml"), set_default=True)


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/link.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/describe.smk"
include: "workflow/rules/outcomes.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/comparison.smk"
include: "workflow/rules/diff.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/privacy.smk"


rule all:
    input:
        RUN_OUTPUTS,
        out("privacy_check", "report"),
