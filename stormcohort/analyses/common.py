"""Helpers every analysis shares: checks of the input tables, JSON-safe model summaries and
outcome counts. The route groups are defined in :mod:`stormcohort.labels`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stormcohort.labels import GROUP, ROUTES


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


def reference_first(values: pd.Series, reference=None) -> pd.Series:
    """A text covariate as a categorical whose first level (the model's reference) is ``reference``
    when it occurs, else the first sorted level; the other levels sorted; missing stays missing."""
    levels = sorted(values.dropna().astype(str).unique().tolist())
    if reference is not None and str(reference) in levels:
        levels = [str(reference)] + [lv for lv in levels if lv != str(reference)]
    return pd.Series(pd.Categorical(values.where(values.isna(), values.astype(str)), categories=levels),
                     index=values.index)


def calendar_day(day: pd.Series) -> pd.Series:
    """Days from the index date (fractional, from the sample time) -> calendar day number."""
    return np.floor(pd.to_numeric(day, errors="coerce"))


COUNT_COLUMNS = ["outcome", "group", "n", "events", "not_evaluable", "percent"]


def outcome_counts(data: pd.DataFrame, outcomes: Sequence[str]) -> pd.DataFrame:
    """``outcome, group, n, events, not_evaluable, percent`` for IV, SC and overall;
    ``n`` counts evaluable patients, ``percent`` is 100 * events / n."""
    rows = []
    for outcome in outcomes:
        for group in (*ROUTES, "overall"):
            d = data if group == "overall" else data[data[GROUP].eq(group)]
            y = d[outcome]
            n, events = int(y.notna().sum()), int(y.fillna(0).sum())
            rows.append((outcome, group, n, events, int(y.isna().sum()), 100 * events / n if n else np.nan))
    return pd.DataFrame(rows, columns=COUNT_COLUMNS)
