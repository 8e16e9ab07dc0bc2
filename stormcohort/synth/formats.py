"""Small, fast formatting helpers shared by the centre renderers."""

from __future__ import annotations

import numpy as np
import pandas as pd

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def text_dates(values, fmt: str) -> np.ndarray:
    """Dates as text ('' for missing); strftime runs once per distinct date, not per row."""
    codes, uniques = pd.factorize(pd.to_datetime(pd.Series(values)), sort=False)
    labels = np.array(pd.DatetimeIndex(uniques).strftime(fmt).tolist() + [""], dtype=object)
    return labels[codes]  # code -1 (missing) picks the trailing ''


def clerk_date(values) -> np.ndarray:
    """'03-Feb-2019', as typed by hand (locale-independent month names)."""
    ts = pd.DatetimeIndex(pd.to_datetime(pd.Series(values)))
    if len(ts) == 0:  # numpy's string functions cannot size an empty array
        return np.array([], dtype=object)
    month = np.array(MONTHS, dtype=object)[ts.month.to_numpy() - 1]
    return np.char.add(np.char.add(np.char.add(np.char.add(
        np.char.zfill(ts.day.astype(str).to_numpy().astype(str), 2), "-"), month.astype(str)), "-"),
        ts.year.astype(str).to_numpy().astype(str)).astype(object)


def text_numbers(values, decimals: int) -> np.ndarray:
    """Numbers as text with at most `decimals` places ('' for missing)."""
    v = np.asarray(values, dtype=float)
    missing = np.isnan(v)
    if decimals == 0:
        text = np.round(np.where(missing, 0, v)).astype(np.int64).astype(str).astype(object)
    else:
        text = pd.Series(np.round(v, decimals)).astype(str).to_numpy(dtype=object)
        whole = text.astype(str)
        text = np.where(np.char.endswith(whole, ".0"), np.char.rstrip(np.char.rstrip(whole, "0"), "."), whole)
        text = text.astype(object)
    text[missing] = ""
    return text


def flags(values, yes: str, no: str) -> np.ndarray:
    return np.where(np.asarray(values, dtype=bool), yes, no).astype(object)


def excel_dates(values) -> np.ndarray:
    """Timestamps for Excel date cells, None where missing."""
    ts = pd.to_datetime(pd.Series(values)).dt.normalize()
    out = ts.astype(object).to_numpy()
    out[ts.isna().to_numpy()] = None
    return out


def excel_numbers(values, decimals: int) -> np.ndarray:
    v = np.round(np.asarray(values, dtype=float), decimals)
    out = v.astype(object)
    out[np.isnan(v)] = None
    if decimals == 0:
        whole = ~np.isnan(v)
        out[whole] = v[whole].astype(np.int64).astype(object)
    return out
