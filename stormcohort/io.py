"""Deterministic writers and rule logging: same data in, same bytes out."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
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
    """A logger writing to the rule's `log:` file (the only place a rule reports progress).

    The job's whole stderr goes to that file too: Python's warnings and the traceback of an
    uncaught exception, libraries' messages, and whatever C code or child processes write to
    file descriptor 2. What Python writes to ``sys.stderr`` still shows on the console as well
    (Snakemake prints it with the job's error); output below Python goes to the log only.
    The log is started afresh, so it holds this run of the job and nothing older.
    """
    path = Path(snakemake.log[0])
    if not isinstance(sys.stderr, _Tee):  # the first call in the job's process
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        _stderr_to(path)
    logger = logging.getLogger(f"stormcohort.{snakemake.rule}")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    # Append mode, as the stderr copies: every write lands at the end of the file, none over another.
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


class _Tee(io.TextIOBase):
    """``sys.stderr`` of a rule's job: each write goes to the log and to the console, at once."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def fileno(self) -> int:
        return self.streams[0].fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return self.streams[0].encoding


def _stderr_to(path: Path) -> None:
    """Send file descriptor 2 to ``path`` (opened for appending), and ``sys.stderr`` to both it and
    the console stderr it replaces."""
    sys.stderr.flush()
    console = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="backslashreplace", closefd=True)
    log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    # Stays open for the life of the process (fd 2 is not closed with it).
    log = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = _Tee(log, console)
