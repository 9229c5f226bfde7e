#!/usr/bin/env bash
# The whole test suite, from a bare machine: system packages (Ceph radosgw, chromium, Java 17
# for Spark), the virtualenv (dependency versions pinned by constraints.txt, the set CI was green
# with), lint and type checks, then every test (S3 servers and dagster dev included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not radosgw and not e2e"`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_ceph.sh
bash scripts/install_browser.sh
bash scripts/install_java.sh
bash scripts/install_cluster.sh

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev,bench,cluster]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

# pytest exits 5 when it collected no test: that is a failure here, as any non-zero exit.
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
