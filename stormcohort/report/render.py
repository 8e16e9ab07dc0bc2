"""Assemble and render the cohort report: one self-contained HTML page (figures embedded as data
URIs, styles inline, no script, no network), in the order of a STROBE cohort report.

``load_results`` reads the pipeline's outputs under ``results/<run>/``; ``build_context`` turns
them into display tables through a :class:`~stormcohort.report.fmt.Formatter`; ``render``
fills the one template. The full report and the shareable one differ only in the formatter's
disclosure policy and in which figures they carry (``share=True`` leaves out every figure that
draws individual patients or raw counts, and redraws the forest plot from disclosed counts).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stormcohort.report import sections as S
from stormcohort.report.disclosure import Policy
from stormcohort.report.fmt import Formatter
from stormcohort.report.inputs import FIGURES, MODELS, TABLES
from stormcohort.report.limitations import limitations
from stormcohort.report.methods import methods
from stormcohort.report.provenance import lineage_jobs
from stormcohort.report.strobe import strobe_map

TEMPLATES = Path(__file__).parent / "templates"
# figures that draw raw counts or individual patients: never in the shareable report
INDIVIDUAL_OR_COUNTS = {"flow", "km", "cif", "trajectories", "swimmer"}
SECTIONS = {
    "summary": "Summary", "data-sources": "Data sources", "participants": "Participants",
    "baseline": "Baseline characteristics and exposure", "outcomes": "Outcomes", "safety": "Safety",
    "forest": "All IV-vs-SC estimates", "methods": "Methods", "limitations": "Limitations",
    "provenance": "Provenance", "appendix": "Appendix: STROBE items and software",
}
NUMERIC_CELL = re.compile(r"^[<\u2212\-]?[\d,.]+(\s|%|$)|^\u2014$")


def load_results(out: str | Path, centres) -> dict:
    out = Path(out)
    csv = lambda rel: pd.read_csv(out / rel, keep_default_na=True)  # noqa: E731
    data = {t: csv(f"tables/{t}.csv") for t in TABLES}
    data["models"] = {m: json.loads((out / f"models/{m}.json").read_text(encoding="utf-8")) for m in MODELS}
    data["accounting"] = pd.concat([csv(f"clean/{c}/accounting.csv") for c in centres], ignore_index=True)
    data["exclusions"] = pd.concat([csv(f"clean/{c}/exclusions.csv").assign(centre=c) for c in centres],
                                   ignore_index=True)
    data["link"] = csv("linked/link_summary.csv")
    data["attrition"] = csv("cohort/attrition.csv")
    data["dataset"] = csv("cohort/analysis_dataset.csv")
    data["anakinra"] = csv("cohort/anakinra.csv")
    data["figures"] = {x: out / f"figures/{x}.png" for x in FIGURES}
    return data


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def shareable_forest_png(forest: pd.DataFrame, synthetic: bool) -> bytes:
    """The forest plot redrawn from disclosed counts (matplotlib is imported only for this)."""
    from stormcohort.figures import DETERMINISTIC, plt
    from stormcohort.plots.forest import forest_figure

    fig = forest_figure(forest, synthetic=synthetic)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata=DETERMINISTIC["png"])
    plt.close(fig)
    return buf.getvalue()


def build_context(data: Mapping, *, config: Mapping, delivery: Mapping, provenance: Mapping, exposure: pd.DataFrame,
                  policy: Policy, share: bool, diff: str | None = None) -> dict:
    """Everything the template shows. ``diff``: the cohort-level diff page against an older run
    (relative link), when the workflow made one."""
    f = Formatter(policy)
    a = config["analyses"]
    sv, cr, sa = a["survival"], a["competing_risks"], a["safety"]
    ds, models = data["dataset"], data["models"]
    cohort = S.cohort_summary(data["attrition"], f)
    severity, severity_items = S.severity_table(data["table1"], f)
    km_events = data["km"].set_index("group")["events"].reindex(["IV", "SC"]).tolist()
    forest = S.forest_rows(data["forest"], data["rate_ratios"], data["binary_outcomes"], data["km"], sa["conf_level"], f)
    files = [{"centre": c, "name": Path(r["path"]).name, **r} for r in provenance["inputs"]
             for c in config["centres"] if Path(r["path"]).parent.name == c]

    if share:
        figures = {"forest": data_uri(shareable_forest_png(forest, delivery.get("synthetic", False)))}
    else:
        figures = {x: data_uri(Path(p).read_bytes()) for x, p in data["figures"].items()}
    km_deaths = {g: f.count(v) for g, v in zip(("IV", "SC"), km_events)}
    cox = data["cox"]
    route_hr = {m: cox[(cox["model"] == m) & (cox["term"] == S.ROUTE_TERM)] for m in ("unadjusted", "adjusted")}
    hr = {m: (f.unless_small(km_events, f.est_ci(r.iloc[0]["hr"], r.iloc[0]["hr_lcl"], r.iloc[0]["hr_ucl"]))
              if len(r) else "not fitted") for m, r in route_hr.items()}

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
        "key": {"deaths": km_deaths, "hr": hr, "follow_up_days": config["cohort"]["follow_up_days"]},
        "figures": figures,
        "tables": {
            "files": S.files_table(files, data["accounting"], str(delivery.get("extract_date")), f),
            "cleaning": S.cleaning_table(data["accounting"], f),
            "exclusions": S.exclusions_table(data["exclusions"], f),
            "linkage": S.link_table(data["link"], f),
            "attrition": S.attrition_table(data["attrition"], f),
            "follow_up": S.follow_up_table(ds, f),
            "table1": S.table1_table(data["table1"], f),
            "severity": severity,
            "exposure": S.exposure_table(exposure, f),
            "km": S.km_table(data["km"], data["logrank"], f),
            "km_risk": S.risk_table(ds, "time_to_death_days", ds["death_90d"], sv["risk_table_days"], f,
                                    "km-risk", "Number at risk (alive and followed) by day"),
            "cox": S.cox_table(cox, km_events, f),
            "ph": S.ph_table(data["ph_test"], float(sv["ph_alpha"]), km_events, f),
            "cif": S.cif_table(data["cif_summary"], f),
            "cif_risk": S.risk_table(ds, "time_to_fever_days", ds["fever_outcome"].eq(1), cr["risk_table_days"], f,
                                     "cif-risk", "Number still febrile and followed, by day"),
            "binary": S.binary_table(data["binary_outcomes"], data["logistic"], f),
            "trajectories": S.trajectories_table(data["trajectories"], f),
            "ae": S.ae_table(data["safety_events"], int(sa["severe_grade"]), f),
            "rates": S.rates_table(data["safety_rates"], data["rate_ratios"], float(sa["per"]), float(sa["conf_level"]), f),
            "hepatotoxicity": S.hepatotoxicity_table(data["hepatotoxicity"], f),
        },
        "flow": S.flow_boxes(data["attrition"], f),
        "severity_items": severity_items,
        "methods": methods(config, models, delivery),
        "limitations": limitations(config=config, table1=data["table1"], survival_model=models["survival"],
                                   logistic=data["logistic"], binary_counts=data["binary_outcomes"],
                                   ph=data["ph_test"], forest=forest, competing_model=models["competing_risks"],
                                   severity=severity_items, cohort=cohort, synthetic=bool(delivery.get("synthetic")),
                                   f=f),
        "strobe": strobe_map(SECTIONS),
        "provenance": provenance,
        "lineage": lineage_jobs(provenance["lineage"]),
        "config_yaml": yaml.safe_dump(provenance["config"], sort_keys=False, allow_unicode=True, width=100,
                                      default_flow_style=None),
    }


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.tests["numeric"] = lambda s: bool(NUMERIC_CELL.match(str(s)))
    return env


def render(context: Mapping) -> str:
    return environment().get_template("report.html.j2").render(**context)
