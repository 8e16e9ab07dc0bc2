"""The flow diagram renders, and the same attrition gives the same bytes."""

import pandas as pd

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
