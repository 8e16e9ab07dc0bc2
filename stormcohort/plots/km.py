"""Kaplan-Meier figure by route: curves with 95% bands, censor marks, numbers at risk, log-rank p.

Also the shared pieces of the time-to-event figures (route colours, the risk table under the
axis) used by :mod:`stormcohort.plots.cif`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stormcohort.figures import new_figure, synthetic_mark
from stormcohort.labels import DAY_AXIS as X_LABEL
from stormcohort.labels import GROUP_LABELS as ROUTE_LABELS
from stormcohort.labels import ROUTE_COLOURS, ROUTES


def format_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "NA"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def time_event_axes(n_groups: int, width: float = 7.5):
    """A main axis and a risk-table axis below it sharing the x axis."""
    table_height = 0.35 + 0.3 * n_groups
    fig = new_figure((width, 4.6 + table_height))
    gs = fig.add_gridspec(2, 1, height_ratios=[4.6, table_height], hspace=0.3)
    ax = fig.add_subplot(gs[0])
    ax_risk = fig.add_subplot(gs[1], sharex=ax)
    return fig, ax, ax_risk


def add_risk_table(ax_risk, risk: pd.DataFrame, groups: Sequence[str], days: Sequence[float],
                   title: str = "Number at risk") -> None:
    """Numbers at risk by group (rows) at ``days`` (columns), aligned with the main x axis."""
    for i, g in enumerate(groups):
        y = len(groups) - 1 - i
        sub = risk[risk["group"] == g].set_index("time")["n_risk"]
        for t in days:
            n = sub.get(float(t), 0)
            ax_risk.text(t, y, f"{int(n)}", ha="center", va="center", fontsize=9, color=ROUTE_COLOURS.get(g, "k"))
    ax_risk.set_ylim(-0.6, len(groups) - 0.4)
    ax_risk.set_yticks(range(len(groups)))
    ax_risk.set_yticklabels([ROUTE_LABELS.get(g, g) for g in reversed(list(groups))], fontsize=9)
    for lab, g in zip(ax_risk.get_yticklabels(), reversed(list(groups))):
        lab.set_color(ROUTE_COLOURS.get(g, "k"))
        lab.set_fontweight("bold")
    ax_risk.tick_params(axis="both", length=0)
    ax_risk.tick_params(axis="y", pad=14)
    ax_risk.tick_params(axis="x", labelbottom=False)
    for side in ("top", "right", "bottom", "left"):
        ax_risk.spines[side].set_visible(False)
    ax_risk.set_title(title, fontsize=9, loc="left", pad=2)


def step_from_zero(times: np.ndarray, values: np.ndarray, start: float) -> tuple[np.ndarray, np.ndarray]:
    """Prepend (0, ``start``) so a step curve starts there (a jump at day 0 stays visible)."""
    return np.concatenate([[0.0], times]), np.concatenate([[start], values])


def km_figure(curves: pd.DataFrame, risk_table: pd.DataFrame, km: pd.DataFrame, logrank: pd.DataFrame,
              *, days: Sequence[float], horizon: int, synthetic: bool = False, groups: Sequence[str] = ROUTES):
    """KM curves by route with 95% CI bands and censor marks, risk table and log-rank p.

    ``curves``: stats.kaplan_meier output; ``risk_table``: stats.numbers_at_risk output;
    ``km``/``logrank``: the tables of :func:`stormcohort.analyses.survival.survival_analysis`
    (for n, deaths and p in the legend); ``horizon``: H, the follow-up in days. Empty groups are
    listed in the legend as such.
    """
    fig, ax, ax_risk = time_event_axes(len(groups))
    counts = km.set_index("group")
    x_max = float(max(days)) if len(days) else float(curves["time"].max() if len(curves) else 1)
    for g in groups:
        colour = ROUTE_COLOURS.get(g, "k")
        c = curves[curves["group"] == g].sort_values("time")
        n = int(counts.loc[g, "n"]) if g in counts.index else 0
        deaths = int(counts.loc[g, "events"]) if g in counts.index else 0
        label = f"{ROUTE_LABELS.get(g, g)} (n = {n}, deaths = {deaths})"
        if c.empty:
            ax.plot([], [], color=colour, lw=2, label=f"{label}: no patients")
            continue
        t = c["time"].to_numpy(dtype=float)
        tt, surv = step_from_zero(t, c["surv"].to_numpy(dtype=float), 1.0)
        _, lo = step_from_zero(t, c["surv_lcl"].to_numpy(dtype=float), 1.0)
        _, hi = step_from_zero(t, c["surv_ucl"].to_numpy(dtype=float), 1.0)
        ax.step(tt, surv, where="post", color=colour, lw=2, label=label)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(tt, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), step="post",
                        color=colour, alpha=0.15, lw=0)
        cens = c[c["n_censor"] > 0]
        ax.plot(cens["time"], cens["surv"], ls="none", marker="|", ms=9, mew=1.5, color=colour)
    ax.plot([], [], ls="none", marker="|", ms=9, mew=1.5, color="0.3", label="Censored")
    ax.fill_between([], [], [], color="0.3", alpha=0.15, lw=0, label="95% CI (log)")

    p, note = logrank["p"].iloc[0], logrank["note"].iloc[0]
    # a reason's parenthesis stays in tables/logrank.csv; wrapped to stay left of the legend
    text = (f"Log-rank p {format_p(p)}" if np.isfinite(p)
            else textwrap.fill(f"Log-rank test {str(note).split(' (')[0]}", 44))
    ax.text(0.02, 0.04, text, transform=ax.transAxes, fontsize=10, ha="left", va="bottom",
            bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.7"))
    ax.set_ylim(0, 1.03)
    ax.set_xlim(-0.03 * x_max, x_max * 1.03)
    ax.set_xticks(list(days))
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel("Survival probability")
    ax.set_title(f"Survival to day {int(horizon)} by anakinra route (Kaplan-Meier)", fontsize=11)
    ax.grid(True, color="0.9", lw=0.6)
    ax.legend(loc="lower right", fontsize=9, frameon=True)
    add_risk_table(ax_risk, risk_table, groups, days)
    if synthetic:
        synthetic_mark(fig)
    return fig
