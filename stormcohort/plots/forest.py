"""Forest plot of every IV-vs-SC ratio (HR, OR, IRR), unadjusted and adjusted side by side.

Each estimate's marker says its multiplicity family (``family`` of ``tables/forest.csv``): a diamond
for the secondary family, whose Holm-adjusted p is printed beside the raw one, a square for an
exploratory estimate (raw p only), a star for a primary one; a footnote says which is which."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from stormcohort.figures import new_figure, synthetic_mark
from stormcohort.labels import PRIMARY_COUNTERPART_NOTE

MODELS = ("unadjusted", "adjusted")
TICKS = [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 1000]
MEASURE_COLOURS = {"HR": "#1f5fa8", "OR": "#7d3c98", "IRR": "#117a65"}
SECTION_TITLES = {"HR": "Hazard ratio (Cox)", "OR": "Odds ratio (Firth logistic)",
                  "IRR": "Incidence rate ratio (exact)"}
FAMILY_MARKERS = {"primary": ("*", 10), "secondary": ("D", 6.5), "exploratory": ("s", 6.5)}
FAMILY_TEXT = {"primary": "primary estimate", "secondary": "secondary family (p\u2095: Holm-adjusted p)",
               "exploratory": "exploratory (p unadjusted)"}


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "\u221e" if x > 0 else "-\u221e"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _limits(rows: pd.DataFrame) -> tuple[float, float]:
    vals = rows.loc[rows["plotted"], ["estimate", "lcl", "ucl"]].to_numpy(dtype=float).ravel()
    vals = vals[np.isfinite(vals) & (vals > 0)]
    lo, hi = (vals.min(), vals.max()) if len(vals) else (0.5, 2.0)
    lo, hi = min(lo, 0.5), max(hi, 2.0)
    lo, hi = max(lo, 1e-3), min(hi, 1e3)  # wider CIs end in an arrow
    return lo / 1.3, hi * 1.3


def forest_figure(rows: pd.DataFrame, synthetic: bool = False):
    """``rows`` as :func:`stormcohort.analyses.forest.forest_rows` returns them."""
    items = rows.drop_duplicates(["section", "outcome"])[["section", "outcome", "label", "measure"]]
    # one line per (measure, outcome), a header line per measure
    lines, y, ypos = [], 0.0, {}
    for measure in dict.fromkeys(items["measure"]):
        lines.append(("header", measure, y))
        y -= 1
        for _, it in items[items["measure"].eq(measure)].iterrows():
            ypos[(it["section"], it["outcome"])] = y
            lines.append(("item", it["label"], y))
            y -= 1
        y -= 0.4
    n_lines = max(len(lines), 1)
    lo, hi = _limits(rows)
    fig = new_figure((14, 1.3 + 0.36 * n_lines))
    gs = fig.add_gridspec(1, 5, width_ratios=[2.3, 2.4, 2.0, 2.4, 2.0], wspace=0.05)
    ax_lab = fig.add_subplot(gs[0])
    panels = [(fig.add_subplot(gs[1]), fig.add_subplot(gs[2])), (fig.add_subplot(gs[3]), fig.add_subplot(gs[4]))]
    y_min = y + 0.4 - 0.6
    for ax in [ax_lab, *[a for pair in panels for a in pair]]:
        ax.set_ylim(y_min, 0.8)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
    ax_lab.set_xlim(0, 1)
    ax_lab.spines["bottom"].set_visible(False)
    ax_lab.set_xticks([])
    for kind, text, yy in lines:
        if kind == "header":
            ax_lab.text(0, yy, SECTION_TITLES.get(text, text), fontsize=9.5, fontweight="bold", va="center",
                        color=MEASURE_COLOURS.get(text, "black"))
        else:
            ax_lab.text(0.04, yy, text, fontsize=9, va="center")
    not_estimable = []
    for (ax, ax_txt), model in zip(panels, MODELS):
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ticks = [t for t in TICKS if lo <= t <= hi]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.axvline(1, color="0.35", linewidth=0.8, linestyle="--", zorder=1)
        ax.set_title(f"{model.capitalize()}", fontsize=10.5)
        ax.set_xlabel("IV vs SC (log scale)\n\u2190 lower with IV    higher with IV \u2192", fontsize=8.5)
        ax.grid(True, axis="x", which="major", color="0.92", linewidth=0.6)
        ax_txt.set_xlim(0, 1)
        ax_txt.set_xticks([])
        ax_txt.spines["bottom"].set_visible(False)
        ax_txt.text(0.05, 0.8, "estimate (95% CI)", fontsize=8, color="0.3", va="center")
        m = rows[rows["model"].eq(model)]
        for key, yy in ypos.items():
            r = m[m["section"].eq(key[0]) & m["outcome"].eq(key[1])]
            if r.empty:
                missing = "not fitted" if key[0] != "rate" else "unadjusted only"
                ax_txt.text(0.05, yy, missing, fontsize=8, color="0.55", va="center")
                continue
            r = r.iloc[0]
            colour = MEASURE_COLOURS.get(r["measure"], "black")
            if not r["plotted"]:
                ax.text(1, yy, "not estimable", fontsize=8, color="0.45", ha="center", va="center",
                        style="italic")
                ax_txt.text(0.05, yy, "not estimable" if not r["estimable"] else
                            f"{_fmt(r['estimate'])} ({_fmt(r['lcl'])}\u2013{_fmt(r['ucl'])})", fontsize=8,
                            color="0.45", va="center")
                reason = str(r["note"]).replace(f"; {PRIMARY_COUNTERPART_NOTE}", "")  # said in its own footnote
                not_estimable.append(f"{r['label']} ({r['measure']}, {model}): {reason}")
                continue
            est, lcl, ucl = float(r["estimate"]), float(r["lcl"]), float(r["ucl"])
            left = lcl if np.isfinite(lcl) and lcl > lo else lo
            right = ucl if np.isfinite(ucl) and ucl < hi else hi
            ax.plot([left, right], [yy, yy], color=colour, linewidth=1.6, zorder=2)
            if left == lo:
                ax.plot(lo, yy, marker="<", color=colour, markersize=6, zorder=3)
            if right == hi:
                ax.plot(hi, yy, marker=">", color=colour, markersize=6, zorder=3)
            marker, size = FAMILY_MARKERS.get(r["family"], FAMILY_MARKERS["exploratory"])
            ax.plot(min(max(est, lo), hi), yy, marker=marker, color=colour, markersize=size, zorder=4,
                    markeredgecolor="black" if r["family"] != "exploratory" else colour, markeredgewidth=0.8)
            p, p_holm = r["p"], r["p_holm"]
            ptxt = f", p={p:.2g}" if np.isfinite(p) else ""
            ptxt += f", p\u2095={p_holm:.2g}" if np.isfinite(p_holm) else ""
            ax_txt.text(0.05, yy, f"{_fmt(est)} ({_fmt(lcl)}\u2013{_fmt(ucl)}){ptxt}", fontsize=8, va="center",
                        fontweight="bold" if r["family"] != "exploratory" else "normal")
    handles = [Line2D([], [], color=c, marker="s", linewidth=1.6, label=SECTION_TITLES[k])
               for k, c in MEASURE_COLOURS.items() if k in set(rows["measure"])]
    families = [k for k in FAMILY_MARKERS if k in set(rows["family"])]
    handles += [Line2D([], [], color="0.35", marker=FAMILY_MARKERS[k][0], markersize=FAMILY_MARKERS[k][1],
                       markeredgecolor="black" if k != "exploratory" else "0.35", linestyle="none",
                       label=FAMILY_TEXT[k]) for k in families]
    fig.legend(handles=handles, loc="upper center", ncol=max(len(handles), 1), frameon=False, fontsize=8.5,
               bbox_to_anchor=(0.55, 0.0), columnspacing=1.5)
    fig.suptitle("IV vs SC anakinra: every estimate (reference SC; 95% CIs; arrows: CI beyond the axis)",
                 fontsize=11.5)
    footnotes = []
    secondary = rows[rows["family"].eq("secondary")]
    if len(secondary):
        footnotes.append("Secondary family: " + ", ".join(
            f"{t.label} ({t.measure}, {t.model})" for t in secondary.itertuples())
            + f"; p\u2095: Holm-adjusted over the {int(secondary['p_holm'].notna().sum())} of them with a p. Every "
            "other estimate is exploratory, its p unadjusted.")
    counterpart = rows[rows["note"].fillna("").astype(str).str.contains(PRIMARY_COUNTERPART_NOTE, regex=False)]
    if len(counterpart):
        footnotes.append(", ".join(dict.fromkeys(f"{t.label} ({t.measure})" for t in counterpart.itertuples()))
                         + ": the descriptive (route group) counterpart of the primary outcome, exploratory; the "
                         "primary estimate is the target trial's.")
    if not_estimable:
        footnotes.append("Not estimable:\n" + "\n".join(f"\u2022 {t}" for t in dict.fromkeys(not_estimable)))
    if footnotes:
        fig.text(0.02, -0.4 / fig.get_figheight(), "\n".join(footnotes), fontsize=7.5, va="top", ha="left",
                 color="0.3", wrap=True)
    if rows.empty:
        ax_lab.text(0.5, -0.5, "no estimates available", ha="center", va="center", color="0.4")
    if synthetic:
        synthetic_mark(fig)
    return fig
