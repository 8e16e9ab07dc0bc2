"""The flow diagram renders, and the same attrition gives the same bytes."""

import numpy as np
import pandas as pd
import pytest

from stormcohort.figures import flow_diagram, save
from stormcohort.labels import ROUTE_COLOURS

ATTRITION = pd.DataFrame({
    "step": ["all_admissions", "outside_window", "readmission", "final_cohort", "route_IV", "route_SC"],
    "description": ["All", "Outside window", "Readmission", "Cohort", "Route group IV", "Route group SC"],
    "n_remaining": [10.0, 8.0, 6.0, 6.0, 2.0, 4.0],
    "n_excluded": [None, 2.0, 2.0, None, None, None],
})


def test_flow_diagram_is_deterministic(tmp_path):
    for name in ("a.png", "b.png", "a.svg", "b.svg"):
        save(flow_diagram(ATTRITION, synthetic=True), tmp_path / name)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    svg = (tmp_path / "a.svg").read_text()
    # The synthetic mark is drawn (matplotlib keeps text as comments in SVG).
    assert "SYNTHETIC DATA" in svg
    assert (tmp_path / "a.png").stat().st_size > 5_000


def test_one_palette_for_every_figure():
    """KM, CIF, trajectories and swimmer plots take the routes' colours from stormcohort.labels."""
    from stormcohort.plots import km, swimmer, trajectories

    assert km.ROUTE_COLOURS is ROUTE_COLOURS and trajectories.ROUTE_COLOURS is ROUTE_COLOURS
    assert swimmer.ROUTE_COLOURS is ROUTE_COLOURS
    assert ROUTE_COLOURS["IV"] != ROUTE_COLOURS["SC"]


# --------------------------------------------------------------------------- target-trial emulation figures

def _comparison_figures():
    from stormcohort.plots import comparison as C
    from tests import comparison_fixtures as X

    return {
        "survival": lambda d=None: C.survival_figure(X.curves() if d is None else d, True, grace_days=2, horizon=90),
        "love": lambda d=None: C.love_figure(X.BALANCE if d is None else d, True),
        "overlap": lambda d=None: C.overlap_figure(X.scores() if d is None else d, True),
        "sensitivity_forest": lambda d=None: C.sensitivity_forest_figure(X.SENSITIVITY if d is None else d, True),
    }


@pytest.mark.parametrize("name", ["survival", "love", "overlap", "sensitivity_forest"])
def test_comparison_figures_render_deterministically_and_say_synthetic(tmp_path, name):
    draw = _comparison_figures()[name]
    for stem in ("a", "b"):
        save(draw(), tmp_path / f"{stem}.png", tmp_path / f"{stem}.svg")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    assert "SYNTHETIC DATA" in (tmp_path / "a.svg").read_text()
    assert (tmp_path / "a.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", ["survival", "love", "overlap", "sensitivity_forest"])
def test_comparison_figures_survive_empty_and_missing_inputs(tmp_path, name):
    from tests import comparison_fixtures as X

    full = {"survival": X.curves(), "love": X.BALANCE, "overlap": X.scores(), "sensitivity_forest": X.SENSITIVITY}[name]
    nan = full.copy()
    numeric = nan.select_dtypes("number").columns
    nan[numeric] = np.nan
    draw = _comparison_figures()[name]
    for i, data in enumerate((X.empty(full), nan, full.iloc[:1])):
        save(draw(data), tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").stat().st_size > 5_000


def test_comparison_figures_use_the_route_palette_and_primary_first():
    from stormcohort.plots import comparison as C
    from tests import comparison_fixtures as X

    assert C.ROUTE_COLOURS is ROUTE_COLOURS
    fig = C.survival_figure(X.curves(), False, grace_days=2, horizon=90)
    colours = {line.get_label(): line.get_color() for line in fig.axes[0].get_lines()}
    assert colours["IV strategy: IV started by day 2"] == "#0072B2"
    assert colours["SC strategy: no IV through day 2"] == "#D55E00"
    fig = C.sensitivity_forest_figure(X.SENSITIVITY.iloc[::-1], False)
    labels = [t for t in fig.axes[0].texts]
    first = max(labels, key=lambda t: t.get_position()[1])
    assert first.get_text().startswith("Primary") and first.get_fontweight() == "bold"
    assert fig.axes[1].get_xscale() == "log" and fig.axes[3].get_xscale() == "linear"  # HR, then RD panel
