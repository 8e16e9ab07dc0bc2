"""Assemble and render the cohort report: one self-contained HTML page (figures embedded as data
URIs, styles inline, no script, no network), in the order of a STROBE cohort report.

``load_results`` reads the report rule's inputs (summary tables, model summaries, figures:
:mod:`~stormcohort.report.inputs`); ``build_context`` turns them into display tables through a
:class:`~stormcohort.report.fmt.Formatter`; ``render`` fills the one template. The full report and
the shareable one differ only in the formatter's disclosure policy, in the estimates they read
(the shareable one takes the rates, rate ratios and forest plot that the ``disclose`` rule
recomputed from the disclosed counts) and in their figures (the shareable one leaves out every
figure that draws individual patients or raw counts, and the comparative-effectiveness section's
figures, drawn from the undisclosed data). Nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml
from jinja2 import Environment

from stormcohort.disclosure import Policy
from stormcohort.report import comparison as C
from stormcohort.report import pages
from stormcohort.report import sections as S
from stormcohort.report.fmt import Formatter
from stormcohort.report.inputs import DISCLOSED, FIGURES, MODELS, TABLES
from stormcohort.report.limitations import limitations
from stormcohort.report.methods import methods
from stormcohort.report.provenance import lineage_jobs
from stormcohort.report.strobe import strobe_map

SECTIONS = {
    "summary": "Summary", "data-sources": "Data sources", "participants": "Participants",
    "baseline": "Baseline characteristics and exposure",
    "comparison": "Comparative effectiveness (target trial emulation)", "outcomes": "Outcomes", "safety": "Safety",
    "forest": "All IV-vs-SC estimates", "methods": "Methods", "limitations": "Limitations",
    "provenance": "Provenance", "appendix": "Appendix: STROBE items and software",
}
NUMERIC_CELL = re.compile(r"^[<\u2212\-]?[\d,.]+(\s|%|$)|^\u2014$")


def load_results(inputs: Mapping) -> dict:
    """The report rule's inputs (named as :func:`~stormcohort.report.inputs.report_inputs` names them,
    plus ``disclosed_*`` for the shareable report) -> tables, models and figure paths."""
    csv = lambda path: pd.read_csv(path, keep_default_na=True)  # noqa: E731
    data = {k: csv(inputs[k]) for k in TABLES}
    data["accounting"] = pd.concat([csv(p) for p in inputs["accounting"]], ignore_index=True)
    data["exclusions"] = pd.concat([csv(p) for p in inputs["exclusions"]], ignore_index=True)
    data["models"] = {m: json.loads(Path(inputs[f"model_{m}"]).read_text(encoding="utf-8")) for m in MODELS}
    data["figures"] = {x: Path(inputs[f"figure_{x}"]) for x in FIGURES}
    names = set(inputs.keys())
    data["disclosed"] = {k: Path(inputs[f"disclosed_{k}"]) if k.startswith("figure_") else csv(inputs[f"disclosed_{k}"])
                         for k in DISCLOSED if f"disclosed_{k}" in names}
    return data


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_context(data: Mapping, *, config: Mapping, delivery: Mapping, provenance: Mapping, policy: Policy,
                  share: bool, diff: str | None = None) -> dict:
    """Everything the template shows. ``share``: the shareable report (``data`` then holds the
    ``disclosed`` estimates); ``diff``: the cohort-level diff page against an older run (relative
    link), when the workflow made one."""
    f = Formatter(policy, config.get("labels"))
    a = config["analyses"]
    sv, sa = a["survival"], a["safety"]
    models = data["models"]
    shown = data["disclosed"] if share else data  # the estimates built on counts
    cohort = S.cohort_summary(data["attrition"], f)
    severity, severity_items = S.severity_table(data["table1"], f)
    km_events = data["km"].set_index("group")["events"].reindex(["IV", "SC"]).tolist()
    forest = shown["forest"]
    files = [{"centre": c, "name": Path(r["path"]).name, **r} for r in provenance["inputs"]
             for c in config["centres"] if Path(r["path"]).parent.name == c]

    if share:
        figures = {"forest": data_uri(data["disclosed"]["figure_forest"].read_bytes())}
    else:
        figures = {x: data_uri(Path(p).read_bytes()) for x, p in data["figures"].items()}
    km_deaths = {g: f.count(v) for g, v in zip(("IV", "SC"), km_events)}
    cox = data["cox"]
    route_hr = {m: cox[(cox["model"] == m) & (cox["term"] == S.ROUTE_TERM)] for m in ("unadjusted", "adjusted")}
    hr = {m: (f.unless_small(km_events, f.est_ci(r.iloc[0]["hr"], r.iloc[0]["hr_lcl"], r.iloc[0]["hr_ucl"]))
              if len(r) else "not fitted") for m, r in route_hr.items()}
    comparison = C.comparison_section(data, f)

    return {
        "sections": SECTIONS,
        "share": share,
        "diff": diff,
        "policy": policy.describe(),
        "synthetic": bool(delivery.get("synthetic")),
        "delivery": delivery,
        "config": config,
        "cohort": cohort,
        "n_centres": len(config["centres"]),
        "key": {"deaths": km_deaths, "hr": hr, "follow_up_days": config["cohort"]["follow_up_days"],
                "primary": {"value": comparison["primary"]["key"], "label": C.key_label(models["comparison"], f)}},
        "comparison": comparison,
        "descriptive_note": C.descriptive_note(config),
        "figures": figures,
        "tables": {
            "files": S.files_table(files, data["accounting"], str(delivery.get("extract_date")), f),
            "cleaning": S.cleaning_table(data["accounting"], f),
            "conflicts": S.conflicts_table(data["exclusions"], data["conflicts"], f),
            "linkage": S.link_table(data["link"], f),
            "attrition": S.attrition_table(data["attrition"], f),
            "follow_up": S.follow_up_table(data["follow_up"], config["cohort"]["follow_up_days"], f),
            "table1": S.table1_table(data["table1"], f),
            "severity": severity,
            "exposure": S.exposure_table(data["exposure"], f),
            "km": S.km_table(data["km"], data["logrank"], f),
            "km_risk": S.risk_table(data["km_risk"], f, "km-risk",
                                    "Number at risk (alive and followed) by day", "tables/km_risk.csv"),
            "cox": S.cox_table(cox, km_events, f),
            "ph": S.ph_table(data["ph_test"], float(sv["ph_alpha"]), km_events, f),
            "cif": S.cif_table(data["cif_summary"], f),
            "cif_risk": S.risk_table(data["cif_risk"], f, "cif-risk",
                                     "Number still febrile and followed, by day", "tables/cif_risk.csv"),
            "cif_tests": S.cif_tests_table(data["cif_tests"], f),
            "binary": S.binary_table(data["binary_outcomes"], data["logistic"], f, forest),
            "trajectories": S.trajectories_table(data["trajectories"], f, models["trajectories"]),
            "ae": S.ae_table(data["safety_events"], int(sa["severe_grade"]), f),
            "rates": S.rates_table(shown["safety_rates"], shown["rate_ratios"], float(sa["per"]), f),
            "first_severe": S.first_severe_table(data["safety_first_severe"], int(sa["severe_grade"]), f),
            "hepatotoxicity": S.hepatotoxicity_table(data["hepatotoxicity"], f),
            "forest": S.forest_table(forest, f),
        },
        "flow": S.flow_boxes(data["attrition"], f),
        "severity_items": severity_items,
        "methods": methods(config, models, delivery),
        "limitations": limitations(config=config, table1=data["table1"], survival_model=models["survival"],
                                   logistic=data["logistic"], binary_counts=data["binary_outcomes"],
                                   ph=data["ph_test"], forest=forest, competing_model=models["competing_risks"],
                                   severity=severity_items, cohort=cohort, synthetic=bool(delivery.get("synthetic")),
                                   f=f, trajectories_model=models["trajectories"],
                                   comparison_model=models["comparison"], overlap=data["overlap"],
                                   primary_withheld=comparison["primary"]["withheld"]),
        "strobe": strobe_map(SECTIONS),
        "provenance": provenance,
        "lineage": lineage_jobs(provenance["lineage"]),
        "config_yaml": yaml.safe_dump(provenance["config"], sort_keys=False, allow_unicode=True, width=100,
                                      default_flow_style=None),
    }


def environment() -> Environment:
    env = pages.environment()
    env.tests["numeric"] = lambda s: bool(NUMERIC_CELL.match(str(s)))
    return env


def render(context: Mapping, template: str = "report.html.j2") -> str:
    return environment().get_template(template).render(**context)


def table1_page(data: Mapping, *, synthetic: bool) -> str:
    """Table 1 on a page of its own (``tables/table1.html``), as the report shows it."""
    return render({"table1": S.table1_table(data["table1"], Formatter()), "synthetic": synthetic, "share": False},
                  "table1.html.j2")
