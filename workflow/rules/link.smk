rule link:
    """Join the centres: one person across centres, identifiers already pseudonymised."""
    input:
        expand(f"{OUT}/clean/{{centre}}/{{table}}.parquet", centre=CENTRES, table=TABLES),
    output:
        expand(f"{OUT}/linked/{{table}}.parquet", table=TABLES),
        summary=report(f"{OUT}/linked/link_summary.csv", caption="../report/link_summary.rst", category="1. Participants"),
    params:
        clean_dir=f"{OUT}/clean",
        centres=CENTRES,
    log:
        f"{OUT}/logs/link.log",
    benchmark:
        f"{OUT}/benchmarks/link.tsv"
    script:
        "../../scripts/link.py"
