rule comparison:
    """IV vs SC as an emulated target trial (the primary analysis): protocol, clone-censor-weight risks of death,
    propensity-weighted secondary outcomes, balance, weights, sensitivity analyses and E-values."""
    input:
        dataset=out("cohort", "dataset"),
        labs=out("cohort", "labs"),
        adverse_events=out("cohort", "adverse_events"),
        hepatotoxicity=out("hepatotoxicity", "patients"),
    output:
        **declared("comparison"),
    params:
        cohort=config["cohort"],
        binary=config["analyses"]["binary"],
        cfg=config["analyses"]["comparison"],
        synthetic=DELIVERY_META.synthetic,
    log:
        f"{OUT}/logs/comparison.log",
    benchmark:
        f"{OUT}/benchmarks/comparison.tsv"
    script:
        "../../scripts/comparison.py"
