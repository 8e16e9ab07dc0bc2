rule cohort:
    """Apply the study's cohort rules: attrition, the analysis dataset and its long tables."""
    input:
        **{table: out("link", table) for table in TABLES},
    output:
        **declared("cohort"),
    params:
        cohort=config["cohort"],
        extract_date=str(DELIVERY_META.extract_date),
    log:
        f"{OUT}/logs/cohort.log",
    benchmark:
        f"{OUT}/benchmarks/cohort.tsv"
    script:
        "../../scripts/cohort.py"
