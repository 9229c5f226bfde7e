#!/usr/bin/env bash
# Install the Debian packages needed for a throwaway single-node Ceph cluster with radosgw
# (used by tests/servers/radosgw_server.py as a second, real S3 implementation).
# Idempotent: a fast no-op when every binary is already present.
set -euo pipefail

# Binaries the cluster scripts call; each comes from one of the packages below.
required=(ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool)

missing=0
for binary in "${required[@]}"; do
    if ! command -v "$binary" >/dev/null 2>&1; then
        missing=1
        break
    fi
done
if [ "$missing" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install_ceph.sh: Ceph binaries are missing and installing them needs root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Another process may hold the dpkg lock (a parallel installer): wait for it instead of failing.
apt_options=(-o DPkg::Lock::Timeout=600 -y -q)
apt-get "${apt_options[@]}" update >/dev/null
# The packages' postinst scripts try to start systemd units; with no systemd running they
# only warn. --no-install-recommends keeps the install at ~260 MB instead of pulling in
# ceph-mgr, python modules for dashboards and so on.
apt-get "${apt_options[@]}" install --no-install-recommends \
    radosgw ceph-mon ceph-osd ceph-common >/dev/null

for binary in "${required[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || {
        echo "install_ceph.sh: $binary still missing after install" >&2
        exit 1
    }
done
