#!/usr/bin/env bash
# Build srvd (release) and run it; arguments go to srvd (default: serve zones/ on 127.0.0.1:5353).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
exec cargo run --release --locked -- "$@"
