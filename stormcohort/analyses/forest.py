"""Every IV-vs-SC estimate in one table: hazard, odds and rate ratios for the forest plot.

Reads the result tables (no I/O here): Cox rows of ``tables/cox.csv`` (HR, its ``outcome``), the Firth rows of
``tables/logistic.csv`` (OR), and ``tables/rate_ratios.csv`` (IRR), keeping the term
``route_group[IV]`` (reference SC) of the ``unadjusted`` and ``adjusted`` models. A row is
``plotted`` when its estimate is finite and positive (CI limits of 0 or infinity are drawn as
arrows); every other row stays in the table with ``estimable = False`` or a note saying why it
is not on the log axis.

Multiplicity (issue 13), said once: each row has a ``family``. The primary estimate of the
configured primary outcome (``analyses.comparison.primary_outcome``, death by day H) is the
target trial's (:mod:`~stormcohort.analyses.comparison`), which this table does not read, so no row
here is ``primary``: the Cox hazard ratios of death by H between the descriptive route groups
(``cohort.exposure``; ever IV by default, immortal time included) are its descriptive counterpart
and are ``exploratory``, with a note saying so. The ``secondary`` family
is one estimate per configured secondary outcome (``analyses.comparison.secondary_outcomes``):
its **adjusted** Firth odds ratio (the model of ``analyses.binary.adjust_for``). Every other row
(unadjusted models, the other odds ratios, hazard and rate ratios) is ``exploratory``.
``p_holm`` is the Holm step-down adjusted p (:func:`stormcohort.stats.holm`, R ``p.adjust(p,
"holm")``) within the secondary family, over its members that have a p (a member that is not
estimable tests nothing); it is empty for every other row, whose raw ``p`` stands unadjusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stormcohort.analyses.common import join_notes
from stormcohort.analyses.result import AnalysisResult
from stormcohort.labels import PRIMARY_COUNTERPART_NOTE, ROUTE_TERM, outcome_label
from stormcohort.stats import holm

MODELS = ("unadjusted", "adjusted")
MEASURES = {"cox": "HR", "logistic": "OR", "rate": "IRR"}
FOREST_COLUMNS = ["section", "outcome", "label", "measure", "model", "family", "estimate", "lcl", "ucl", "p",
                  "p_holm", "n", "events", "estimable", "plotted", "note"]
# the secondary family: one estimate per secondary outcome, this section's estimate of this model
SECONDARY = {"section": "logistic", "model": "adjusted"}

def _need(table: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"{name}: missing column(s) {missing}; has {list(table.columns)}")


def _route_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["term"].eq(ROUTE_TERM) & table["model"].isin(MODELS)]


def _frame(section, outcome, model, estimate, lcl, ucl, p, n, events, note) -> pd.DataFrame:
    return pd.DataFrame({"section": section, "outcome": outcome, "measure": MEASURES[section], "model": model,
                         "estimate": estimate, "lcl": lcl, "ucl": ucl, "p": p, "n": n, "events": events,
                         "note": note})


def families(rows: pd.DataFrame, secondary_outcomes: Sequence[str]) -> pd.Series:
    """``secondary`` for the rows of the secondary family (:data:`SECONDARY` of each secondary
    outcome), else ``exploratory`` (no row of this table is the primary estimate)."""
    secondary = (rows["section"].eq(SECONDARY["section"]) & rows["model"].eq(SECONDARY["model"])
                 & rows["outcome"].isin(list(secondary_outcomes)))
    return pd.Series(np.where(secondary, "secondary", "exploratory"), index=rows.index, dtype=object)


def forest_rows(cox: pd.DataFrame | None, logistic: pd.DataFrame | None, rate_ratios: pd.DataFrame | None,
                cfg: Mapping, labels: Mapping | None = None, *, primary_outcome: str | None = None,
                secondary_outcomes: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of the forest plot: ``section (cox|logistic|rate), outcome, label, measure
    (HR|OR|IRR), model, family, estimate, lcl, ucl, p, p_holm, n, events, estimable, plotted, note``;
    ``labels``: the config's label overrides; ``primary_outcome``: the primary outcome's column
    (``death_<H>d``); ``secondary_outcomes``: the secondary family's outcomes (module docstring)."""
    s = dict(cfg)
    parts = []
    if cox is not None:
        _need(cox, ["outcome", "model", "term", "hr", "hr_lcl", "hr_ucl", "p", "n", "events"], "tables/cox.csv")
        c = _route_rows(cox)
        parts.append(_frame("cox", c["outcome"], c["model"], c["hr"], c["hr_lcl"], c["hr_ucl"], c["p"], c["n"],
                            c["events"], c["note"] if "note" in c else None))
    if logistic is not None:
        _need(logistic, ["outcome", "model", "method", "term", "or", "or_lcl", "or_ucl", "p", "n", "events",
                         "note"], "tables/logistic.csv")
        lg = _route_rows(logistic[logistic["method"].eq("firth")])
        parts.append(_frame("logistic", lg["outcome"], lg["model"], lg["or"], lg["or_lcl"], lg["or_ucl"], lg["p"],
                            lg["n"], lg["events"], lg["note"]))
    if rate_ratios is not None:
        _need(rate_ratios, ["outcome", "model", "term", "irr", "irr_lcl", "irr_ucl", "p", "events_iv", "events_sc",
                            "note"], "tables/rate_ratios.csv")
        rr = _route_rows(rate_ratios)
        if s["rate_outcomes"]:
            order = {o: i for i, o in enumerate(s["rate_outcomes"])}
            rr = rr[rr["outcome"].isin(order)]
            rr = rr.iloc[np.argsort(rr["outcome"].map(order).to_numpy(), kind="stable")]
        events = pd.to_numeric(rr["events_iv"], errors="coerce") + pd.to_numeric(rr["events_sc"], errors="coerce")
        parts.append(_frame("rate", rr["outcome"], rr["model"], rr["irr"], rr["irr_lcl"], rr["irr_ucl"], rr["p"],
                            np.nan, events, rr["note"]))
    if not parts:
        return pd.DataFrame(columns=FOREST_COLUMNS)
    out = pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True)
    for c in ("estimate", "lcl", "ucl", "p", "n", "events"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    out["note"] = out["note"].where(out["note"].notna(), None)
    out["label"] = [outcome_label(str(o), labels) for o in out["outcome"]]
    est = out["estimate"].to_numpy(dtype=float)
    out["estimable"] = np.isfinite(est)
    out["plotted"] = np.isfinite(est) & (est > 0)
    zero = out["estimable"] & ~out["plotted"]
    out.loc[zero, "note"] = [join_notes([n, "estimate 0 or infinite: not on the log axis"])
                             for n in out.loc[zero, "note"]]
    no_reason = ~out["estimable"] & out["note"].isna()
    out.loc[no_reason, "note"] = "not estimable"
    out["family"] = families(out, secondary_outcomes)
    counterpart = out["section"].eq("cox") & out["outcome"].eq(primary_outcome)
    out.loc[counterpart, "note"] = [join_notes([n, PRIMARY_COUNTERPART_NOTE]) for n in out.loc[counterpart, "note"]]
    out["p_holm"] = np.nan
    secondary = out["family"].eq("secondary").to_numpy()
    out.loc[secondary, "p_holm"] = holm(out.loc[secondary, "p"].to_numpy(dtype=float))
    # rows in reading order: HR, OR, IRR; outcomes in the order they came; unadjusted first
    out["_sec"] = out["section"].map({k: i for i, k in enumerate(MEASURES)})
    out["_out"] = out.groupby("section")["outcome"].transform(lambda o: pd.factorize(o)[0])
    out["_mod"] = out["model"].map({m: i for i, m in enumerate(MODELS)})
    out = out.sort_values(["_sec", "_out", "_mod"], kind="mergesort").reset_index(drop=True)
    return out[FOREST_COLUMNS]


def forest_analysis(cox: pd.DataFrame, logistic: pd.DataFrame, rate_ratios: pd.DataFrame, cfg: Mapping,
                    labels: Mapping | None = None, *, primary_outcome: str | None = None,
                    secondary_outcomes: Sequence[str] = (), synthetic: bool = False) -> AnalysisResult:
    """Table ``table`` (``tables/forest.csv``) and the forest plot."""
    rows = forest_rows(cox, logistic, rate_ratios, cfg, labels, primary_outcome=primary_outcome,
                       secondary_outcomes=secondary_outcomes)
    notes = tuple(f"not plotted: {m} {o} {mo}: {n}" for m, o, mo, n in
                  rows.loc[~rows["plotted"], ["measure", "outcome", "model", "note"]].itertuples(index=False))

    def figure():
        from stormcohort.plots.forest import forest_figure

        return forest_figure(rows, synthetic=synthetic)

    return AnalysisResult(tables={"table": rows}, figures={"forest": figure}, notes=notes)
