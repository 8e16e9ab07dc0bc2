rule flow_diagram:
    """STROBE-style flow diagram of the attrition."""
    input:
        attrition=out("cohort", "attrition"),
    output:
        **declared("flow_diagram"),
    params:
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/flow_diagram.log",
    benchmark:
        f"{OUT}/benchmarks/flow_diagram.tsv"
    script:
        "../../scripts/flow_diagram.py"


rule describe:
    """Table 1 (numeric, by route and overall, with missing counts and SMDs), anakinra exposure, follow-up, and the data dictionary of every result table."""
    input:
        dataset=out("cohort", "dataset"),
        anakinra=out("cohort", "anakinra"),
    output:
        **declared("describe"),
    log:
        f"{OUT}/logs/describe.log",
    benchmark:
        f"{OUT}/benchmarks/describe.tsv"
    script:
        "../../scripts/describe.py"
