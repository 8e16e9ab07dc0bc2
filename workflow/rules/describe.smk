rule flow_diagram:
    """STROBE-style flow diagram of the attrition."""
    input:
        attrition=f"{OUT}/cohort/attrition.csv",
    output:
        png=report(f"{OUT}/figures/flow.png", caption="../report/flow.rst", category="1. Participants"),
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
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
        anakinra=f"{OUT}/cohort/anakinra.csv",
    output:
        table1=report(f"{OUT}/tables/table1.csv", caption="../report/table1.rst", category="2. Baseline"),
        exposure=report(f"{OUT}/tables/exposure.csv", caption="../report/exposure.rst", category="2. Baseline"),
        follow_up=report(f"{OUT}/tables/follow_up.csv", caption="../report/follow_up.rst", category="2. Baseline"),
        dictionary=report(f"{OUT}/tables/data_dictionary.csv", caption="../report/data_dictionary.rst", category="6. Data dictionary"),
    log:
        f"{OUT}/logs/describe.log",
    benchmark:
        f"{OUT}/benchmarks/describe.tsv"
    script:
        "../../scripts/describe.py"


ANALYSIS_TARGETS.extend([*rules.flow_diagram.output, *rules.describe.output])
