rule binary_outcomes:
    """Death by day 30, response at day 7, grade >= 3 AE, hepatotoxicity: counts and Firth/ML logistic."""
    input:
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
        labs=f"{OUT}/cohort/labs.parquet",
        adverse_events=f"{OUT}/cohort/adverse_events.csv",
    output:
        counts=report(f"{OUT}/tables/binary_outcomes.csv", caption="../report/binary.rst", category="3. Outcomes", subcategory="Binary outcomes"),
        logistic=report(f"{OUT}/tables/logistic.csv", caption="../report/binary.rst", category="3. Outcomes", subcategory="Binary outcomes"),
        model=f"{OUT}/models/binary_outcomes.json",
    params:
        cfg=config["analyses"]["binary"],
        hepatotoxicity={**config["analyses"]["hepatotoxicity"], "uln": CENTRE_ULN},
    log:
        f"{OUT}/logs/binary_outcomes.log",
    benchmark:
        f"{OUT}/benchmarks/binary_outcomes.tsv"
    script:
        "../../scripts/binary_outcomes.py"


rule trajectories:
    """Log ferritin, CRP, platelets and ALT over days 0-14 by route: mixed models and figure."""
    input:
        labs=f"{OUT}/cohort/labs.parquet",
    output:
        table=report(f"{OUT}/tables/trajectories.csv", caption="../report/trajectories.rst", category="3. Outcomes", subcategory="Trajectories"),
        daily=f"{OUT}/tables/trajectories_daily.csv",
        png=report(f"{OUT}/figures/trajectories.png", caption="../report/trajectories.rst", category="3. Outcomes", subcategory="Trajectories"),
        svg=f"{OUT}/figures/trajectories.svg",
        model=f"{OUT}/models/trajectories.json",
    params:
        cfg=config["analyses"]["trajectories"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/trajectories.log",
    benchmark:
        f"{OUT}/benchmarks/trajectories.tsv"
    script:
        "../../scripts/trajectories.py"


rule safety:
    """Adverse events by route, term and grade; exposure-adjusted rates, IV/SC rate ratios; swimmer plot."""
    input:
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
        anakinra=f"{OUT}/cohort/anakinra.csv",
        labs=f"{OUT}/cohort/labs.parquet",
        adverse_events=f"{OUT}/cohort/adverse_events.csv",
    output:
        events=report(f"{OUT}/tables/safety_events.csv", caption="../report/safety.rst", category="4. Safety"),
        rates=report(f"{OUT}/tables/safety_rates.csv", caption="../report/safety.rst", category="4. Safety"),
        ratios=report(f"{OUT}/tables/rate_ratios.csv", caption="../report/safety.rst", category="4. Safety"),
        hepatotoxicity=report(f"{OUT}/tables/hepatotoxicity.csv", caption="../report/safety.rst", category="4. Safety"),
        png=report(f"{OUT}/figures/swimmer.png", caption="../report/swimmer.rst", category="4. Safety"),
        svg=f"{OUT}/figures/swimmer.svg",
        model=f"{OUT}/models/safety.json",
    params:
        cfg=config["analyses"]["safety"],
        hepatotoxicity={**config["analyses"]["hepatotoxicity"], "uln": CENTRE_ULN},
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/safety.log",
    benchmark:
        f"{OUT}/benchmarks/safety.tsv"
    script:
        "../../scripts/safety.py"


rule forest:
    """Every IV-vs-SC estimate (HR, Firth OR, IRR), unadjusted and adjusted, on one log axis."""
    input:
        cox=f"{OUT}/tables/cox.csv",
        logistic=f"{OUT}/tables/logistic.csv",
        rate_ratios=f"{OUT}/tables/rate_ratios.csv",
    output:
        table=report(f"{OUT}/tables/forest.csv", caption="../report/forest.rst", category="5. All estimates"),
        png=report(f"{OUT}/figures/forest.png", caption="../report/forest.rst", category="5. All estimates"),
        svg=f"{OUT}/figures/forest.svg",
    params:
        cfg=config["analyses"]["forest"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/forest.log",
    benchmark:
        f"{OUT}/benchmarks/forest.tsv"
    script:
        "../../scripts/forest.py"


ANALYSIS_TARGETS.extend(
    [*rules.binary_outcomes.output, *rules.trajectories.output, *rules.safety.output, *rules.forest.output]
)
