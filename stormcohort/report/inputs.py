"""What the report reads, relative to ``results/<run>/``: the report rule's inputs.

Kept apart from :mod:`~stormcohort.report.render` because the Snakefile imports it when it
parses, and rendering pulls in matplotlib and the statistics (seconds on every invocation).
"""

from __future__ import annotations

TABLES = ["table1", "km", "logrank", "cox", "ph_test", "cif_summary", "binary_outcomes", "logistic", "trajectories",
          "safety_events", "safety_rates", "rate_ratios", "hepatotoxicity", "forest"]
FIGURES = ["flow", "km", "cif", "trajectories", "swimmer", "forest"]
MODELS = ["survival", "competing_risks", "binary_outcomes", "safety", "trajectories"]


def result_files(centres) -> list[str]:
    """Every pipeline output the report reads, relative to ``results/<run>/``."""
    return [*[f"clean/{c}/{n}.csv" for c in centres for n in ("accounting", "exclusions")],
            "linked/link_summary.csv", "cohort/attrition.csv", "cohort/analysis_dataset.csv", "cohort/anakinra.csv",
            *[f"tables/{t}.csv" for t in TABLES], *[f"figures/{x}.png" for x in FIGURES],
            *[f"models/{m}.json" for m in MODELS]]
