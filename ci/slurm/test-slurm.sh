#!/usr/bin/env bash
# End-to-end check that the workflow gives the same results on SLURM as locally.
#
#   ci/slurm/test-slurm.sh            # from anywhere; works in the repo root
#
# 1. starts the single-node test cluster (ci/slurm/start-cluster.sh), unless it runs already;
# 2. runs the whole workflow on the configured (embedded) delivery through
#    `--profile workflow/profiles/slurm` into results/slurm_check/ (always from scratch);
# 3. runs it locally into results/local_check/ (reused when present and made from the same
#    packages, code, config and data, by a fingerprint in its logs/; else redone);
# 4. compares every CSV, HTML and Parquet file of the two runs byte for byte, ignoring
#    logs/ and benchmarks/ (they hold times); other files (PNG, TXT) are reported only;
# 5. stops the daemons it started, also on failure or Ctrl-C.
# Prints PASS or FAIL with timings; exits non-zero on FAIL.
#
# Environment: SLURM_TEST_TIMEOUT (seconds for each snakemake run, default 1800),
# FRESH=1 (also redo results/local_check), STORMCOHORT_SLURM_DIR (cluster state dir),
# SNAKEMAKE_ARGS (extra arguments for both runs, e.g. "--config delivery=PATH").
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
SNAKEMAKE="$ROOT/.venv/bin/snakemake"
PY="$ROOT/.venv/bin/python"
TIMEOUT="${SLURM_TEST_TIMEOUT:-1800}"
SLURM_RUN=slurm_check
LOCAL_RUN=local_check
STATE="${STORMCOHORT_SLURM_DIR:-/tmp/stormcohort-slurm}"
export STORMCOHORT_SLURM_DIR="$STATE"
# shellcheck disable=SC2206
EXTRA=(${SNAKEMAKE_ARGS:-})

