rule survival:
    """Death by day cohort.follow_up_days: Kaplan-Meier by route, numbers at risk, log-rank, Cox (unadjusted, adjusted), cox.zph."""
    input:
        dataset=out("cohort", "dataset"),
    output:
        **declared("survival"),
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
    """Fever resolution with death as a competing event: Aalen-Johansen CIF by route; IV vs SC by
    Gray's test, Fine-Gray and cause-specific Cox; the two models also weighted by the target
    trial's propensity weights (IV by day G among patients followed at day G)."""
    input:
        dataset=out("cohort", "dataset"),
        weights=out("comparison", "patients"),
    output:
        **declared("competing_risks"),
    params:
        cfg=config["analyses"]["competing_risks"],
        estimand=config["analyses"]["comparison"]["estimand"],
        grace_days=config["analyses"]["comparison"]["grace_days"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/competing_risks.log",
    benchmark:
        f"{OUT}/benchmarks/competing_risks.tsv"
    script:
        "../../scripts/competing_risks.py"
