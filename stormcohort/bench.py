"""Benchmark: generate deliveries of several sizes, run the workflow on each and measure it.

    python -m stormcohort.bench [--sizes 1000 10000 100000] [--cores 2]

For the embedded delivery and each generated size: the generator's wall time, the time merely
to read the delivery's input files with pandas (the floor no pipeline can beat), the cold run
end to end with the peak memory of the whole process tree (Snakemake and the jobs it runs at
once), a no-op rerun, and wall time and peak memory per rule (Snakemake's `benchmark:` files).
Writes bench/results.json, checks the targets of issue 6 and prints a Markdown table for the
README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import yaml

from stormcohort.delivery import read_delivery

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED = ROOT / "data" / "raw" / "example"
# Issue 6's targets on a 2-core, 24 GB machine: seconds, MB, or a ratio, each an upper limit
TARGETS = {
    "embedded_cold_s": 15, "embedded_noop_s": 2, "n10000_end_to_end_s": 90,
    "n100000_end_to_end_s": 600, "n100000_peak_mb": 6000, "ratio_100k_10k": 11, "n100000_generate_s": 180,
}


def _tree_rss_mb(proc: psutil.Process) -> float:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # a job that ended between listing and reading
            pass
    return total / 1e6


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of a command and all its descendants,
    sampled every 0.1 s. A failing command raises, with its stderr."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = 0.0, threading.Event()

    def sample():
        nonlocal peak
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak = max(peak, _tree_rss_mb(ps))
            except psutil.Error:
                return
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')[-3000:]}")
    return seconds, peak


def read_floor(delivery: Path) -> float:
    """Seconds to read every input file of the delivery into pandas, as files (every cell as
    text, every sheet of a workbook): what any pipeline must at least spend on its input."""
    centres = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))["centres"]
    files = [Path(f) for c in centres for f in read_delivery(delivery, centres).files[c]]
    start = time.perf_counter()
    for f in files:
        if f.suffix.lower() == ".xlsx":
            pd.read_excel(f, sheet_name=None, dtype=str, engine="calamine")
        else:
            pd.read_csv(f, dtype=str, keep_default_na=False, encoding_errors="replace")
    return time.perf_counter() - start


def rule_benchmarks(run: str) -> list[dict]:
    rules = []
    for tsv in sorted((ROOT / "results" / run / "benchmarks").glob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t").iloc[0]
        rules.append({"rule": tsv.stem, "seconds": round(float(b["s"]), 2),
                      "max_rss_mb": round(float(b["max_rss"]), 1)})
    return rules


def bench_delivery(delivery: Path, run: str, cores: int, patients: int, generate_s: float | None = None,
                   generate_peak_mb: float | None = None) -> dict:
    shutil.rmtree(ROOT / "results" / run, ignore_errors=True)
    snakemake = [sys.executable, "-m", "snakemake", "--workflow-profile", "workflow/profiles/default",
                 "--cores", str(cores), "--config", f"delivery={os.path.relpath(delivery, ROOT)}", f"run={run}"]
    floor = read_floor(delivery)
    cold, peak = run_measured(snakemake)
    noop, _ = run_measured(snakemake)
    input_mb = sum(p.stat().st_size for p in delivery.rglob("*") if p.is_file()) / 1e6
    rules = rule_benchmarks(run)
    return {"patients": patients, "delivery": os.path.relpath(delivery, ROOT), "input_mb": round(input_mb, 2),
            "generate_s": None if generate_s is None else round(generate_s, 2),
            "generate_peak_mb": None if generate_peak_mb is None else round(generate_peak_mb),
            "read_floor_s": round(floor, 2), "end_to_end_s": round(cold, 2),
            "ratio_to_floor": round(cold / floor, 1), "noop_rerun_s": round(noop, 2), "peak_mb": round(peak),
            "peak_rule_rss_mb": max((r["max_rss_mb"] for r in rules), default=None), "rules": rules}


def bench_size(n: int, cores: int, seed: int) -> dict:
    delivery = ROOT / "bench" / "out" / f"n{n}"
    shutil.rmtree(delivery, ignore_errors=True)
    gen_s, gen_peak = run_measured([sys.executable, "-m", "stormcohort.synth", "--patients", str(n),
                                    "--seed", str(seed), "--out", str(delivery)])
    return bench_delivery(delivery, f"bench_n{n}", cores, n, gen_s, gen_peak)


def check_targets(embedded: dict | None, results: list[dict]) -> list[dict]:
    """Each target of issue 6 that these measurements can decide, with its verdict."""
    by_n = {r["patients"]: r for r in results}
    measured = {}
    if embedded:
        measured |= {"embedded_cold_s": embedded["end_to_end_s"], "embedded_noop_s": embedded["noop_rerun_s"]}
    if 10_000 in by_n:
        measured["n10000_end_to_end_s"] = by_n[10_000]["end_to_end_s"]
    if 100_000 in by_n:
        big = by_n[100_000]
        measured |= {"n100000_end_to_end_s": big["end_to_end_s"], "n100000_peak_mb": big["peak_mb"],
                     "n100000_generate_s": big["generate_s"]}
        if 10_000 in by_n:
            measured["ratio_100k_10k"] = round(big["end_to_end_s"] / by_n[10_000]["end_to_end_s"], 2)
    return [{"target": k, "limit": TARGETS[k], "measured": v, "met": v <= TARGETS[k]}
            for k, v in measured.items()]


def slurm_resources(result: dict) -> dict:
    """Per-rule SLURM requests sized from one benchmark (the largest delivery): memory 1.5 x
    the rule's peak (at least 1 GB, in steps of 500 MB), runtime 3 x its wall time (at least
    10 minutes, in steps of 5). Ingest is one rule whatever the centre: its largest centre."""
    sized: dict[str, dict] = {}
    for r in result["rules"]:
        rule = r["rule"].split("_")[0] if r["rule"].startswith("ingest_") else r["rule"]
        mem = max(1000, -(-1.5 * r["max_rss_mb"] // 500) * 500)
        runtime = max(10, -(-3 * r["seconds"] / 60 // 5) * 5)
        old = sized.get(rule, {"mem_mb": 0, "runtime": 0})
        sized[rule] = {"cpus_per_task": 1, "mem_mb": int(max(mem, old["mem_mb"])),
                       "runtime": int(max(runtime, old["runtime"]))}
    return dict(sorted(sized.items()))


def markdown(embedded: dict | None, results: list[dict], targets: list[dict]) -> str:
    lines = ["| delivery | patients | input MB | generate s | read floor s | end to end s | ratio to floor | "
             "no-op rerun s | peak MB (whole run) | slowest rule |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in ([embedded] if embedded else []) + results:
        slowest = max(r["rules"], key=lambda x: x["seconds"])
        lines.append(f"| {r['delivery']} | {r['patients']:,} | {r['input_mb']} | {r['generate_s'] or '-'} | "
                     f"{r['read_floor_s']} | {r['end_to_end_s']} | {r['ratio_to_floor']} | {r['noop_rerun_s']} | "
                     f"{r['peak_mb']:,} | {slowest['rule']} ({slowest['seconds']} s) |")
    lines += ["", "| target | limit | measured | met |", "|---|---:|---:|---|"]
    lines += [f"| {t['target']} | {t['limit']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
              for t in targets]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded delivery")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    embedded = None
    if not args.no_embedded:
        print("benchmarking the embedded delivery ...", file=sys.stderr, flush=True)
        patients = yaml.safe_load((EMBEDDED / "delivery.yaml").read_text())["generator"]["patients"]
        embedded = bench_delivery(EMBEDDED, "bench_embedded", args.cores, patients)
    results = []
    for n in args.sizes:
        print(f"benchmarking {n:,} patients ...", file=sys.stderr, flush=True)
        results.append(bench_size(n, args.cores, args.seed))
        print(f"  end to end {results[-1]['end_to_end_s']} s, peak {results[-1]['peak_mb']} MB", file=sys.stderr,
              flush=True)
    targets = check_targets(embedded, results)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "cores_used": args.cores}
    args.out.parent.mkdir(exist_ok=True)
    largest = max(results, key=lambda r: r["patients"], default=embedded)
    resources = {"sized_from_patients": largest["patients"], "set-resources": slurm_resources(largest)}
    args.out.write_text(json.dumps({"machine": machine, "seed": args.seed, "embedded": embedded, "results": results,
                                    "targets": targets, "slurm_resources": resources}, indent=2) + "\n")
    print(markdown(embedded, results, targets))


if __name__ == "__main__":
    main()
