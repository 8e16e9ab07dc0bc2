"""Small input helpers shared by the statistics modules (no statistics here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special  # scipy.stats' norm is these; importing scipy.stats costs 0.5 s

ALL = "all"  # the group label used when no grouping column is given
# warnings that are library housekeeping, not problems of a fit
NOISE_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def z_value(conf_level: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.959964)."""
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level!r}")
    return float(special.ndtri(1 - (1 - conf_level) / 2))


def wald_columns(beta, se, conf_level: float) -> dict:
    """Wald columns on the coefficient scale: coef, se, lcl, ucl, z and the two-sided normal p."""
    beta, se = np.asarray(beta, dtype=float), np.asarray(se, dtype=float)
    z, stat = z_value(conf_level), beta / se
    return {"coef": beta, "se": se, "lcl": beta - z * se, "ucl": beta + z * se, "z": stat,
            "p": 2 * special.ndtr(-np.abs(stat))}


def require_columns(data: pd.DataFrame, columns: Sequence[str | None]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in data; have {list(data.columns)}")


def as_event(values: pd.Series, name: str) -> np.ndarray:
    """0/1 (or boolean) event indicator -> int array; anything else is an error naming the value."""
    v = pd.to_numeric(values, errors="coerce") if values.dtype != bool else values.astype(int)
    bad = ~np.isin(np.asarray(v, dtype=float), (0.0, 1.0))
    if bad.any():
        first = values[np.asarray(bad)].iloc[0]
        raise ValueError(f"column {name!r} must be 0/1 (or boolean); found {first!r}")
    return np.asarray(v, dtype=np.int64)


def as_time(values: pd.Series, name: str) -> np.ndarray:
    t = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if np.isnan(t).any():
        raise ValueError(f"column {name!r} must be numeric")
    if (t < 0).any():
        raise ValueError(f"column {name!r} has a negative time ({t[t < 0][0]!r})")
    return t


def complete_rows(data: pd.DataFrame, columns: Sequence[str | None]) -> pd.DataFrame:
    """Rows with no missing value in ``columns`` (R's default na.omit)."""
    cols = [c for c in columns if c is not None]
    return data.loc[data[cols].notna().all(axis=1)]


def group_levels(values: pd.Series) -> list:
    """Group levels in R factor order: categorical order if categorical, else sorted unique values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [lvl for lvl in values.cat.categories if lvl in present]
    return sorted(values.dropna().unique().tolist())


def time_label(t: float) -> str:
    """Column suffix for a time point: 30 -> '30', 365.25 -> '365.25'."""
    return f"{float(t):g}"


def design_matrix(data: pd.DataFrame, covariates: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric design matrix (no intercept) and the columns belonging to each term.

    Numeric and boolean columns enter as they are. Object, string and categorical columns are
    treatment-coded against their first level (R's default contrasts; categorical order or
    sorted values), with columns named ``<var>[<level>]``.
    """
    cols: dict[str, pd.Series] = {}
    terms: dict[str, list[str]] = {}
    for var in covariates:
        s = data[var]
        if pd.api.types.is_numeric_dtype(s):  # includes bool
            cols[var] = s.astype(float)
            terms[var] = [var]
        else:
            levels = group_levels(s)
            names = []
            for lvl in levels[1:]:
                name = f"{var}[{lvl}]"
                cols[name] = (s == lvl).astype(float).where(s.notna())
                names.append(name)
            terms[var] = names
    X = pd.DataFrame(cols, index=data.index)
    return X, terms
