#!/usr/bin/env bash
# Install Debian's Java 17 runtime for the Spark interop tests (tests/test_spark_interop.py,
# marker `spark`): pyspark runs Spark in a local JVM started from the `java` on PATH.
#
# usage: scripts/install_java.sh
#
# Idempotent: a fast no-op when `java` on PATH (or $JAVA_HOME/bin/java, which pyspark prefers)
# is version 17 or newer. `apt-get update` runs only when Java is missing. The dpkg lock timeout
# lets it wait for another apt-get running at the same time instead of failing.
set -euo pipefail

# The major version of a java binary ("17.0.15" -> 17, old style "1.8.0" -> 8), 0 if none.
java_major() {
    local binary="$1" version
    command -v "$binary" >/dev/null 2>&1 || { echo 0; return; }
    version="$("$binary" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)"
    version="${version#1.}"
    echo "${version%%[.+-]*}" | grep -E '^[0-9]+$' || echo 0
}

java_binary="java"
if [ -n "${JAVA_HOME:-}" ]; then
    java_binary="$JAVA_HOME/bin/java"
fi
if [ "$(java_major "$java_binary")" -ge 17 ]; then
    echo "java already installed: $("$java_binary" -version 2>&1 | head -n 1)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

$SUDO env DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -q
# --no-install-recommends: the headless runtime only (no X11 libraries, fonts or sound).
$SUDO env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -q --no-install-recommends \
    openjdk-17-jre-headless

if [ "$(java_major "$java_binary")" -lt 17 ]; then
    echo "install_java.sh: openjdk-17-jre-headless is installed but $java_binary is still" \
        "older than 17; unset JAVA_HOME or point it at /usr/lib/jvm/java-17-openjdk-amd64" >&2
    exit 1
fi
"$java_binary" -version 2>&1 | head -n 1
