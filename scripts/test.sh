#!/usr/bin/env bash
# Run the whole test suite (unit, integration against real sockets and real etcd, glibc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
exec cargo test --locked "$@"
