"""A delivery: one folder per centre plus the analyst's `delivery.yaml`."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from stormcohort.errors import ExtractError


@dataclass(frozen=True)
class Delivery:
    path: Path
    extract_date: date
    synthetic: bool
    files: dict[str, list[str]]  # centre -> every file it delivered, sorted


def read_delivery(path: Path | str, centres: list[str]) -> Delivery:
    """Check the delivery's shape and read `delivery.yaml`; structural problems stop here."""
    path = Path(path)
    meta_path = path / "delivery.yaml"
    if not path.is_dir():
        raise ExtractError(f"{path}: delivery folder not found "
                           f"(expected a folder holding {', '.join(centres)} and delivery.yaml)")
    if not meta_path.is_file():
        raise ExtractError(f"{meta_path}: not found (expected 'extract_date: YYYY-MM-DD' and 'synthetic: true|false')")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
    extract_date = meta.get("extract_date")
    if isinstance(extract_date, str):
        try:
            extract_date = date.fromisoformat(extract_date)
        except ValueError:
            extract_date = None
    if not isinstance(extract_date, date):
        raise ExtractError(f"{meta_path}: extract_date {meta.get('extract_date')!r} is not a date "
                           "(expected YYYY-MM-DD)")
    synthetic = meta.get("synthetic")
    if not isinstance(synthetic, bool):
        raise ExtractError(f"{meta_path}: synthetic {synthetic!r} must be true or false")
    files = {}
    for centre in centres:
        folder = path / centre
        found = sorted(str(p) for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        if not found:
            raise ExtractError(f"{folder}: no files for centre {centre} (expected the centre's export folder)")
        files[centre] = found
    return Delivery(path, extract_date, synthetic, files)


def resolve_key(key_env: str, synthetic: bool, synthetic_default_key: str) -> bytes:
    """The pseudonymisation secret: from the environment; the public demo key only for synthetic data."""
    key = os.environ.get(key_env)
    if key:
        return key.encode("utf-8")
    if synthetic:
        return synthetic_default_key.encode("utf-8")
    raise ExtractError(
        f"environment variable {key_env} is not set: a delivery that is not synthetic needs a secret "
        "pseudonymisation key (the public demo key is only for synthetic data)"
    )


def content_sha256(paths, root) -> str:
    """SHA-256 over each file's path relative to `root`, size and bytes, in path order: the
    content fingerprint that decides reruns (modification times never do)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
