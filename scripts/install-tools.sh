#!/usr/bin/env bash
# The command-line tools the course observes the system with, from Debian's packages.
#
#   sudo scripts/install-tools.sh            all of them
#   sudo scripts/install-tools.sh strace     only these
#
# strace (syscalls), ltrace (library calls), iproute2 (ss, ip), tcpdump (packets), htop,
# procps (ps, pmap), psmisc (pstree), time (/usr/bin/time -v), wrk (HTTP load), postgresql-client (psql),
# redis-tools (redis-cli), linux-perf (perf, where the kernel allows it), mold (a fast linker:
# `cargo lab verify` links a few hundred test executables, and .ci/run links them with mold).
set -euo pipefail

ALL=(strace ltrace iproute2 tcpdump htop procps psmisc time wrk postgresql-client redis-tools mold)
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=("${ALL[@]}")

if [ "$(id -u)" -ne 0 ]; then
    echo "install-tools: run as root: sudo $0 ${wanted[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: no apt-get here; install with your package manager: ${wanted[*]}" >&2
    exit 1
fi

missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-tools: all present (${wanted[*]})"
    exit 0
fi
echo "install-tools: installing ${missing[*]}"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-tools: done"
