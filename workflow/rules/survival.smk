rule survival:
    """Death by day cohort.follow_up_days: Kaplan-Meier by route, numbers at risk, log-rank, Cox (unadjusted, adjusted), cox.zph."""
    input:
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
    output:
        km=report(f"{OUT}/tables/km.csv", caption="../report/km.rst", category="3. Outcomes", subcategory="Survival"),
        km_risk=f"{OUT}/tables/km_risk.csv",
        logrank=f"{OUT}/tables/logrank.csv",
        cox=report(f"{OUT}/tables/cox.csv", caption="../report/cox.rst", category="3. Outcomes", subcategory="Survival"),
        ph_test=report(f"{OUT}/tables/ph_test.csv", caption="../report/ph_test.rst", category="3. Outcomes", subcategory="Survival"),
        png=report(f"{OUT}/figures/km.png", caption="../report/km.rst", category="3. Outcomes", subcategory="Survival"),
        svg=f"{OUT}/figures/km.svg",
        model=f"{OUT}/models/survival.json",
    params:
        cfg=config["analyses"]["survival"],
        follow_up_days=config["cohort"]["follow_up_days"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/survival.log",
    benchmark:
        f"{OUT}/benchmarks/survival.tsv"
    script:
        "../../scripts/survival.py"


rule competing_risks:
    """Fever resolution with death as a competing event: Aalen-Johansen CIF by route."""
    input:
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
    output:
        cif=f"{OUT}/tables/cif.csv",
        cif_summary=report(f"{OUT}/tables/cif_summary.csv", caption="../report/cif.rst", category="3. Outcomes", subcategory="Competing risks"),
        cif_risk=f"{OUT}/tables/cif_risk.csv",
        png=report(f"{OUT}/figures/cif.png", caption="../report/cif.rst", category="3. Outcomes", subcategory="Competing risks"),
        svg=f"{OUT}/figures/cif.svg",
        model=f"{OUT}/models/competing_risks.json",
    params:
        cfg=config["analyses"]["competing_risks"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/competing_risks.log",
    benchmark:
        f"{OUT}/benchmarks/competing_risks.tsv"
    script:
        "../../scripts/competing_risks.py"


ANALYSIS_TARGETS.extend([*rules.survival.output, *rules.competing_risks.output])
