#!/usr/bin/env bash
# Bring up a throwaway single-node Ceph cluster (one mon, one memstore OSD, one radosgw)
# whose every file lives under DIR, and create an S3 user on it.
#
# usage: scripts/ceph_up.sh DIR
#
# Writes DIR/endpoint.env (ENDPOINT_URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION; mode 0600)
# and DIR/pids (one PID per line of every daemon started). Stop it with scripts/ceph_down.sh DIR.
# Nothing is written outside DIR: config, keyrings, mon/osd data, logs, pid files and admin
# sockets all live there, so several clusters can run side by side (each picks free ports).
#
# Environment knobs (all optional):
#   CEPH_UP_TIMEOUT        seconds to wait for each daemon to become ready (default 90)
#   CEPH_MEMSTORE_BYTES    capacity the memstore OSD reports (default 2 GiB; RAM is only used
#                          for what is actually written)
#   CEPH_S3_REGION         region written to endpoint.env (default us-east-1; radosgw accepts
#                          any region in the SigV4 scope)
# -E: the ERR trap below also fires for failures inside functions.
set -Eeuo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
if [ -e "$dir/pids" ]; then
    echo "ceph_up.sh: $dir/pids exists: a cluster may still run there (ceph_down.sh it first)" >&2
    exit 1
fi

timeout_s="${CEPH_UP_TIMEOUT:-90}"
memstore_bytes="${CEPH_MEMSTORE_BYTES:-2147483648}"
region="${CEPH_S3_REGION:-us-east-1}"
# The ceph CLI and our helpers are Python; use Debian's interpreter (a dependency of
# ceph-common), never a venv or pyenv one that may be first on PATH.
python=/usr/bin/python3
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

# Keyrings and endpoint.env hold secrets: keep everything we create private to this user.
umask 077
conf="$dir/ceph.conf"
log_dir="$dir/log"
run_dir="$dir/run"
: >"$dir/pids"
mkdir -p "$log_dir" "$run_dir" "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/crash"

