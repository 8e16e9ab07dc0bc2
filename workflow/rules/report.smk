# The cohort report. One rule makes report.html (and report_shareable.html when `disclosure:` is
# set), provenance.json and tables/exposure.csv from the pipeline's outputs. Everything it writes
# is deterministic: the per-invocation facts (command line, start and end times) are appended to
# logs/run_log.json by the handlers below, which are not rule inputs or params, so a rerun with
# nothing changed schedules no job and the same inputs give the same report bytes.
from stormcohort.report.provenance import lineage as output_lineage, log_invocation
from stormcohort.report.inputs import result_files

report: "../report/workflow.rst"

RUN_LOG = f"{OUT}/logs/run_log.json"
_INVOCATION = {}


rule report:
    """The cohort report (STROBE order) with provenance; a disclosed copy when configured."""
    input:
        # hashed into provenance.json; `ancient` as in common.smk: content changes reach the report
        # through ingest, a newer mtime alone reruns nothing
        raw=[
            *[f for c in CENTRES for f in DELIVERY_META.files[c]],
            ancient(str(DELIVERY / "delivery.yaml")),
            *[ancient(f) for f in expand("config/centres/{centre}.yaml", centre=CENTRES)],
        ],
        results=[f"{OUT}/{p}" for p in result_files(CENTRES)],
        # the cohort-level diff (diff.smk) when `compare_to` is set: linked from the report
        diff=lambda wildcards: DIFF_TARGETS,
    output:
        html=report(f"{OUT}/report.html", caption="../report/report.rst", category="0. Cohort report"),
        provenance=f"{OUT}/provenance.json",
        exposure=report(f"{OUT}/tables/exposure.csv", caption="../report/exposure.rst", category="2. Baseline"),
        **({"shareable": f"{OUT}/report_shareable.html"} if config.get("disclosure") else {}),
    params:
        config=config,
        delivery={"path": str(DELIVERY), "extract_date": str(DELIVERY_META.extract_date),
                  "synthetic": DELIVERY_META.synthetic},
        # each output -> its rule and input files, read from the rule definitions at DAG time
        lineage=lambda wildcards: output_lineage(workflow.rules, {"centre": CENTRES}, OUT),
    log:
        f"{OUT}/logs/report.log",
    benchmark:
        f"{OUT}/benchmarks/report.tsv"
    script:
        "../../scripts/report.py"


REPORT_TARGETS = [*rules.report.output]


onstart:
    _INVOCATION["started"] = log_invocation(RUN_LOG, "running")["started"]


onsuccess:
    log_invocation(RUN_LOG, "success", started=_INVOCATION.get("started"))


onerror:
    log_invocation(RUN_LOG, "error", started=_INVOCATION.get("started"))
