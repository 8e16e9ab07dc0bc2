"""Provenance: what the results were made from, and by what.

Two records, kept apart on purpose:

* ``results/<run>/provenance.json`` (written by the report rule) holds only what is the same
  on every run of the same inputs: each input file's SHA-256 and size, the resolved study
  config and its digest, the pipeline's git commit and whether the tree was clean, package
  versions, and the lineage (each output file -> the rule and the input files that made it,
  from the Snakemake rule definitions). Rerunning with nothing changed gives the same bytes.
* ``results/<run>/logs/run_log.json`` (appended by the workflow's ``onstart``/``onsuccess``/
  ``onerror`` handlers) holds what differs per invocation: the command line, start and end
  times, the status. It is never a rule's input or parameter, so it cannot trigger a rerun.

Paths inside ``results/<run>/`` are written relative to it (``tables/km.csv``), others relative
to the working directory, so two run names give identical records.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from stormcohort.io import write_json

# Config keys that name where results go, not what they are: left out of the study config.
NOT_STUDY = ("run",)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def relative(path: str | Path, out: str | Path) -> str:
    """``results/<run>/tables/km.csv`` -> ``tables/km.csv``; other paths as given (posix)."""
    p, o = Path(path).as_posix(), Path(out).as_posix().rstrip("/") + "/"
    return p[len(o):] if p.startswith(o) else p


def file_record(path: str | Path, out: str | Path = "") -> dict:
    return {"path": relative(path, out), "bytes": Path(path).stat().st_size, "sha256": sha256_file(path)}


def study_config(config: Mapping) -> dict:
    """The resolved config without the keys that only name the output folder."""
    return {k: v for k, v in config.items() if k not in NOT_STUDY}


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_digest(config: Mapping) -> str:
    """SHA-256 of the study config as canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(study_config(config)).encode("utf-8")).hexdigest()


def dependencies() -> list[str]:
    """The packages whose versions the results depend on: stormcohort and its direct dependencies
    as pyproject.toml declares them (the installed package's metadata; extras left out)."""
    required = metadata.requires("stormcohort") or []
    return ["stormcohort", *(re.split(r"[\s=<>!~;\[]", r, maxsplit=1)[0] for r in required if "extra ==" not in r)]


def package_versions(packages: Iterable[str] | None = None) -> dict[str, str]:
    out = {"python": platform.python_version()}
    packages = dependencies() if packages is None else packages
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(root: str | Path = ".") -> dict:
    """The checkout's commit and whether its tracked and unignored files match it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "clean": None, "note": "git not available"}
    if head.returncode != 0 or status.returncode != 0:
        return {"commit": None, "clean": None, "note": "not a git checkout"}
    return {"commit": head.stdout.strip(), "clean": status.stdout.strip() == ""}


# ------------------------------------------------------------------------------- lineage

def _expand(items, wildcards) -> list[str]:
    """A rule's input or output entries for one wildcard assignment, as file paths."""
    from snakemake.io import apply_wildcards
    from snakemake.iocontainers import Wildcards

    files = []
    for item in items:
        if callable(item):
            value = item(Wildcards(fromdict=wildcards))
            files.extend([value] if isinstance(value, str) else list(value))
        else:
            files.append(apply_wildcards(str(item), wildcards) if wildcards else str(item))
    return files


def lineage(rules, wildcard_values: Mapping[str, Iterable[str]], out: str, skip=("all",)) -> list[dict]:
    """One row per output file: the rule that makes it and that job's input files.

    ``rules``: Snakemake ``workflow.rules``; ``wildcard_values``: the values each wildcard
    takes in this run (``{"centre": ["LDN", ...]}``).
    """
    rows = []
    for rule in rules:
        if rule.name in skip:
            continue
        names = sorted(rule.wildcard_names)
        for combo in itertools.product(*(list(wildcard_values.get(n, [])) for n in names)):
            wc = dict(zip(names, combo))
            inputs = sorted({relative(f, out) for f in _expand(rule.input, wc)})
            for f in _expand(rule.output, wc):
                rows.append({"output": relative(f, out), "rule": rule.name, "inputs": inputs})
    return sorted(rows, key=lambda r: r["output"])


def compact_paths(paths: Iterable[str]) -> str:
    """``a/x.csv, a/y.csv, b.csv`` -> ``a/{x.csv, y.csv}; b.csv`` (for reading, not parsing)."""
    folders: dict[str, list[str]] = {}
    for p in sorted(paths):
        head, _, tail = p.rpartition("/")
        folders.setdefault(head, []).append(tail)
    parts = []
    for head, names in folders.items():
        prefix = f"{head}/" if head else ""
        parts.append(prefix + names[0] if len(names) == 1 else prefix + "{" + ", ".join(names) + "}")
    return "; ".join(parts)


def lineage_jobs(rows: list[dict]) -> list[dict]:
    """The lineage by job (a rule and its inputs): ``{"rule", "outputs", "inputs"}`` compacted."""
    jobs: dict[tuple, list[str]] = {}
    for r in rows:
        jobs.setdefault((r["rule"], tuple(r["inputs"])), []).append(r["output"])
    out = [{"rule": rule, "outputs": compact_paths(outputs), "inputs": compact_paths(inputs)}
           for (rule, inputs), outputs in jobs.items()]
    return sorted(out, key=lambda j: j["outputs"])


# ------------------------------------------------------------------------------- records

def provenance(*, inputs: Iterable[str], artefacts: Iterable[str], config: Mapping, out: str,
               lineage_rows: list[dict], delivery: Mapping, root: str | Path = ".") -> dict:
    """The deterministic provenance record (``provenance.json``)."""
    return {
        "pipeline": {"name": "stormcohort", **git_state(root)},
        "delivery": dict(delivery),
        "config": study_config(config),
        "config_sha256": config_digest(config),
        "inputs": [file_record(p, out) for p in sorted(set(inputs))],
        "artefacts": [file_record(p, out) for p in sorted(set(artefacts))],
        "lineage": lineage_rows,
        "software": package_versions(),
        "run_log": "logs/run_log.json",
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def log_invocation(path: str | Path, status: str, started: str | None = None, root: str | Path = ".") -> dict:
    """Append (or complete) this invocation's entry in the run log: argv, times, status, commit.

    Called by the workflow's handlers: ``status="running"`` on start, then ``"success"`` or
    ``"error"`` with the same ``started`` time, which replaces the running entry.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        runs = []
    started = started or now()
    entry = {"started": started, "finished": None if status == "running" else now(), "status": status,
             "command": list(sys.argv), **git_state(root)}
    runs = [r for r in runs if not (r.get("started") == started and r.get("status") == "running")]
    runs.append(entry)
    write_json(runs, path)
    return entry
