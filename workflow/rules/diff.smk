# What changed since an older delivery: `--config compare_to=results/<older run>` adds the `diff`
# rule, which compares that run's outputs with this run's and writes results/<run>/diff/. With
# compare_to null (the default) the rule is not defined, so it is not part of the DAG.
# DIFF_TARGETS (common.smk) lists its outputs, for the report to link diff/diff.html; they also
# join ANALYSIS_TARGETS, so `rule all` asks for them and the privacy check scans them.
if config.get("compare_to"):
    from snakemake.exceptions import WorkflowError

    from stormcohort.diff import OUTPUTS as DIFF_TABLES, long_table

    COMPARE_TO = Path(config["compare_to"])
    _required = [COMPARE_TO / p for p in ("cohort/analysis_dataset.csv", "cohort/attrition.csv", "tables/table1.csv")]
    if not all(p.is_file() for p in _required):
        raise WorkflowError(
            f"compare_to: {COMPARE_TO} is not a finished run (expected {', '.join(map(str, _required))}); "
            "run the older delivery first, e.g. --config delivery=data/raw/<older delivery>")
    if COMPARE_TO.resolve() == Path(OUT).resolve():
        raise WorkflowError(f"compare_to: {COMPARE_TO} is this run itself ({OUT}); name an older run")
    _optional = [long_table(COMPARE_TO, t) for t in ("anakinra", "labs", "adverse_events")] + [
        COMPARE_TO / "tables" / f"{t}.csv" for t in ("cox", "logistic", "rate_ratios")]

    rule diff:
        """Patients, cleaning ledger, attrition, Table 1 and effect estimates: old run vs this run."""
        input:
            old=[*map(str, _required), *(str(p) for p in _optional if p.is_file()),
                 *map(str, sorted(COMPARE_TO.glob("clean/*/exclusions.csv")))],
            new=[
                f"{OUT}/cohort/analysis_dataset.csv",
                f"{OUT}/cohort/attrition.csv",
                f"{OUT}/tables/table1.csv",
                rules.cohort.output.anakinra, rules.cohort.output.labs, rules.cohort.output.adverse_events,
                f"{OUT}/tables/cox.csv",
                f"{OUT}/tables/logistic.csv",
                f"{OUT}/tables/rate_ratios.csv",
                *expand(f"{OUT}/clean/{{centre}}/exclusions.csv", centre=CENTRES),
            ],
        output:
            **{name: f"{OUT}/diff/{name}.csv" for name in DIFF_TABLES},
            summary=f"{OUT}/diff/summary.json",
            html=f"{OUT}/diff/diff.html",
        params:
            old_run=str(COMPARE_TO),
            new_run=OUT,
            cox_outcome=config["analyses"]["forest"]["cox_outcome"],
            synthetic=DELIVERY_META.synthetic,
        log:
            f"{OUT}/logs/diff.log",
        benchmark:
            f"{OUT}/benchmarks/diff.tsv"
        script:
            "../../scripts/diff.py"

    DIFF_TARGETS.extend(rules.diff.output)
    ANALYSIS_TARGETS.extend(DIFF_TARGETS)
