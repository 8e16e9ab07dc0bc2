rule ingest:
    """Read one centre's extract as delivered into canonical, pseudonymised tables."""
    input:
        # All `ancient`: their content reruns ingest through `inputs_sha256`, their mtimes never do.
        files=centre_files,
        centre_map=ancient("config/centres/{centre}.yaml"),
        delivery_yaml=ancient(DELIVERY / "delivery.yaml"),
    output:
        **declared("ingest"),
    params:
        inputs_sha256=centre_inputs_sha256,
        key_env=config["pseudonymisation"]["key_env"],
        synthetic_default_key=config["pseudonymisation"]["synthetic_default_key"],
    log:
        f"{OUT}/logs/ingest_{{centre}}.log",
    benchmark:
        f"{OUT}/benchmarks/ingest_{{centre}}.tsv"
    wildcard_constraints:
        centre="[A-Z]{3}",
    script:
        "../../scripts/ingest.py"
