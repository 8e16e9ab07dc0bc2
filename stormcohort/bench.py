"""Benchmark: generate deliveries of several sizes, run the workflow on each, and report
wall time and peak memory per rule (from Snakemake's `benchmark:` files) and end to end.

    python -m stormcohort.bench [--sizes 46 1000 10000] [--cores 2]

Writes bench/results.json and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def bench_size(n: int, cores: int, seed: int) -> dict:
    delivery = ROOT / "bench" / "out" / f"n{n}"
    run = f"bench_n{n}"
    shutil.rmtree(delivery, ignore_errors=True)
    shutil.rmtree(ROOT / "results" / run, ignore_errors=True)
    generate = _run([sys.executable, "-m", "stormcohort.synth", "--patients", str(n), "--seed", str(seed),
                     "--out", str(delivery)])
    snakemake = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--config",
                 f"delivery={delivery.relative_to(ROOT)}", f"run={run}"]
    cold = _run(snakemake)
    noop = _run(snakemake)
    rules = []
    for tsv in sorted((ROOT / "results" / run / "benchmarks").glob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t").iloc[0]
        rules.append({"rule": tsv.stem, "seconds": round(float(b["s"]), 2), "max_rss_mb": round(float(b["max_rss"]), 1)})
    input_mb = sum(p.stat().st_size for p in delivery.rglob("*") if p.is_file()) / 1e6
    return {"patients": n, "input_mb": round(input_mb, 2), "generate_s": round(generate, 2),
            "end_to_end_s": round(cold, 2), "noop_rerun_s": round(noop, 2),
            "peak_rss_mb": max((r["max_rss_mb"] for r in rules), default=None), "rules": rules}


def markdown(results: list[dict]) -> str:
    lines = ["| patients | input MB | generate s | end to end s | no-op rerun s | peak RSS MB | slowest rule |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        slowest = max(r["rules"], key=lambda x: x["seconds"]) if r["rules"] else {"rule": "", "seconds": 0}
        lines.append(f"| {r['patients']:,} | {r['input_mb']} | {r['generate_s']} | {r['end_to_end_s']} | "
                     f"{r['noop_rerun_s']} | {r['peak_rss_mb']} | {slowest['rule']} ({slowest['seconds']} s) |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[46, 1000, 10000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    results = []
    for n in args.sizes:
        print(f"benchmarking {n} patients ...", file=sys.stderr, flush=True)
        results.append(bench_size(n, args.cores, args.seed))
    out = ROOT / "bench" / "results.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cores_used": args.cores}
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
