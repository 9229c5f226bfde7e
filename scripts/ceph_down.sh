#!/usr/bin/env bash
# Stop a cluster started by scripts/ceph_up.sh DIR and remove its data.
#
# usage: scripts/ceph_down.sh DIR
#
# Daemons are stopped only by the PIDs listed in DIR/pids (never by process name, so other
# clusters and other users' processes are left alone): SIGTERM, wait up to CEPH_DOWN_TIMEOUT
# seconds per daemon (default 15), then SIGKILL. Then everything ceph_up.sh created in DIR is
# removed; with CEPH_DOWN_KEEP_LOGS=1 the log/ directory is kept.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
if [ ! -d "$1" ]; then
    exit 0
fi
# The same absolute spelling ceph_up.sh used: daemons are recognised by "$dir/ceph.conf" in
# their command line.
dir="$(cd "$1" && pwd)"
timeout_s="${CEPH_DOWN_TIMEOUT:-15}"

pids=()
if [ -f "$dir/pids" ]; then
    while read -r pid; do
        # Only plain numbers: a corrupt file must never turn into `kill -- -1`.
        if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ]; then
            pids+=("$pid")
        fi
    done <"$dir/pids"
fi

is_ours() {
    # A PID from the file is only signalled while it still runs a ceph daemon whose command
    # line names this cluster's config: after a reboot or a crash the number may be reused.
    local cmdline
    cmdline="$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
    # Whole-argument match: /a/b must not match a daemon of /x/a/b.
    [[ " $cmdline" == *" $dir/ceph.conf "* ]]
}

wait_gone() {
    # wait_gone PID SECONDS: poll (it is not our child, so `wait` cannot be used).
    local deadline=$((SECONDS + $2))
    while is_ours "$1"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}

stop_one() {
    local pid="$1"
    is_ours "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    wait_gone "$pid" "$timeout_s" && return 0
    echo "ceph_down.sh: PID $pid ignored SIGTERM for ${timeout_s}s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || echo "ceph_down.sh: PID $pid still present after SIGKILL" >&2
}

# One at a time, in reverse start order (radosgw, OSD, mon): a daemon stopped while the ones
# it depends on still run exits in a fraction of a second; SIGTERM to all at once makes
# radosgw and the OSD wait ~5 s for a mon that is already gone.
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_one "${pids[i]}"
done

# Remove only what ceph_up.sh creates, so a DIR shared with other files keeps them.
rm -rf "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/run" "$dir/crash" "$dir/monmap" \
    "$dir"/ceph.*keyring "$dir/ceph.conf" "$dir/endpoint.env" "$dir/endpoint.env.tmp"
if [ "${CEPH_DOWN_KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$dir/log"
fi
rm -f "$dir/pids"
