"""The one shape every analysis returns, and the one way a rule writes it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd

Figure = object  # a matplotlib Figure (not imported here: the tables need no matplotlib)


@dataclass(frozen=True)
class AnalysisResult:
    """``tables``: by the rule's output name; ``model``: JSON-ready summary (``models/<x>.json``,
    may be empty); ``figures``: by name, each a callable drawing it (drawn only when written,
    saved to the ``png`` and ``svg`` outputs, or ``<name>_png``/``<name>_svg``); ``notes``:
    warnings for the rule's log."""

    tables: Mapping[str, pd.DataFrame]
    model: Mapping = field(default_factory=dict)
    figures: Mapping[str, Callable[[], Figure]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))
        object.__setattr__(self, "figures", MappingProxyType(dict(self.figures)))
        object.__setattr__(self, "notes", tuple(self.notes))


def figure_paths(output, name: str, single: bool) -> list[str]:
    """The PNG and SVG outputs of figure ``name`` (``png``/``svg`` when it is the only one)."""
    keys = ("png", "svg") if single else (f"{name}_png", f"{name}_svg")
    return [output[k] for k in keys if k in output.keys()]


def write_outputs(result: AnalysisResult, output, log: logging.Logger | None = None) -> None:
    """Write each table to ``output[name]`` (CSV), the model to ``output.model`` when the rule has
    one, each figure as PNG and SVG, and log the notes as warnings. ``output``: Snakemake's
    ``snakemake.output`` (or any mapping with ``keys()``)."""
    from stormcohort.io import write_csv, write_json

    log = log or logging.getLogger(__name__)
    for note in result.notes:
        log.warning(note)
    names = set(output.keys())
    for name, table in result.tables.items():
        if name not in names:
            raise KeyError(f"the analysis returned table {name!r}, which is not an output of the rule: {sorted(names)}")
        write_csv(table, output[name])
    if "model" in names:
        write_json(dict(result.model), output["model"])
    if result.figures:
        from stormcohort.figures import save

        for name, draw in result.figures.items():
            paths = figure_paths(output, name, len(result.figures) == 1)
            log.info("drawing the %s figure", name)
            save(draw() if callable(draw) else draw, *paths)
    log.info("done")
