"""Every output of a run, declared once: for each rule, its outputs by name, as paths relative
to ``results/<run>/``.

The workflow's rules take their outputs (and their inputs: another rule's outputs) from here
(``workflow/rules/common.smk``), and so do the report's inputs and the diff, which reads an
older run's folder. ``{centre}`` is the only wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping

from stormcohort.canonical import TABLES

OUTPUTS: dict[str, dict[str, str]] = {
    "ingest": {
        **{t: f"clean/{{centre}}/{t}.parquet" for t in TABLES},
        "ledger": "clean/{centre}/exclusions.csv",
        "ledger_summary": "clean/{centre}/exclusions_summary.csv",
        "accounting": "clean/{centre}/accounting.csv",
    },
    "link": {**{t: f"linked/{t}.parquet" for t in TABLES}, "summary": "linked/link_summary.csv"},
    "cohort": {
        "attrition": "cohort/attrition.csv",
        "dataset": "cohort/analysis_dataset.csv",
        "dictionary": "cohort/data_dictionary.csv",
        "episodes": "cohort/admissions_assessed.csv",
        "anakinra": "cohort/anakinra.csv",
        # Parquet: the one table that grows with every sample (millions of rows in a registry)
        "labs": "cohort/labs.parquet",
        "adverse_events": "cohort/adverse_events.csv",
        # a patient-level consequence of a missing or contradictory value, and its count by centre
        "conflicts": "cohort/data_conflicts.csv",
        "conflicts_summary": "cohort/data_conflicts_summary.csv",
    },
    "hepatotoxicity": {"patients": "cohort/hepatotoxicity.csv", "summary": "tables/hepatotoxicity.csv"},
    "describe": {
        "table1": "tables/table1.csv",
        "exposure": "tables/exposure.csv",
        "follow_up": "tables/follow_up.csv",
        "dictionary": "tables/data_dictionary.csv",
        "png": "figures/flow.png",
    },
    "survival": {
        "km": "tables/km.csv",
        "km_risk": "tables/km_risk.csv",
        "logrank": "tables/logrank.csv",
        "cox": "tables/cox.csv",
        "ph_test": "tables/ph_test.csv",
        "png": "figures/km.png",
        "svg": "figures/km.svg",
        "model": "models/survival.json",
    },
    "competing_risks": {
        "cif": "tables/cif.csv",
        "cif_summary": "tables/cif_summary.csv",
        "cif_risk": "tables/cif_risk.csv",
        "cif_tests": "tables/cif_tests.csv",
        "png": "figures/cif.png",
        "svg": "figures/cif.svg",
        "model": "models/competing_risks.json",
    },
    "binary_outcomes": {
        "counts": "tables/binary_outcomes.csv",
        "logistic": "tables/logistic.csv",
        "model": "models/binary_outcomes.json",
    },
    "trajectories": {
        "table": "tables/trajectories.csv",
        "daily": "tables/trajectories_daily.csv",
        "png": "figures/trajectories.png",
        "svg": "figures/trajectories.svg",
        "model": "models/trajectories.json",
    },
    "safety": {
        "events": "tables/safety_events.csv",
        "rates": "tables/safety_rates.csv",
        "ratios": "tables/rate_ratios.csv",
        # time to the first grade >= severe_grade event, death competing (replaces counting patients)
        "first_severe": "tables/safety_first_severe.csv",
        "png": "figures/swimmer.png",
        "svg": "figures/swimmer.svg",
        "model": "models/safety.json",
    },
    "forest": {"table": "tables/forest.csv", "png": "figures/forest.png", "svg": "figures/forest.svg"},
    # the target-trial emulation of IV vs SC (clone-censor-weight): the report's primary estimate.
    # Figures by name (AnalysisResult.figures): survival, love, overlap, sensitivity_forest.
    "comparison": {
        "protocol": "tables/protocol.csv",
        "balance": "tables/balance.csv",
        "weights": "tables/weights.csv",
        "overlap": "tables/overlap.csv",
        "effect": "tables/effect.csv",
        "sensitivity": "tables/sensitivity.csv",
        "evalues": "tables/evalues.csv",
        "missingness": "tables/missingness.csv",
        # per patient of the landmark population: IV by day G and the propensity weights (competing_risks reads it)
        "patients": "cohort/comparison_weights.csv",
        "survival_png": "figures/comparison_survival.png",
        "survival_svg": "figures/comparison_survival.svg",
        "love_png": "figures/love.png",
        "overlap_png": "figures/overlap.png",
        "sensitivity_forest_png": "figures/sensitivity_forest.png",
        "sensitivity_forest_svg": "figures/sensitivity_forest.svg",
        "model": "models/comparison.json",
    },
    "report": {
        "html": "report.html",
        "provenance": "provenance.json",
        "table1_html": "tables/table1.html",
    },
    # only when `disclosure:` is configured: estimates recomputed from the disclosed counts, and the
    # report to share outside the care team
    "disclose": {
        "rates": "disclosed/safety_rates.csv",
        "ratios": "disclosed/rate_ratios.csv",
        "forest": "disclosed/forest.csv",
        "png": "disclosed/forest.png",
    },
    "report_shareable": {"html": "report_shareable.html"},
    # only when `compare_to:` is configured
    "diff": {
        **{name: f"diff/{name}.csv" for name in (
            "patients", "patient_fields", "patient_rows", "ledger", "ledger_entries", "attrition", "table1",
            "effects")},
        "summary": "diff/summary.json",
        "html": "diff/diff.html",
    },
    "privacy_check": {"report": "checks/privacy.txt"},
}

# the rules whose outputs are analysis results (everything downstream of the cohort but the report)
ANALYSES = ("hepatotoxicity", "describe", "survival", "competing_risks", "binary_outcomes",
            "trajectories", "safety", "forest", "comparison")


def output(rule: str, name: str, centre: str | None = None) -> str:
    """One output's path relative to ``results/<run>/`` (``centre`` fills ``{centre}``)."""
    path = OUTPUTS[rule][name]
    return path.format(centre=centre) if centre is not None else path


def outputs(rule: str, centre: str | None = None) -> dict[str, str]:
    """A rule's outputs by name, relative to ``results/<run>/``."""
    return {name: output(rule, name, centre) for name in OUTPUTS[rule]}


def under(folder, paths):
    """``paths`` (relative to ``results/<run>/``: one, a list, or a mapping of either) joined under
    ``folder``, as strings."""
    if isinstance(paths, Mapping):
        return {k: under(folder, p) for k, p in paths.items()}
    if isinstance(paths, str):
        return f"{folder}/{paths}"
    return [under(folder, p) for p in paths]
