rule privacy_check:
    """Fail the run if any identifier of the raw extracts appears in an output or log."""
    input:
        raw=[f for c in CENTRES for f in DELIVERY_META.files[c]],
        centre_maps=expand("config/centres/{centre}.yaml", centre=CENTRES),
        outputs=[
            *expand(f"{OUT}/clean/{{centre}}/{{table}}.parquet", centre=CENTRES, table=TABLES),
            *expand(f"{OUT}/clean/{{centre}}/{{f}}.csv", centre=CENTRES, f=["exclusions", "accounting"]),
            *expand(f"{OUT}/linked/{{table}}.parquet", table=TABLES),
            f"{OUT}/linked/link_summary.csv",
            *rules.cohort.output,
            f"{OUT}/tables/table1.csv",
            f"{OUT}/tables/table1.html",
            # every analysis output, so that every rule's log exists before the scan
            *ANALYSIS_TARGETS,
            # the reports (figures embedded as base64) and provenance.json
            *REPORT_TARGETS,
        ],
    output:
        f"{OUT}/checks/privacy.txt",
    params:
        delivery=str(DELIVERY),
        centres=CENTRES,
        logs_dir=f"{OUT}/logs",
    log:
        f"{OUT}/logs/privacy_check.log",
    benchmark:
        f"{OUT}/benchmarks/privacy_check.tsv"
    script:
        "../../scripts/privacy_check.py"