T0=$SECONDS
say() { echo "[test-slurm $(date +%H:%M:%S)] $*"; }
fail() {
    say "FAIL: $*"
    FAILED=1
    exit 1
}
FAILED=1
STARTED_CLUSTER=0
cleanup() {
    local rc=$?
    if [ "$STARTED_CLUSTER" = 1 ]; then
        say "stopping the cluster this test started"
        bash "$HERE/stop-cluster.sh" || say "WARNING: stop-cluster.sh failed"
    fi
    if [ "$FAILED" = 1 ] && [ "$rc" = 0 ]; then rc=1; fi
    say "total time: $((SECONDS - T0)) s"
    exit "$rc"
}
CHILD=""
on_signal() {
    say "interrupted"
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        # timeout passes TERM on to snakemake, which cancels its SLURM jobs
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# run_logged LOG CMD...: CMD under `timeout`, in the background so that a signal to this
# script is handled at once (and passed on) instead of after CMD ends. Sets RC.
run_logged() {
    local logf="$1"; shift
    timeout --kill-after=30 "$TIMEOUT" "$@" >"$logf" 2>&1 &
    CHILD=$!
    set +e
    wait "$CHILD"
    RC=$?
    set -e
    CHILD=""
}

[ -x "$SNAKEMAKE" ] || fail "$SNAKEMAKE missing: run 'make venv' first"
"$PY" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null \
    || fail "snakemake-executor-plugin-slurm is not installed in .venv (see requirements.lock)"

# --- is the workflow runnable at all? (fails fast, before any cluster is started) ------
if ! "$SNAKEMAKE" -n --cores 2 --config run="$SLURM_RUN" "${EXTRA[@]}" >"/tmp/test-slurm-dryrun.$$.log" 2>&1; then
    tail -n 20 "/tmp/test-slurm-dryrun.$$.log"
    rm -f "/tmp/test-slurm-dryrun.$$.log"
    fail "the workflow does not even dry-run (snakemake -n): nothing to test"
fi
rm -f "/tmp/test-slurm-dryrun.$$.log"

# --- 1. cluster ----------------------------------------------------------------------
alive() { [ -s "$1" ] && [ -r "/proc/$(tr -dc 0-9 <"$1")/comm" ] && [ "$(cat "/proc/$(tr -dc 0-9 <"$1")/comm")" = "$2" ]; }
if alive "$STATE/pids/slurmctld.pid" slurmctld && alive "$STATE/pids/slurmd.pid" slurmd \
    && alive "$STATE/munge/munged.pid" munged; then
    say "cluster already running (state $STATE): using it, leaving it running"
else
    STARTED_CLUSTER=1
    t=$SECONDS
    bash "$HERE/start-cluster.sh" >/dev/null || fail "could not start the SLURM test cluster"
    say "cluster started in $((SECONDS - t)) s"
fi
# shellcheck disable=SC1091
source "$STATE/env"
LOGDIR="$STATE/test-logs"
mkdir -p "$LOGDIR"

# Fingerprint of everything the results depend on: installed packages, workflow, code,
# config and the embedded deliveries. A local run is reused only if made from the same
# sources, and the test refuses to compare runs if the sources changed while it ran.
fingerprint() {
    {
        "$PY" -m pip freeze --all 2>/dev/null
        find Snakefile config workflow scripts stormcohort data/raw -type f \
            -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 2>/dev/null \
            | LC_ALL=C sort -z | xargs -0 -r sha256sum
    } | sha256sum | cut -c1-16
}
FP0="$(fingerprint)"
FP_FILE="results/$LOCAL_RUN/logs/test-slurm.fingerprint"

# --- 2. the workflow through SLURM ---------------------------------------------------
rm -rf "results/$SLURM_RUN"
say "running the workflow through SLURM into results/$SLURM_RUN (log: $LOGDIR/$SLURM_RUN.log)"
t=$SECONDS
run_logged "$LOGDIR/$SLURM_RUN.log" "$SNAKEMAKE" --profile workflow/profiles/slurm \
    --config run="$SLURM_RUN" "${EXTRA[@]}"
rc=$RC
T_SLURM=$((SECONDS - t))
if [ "$rc" != 0 ]; then
    tail -n 40 "$LOGDIR/$SLURM_RUN.log"
    [ "$rc" = 124 ] && say "snakemake timed out after ${TIMEOUT}s (status checks hanging? see workflow/profiles/slurm/README.md)"
    fail "the SLURM run failed (exit $rc) after ${T_SLURM} s; full log: $LOGDIR/$SLURM_RUN.log"
fi
n_sub="$(grep -c 'has been submitted with SLURM jobid' "$LOGDIR/$SLURM_RUN.log" || true)"
n_done="$(grep -c '^Finished jobid' "$LOGDIR/$SLURM_RUN.log" || true)"
say "SLURM run done in ${T_SLURM} s: ${n_sub} jobs went through sbatch, ${n_done} jobs finished"
[ "${n_sub:-0}" -gt 0 ] || fail "no job was submitted to SLURM"

# --- 3. the same workflow locally ----------------------------------------------------
[ "${FRESH:-0}" = 1 ] && rm -rf "results/$LOCAL_RUN"
if [ -d "results/$LOCAL_RUN" ] && [ "$(cat "$FP_FILE" 2>/dev/null)" != "$FP0" ]; then
    say "results/$LOCAL_RUN was made from other sources (code, config, data or packages): redoing it"
    rm -rf "results/$LOCAL_RUN"
fi
if [ -d "results/$LOCAL_RUN" ]; then
    say "results/$LOCAL_RUN present and made from the same sources: reusing it"
else
    say "running the workflow locally into results/$LOCAL_RUN"
fi
t=$SECONDS
run_logged "$LOGDIR/$LOCAL_RUN.log" "$SNAKEMAKE" --cores 2 --rerun-incomplete \
    --config run="$LOCAL_RUN" "${EXTRA[@]}"
rc=$RC
T_LOCAL=$((SECONDS - t))
if [ "$rc" != 0 ]; then
    tail -n 40 "$LOGDIR/$LOCAL_RUN.log"
    fail "the local run failed (exit $rc); full log: $LOGDIR/$LOCAL_RUN.log"
fi
say "local run done in ${T_LOCAL} s"
if [ "$(fingerprint)" != "$FP0" ]; then
    fail "sources (code, config, data or packages) changed while the test ran: the two runs are not comparable; run the test again"
fi
echo "$FP0" >"$FP_FILE"

# --- 4. compare ----------------------------------------------------------------------
list_files() { # relative paths of the run's files, without logs/ and benchmarks/
    (cd "results/$1" && find . -type f -not -path './logs/*' -not -path './benchmarks/*' \
        | sed 's|^\./||' | LC_ALL=C sort)
}
A="$(list_files "$SLURM_RUN")"
B="$(list_files "$LOCAL_RUN")"
problems=0
only_a="$(LC_ALL=C comm -23 <(echo "$A") <(echo "$B"))"
only_b="$(LC_ALL=C comm -13 <(echo "$A") <(echo "$B"))"
if [ -n "$only_a" ]; then echo "only in $SLURM_RUN:"; sed 's/^/    /' <<<"$only_a"; problems=$((problems + 1)); fi
if [ -n "$only_b" ]; then echo "only in $LOCAL_RUN:"; sed 's/^/    /' <<<"$only_b"; problems=$((problems + 1)); fi
n_same=0; n_diff=0; n_info_same=0; n_info_diff=0
while IFS= read -r f; do
    [ -n "$f" ] || continue
    [ -f "results/$LOCAL_RUN/$f" ] || continue
    case "$f" in
        *.csv|*.html|*.parquet) strict=1 ;;
        *) strict=0 ;;
    esac
    if cmp -s "results/$SLURM_RUN/$f" "results/$LOCAL_RUN/$f"; then
        if [ "$strict" = 1 ]; then n_same=$((n_same + 1)); else n_info_same=$((n_info_same + 1)); fi
    elif [ "$strict" = 1 ]; then
        n_diff=$((n_diff + 1))
        echo "DIFFERENT: $f"
        case "$f" in *.csv|*.html) diff <(head -c 200000 "results/$SLURM_RUN/$f") \
            <(head -c 200000 "results/$LOCAL_RUN/$f") | head -n 6 | sed 's/^/    /' || true ;; esac
    else
        n_info_diff=$((n_info_diff + 1))
        echo "differs (not checked strictly): $f"
    fi
done <<<"$A"

echo
echo "================ SLURM vs local ================"
echo "  compared (CSV/HTML/Parquet): $((n_same + n_diff)) files, identical: $n_same, different: $n_diff"
echo "  other files (PNG/TXT, informative): identical: $n_info_same, different: $n_info_diff"
echo "  SLURM jobs: $n_sub submitted; SLURM run ${T_SLURM} s, local run ${T_LOCAL} s"
if [ "$problems" = 0 ] && [ "$n_diff" = 0 ] && [ "$((n_same + n_diff))" -gt 0 ]; then
    echo "  PASS: results/$SLURM_RUN equals results/$LOCAL_RUN"
    FAILED=0
else
    [ "$((n_same + n_diff))" -gt 0 ] || echo "  no CSV/HTML/Parquet file found"
    echo "  FAIL: the SLURM run's results differ from the local run's"
    FAILED=1
fi
echo "================================================"
[ "$FAILED" = 0 ]
