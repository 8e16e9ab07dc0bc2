"""Figures of the target-trial emulation (rule ``comparison``): weighted survival per strategy,
covariate balance (love plot), propensity and preference score overlap, and the sensitivity
forest plot. Pure functions of the rule's tables, each returning a matplotlib figure; the route
colours come from :mod:`stormcohort.labels`, and ``synthetic`` adds the synthetic-data mark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from stormcohort.figures import new_figure, synthetic_mark
from stormcohort.labels import DAY_AXIS, ROUTE_COLOURS, ROUTES, WEIGHTING_LABELS, covariate_label, sensitivity_label

BALANCE_THRESHOLD = 0.1
EQUIPOISE = (0.3, 0.7)  # preference score band of clinical equipoise (Walker et al. 2013)
BINS = np.linspace(0.0, 1.0, 21)
HR_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
HR_DECADES = [0.01, 0.1, 1, 10, 100]
PRIMARY_COLOUR = "#000000"
OTHER_COLOUR = "#4D4D4D"
UNADJUSTED_COLOUR = "#999999"


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=10)


def _finite(x) -> bool:
    try:
        return x is not None and bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def _strategy_label(strategy: str, grace_days: int | None) -> str:
    if grace_days is None:
        return f"{strategy} strategy"
    if strategy == "IV":
        return f"IV strategy: IV started by day {grace_days}" if grace_days else "IV strategy: first dose IV"
    return f"SC strategy: no IV through day {grace_days}" if grace_days else "SC strategy: first dose SC"


# --------------------------------------------------------------------------- weighted survival

def survival_figure(curves: pd.DataFrame, synthetic: bool = False, *, grace_days: int | None = None,
                    horizon: int | None = None):
    """Weighted Kaplan-Meier survival of each strategy's clones.

    ``curves``: columns ``strategy`` (IV, SC), ``time`` (days), ``surv`` (the weighted step
    function's value from that time on); each curve is drawn from (0, 1). ``grace_days`` and
    ``horizon`` (the follow-up in days) only label the figure and set the axis."""
    fig = new_figure((7.5, 4.8))
    ax = fig.subplots()
    c = curves.copy() if len(curves) else pd.DataFrame(columns=["strategy", "time", "surv"])
    c["time"] = pd.to_numeric(c["time"], errors="coerce")
    c["surv"] = pd.to_numeric(c["surv"], errors="coerce")
    c = c[np.isfinite(c["time"].astype(float)) & np.isfinite(c["surv"].astype(float))]
    x_max = float(horizon) if horizon else (float(c["time"].max()) if len(c) else 1.0)
    drawn = 0
    for g in ROUTES:
        d = c[c["strategy"].astype(str).eq(g)].sort_values("time", kind="mergesort")
        label = _strategy_label(g, grace_days)
        if d.empty:
            ax.plot([], [], color=ROUTE_COLOURS[g], lw=2, label=f"{label}: no curve")
            continue
        t = np.concatenate([[0.0], d["time"].to_numpy(dtype=float), [x_max]])
        s = d["surv"].to_numpy(dtype=float)
        s = np.concatenate([[1.0], s, [s[-1]]])
        keep = t <= x_max
        ax.step(t[keep], s[keep], where="post", color=ROUTE_COLOURS[g], lw=2, label=label)
        drawn += 1
    if grace_days:
        ax.axvspan(0, grace_days, color="0.9", lw=0, zorder=0, label=f"Grace period (days 0 to {grace_days})")
    if not drawn:
        _empty(ax, "no survival curve to draw (not estimable)")
    ax.set_ylim(0, 1.03)
    ax.set_xlim(-0.02 * x_max, x_max * 1.02)
    ax.set_xlabel(DAY_AXIS)
    ax.set_ylabel("Survival probability (weighted)")
    until = f" to day {int(horizon)}" if horizon else ""
    ax.set_title(f"Survival{until} under each strategy (clone-censor-weight, weighted Kaplan-Meier)", fontsize=10.5)
    ax.grid(True, color="0.9", lw=0.6)
    ax.legend(loc="lower left", fontsize=8.5, frameon=True)
    if synthetic:
        synthetic_mark(fig)
    return fig


# --------------------------------------------------------------------------- love plot

def love_figure(balance: pd.DataFrame, synthetic: bool = False):
    """Absolute differences between the routes per covariate, before (hollow grey) and after
    (filled) weighting, one panel per weighting (``balance.csv``: ``weighting, covariate,
    diff_type, diff_unadj, diff_adj``); dashed lines at 0.1. A dagger marks raw differences in
    proportions (binary covariates); the others are standardised mean differences."""
    b = balance.copy() if len(balance) else pd.DataFrame(columns=["weighting", "covariate", "diff_type",
                                                                   "diff_unadj", "diff_adj"])
    for col in ("diff_unadj", "diff_adj"):
        b[col] = pd.to_numeric(b[col], errors="coerce").abs()
    weightings = list(dict.fromkeys(b["weighting"].astype(str)))
    # one covariate order for every panel: the first weighting's largest unadjusted difference on top
    order = (b.drop_duplicates("covariate").sort_values("diff_unadj", ascending=True, kind="mergesort",
                                                         na_position="first")["covariate"].astype(str).tolist())
    raw = set(b.loc[b["diff_type"].astype(str).eq("raw"), "covariate"].astype(str))
    labels = [covariate_label(c) + (" \u2020" if c in raw else "") for c in order]
    n_panels = max(len(weightings), 1)
    height = 1.8 + 0.3 * max(len(order), 3)  # inches: 0.7 above the panels, 0.95 below
    fig = new_figure((3.4 + 3.0 * n_panels, height))
    axes = fig.subplots(1, n_panels, sharey=True, squeeze=False)
    axes = axes[0]
    values = b[["diff_unadj", "diff_adj"]].to_numpy(dtype=float).ravel()
    values = values[np.isfinite(values)]
    x_max = max(0.3, float(values.max()) * 1.1) if len(values) else 0.3
    y = {c: i for i, c in enumerate(order)}
    for ax, w in zip(axes, weightings or [None]):
        ax.axvline(BALANCE_THRESHOLD, color="0.4", lw=0.8, ls="--", zorder=1)
        ax.axvline(0, color="0.6", lw=0.6, zorder=1)
        ax.set_xlim(-0.02 * x_max, x_max)
        ax.grid(True, axis="y", color="0.93", lw=0.6)
        ax.set_xlabel("Absolute difference IV vs SC", fontsize=9)
        if w is None:
            _empty(ax, "no balance table (not estimable)")
            ax.set_yticks([])
            continue
        ax.set_title(WEIGHTING_LABELS.get(w, w), fontsize=10)
        d = b[b["weighting"].astype(str).eq(w)]
        yy = d["covariate"].astype(str).map(y).to_numpy(dtype=float)
        ax.scatter(d["diff_unadj"], yy, s=28, facecolors="white", edgecolors=UNADJUSTED_COLOUR, linewidths=1.2,
                   zorder=3)
        ax.scatter(d["diff_adj"], yy, s=28, color=PRIMARY_COLOUR, zorder=4)
    axes[0].set_yticks(range(len(order)))
    axes[0].set_yticklabels(labels, fontsize=8.5)
    axes[0].set_ylim(-0.7, max(len(order), 1) - 0.3)
    handles = [Line2D([], [], ls="none", marker="o", mfc="white", mec=UNADJUSTED_COLOUR, label="Before weighting"),
               Line2D([], [], ls="none", marker="o", color=PRIMARY_COLOUR, label="After weighting"),
               Line2D([], [], color="0.4", ls="--", lw=0.8, label=f"{BALANCE_THRESHOLD:g}")]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=8.5, bbox_to_anchor=(0.55, 0.0))
    fig.suptitle("Covariate balance between the routes (SMD; \u2020 raw difference in proportions)", fontsize=10.5,
                 y=1 - 0.08 / height)
    fig.subplots_adjust(top=1 - 0.7 / height, bottom=0.95 / height, wspace=0.06)
    if synthetic:
        synthetic_mark(fig)
    return fig


# --------------------------------------------------------------------------- overlap

def overlap_figure(scores: pd.DataFrame, synthetic: bool = False):
    """Mirrored histograms by route of the propensity score (left) and the preference score (right:
    the propensity score adjusted for the share treated IV, Walker et al. 2013), IV above the axis
    and SC below; the equipoise band 0.3 to 0.7 of the preference score shaded. ``scores``:
    columns ``group`` (IV, SC), ``ps``, ``preference``."""
    s = scores.copy() if len(scores) else pd.DataFrame(columns=["group", "ps", "preference"])
    fig = new_figure((10, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    top = 1
    panels = (("ps", "Propensity score P(IV | covariates)"), ("preference", "Preference score"))
    counts = {}
    for col, _ in panels:
        for g in ROUTES:
            x = pd.to_numeric(s.loc[s["group"].astype(str).eq(g), col], errors="coerce").to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            counts[(col, g)] = np.histogram(np.clip(x, 0, 1), bins=BINS)[0]
            top = max(top, int(counts[(col, g)].max()) if len(x) else 0)
    width = BINS[1] - BINS[0]
    for ax, (col, title) in zip(axes, panels):
        if col == "preference":
            ax.axvspan(*EQUIPOISE, color="0.88", lw=0, zorder=0, label="Equipoise (0.3 to 0.7)")
        for g, sign in zip(ROUTES, (1, -1)):
            h = counts[(col, g)]
            ax.bar(BINS[:-1], sign * h, width=width, align="edge", color=ROUTE_COLOURS[g], alpha=0.85,
                   edgecolor="white", lw=0.5, label=f"{g}", zorder=2)
        ax.axhline(0, color="0.3", lw=0.8, zorder=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(-top * 1.15, top * 1.15)
        ax.set_xlabel(title, fontsize=9.5)
        ax.grid(True, axis="x", color="0.93", lw=0.6)
        if col not in s or not pd.to_numeric(s[col], errors="coerce").notna().any():
            _empty(ax, "no scores (not estimable)")
        ax.text(0.01, 0.97, "IV", transform=ax.transAxes, va="top", color=ROUTE_COLOURS["IV"], fontweight="bold")
        ax.text(0.01, 0.03, "SC", transform=ax.transAxes, va="bottom", color=ROUTE_COLOURS["SC"], fontweight="bold")
    axes[0].set_ylabel("Patients (IV above, SC below)", fontsize=9.5)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    handles = [Patch(color=ROUTE_COLOURS[g], label=g) for g in ROUTES] + [Patch(color="0.88", label="Equipoise "
                                                                                 "(preference 0.3 to 0.7)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=8.5, bbox_to_anchor=(0.5, -0.03))
    fig.suptitle("Overlap of the routes: propensity and preference scores", fontsize=10.5)
    fig.subplots_adjust(bottom=0.2, wspace=0.08)
    if synthetic:
        synthetic_mark(fig)
    return fig


# --------------------------------------------------------------------------- sensitivity forest

def _hr_limits(d: pd.DataFrame) -> tuple[float, float]:
    vals = d[["estimate", "lcl", "ucl"]].to_numpy(dtype=float).ravel()
    vals = vals[np.isfinite(vals) & (vals > 0)]
    lo, hi = (vals.min(), vals.max()) if len(vals) else (0.5, 2.0)
    lo, hi = max(min(lo, 0.5), 0.01), min(max(hi, 2.0), 100)
    return lo / 1.25, hi * 1.25


def _rd_limits(d: pd.DataFrame) -> tuple[float, float]:
    vals = 100 * d[["estimate", "lcl", "ucl"]].to_numpy(dtype=float).ravel()
    vals = vals[np.isfinite(vals)]
    m = max(10.0, float(np.abs(vals).max())) if len(vals) else 10.0
    return -1.1 * m, 1.1 * m


def _ci_text(est, lcl, ucl, rd: bool) -> str:
    if not _finite(est):
        return "not estimable"
    def f(v):
        if rd:
            return f"{100 * v:+.1f}".replace("-", "\u2212")
        return f"{v:.2f}" if v < 100 else f"{v:.0f}"

    return f"{f(est)} ({f(lcl)} to {f(ucl)})" if _finite(lcl) and _finite(ucl) else f(est)


def sensitivity_forest_figure(sensitivity: pd.DataFrame, synthetic: bool = False):
    """The primary outcome's IV-vs-SC estimate under each analysis (``sensitivity.csv``), one row per
    analysis, the primary first and highlighted: hazard ratios on a log axis and, when the table
    has them, risk differences (percentage points) in a second panel; CIs beyond the axis end in
    an arrow, rows without an estimate say so."""
    s = sensitivity.copy() if len(sensitivity) else pd.DataFrame(columns=["analysis", "measure", "estimate", "lcl",
                                                                          "ucl"])
    for col in ("estimate", "lcl", "ucl"):
        s[col] = pd.to_numeric(s[col], errors="coerce")
    s["analysis"] = s["analysis"].astype(str)
    analyses = list(dict.fromkeys(s["analysis"]))
    analyses = [a for a in analyses if a == "primary"] + [a for a in analyses if a != "primary"]
    measures = [m for m in ("hazard_ratio", "risk_difference") if m in set(s["measure"].astype(str))] or [
        "hazard_ratio"]
    n = max(len(analyses), 1)
    height = 1.6 + 0.38 * n  # inches: 0.65 above the rows, 0.75 below
    fig = new_figure((2.6 + 4.4 * len(measures), height))
    gs = fig.add_gridspec(1, 1 + 2 * len(measures), width_ratios=[2.4] + [2.5, 1.9] * len(measures), wspace=0.04,
                          top=1 - 0.65 / height, bottom=0.75 / height, left=0.01, right=0.99)
    ax_lab = fig.add_subplot(gs[0])
    axes = [(fig.add_subplot(gs[1 + 2 * i]), fig.add_subplot(gs[2 + 2 * i])) for i in range(len(measures))]
    ypos = {a: -i for i, a in enumerate(analyses)}
    for ax in [ax_lab, *[a for pair in axes for a in pair]]:
        ax.set_ylim(-n + 0.4, 0.9)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        if "primary" in ypos:
            ax.axhspan(-0.45, 0.45, color="#e8eef7", lw=0, zorder=0)
    for ax in (ax_lab, *[t for _, t in axes]):
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        ax.spines["bottom"].set_visible(False)
    for a, yy in ypos.items():
        primary = a == "primary"
        ax_lab.text(0.02, yy, sensitivity_label(a), fontsize=8.8, va="center",
                    fontweight="bold" if primary else "normal")
    if not analyses:
        ax_lab.text(0.5, -0.2, "no estimates available", ha="center", va="center", color="0.4")
    for (ax, ax_txt), measure in zip(axes, measures):
        rd = measure == "risk_difference"
        d = s[s["measure"].astype(str).eq(measure)]
        lo, hi = _rd_limits(d) if rd else _hr_limits(d)
        null = 0.0 if rd else 1.0
        if not rd:
            ax.set_xscale("log")
            ticks = [t for t in HR_TICKS if lo <= t <= hi]
            ax.xaxis.set_major_locator(FixedLocator(ticks if len(ticks) <= 7 else [t for t in HR_DECADES
                                                                                  if lo <= t <= hi]))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(lo, hi)
        ax.axvline(null, color="0.35", lw=0.8, ls="--", zorder=1)
        ax.grid(True, axis="x", color="0.92", lw=0.6)
        ax.set_title("Hazard ratio IV vs SC" if not rd else "Risk difference IV \u2212 SC", fontsize=10)
        ax.set_xlabel("log scale; \u2190 lower with IV" if not rd else "percentage points; \u2190 lower with IV",
                      fontsize=8.5)
        ax_txt.text(0.04, 0.75, "estimate (95% CI)", fontsize=8, color="0.3", va="center")
        scale = 100.0 if rd else 1.0
        for a, yy in ypos.items():
            r = d[d["analysis"].eq(a)]
            if r.empty:
                ax_txt.text(0.04, yy, "\u2014", fontsize=8, color="0.55", va="center")
                continue
            r = r.iloc[0]
            est, lcl, ucl = (scale * r["estimate"], scale * r["lcl"], scale * r["ucl"])
            ax_txt.text(0.04, yy, _ci_text(r["estimate"], r["lcl"], r["ucl"], rd), fontsize=8, va="center",
                        color="0.45" if not _finite(est) else "black",
                        fontweight="bold" if a == "primary" else "normal")
            if not _finite(est) or (not rd and est <= 0):
                ax.text(np.sqrt(lo * hi) if not rd else 0.0, yy, "not estimable", fontsize=8, color="0.45",
                        ha="center", va="center", style="italic")
                continue
            colour = PRIMARY_COLOUR if a == "primary" else OTHER_COLOUR
            left = lcl if _finite(lcl) and lcl > lo else lo
            right = ucl if _finite(ucl) and ucl < hi else hi
            ax.plot([left, right], [yy, yy], color=colour, lw=1.8 if a == "primary" else 1.3, zorder=2)
            if left == lo:
                ax.plot(lo, yy, marker="<", color=colour, markersize=6, zorder=3)
            if right == hi:
                ax.plot(hi, yy, marker=">", color=colour, markersize=6, zorder=3)
            ax.plot(min(max(est, lo), hi), yy, marker="D" if a == "primary" else "s", color=colour,
                    markersize=8 if a == "primary" else 5.5, zorder=4)
    fig.suptitle("Primary outcome under each analysis (primary first; 95% CIs)", fontsize=10.5, y=1 - 0.08 / height)
    if synthetic:
        synthetic_mark(fig)
    return fig
