"""Swimmer plot: one lane per patient, anakinra days coloured by route, events marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from stormcohort.figures import new_figure, synthetic_mark
from stormcohort.labels import DAY_AXIS, DISCHARGE_COLOUR, GROUP, ROUTE_COLOURS, SEVERE_COLOUR
from stormcohort.labels import ROUTES as GROUP_ORDER


def lanes(patients: pd.DataFrame, max_patients: int) -> pd.DataFrame:
    """Patients shown and their lane (y), sorted by route group, then days on anakinra
    (longest at the top of each block), then key. When there are more than ``max_patients``,
    each group keeps its share (at least one) of the first patients by key."""
    p = patients.copy()
    total = len(p)
    if total > max_patients:
        keep = []
        for _, d in p.groupby(GROUP, sort=True):
            k = max(1, int(round(max_patients * len(d) / total)))
            keep.append(d.sort_values("patient_key").head(k))
        p = pd.concat(keep)
    p["_g"] = p[GROUP].map({g: i for i, g in enumerate(GROUP_ORDER)}).fillna(len(GROUP_ORDER))
    p = p.sort_values(["_g", "days_on", "follow_up", "patient_key"], ascending=[True, False, False, True],
                      kind="mergesort").reset_index(drop=True)
    gap = p["_g"].ne(p["_g"].shift()).cumsum() - 1  # one empty lane between groups
    p["lane"] = -(np.arange(len(p)) + 1.0 + 1.5 * gap.to_numpy())
    return p.drop(columns="_g")


def swimmer_figure(data: dict, synthetic: bool = False, max_patients: int = 120, severe_grade: int = 3,
                   horizon: float | None = 90):
    """``data`` as :func:`stormcohort.analyses.safety.swimmer_data` returns it."""
    all_patients = data["patients"]
    p = lanes(all_patients, max_patients)
    lane = p.set_index("patient_key")["lane"]
    height = min(max(3.5, 0.16 * len(p) + 1.8), 24)
    fig = new_figure((9.5, height))
    ax = fig.subplots()
    # follow-up: thin grey line from day 0 to death / censoring
    fu = p["follow_up"].fillna(0).to_numpy()
    ax.add_collection(LineCollection([[(0, y), (x, y)] for x, y in zip(fu, p["lane"])], colors="0.75",
                                     linewidths=1.0, zorder=1))
    seg = data["segments"]
    seg = seg[seg["patient_key"].isin(lane.index)]
    for route in GROUP_ORDER:
        s = seg[seg["route"].eq(route)]
        y = s["patient_key"].map(lane).to_numpy()
        # inclusive calendar days s..e drawn as [s, e + 1)
        bars = [[(a, b), (c + 1, b)] for a, c, b in zip(s["s"].to_numpy(), s["e"].to_numpy(), y)]
        ax.add_collection(LineCollection(bars, colors=ROUTE_COLOURS[route], linewidths=5.5, zorder=2,
                                         capstyle="butt"))
    ev = data["events"]
    ev = ev[ev["patient_key"].isin(lane.index)]
    severe = ev["grade"].ge(severe_grade)
    y_ev = ev["patient_key"].map(lane)
    ax.scatter(ev.loc[~severe, "day"], y_ev[~severe], marker="o", s=16, facecolor="white", edgecolor="0.15",
               linewidth=0.9, zorder=4)
    ax.scatter(ev.loc[severe, "day"], y_ev[severe], marker="D", s=26, color=SEVERE_COLOUR, edgecolor="0.1",
               linewidth=0.6, zorder=5)
    died = p["died"].eq(1)
    ax.scatter(p.loc[died, "follow_up"], p.loc[died, "lane"], marker="X", s=55, color="black", zorder=6)
    alive = ~died
    ax.scatter(p.loc[alive, "follow_up"], p.loc[alive, "lane"], marker=">", s=22, color="0.45", zorder=3)
    disc = p["discharge"].notna() & ~(died & (p["discharge"] >= p["follow_up"]))
    ax.scatter(p.loc[disc, "discharge"], p.loc[disc, "lane"], marker="|", s=70, color=DISCHARGE_COLOUR, linewidth=1.8,
               zorder=3)
    # group labels
    for g in GROUP_ORDER:
        ys = p.loc[p[GROUP].eq(g), "lane"]
        if len(ys):
            n_all = int(all_patients[GROUP].eq(g).sum())
            shown = f"{len(ys)} of {n_all}" if len(ys) < n_all else f"n={n_all}"
            ax.text(-0.012, ys.mean(), f"{g} group\n({shown})", transform=ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize=9, fontweight="bold", color=ROUTE_COLOURS[g])
    ax.set_yticks([])
    ax.set_ylim(p["lane"].min() - 0.8 if len(p) else -1, -0.2)
    x_max = max([float(np.nanmax(fu)) if len(fu) else 0, float(ev["day"].max()) if len(ev) else 0, 1.0])
    if horizon:
        x_max = min(max(x_max, 1.0), float(horizon))
    ax.set_xlim(-0.5, x_max + 1.5)
    ax.set_xlabel(DAY_AXIS)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.grid(True, axis="x", color="0.92", linewidth=0.6)
    ax.set_axisbelow(True)
    handles = [
        Patch(color=ROUTE_COLOURS["IV"], label="anakinra IV"),
        Patch(color=ROUTE_COLOURS["SC"], label="anakinra SC"),
        Line2D([], [], color="0.75", linewidth=1.0, label="follow-up"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="0.15",
               label=f"adverse event grade <{severe_grade}"),
        Line2D([], [], marker="D", linestyle="", color=SEVERE_COLOUR, markeredgecolor="0.1",
               label=f"adverse event grade \u2265{severe_grade}"),
        Line2D([], [], marker="|", linestyle="", color=DISCHARGE_COLOUR, markersize=10, markeredgewidth=1.8,
               label="discharge"),
        Line2D([], [], marker="X", linestyle="", color="black", markersize=8, label="death"),
        Line2D([], [], marker=">", linestyle="", color="0.45", label="censored alive (end of follow-up)"),
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False, fontsize=8)
    title = "Anakinra treatment, adverse events and outcomes per patient"
    if len(p) < len(all_patients):
        title += f"\n({len(p)} of {len(all_patients)} patients shown: a fixed subset by pseudonymous key)"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if synthetic:
        synthetic_mark(fig)
    return fig
