# What changed since an older delivery: `--config compare_to=results/<older run>` adds the `diff`
# rule, which compares that run's outputs with this run's and writes results/<run>/diff/. With
# compare_to null (the default) the rule is not defined, so it is not part of the DAG.
# Every path comes from stormcohort.outputs: what the diff reads of a run (stormcohort.diff.reads)
# and what it writes (OUTPUTS["diff"]); common.smk adds the rule to RUN_RULES, so `rule all` asks
# for its outputs, the report links diff/diff.html and the privacy check scans them.
if config.get("compare_to"):
    from snakemake.exceptions import WorkflowError

    from stormcohort.diff import REQUIRED, reads, run_centres
    from stormcohort.outputs import under

    COMPARE_TO = Path(config["compare_to"])
    _old_centres = run_centres(COMPARE_TO)
    _old = reads(_old_centres)
    _required = [COMPARE_TO / _old[name] for name in REQUIRED]
    if not _old_centres or not all(p.is_file() for p in _required):
        raise WorkflowError(
            f"compare_to: {COMPARE_TO} is not a finished run (expected {', '.join(map(str, _required))} "
            "and a cleaning ledger per centre); "
            "run the older delivery first, e.g. --config delivery=data/raw/<older delivery>")
    if COMPARE_TO.resolve() == Path(OUT).resolve():
        raise WorkflowError(f"compare_to: {COMPARE_TO} is this run itself ({OUT}); name an older run")

    rule diff:
        """Patients, cleaning ledger, attrition, Table 1 and effect estimates: old run vs this run."""
        input:
            # the older run's files it has (long and effect tables are optional there), and this run's
            **{f"old_{name}": p for name, p in under(COMPARE_TO, _old).items() if Path(p).is_file()},
            **{f"new_{name}": p for name, p in under(OUT, reads(CENTRES)).items()},
        output:
            **declared("diff"),
        params:
            old_run=str(COMPARE_TO),
            new_run=OUT,
            # the outcome of cox.csv rows when the table has no `outcome` column
            default_outcome=f"death_{config['cohort']['follow_up_days']}d",
            synthetic=DELIVERY_META.synthetic,
        log:
            f"{OUT}/logs/diff.log",
        benchmark:
            f"{OUT}/benchmarks/diff.tsv"
        script:
            "../../scripts/diff.py"
