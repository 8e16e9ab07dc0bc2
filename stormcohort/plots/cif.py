"""Cumulative incidence figure: fever resolution by route (solid, 95% band) with death as the
competing event (dashed), and the numbers event-free and under observation below the axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stormcohort.figures import synthetic_mark
from stormcohort.labels import ROUTES
from stormcohort.plots.km import (
    ROUTE_COLOURS,
    ROUTE_LABELS,
    X_LABEL,
    add_risk_table,
    step_from_zero,
    time_event_axes,
)


def cif_figure(curves: pd.DataFrame, risk_table: pd.DataFrame, *, days: Sequence[float],
               synthetic: bool = False, groups: Sequence[str] = ROUTES,
               interest: str = "fever_resolution", competing: str = "death"):
    """``curves``: :func:`stormcohort.analyses.competing.aj_curves`; ``risk_table``:
    :func:`stormcohort.analyses.competing.risk_table`. Groups without patients are named in the
    legend; a cause nobody had is drawn at 0."""
    fig, ax, ax_risk = time_event_axes(len(groups))
    x_max = float(max(days)) if len(days) else 1.0
    for g in groups:
        colour = ROUTE_COLOURS.get(g, "k")
        name = ROUTE_LABELS.get(g, g)
        mine = curves[curves["group"] == g]
        if mine.empty:
            ax.plot([], [], color=colour, lw=2, label=f"{name}: no patients")
            continue
        fever = mine[mine["cause"] == interest].sort_values("time")
        death = mine[mine["cause"] == competing].sort_values("time")
        if len(fever) and abs(fever["cif"].iloc[-1] + death["cif"].iloc[-1] - 1.0) < 1e-9:
            # everyone had an event: the CIFs are final, draw them to the end of the axis
            fever, death = (pd.concat([c, c.iloc[[-1]].assign(time=max(x_max * 1.03, c["time"].iloc[-1]),
                                                                n_event=0)])
                            for c in (fever, death))
        t = fever["time"].to_numpy(dtype=float)
        tt, cif = step_from_zero(t, fever["cif"].to_numpy(dtype=float), 0.0)
        _, lo = step_from_zero(t, fever["cif_lcl"].to_numpy(dtype=float), np.nan)
        _, hi = step_from_zero(t, fever["cif_ucl"].to_numpy(dtype=float), np.nan)
        n_fever = int(fever["n_event"].sum())
        ax.step(tt, cif, where="post", color=colour, lw=2, label=f"{name}: fever resolved ({n_fever})")
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(tt, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), step="post",
                        color=colour, alpha=0.15, lw=0)
        td, dcif = step_from_zero(death["time"].to_numpy(dtype=float), death["cif"].to_numpy(dtype=float), 0.0)
        n_death = int(death["n_event"].sum())
        ax.step(td, dcif, where="post", color=colour, lw=1.6, ls="--",
                label=f"{name}: died before resolution ({n_death})")
    ax.fill_between([], [], [], color="0.3", alpha=0.15, lw=0, label="95% CI (fever resolution)")
    ax.set_ylim(-0.015, 1.03)  # a CIF of 0 stays visible above the axis
    ax.set_xlim(-0.03 * x_max, x_max * 1.03)
    ax.set_xticks(list(days))
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel("Cumulative incidence")
    ax.set_title("Fever resolution with death as a competing event (Aalen-Johansen)", fontsize=11)
    ax.grid(True, color="0.9", lw=0.6)
    ax.legend(loc="center right", fontsize=8.5, frameon=True, title="Route: event (events)", title_fontsize=8.5)
    add_risk_table(ax_risk, risk_table, groups, days, title="Event-free and under observation")
    if synthetic:
        synthetic_mark(fig)
    return fig
