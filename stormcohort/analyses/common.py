"""Helpers every analysis shares: the route groups, settings with defaults, checks of the
input tables, and JSON-safe model summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

GROUP = "route_group"
ROUTES = ("IV", "SC")
REFERENCE = "SC"
ROUTE_TERM = "route_group[IV]"  # the IV-vs-SC term in every model table

# settings whose value is a free-form mapping (replaced whole, not merged key by key)
FREE_FORM = ("uln", "lab_falls", "log_offset", "reference_levels", "labels", "route_specific_terms")


def merge_settings(defaults: Mapping, cfg: Mapping | None, where: str) -> dict:
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in defaults.items()}
    for k, v in dict(cfg or {}).items():
        if k not in defaults:
            raise KeyError(f"unknown {where} setting {k!r}; expected one of {sorted(defaults)}")
        if isinstance(defaults[k], Mapping) and isinstance(v, Mapping) and k not in FREE_FORM:
            out[k] = merge_settings(defaults[k], v, f"{where}.{k}")
        else:
            out[k] = v
    return out


def jsonable(obj, digits: int = 6):
    """Nested dicts/lists with floats rounded to ``digits`` significant digits, NaN -> None,
    +/-inf -> "inf"/"-inf", numpy scalars -> Python (for ``json.dumps(sort_keys=True)``)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, digits) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r, digits) for r in obj.to_dict(orient="records")]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return float(f"{x:.{digits}g}")
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def join_notes(notes) -> str | None:
    text = "; ".join(dict.fromkeys(n for n in notes if n))
    return text or None


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: missing column(s) {missing}; has {list(frame.columns)}")


def check_routes(frame: pd.DataFrame, what: str) -> None:
    bad = frame[GROUP].dropna()
    bad = bad[~bad.isin(ROUTES)]
    if len(bad):
        raise ValueError(f"{what}: column {GROUP!r} has {bad.iloc[0]!r} in row {bad.index[0]}; expected IV or SC")


def calendar_day(day: pd.Series) -> pd.Series:
    """Days from the index date (fractional, from the sample time) -> calendar day number."""
    return np.floor(pd.to_numeric(day, errors="coerce"))
