rule privacy_check:
    """Fail the run if any identifier of the raw extracts appears in an output or log."""
    input:
        raw=[f for c in CENTRES for f in DELIVERY_META.files[c]],
        delivery_yaml=ancient(DELIVERY / "delivery.yaml"),
        centre_maps=expand("config/centres/{centre}.yaml", centre=CENTRES),
        # every output of this run (so every rule's log exists before the scan)
        outputs=RUN_OUTPUTS,
    output:
        **declared("privacy_check"),
    params:
        centres=CENTRES,
    log:
        f"{OUT}/logs/privacy_check.log",
    benchmark:
        f"{OUT}/benchmarks/privacy_check.tsv"
    script:
        "../../scripts/privacy_check.py"
