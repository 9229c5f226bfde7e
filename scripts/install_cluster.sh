#!/usr/bin/env bash
# Install the Debian packages of a small Dagster cluster (tests/e2e/test_cluster.py and the
# README's "Running on a cluster"): redis-server (the Celery broker and result backend) and
# PostgreSQL (Dagster's run, event and schedule storage).
# Idempotent: a fast no-op when every binary is already present.
set -euo pipefail

# Debian keeps PostgreSQL's server binaries out of PATH, under /usr/lib/postgresql/<version>/bin.
postgres_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/pg_ctl" ]
}

if command -v redis-server >/dev/null 2>&1 && postgres_bin; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install_cluster.sh: redis-server or PostgreSQL is missing and installing needs root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Another process may hold the dpkg lock (a parallel installer): wait for it instead of failing.
apt_options=(-o DPkg::Lock::Timeout=900 -y -q)
apt-get "${apt_options[@]}" update >/dev/null
# With no systemd running, the packages' postinst scripts only warn about their services;
# the tests start their own servers on free loopback ports and never use the system ones.
apt-get "${apt_options[@]}" install --no-install-recommends redis-server postgresql >/dev/null

command -v redis-server >/dev/null 2>&1 || {
    echo "install_cluster.sh: redis-server still missing after install" >&2
    exit 1
}
postgres_bin || {
    echo "install_cluster.sh: PostgreSQL's initdb/pg_ctl still missing after install" >&2
    exit 1
}
