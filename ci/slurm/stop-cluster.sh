#!/usr/bin/env bash
# Stop the test cluster started by ci/slurm/start-cluster.sh: cancel its jobs, then stop
# slurmd, slurmctld and munged by their recorded PIDs, in that (reverse start) order.
# Only processes named in the state directory's PID files are signalled, and only when the
# PID still belongs to the expected program. Safe to call twice, or when nothing runs.
set -uo pipefail

STATE="${STORMCOHORT_SLURM_DIR:-/tmp/stormcohort-slurm}"
log() { echo "[stop-cluster] $*" >&2; }

if [ ! -d "$STATE" ]; then
    log "no state directory $STATE: nothing to stop"
    exit 0
fi
export SLURM_CONF="$STATE/slurm.conf"

pid_of() { # pid_of PIDFILE COMM -> prints PID if alive and named COMM
    local pid
    [ -s "$1" ] || return 1
    pid="$(tr -dc 0-9 <"$1")"
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] && echo "$pid"
}

stop_one() { # stop_one NAME PIDFILE COMM
    local name="$1" pidfile="$2" comm="$3" pid i
    if ! pid="$(pid_of "$pidfile" "$comm")"; then
        log "$name: not running"
        rm -f "$pidfile"
        return 0
    fi
    log "$name: stopping PID $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        [ -d "/proc/$pid" ] || break
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || break
        sleep 0.2
    done
    if [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
        log "$name: still alive after 10 s, sending KILL to PID $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
}

# Jobs still running on this cluster (an aborted test) would leave slurmstepd and the job's
# processes behind once slurmd is gone: cancel them while the controller still answers.
if pid_of "$STATE/pids/slurmctld.pid" slurmctld >/dev/null && [ -f "$SLURM_CONF" ]; then
    jobs="$(timeout 10 squeue -h -o %i 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
        log "cancelling jobs: $(echo $jobs)"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for i in $(seq 1 40); do
            [ -z "$(timeout 5 squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.25
        done
    fi
fi

stop_one slurmd "$STATE/pids/slurmd.pid" slurmd
stop_one slurmctld "$STATE/pids/slurmctld.pid" slurmctld
stop_one munged "$STATE/munge/munged.pid" munged
rm -f "$STATE/pids/munged.pid"
# The link start-cluster.sh made for srun inside jobs: removed only if it points to us.
RUN_LINK=/run/slurm/conf/slurm.conf
if [ -L "$RUN_LINK" ] && [ "$(readlink "$RUN_LINK")" = "$STATE/slurm.conf" ]; then
    rm -f "$RUN_LINK"
    rmdir /run/slurm/conf /run/slurm 2>/dev/null || true
fi
log "stopped (state kept in $STATE)"
exit 0
