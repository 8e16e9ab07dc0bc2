rule describe:
    """Table 1 (numeric, by route and overall, with missing counts and SMDs), anakinra exposure,
    follow-up, the data dictionary of every result table, and the STROBE flow diagram."""
    input:
        dataset=out("cohort", "dataset"),
        anakinra=out("cohort", "anakinra"),
        attrition=out("cohort", "attrition"),
    output:
        **declared("describe"),
    params:
        follow_up_days=config["cohort"]["follow_up_days"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/describe.log",
    benchmark:
        f"{OUT}/benchmarks/describe.tsv"
    script:
        "../../scripts/describe.py"
