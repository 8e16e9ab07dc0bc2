rule survival:
    """Death to day 90: Kaplan-Meier by route, log-rank, Cox (unadjusted, adjusted) and cox.zph."""
    input:
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
    output:
        km=f"{OUT}/tables/km.csv",
        logrank=f"{OUT}/tables/logrank.csv",
        cox=f"{OUT}/tables/cox.csv",
        ph_test=f"{OUT}/tables/ph_test.csv",
        png=f"{OUT}/figures/km.png",
        svg=f"{OUT}/figures/km.svg",
        model=f"{OUT}/models/survival.json",
    params:
        cfg=config["analyses"]["survival"],
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
        summary=f"{OUT}/tables/cif_summary.csv",
        png=f"{OUT}/figures/cif.png",
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
