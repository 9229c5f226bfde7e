#!/usr/bin/env bash
# Install Debian's chromium for the Playwright browser tests (tests/e2e, marker `browser`).
#
# usage: scripts/install_browser.sh
#
# Idempotent: does nothing when /usr/bin/chromium is already there. Uses apt-get only (never
# `playwright install`); `apt-get update` runs only when chromium is missing. The dpkg lock
# timeout lets it wait for another apt-get running at the same time instead of failing.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

$SUDO env DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -q
$SUDO env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -q --no-install-recommends \
    chromium fonts-liberation
"$CHROMIUM" --version
