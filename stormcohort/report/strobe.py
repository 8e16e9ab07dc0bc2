"""STROBE (cohort studies) checklist items and the report section that answers each.

``section`` is the anchor of the report section; ``None`` marks an item this automated report
cannot answer (the authors' text: background, interpretation, funding).
"""

from __future__ import annotations

ITEMS = [
    ("1", "Title and abstract: design named; informative summary", "summary"),
    ("2", "Background and rationale", None),
    ("3", "Objectives", "summary"),
    ("4", "Study design", "methods"),
    ("5", "Setting: locations, dates of recruitment, exposure and follow-up", "data-sources"),
    ("6a", "Participants: eligibility, sources and methods of selection, follow-up", "methods"),
    ("7", "Variables: outcomes, exposures, confounders, diagnostic criteria", "methods"),
    ("8", "Data sources and measurement", "data-sources"),
    ("9", "Efforts to address potential sources of bias", "limitations"),
    ("10", "Study size", "participants"),
    ("11", "Quantitative variables: groupings and why", "methods"),
    ("12a", "Statistical methods, including confounding control", "methods"),
    ("12b", "Subgroups and interactions", "outcomes"),
    ("12c", "Missing data", "limitations"),
    ("12d", "Loss to follow-up", "participants"),
    ("12e", "Sensitivity analyses", "comparison"),
    ("13a", "Numbers at each stage of the study", "participants"),
    ("13b", "Reasons for non-participation at each stage", "participants"),
    ("13c", "Flow diagram", "participants"),
    ("14a", "Characteristics of participants, information on exposures and confounders", "baseline"),
    ("14b", "Participants with missing data for each variable", "baseline"),
    ("14c", "Follow-up time", "participants"),
    ("15", "Outcome events or summary measures over time", "outcomes"),
    ("16a", "Unadjusted and confounder-adjusted estimates with precision", "forest"),
    ("16b", "Category boundaries of continuous variables", "methods"),
    ("16c", "Relative risk translated into absolute risk", "comparison"),
    ("17", "Other analyses: subgroups, interactions, sensitivity", "safety"),
    ("18", "Key results", "summary"),
    ("19", "Limitations: bias and imprecision", "limitations"),
    ("20", "Interpretation", None),
    ("21", "Generalisability", "limitations"),
    ("22", "Funding", None),
]


def strobe_map(section_titles: dict[str, str]) -> list[dict]:
    """Rows ``{"item", "text", "section", "title"}``; title ``None`` where the authors must answer."""
    return [{"item": item, "text": text, "section": section, "title": section_titles.get(section) if section else None}
            for item, text, section in ITEMS]
