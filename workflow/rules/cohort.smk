rule cohort:
    """Apply the study's cohort rules: attrition, the analysis dataset and its long tables."""
    input:
        expand(f"{OUT}/linked/{{table}}.parquet", table=TABLES),
    output:
        attrition=report(f"{OUT}/cohort/attrition.csv", caption="../report/attrition.rst", category="1. Participants"),
        dataset=f"{OUT}/cohort/analysis_dataset.csv",
        dictionary=f"{OUT}/cohort/data_dictionary.csv",
        episodes=f"{OUT}/cohort/admissions_assessed.csv",
        anakinra=f"{OUT}/cohort/anakinra.csv",
        # Parquet: the one table that grows with every sample (millions of rows in a registry)
        labs=f"{OUT}/cohort/labs.parquet",
        adverse_events=f"{OUT}/cohort/adverse_events.csv",
    params:
        linked_dir=f"{OUT}/linked",
        cohort=config["cohort"],
        extract_date=str(DELIVERY_META.extract_date),
    log:
        f"{OUT}/logs/cohort.log",
    benchmark:
        f"{OUT}/benchmarks/cohort.tsv"
    script:
        "../../scripts/cohort.py"
