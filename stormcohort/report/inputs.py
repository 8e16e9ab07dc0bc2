"""What the report reads: the analyses' summary tables, model summaries and figures, named by
their (rule, output) in :mod:`stormcohort.outputs`. Never a patient-level file: the report
formats what was computed and computes nothing.

Kept apart from :mod:`~stormcohort.report.render` because the Snakefile imports it when it
parses, and rendering pulls in Jinja and pandas.
"""

from __future__ import annotations

from stormcohort.outputs import output

# report key -> (rule, output name)
TABLES = {
    "link": ("link", "summary"),
    "attrition": ("cohort", "attrition"),
    "conflicts": ("cohort", "conflicts_summary"),
    "table1": ("describe", "table1"),
    "exposure": ("describe", "exposure"),
    "follow_up": ("describe", "follow_up"),
    "km": ("survival", "km"),
    "km_risk": ("survival", "km_risk"),
    "logrank": ("survival", "logrank"),
    "cox": ("survival", "cox"),
    "ph_test": ("survival", "ph_test"),
    "cif_summary": ("competing_risks", "cif_summary"),
    "cif_risk": ("competing_risks", "cif_risk"),
    "cif_tests": ("competing_risks", "cif_tests"),
    "binary_outcomes": ("binary_outcomes", "counts"),
    "logistic": ("binary_outcomes", "logistic"),
    "trajectories": ("trajectories", "table"),
    "safety_events": ("safety", "events"),
    "safety_rates": ("safety", "rates"),
    "rate_ratios": ("safety", "ratios"),
    "safety_first_severe": ("safety", "first_severe"),
    "hepatotoxicity": ("hepatotoxicity", "summary"),
    "forest": ("forest", "table"),
    # the target-trial emulation (comparative effectiveness section)
    "protocol": ("comparison", "protocol"),
    "balance": ("comparison", "balance"),
    "weights": ("comparison", "weights"),
    "overlap": ("comparison", "overlap"),
    "effect": ("comparison", "effect"),
    "sensitivity": ("comparison", "sensitivity"),
    "evalues": ("comparison", "evalues"),
    "missingness": ("comparison", "missingness"),
}
# one file per centre
CENTRE_TABLES = {"accounting": ("ingest", "accounting"), "exclusions": ("ingest", "ledger_summary")}
FIGURES = {
    "flow": ("describe", "png"),
    "km": ("survival", "png"),
    "cif": ("competing_risks", "png"),
    "trajectories": ("trajectories", "png"),
    "swimmer": ("safety", "png"),
    "forest": ("forest", "png"),
    "comparison_survival": ("comparison", "survival_png"),
    "love": ("comparison", "love_png"),
    "overlap": ("comparison", "overlap_png"),
    "sensitivity_forest": ("comparison", "sensitivity_forest_png"),
}
MODELS = {m: (m, "model") for m in ("survival", "competing_risks", "binary_outcomes", "safety", "trajectories",
                                    "comparison")}
# what the shareable report reads besides: estimates recomputed from the disclosed counts
DISCLOSED = {"safety_rates": ("disclose", "rates"), "rate_ratios": ("disclose", "ratios"),
             "forest": ("disclose", "forest"), "figure_forest": ("disclose", "png")}


def report_inputs(centres) -> dict[str, str | list[str]]:
    """The report rule's inputs by name, relative to ``results/<run>/``: tables by their key,
    figures as ``figure_<key>``, model summaries as ``model_<key>``, the per-centre tables as lists
    in the order of ``centres``."""
    return {
        **{k: output(*v) for k, v in TABLES.items()},
        **{k: [output(*v, centre=c) for c in centres] for k, v in CENTRE_TABLES.items()},
        **{f"figure_{k}": output(*v) for k, v in FIGURES.items()},
        **{f"model_{k}": output(*v) for k, v in MODELS.items()},
    }


def disclosed_inputs() -> dict[str, str]:
    """The shareable report's inputs besides :func:`report_inputs`, named ``disclosed_<key>``."""
    return {f"disclosed_{k}": output(*v) for k, v in DISCLOSED.items()}
