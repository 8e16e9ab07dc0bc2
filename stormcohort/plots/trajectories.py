"""Lab trajectories by route: individual patients thin and faint, daily medians (IQR band) bold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from stormcohort.canonical import LAB_UNITS
from stormcohort.figures import new_figure, synthetic_mark
from stormcohort.labels import DAY_AXIS, GROUP, ROUTE_COLOURS, ROUTE_TERM, ROUTES
from stormcohort.labels import TEST_LABELS as NAMES

LOG_TESTS = {"ferritin", "crp", "alt", "ast", "triglycerides", "bilirubin", "scd25"}


def _lines(d: pd.DataFrame, max_patients: int) -> tuple[list[np.ndarray], int]:
    """One polyline (day, value) per patient; at most ``max_patients`` (first keys in sort order,
    which are pseudonymous hashes, so an arbitrary but fixed subset)."""
    keys = np.sort(d["patient_key"].unique())
    shown = set(keys[:max_patients])
    d = d[d["patient_key"].isin(shown)].sort_values(["patient_key", "day"], kind="mergesort")
    cut = np.flatnonzero(d["patient_key"].to_numpy()[1:] != d["patient_key"].to_numpy()[:-1]) + 1
    xy = np.column_stack([d["day"].to_numpy(dtype=float), d["value"].to_numpy(dtype=float)])
    return [seg for seg in np.split(xy, cut) if len(seg)], len(keys)


def trajectories_figure(data: pd.DataFrame, daily: pd.DataFrame, tests, days=(0, 14), synthetic: bool = False,
                        max_patients: int = 200, table: pd.DataFrame | None = None):
    """Panels (2 columns) of ``value`` against day from the first dose by route group.

    ``data``: samples (``patient_key, route_group, test, day, value``); ``daily``: the daily
    summary (``test, group, day, n, median, q1, q3``); ``table``: the model table, whose IV vs
    SC slope difference is printed in each panel when given."""
    tests = list(tests)
    ncol = 2 if len(tests) > 1 else 1
    nrow = max(1, math.ceil(len(tests) / ncol))
    fig = new_figure((5.2 * ncol, 3.8 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    counts = {}
    for ax, test in zip(axes.flat, tests):
        d = data[data["test"].eq(test)]
        log = test in LOG_TESTS
        for group in ("SC", "IV"):
            colour = ROUTE_COLOURS[group]
            g = d[d[GROUP].eq(group)]
            if log:
                g = g[g["value"] > 0]
            lines, n = _lines(g, max_patients)
            counts[(test, group)] = n
            if lines:
                ax.add_collection(LineCollection(lines, colors=colour, linewidths=0.6, alpha=0.18, zorder=1))
            s = daily[daily["test"].eq(test) & daily["group"].eq(group)].sort_values("day")
            if len(s):
                ax.fill_between(s["day"], s["q1"], s["q3"], color=colour, alpha=0.15, linewidth=0, zorder=2)
                ax.plot(s["day"], s["median"], color=colour, linewidth=2.4, marker="o", markersize=3.5, zorder=3)
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        if d.empty:
            ax.text(0.5, 0.5, "no samples", transform=ax.transAxes, ha="center", va="center", color="0.4")
        else:
            ax.autoscale_view()
        ax.set_xlim(days[0] - 0.3, days[1] + 0.6)
        ax.set_xticks(range(int(days[0]), int(days[1]) + 1, 2))
        unit = LAB_UNITS.get(test, "").replace("10^9", "10\u2079")
        ax.set_ylabel(f"{NAMES.get(test, test)} ({unit})" + (", log scale" if log else ""))
        ax.set_xlabel(DAY_AXIS)
        ax.set_title(f"{NAMES.get(test, test)}  (IV n={counts[(test, 'IV')]}, SC n={counts[(test, 'SC')]})",
                     fontsize=10)
        if table is not None:
            row = table[table["test"].eq(test) & table["term"].eq(f"{ROUTE_TERM}:day")]
            if len(row) and np.isfinite(row["coef"].iloc[0]):
                r = row.iloc[0]
                text = (f"IV vs SC slope ratio/day {math.exp(r['coef']):.3f} "
                        f"({math.exp(r['lcl']):.3f}\u2013{math.exp(r['ucl']):.3f}), p={r['p']:.2g}")
            else:
                text = "IV vs SC slope: not estimable"
            ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7.5, color="0.25", va="bottom")
        ax.grid(True, which="major", color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    for ax in list(axes.flat)[len(tests):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=ROUTE_COLOURS[g], linewidth=2.4, marker="o", markersize=3.5,
                      label=f"{g}: daily median (IQR band)") for g in ROUTES]
    handles += [Line2D([], [], color="0.4", linewidth=0.6, alpha=0.5, label="individual patients")]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig.suptitle("Laboratory trajectories after the first anakinra dose, by route", fontsize=12)
    capped = [k for k, n in counts.items() if n > max_patients]
    if capped:
        fig.text(0.01, 0.01, f"Individual lines: first {max_patients} patients per group and test (by key)",
                 fontsize=7.5, color="0.35")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    if synthetic:
        synthetic_mark(fig)
    return fig
