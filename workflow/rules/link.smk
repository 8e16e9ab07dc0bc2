rule link:
    """Join the centres: one person across centres, identifiers already pseudonymised."""
    input:
        # each canonical table: one file per centre, in the order of `centres`
        **{table: per_centre("ingest", table) for table in TABLES},
    output:
        **declared("link"),
    params:
        centres=CENTRES,
    log:
        f"{OUT}/logs/link.log",
    benchmark:
        f"{OUT}/benchmarks/link.tsv"
    script:
        "../../scripts/link.py"
