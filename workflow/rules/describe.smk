rule flow_diagram:
    """STROBE-style flow diagram of the attrition."""
    input:
        f"{OUT}/cohort/attrition.csv",
    output:
        report(f"{OUT}/figures/flow.png", caption="../report/flow.rst", category="1. Participants"),
    params:
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/flow_diagram.log",
    benchmark:
        f"{OUT}/benchmarks/flow_diagram.tsv"
    script:
        "../../scripts/flow_diagram.py"


rule table1:
    """Baseline characteristics by route and overall, with missing counts and SMDs."""
    input:
        f"{OUT}/cohort/analysis_dataset.csv",
    output:
        csv=report(f"{OUT}/tables/table1.csv", caption="../report/table1.rst", category="2. Baseline"),
        html=f"{OUT}/tables/table1.html",
    params:
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/table1.log",
    benchmark:
        f"{OUT}/benchmarks/table1.tsv"
    script:
        "../../scripts/table1.py"
