"""Figures. Deterministic: no timestamps in the files, fixed sizes and fonts."""

from __future__ import annotations

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Figures are built with matplotlib's object API, not pyplot: nothing is registered with a GUI
# backend, nothing needs closing, and each rule is spared pyplot's import (~0.15 s).

DPI = 150
# PNG and SVG writers otherwise stamp the date and software version into the file.
DETERMINISTIC = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def new_figure(figsize) -> Figure:
    """A figure of ``figsize`` inches, not tied to pyplot."""
    return Figure(figsize=figsize)


def save(fig: Figure, *paths) -> None:
    """Write one built figure in each path's format (PNG, SVG), cropped to what is drawn."""
    matplotlib.rcParams["svg.hashsalt"] = "stormcohort"
    # The crop ("tight" box) measured once, as the PNG's renderer draws it, and used for every
    # format: bbox_inches="tight" would draw the figure once more per format to measure it.
    fig.set_dpi(DPI)
    tight = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    for path in paths:
        fmt = str(path).rsplit(".", 1)[-1]
        fig.savefig(path, dpi=DPI, bbox_inches=tight, metadata=DETERMINISTIC[fmt])


def synthetic_mark(fig) -> None:
    fig.text(0.99, 0.01, "SYNTHETIC DATA", ha="right", va="bottom", fontsize=9, color="#b00020", alpha=0.8)


def flow_diagram(attrition: pd.DataFrame, synthetic: bool):
    """STROBE-style flow: the main column counts what remains, side boxes what left and why."""
    steps = attrition[~attrition["step"].str.startswith("route_")].reset_index(drop=True)
    # The last exclusion's remainder is the final cohort: draw that box once.
    steps = steps.drop(index=len(steps) - 2).reset_index(drop=True)
    groups = attrition[attrition["step"].str.startswith("route_")]
    count = lambda v: f"{int(v):,}"  # noqa: E731 - counts come back from CSV as floats
    n_main = len(steps)
    fig = new_figure((8.5, 1.05 * n_main + 1.6))
    ax = fig.subplots()
    ax.set_axis_off()
    height = n_main + 1.2
    ax.set_xlim(0, 10)
    ax.set_ylim(-1.3, height)
    box = dict(boxstyle="round,pad=0.4", facecolor="#eef3fb", edgecolor="#2b4a7a")
    side = dict(boxstyle="round,pad=0.3", facecolor="#fff4e5", edgecolor="#a86b00")
    y_prev = None
    excluded = attrition.set_index("step")
    for i, r in steps.iterrows():  # one box per attrition step (a handful)
        y = height - 0.9 - i
        if r["step"] in ("all_admissions", "final_cohort"):
            text = f"{r['description']}\nn = {count(r['n_remaining'])}"
        else:
            unit = "admissions" if i == 0 else "episodes"
            text = f"n = {count(r['n_remaining'])} {unit}"
        ax.text(3.2, y, text, ha="center", va="center", fontsize=9, bbox=box)
        if y_prev is not None:
            ax.annotate("", xy=(3.2, y + 0.25), xytext=(3.2, y_prev - 0.25),
                        arrowprops=dict(arrowstyle="->", color="#2b4a7a"))
        y_prev = y
    # Side boxes: what left between consecutive boxes, and why.
    leaving = excluded.loc[[s for s in excluded.index if s not in ("all_admissions", "final_cohort")
                            and not s.startswith("route_")]]
    for i, (step, r) in enumerate(leaving.iterrows()):
        y = height - 0.9 - i - 0.5
        label = "Merged" if step == "transfer_merged" else "Excluded"
        ax.annotate(f"{label}: {r['description']}\nn = {count(r['n_excluded'])}", xy=(3.2, y), xytext=(5.2, y),
                    va="center", fontsize=8.5, bbox=side, arrowprops=dict(arrowstyle="<-", color="#a86b00"))
    n_final = int(steps.iloc[-1]["n_remaining"]) or 1
    for j, (_, g) in enumerate(groups.iterrows()):
        x = 1.6 + 3.2 * j
        ax.text(x, -0.8, f"{g['description']}\nn = {count(g['n_remaining'])} ({100 * g['n_remaining'] / n_final:.0f}%)",
                ha="center", va="center", fontsize=9, bbox=box)
        ax.annotate("", xy=(x, -0.5), xytext=(3.2, y_prev - 0.3), arrowprops=dict(arrowstyle="->", color="#2b4a7a"))
    ax.set_title("Participant flow (STROBE)", fontsize=11)
    if synthetic:
        synthetic_mark(fig)
    return fig
