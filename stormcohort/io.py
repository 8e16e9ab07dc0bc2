"""Deterministic writers and rule logging: same data in, same bytes out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd


FLOAT_FORMAT = "%.6g"


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """CSV with fixed float formatting and line ends, so reruns are byte-identical."""
    df.to_csv(path, index=False, lineterminator="\n", float_format=FLOAT_FORMAT, date_format="%Y-%m-%d")


def as_written(df: pd.DataFrame) -> pd.DataFrame:
    """Float columns rounded to the digits :func:`write_csv` keeps: a table moved from CSV to
    Parquet then holds the same numbers, and the analyses reading it give the same results."""
    out = df.copy()
    for column in out.columns[[pd.api.types.is_float_dtype(t) for t in out.dtypes]]:
        out[column] = [float(FLOAT_FORMAT % v) for v in out[column].tolist()]
    return out


def read_as_text(path: str | Path) -> pd.DataFrame:
    """A table's cells as text, exactly as :func:`write_csv` writes them (missing: empty), from
    a CSV or from a Parquet file of numbers, flags and text."""
    if Path(path).suffix != ".parquet":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = pd.read_parquet(path)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            text = [FLOAT_FORMAT % v if v == v else "" for v in values.tolist()]
        else:
            text = ["" if v is None or v is pd.NA or v != v else str(v) for v in values.tolist()]
        frame[column] = pd.Series(text, index=frame.index, dtype=object)
    return frame


def write_json(obj, path: str | Path) -> None:
    """Sorted keys and a fixed layout, so reruns are byte-identical."""
    Path(path).write_text(json.dumps(obj, sort_keys=True, indent=2) + "\n", encoding="utf-8")


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    df.reset_index(drop=True).to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def rule_logger(snakemake) -> logging.Logger:
    """A logger writing to the rule's `log:` file (the only place a rule reports progress)."""
    logger = logging.getLogger(f"stormcohort.{snakemake.rule}")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    handler = logging.FileHandler(snakemake.log[0], mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger
