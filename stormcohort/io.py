"""Deterministic writers and rule logging: same data in, same bytes out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """CSV with fixed float formatting and line ends, so reruns are byte-identical."""
    df.to_csv(path, index=False, lineterminator="\n", float_format="%.6g", date_format="%Y-%m-%d")


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
