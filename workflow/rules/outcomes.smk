rule hepatotoxicity:
    """CTCAE v5.0 grade of ALT/AST increased against each patient's baseline, and ALT or AST above k x the centre's
    ULN, after the index: per patient (read by binary_outcomes and safety) and by route."""
    input:
        dataset=out("cohort", "dataset"),
        labs=out("cohort", "labs"),
        anakinra=out("cohort", "anakinra"),
    output:
        **declared("hepatotoxicity"),
    params:
        cfg=config["analyses"]["hepatotoxicity"],
        baseline=config["cohort"]["baseline"],
    log:
        f"{OUT}/logs/hepatotoxicity.log",
    benchmark:
        f"{OUT}/benchmarks/hepatotoxicity.tsv"
    script:
        "../../scripts/hepatotoxicity.py"


rule binary_outcomes:
    """Death by day 30, response at day 7, grade >= 3 AE, hepatotoxicity: counts and Firth/ML logistic."""
    input:
        dataset=out("cohort", "dataset"),
        labs=out("cohort", "labs"),
        adverse_events=out("cohort", "adverse_events"),
        hepatotoxicity=out("hepatotoxicity", "patients"),
    output:
        **declared("binary_outcomes"),
    params:
        cfg=config["analyses"]["binary"],
    log:
        f"{OUT}/logs/binary_outcomes.log",
    benchmark:
        f"{OUT}/benchmarks/binary_outcomes.tsv"
    script:
        "../../scripts/binary_outcomes.py"


rule trajectories:
    """Log ferritin, CRP, platelets and ALT over days 0-14 by route: mixed models and figure; deaths in the window."""
    input:
        labs=out("cohort", "labs"),
        dataset=out("cohort", "dataset"),
    output:
        **declared("trajectories"),
    params:
        cfg=config["analyses"]["trajectories"],
        follow_up_days=config["cohort"]["follow_up_days"],
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
        dataset=out("cohort", "dataset"),
        anakinra=out("cohort", "anakinra"),
        adverse_events=out("cohort", "adverse_events"),
        hepatotoxicity=out("hepatotoxicity", "patients"),
    output:
        **declared("safety"),
    params:
        cfg=config["analyses"]["safety"],
        follow_up_days=config["cohort"]["follow_up_days"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/safety.log",
    benchmark:
        f"{OUT}/benchmarks/safety.tsv"
    script:
        "../../scripts/safety.py"


rule forest:
    """Every IV-vs-SC estimate (HR, Firth OR, IRR), unadjusted and adjusted, on one log axis, each labelled
    secondary or exploratory, with Holm-adjusted p values of the secondary family."""
    input:
        cox=out("survival", "cox"),
        logistic=out("binary_outcomes", "logistic"),
        rate_ratios=out("safety", "ratios"),
    output:
        **declared("forest"),
    params:
        cfg=config["analyses"]["forest"],
        labels=config["labels"],
        primary_outcome=PRIMARY_OUTCOME,
        secondary_outcomes=SECONDARY_OUTCOMES,
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/forest.log",
    benchmark:
        f"{OUT}/benchmarks/forest.tsv"
    script:
        "../../scripts/forest.py"