free_port() {
    # Ask the kernel for a free port on 127.0.0.1. Another process could take it before the
    # daemon binds it; the readiness checks below would then fail loudly rather than hang.
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log_tail() {
    local file
    for file in "$log_dir"/*.log "$log_dir"/*.out; do
        [ -s "$file" ] || continue
        echo "---- tail of $file" >&2
        tail -n 12 "$file" >&2
    done
}

on_error() {
    # Called on any failure: show why, then stop whatever this run started (by PID) so no
    # daemon outlives a failed start. Logs are kept for inspection.
    local status=$?
    trap - ERR
    # With -E a failing command substitution runs this trap in its subshell too: only the
    # main shell cleans up.
    if [ "$BASHPID" != "$$" ]; then
        exit "$status"
    fi
    echo "ceph_up.sh: failed (exit $status); log tails follow" >&2
    log_tail
    CEPH_DOWN_KEEP_LOGS=1 "$script_dir/ceph_down.sh" "$dir" >&2 || true
    exit "$status"
}
trap on_error ERR

fail() {
    echo "ceph_up.sh: $*" >&2
    false
}

cephcli() {
    # Every CLI call is bounded: without a reachable mon the ceph tool would retry forever.
    timeout 60 ceph -c "$conf" --connect-timeout 15 "$@"
}

wait_for() {
    # wait_for DESCRIPTION PID COMMAND...: retry COMMAND (quietly) until it succeeds; fail at
    # once if daemon PID exits (e.g. its port was taken meanwhile), or when time runs out.
    local what="$1" pid="$2" deadline=$((SECONDS + timeout_s))
    shift 2
    until "$@" >/dev/null 2>&1; do
        alive "$pid" || fail "daemon $pid exited while waiting for $what"
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "timed out after ${timeout_s}s waiting for $what"
        fi
        sleep 0.2
    done
}

start_daemon() {
    # start_daemon NAME COMMAND...: run a daemon in the foreground (-f) in the background of
    # this shell, so $! is the daemon's own PID; its stdout/stderr go to a file so it never
    # holds the caller's pipes open (a caller reading our output would otherwise never see EOF).
    local name="$1"
    shift
    "$@" </dev/null >>"$log_dir/$name.out" 2>&1 &
    echo "$!" >>"$dir/pids"
}

alive() {
    kill -0 "$1" 2>/dev/null
}

fsid="$("$python" -c 'import uuid; print(uuid.uuid4())')"
mon_port="$(free_port)"
rgw_port="$(free_port)"

# ---- configuration: every path points into $dir -------------------------------------------
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# msgr v2 only: no legacy v1 listener on a second port.
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $run_dir
crash dir = $dir/crash
log file = $log_dir/\$cluster-\$name.log
mon cluster log file = $log_dir/\$cluster.log
keyring = $dir/\$cluster.\$name.keyring
log to stderr = false
err to stderr = false
# One OSD: pools of size 1, placement across OSDs instead of hosts, few PGs.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
# The mon refuses to start below 5% free disk by default; a full CI /tmp should not matter
# for a cluster whose data lives in memory.
mon data avail crit = 1
# No ceph-mgr runs, so the mon must not wait for or warn about one.
mon warn on insecure global id reclaim allowed = false
# Commit map changes every 0.1 s instead of every 1 s: radosgw creates its pools one map
# epoch at a time, so this roughly halves the start-up time.
paxos propose interval = 0.1

[mon]
mon data = $dir/mon/\$cluster-\$id
pid file = $run_dir/\$cluster-\$name.pid

[osd]
osd data = $dir/osd/\$cluster-\$id
keyring = \$osd_data/keyring
pid file = $run_dir/\$cluster-\$name.pid
osd objectstore = memstore
memstore device bytes = $memstore_bytes
# Small in-memory footprint for a test cluster.
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
pid file = $run_dir/\$cluster-\$name.pid
# 512 threads by default: far more than a test needs, and each has a stack.
rgw thread pool size = 32
EOF

# ---- keys -----------------------------------------------------------------------------------
mon_keyring="$dir/ceph.mon.keyring"
admin_keyring="$dir/ceph.client.admin.keyring"
ceph-authtool --create-keyring "$mon_keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$admin_keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$mon_keyring" --import-keyring "$admin_keyring" >/dev/null

# ---- monitor ----------------------------------------------------------------------------------
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$mon_keyring" \
    >>"$log_dir/mkfs.out" 2>&1
start_daemon mon.a ceph-mon -c "$conf" -f -i a
mon_pid="$(tail -n 1 "$dir/pids")"
wait_for "the monitor on 127.0.0.1:$mon_port" "$mon_pid" cephcli mon stat

# ---- one OSD on memstore ----------------------------------------------------------------------
osd_uuid="$("$python" -c 'import uuid; print(uuid.uuid4())')"
osd_id="$(cephcli osd new "$osd_uuid")"
mkdir -p "$dir/osd/ceph-$osd_id"
# --no-mon-config: the OSD has no key yet, so it cannot fetch its config from the mon.
ceph-osd -c "$conf" -i "$osd_id" --mkfs --mkkey --osd-uuid "$osd_uuid" --no-mon-config >>"$log_dir/mkfs.out" 2>&1
cephcli auth add "osd.$osd_id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
    -i "$dir/osd/ceph-$osd_id/keyring" >/dev/null 2>&1
start_daemon "osd.$osd_id" ceph-osd -c "$conf" -f -i "$osd_id"
osd_pid="$(tail -n 1 "$dir/pids")"

osd_is_up() {
    cephcli osd dump --format json |
        "$python" -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["osds"][0]["up"] == 1 else 1)'
}
wait_for "osd.$osd_id to come up" "$osd_pid" osd_is_up

# ---- radosgw ------------------------------------------------------------------------------------
cephcli auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' \
    -o "$dir/ceph.client.rgw.gw.keyring" >/dev/null 2>&1
start_daemon rgw.gw radosgw -c "$conf" -f -n client.rgw.gw
rgw_pid="$(tail -n 1 "$dir/pids")"
endpoint="http://127.0.0.1:$rgw_port"

http_answers() {
    # Any HTTP status means beast is listening and radosgw finished its start-up.
    "$python" - "$endpoint" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/", timeout=5)
except urllib.error.HTTPError:
    pass
PY
}
wait_for "radosgw to listen on $endpoint" "$rgw_pid" http_answers

# ---- S3 user ------------------------------------------------------------------------------------
# radosgw-admin generates the keys; its JSON output (which contains the secret) is parsed
# straight into endpoint.env and never printed or passed on a command line.
timeout 60 radosgw-admin -c "$conf" -n client.admin user create --uid pq-test \
    --display-name "pq_io_manager tests" --gen-access-key --gen-secret 2>>"$log_dir/radosgw-admin.out" |
    "$python" -c '
import json, sys
key = json.load(sys.stdin)["keys"][0]
endpoint, region = sys.argv[1], sys.argv[2]
access_key, secret_key = key["access_key"], key["secret_key"]
print(f"ENDPOINT_URL={endpoint}")
print(f"ACCESS_KEY_ID={access_key}")
print(f"SECRET_ACCESS_KEY={secret_key}")
print(f"REGION={region}")
' "$endpoint" "$region" >"$dir/endpoint.env.tmp"
mv "$dir/endpoint.env.tmp" "$dir/endpoint.env"

signed_request_ok() {
    # A SigV4-signed ListBuckets (stdlib only) must get 200: proves the user is visible to
    # radosgw and that signatures verify.
    "$python" - "$dir/endpoint.env" <<'PY'
import datetime, hashlib, hmac, sys, urllib.request

env = dict(line.rstrip("\n").split("=", 1) for line in open(sys.argv[1]))
host = env["ENDPOINT_URL"].split("://", 1)[1]
now = datetime.datetime.now(datetime.timezone.utc)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
payload = hashlib.sha256(b"").hexdigest()
canonical = f"GET\n/\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\nhost;x-amz-content-sha256;x-amz-date\n{payload}"
scope = f"{day}/{env['REGION']}/s3/aws4_request"
to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
key = ("AWS4" + env["SECRET_ACCESS_KEY"]).encode()
for part in (day, env["REGION"], "s3", "aws4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
request = urllib.request.Request(env["ENDPOINT_URL"] + "/", headers={
    "x-amz-date": amz_date,
    "x-amz-content-sha256": payload,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={env['ACCESS_KEY_ID']}/{scope}, "
    f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}",
})
with urllib.request.urlopen(request, timeout=5) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}
wait_for "radosgw to accept a signed request" "$rgw_pid" signed_request_ok

trap - ERR
echo "ceph_up.sh: radosgw ready at $endpoint (mon 127.0.0.1:$mon_port, pids $(paste -sd' ' "$dir/pids"))"
