# The cohort report. One rule makes report.html, provenance.json and tables/table1.html from the
# analyses' summary tables (and, when `disclosure:` is set, two more make report_shareable.html). Everything it writes
# is deterministic: the per-invocation facts (command line, start and end times) are appended to
# logs/run_log.json by the handlers below, which are not rule inputs or params, so a rerun with
# nothing changed schedules no job and the same inputs give the same report bytes.
from stormcohort.report.provenance import lineage as output_lineage, log_invocation
from stormcohort.outputs import under
from stormcohort.report.inputs import disclosed_inputs, report_inputs

report: "../report/workflow.rst"

RUN_LOG = f"{OUT}/logs/run_log.json"
_INVOCATION = {}
RAW_INPUTS = [
    *[f for c in CENTRES for f in DELIVERY_META.files[c]],
    ancient(str(DELIVERY / "delivery.yaml")),
    *[ancient(f) for f in expand("config/centres/{centre}.yaml", centre=CENTRES)],
]
DELIVERY_INFO = {"path": str(DELIVERY), "extract_date": str(DELIVERY_META.extract_date),
                 "synthetic": DELIVERY_META.synthetic}


rule report:
    """The cohort report (STROBE order) with provenance, and Table 1 as its own page."""
    input:
        # hashed into provenance.json; `ancient` as in common.smk: content changes reach the report
        # through ingest, a newer mtime alone reruns nothing
        raw=RAW_INPUTS,
        # summary tables, model summaries and figures only: never a patient-level file
        **under(OUT, report_inputs(CENTRES)),
        # the cohort-level diff (diff.smk) when `compare_to` is set: linked from the report
        diff=[out("diff", "html")] if config.get("compare_to") else [],
    output:
        **declared("report"),
    params:
        config=config,
        delivery=DELIVERY_INFO,
        # each output -> its rule and input files, read from the rule definitions at DAG time
        lineage=lambda wildcards: output_lineage(workflow.rules, {"centre": CENTRES}, OUT),
    log:
        f"{OUT}/logs/report.log",
    benchmark:
        f"{OUT}/benchmarks/report.tsv"
    script:
        "../../scripts/report.py"


if config.get("disclosure"):

    rule disclose:
        """Rates, rate ratios and forest estimates recomputed from the disclosed counts."""
        input:
            rates=out("safety", "rates"),
            ratios=out("safety", "ratios"),
            forest=out("forest", "table"),
            counts=out("binary_outcomes", "counts"),
            km=out("survival", "km"),
        output:
            **declared("disclose"),
        params:
            disclosure=config["disclosure"],
            safety=config["analyses"]["safety"],
            synthetic=DELIVERY_META.synthetic,
        log:
            f"{OUT}/logs/disclose.log",
        benchmark:
            f"{OUT}/benchmarks/disclose.tsv"
        script:
            "../../scripts/disclose.py"

    rule report_shareable:
        """The report to share outside the care team: every count disclosed, no patient-level figure."""
        input:
            **under(OUT, report_inputs(CENTRES)),
            **under(OUT, disclosed_inputs()),
            provenance=out("report", "provenance"),
        output:
            **declared("report_shareable"),
        params:
            config=config,
            delivery=DELIVERY_INFO,
        log:
            f"{OUT}/logs/report_shareable.log",
        benchmark:
            f"{OUT}/benchmarks/report_shareable.tsv"
        script:
            "../../scripts/report_shareable.py"


onstart:
    _INVOCATION["started"] = log_invocation(RUN_LOG, "running")["started"]


onsuccess:
    log_invocation(RUN_LOG, "success", started=_INVOCATION.get("started"))


onerror:
    log_invocation(RUN_LOG, "error", started=_INVOCATION.get("started"))
