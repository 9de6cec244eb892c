#!/usr/bin/env bash
# Zone-file memory benchmark: a large zone file loaded, reloaded and removed.
#
# Usage: benches/zone_memory.sh [MB]      (size of the generated zone file; default 50)
#
# Environment:
#   RELOADS=5       reloads (SIGHUP after touching the file) to watch for ratcheting
#   SRVD_BIN=path   use this srvd binary instead of `cargo build --release`
#   KEEP=1          keep the work directory
#
# What it does, on 127.0.0.1 with free ports, every wait bounded:
#  1. writes big.test.zone of about MB megabytes: A, AAAA, TXT and SRV records over ~24-byte
#     names (about 40 bytes of file per record);
#  2. starts `srvd --zones <dir>` and waits for /readyz (at most 600 s); steady RSS = VmRSS
#     once ready, peak = VmHWM;
#  3. RELOADS times: bumps the file's SOA serial, sends SIGHUP, waits until the new serial is
#     served, records VmRSS after and VmHWM (the process-wide peak so far);
#  4. removes the file, SIGHUP, waits for REFUSED, records VmRSS (what is kept);
#     every VmRSS figure is read once it has stopped moving (unchanged for 3 s);
#  5. puts an error on the last line of a copy and times `srvd check` locating it.
# Output: a Markdown table; the ratios peak/steady and removed/steady are the figures of merit
# (goals: peak under 3x steady, nothing kept after removal, the error found in one pass).
set -euo pipefail

MB=${1:-50}
RELOADS=${RELOADS:-5}
here=$(cd "$(dirname "$0")/.." && pwd)

need() { command -v "$1" >/dev/null || { apt-get install -y "$2" >/dev/null; }; }
need dig bind9-dnsutils
need curl curl

if [[ -n ${SRVD_BIN:-} ]]; then
  srvd=$SRVD_BIN
else
  (cd "$here" && cargo build --release --quiet)
  srvd=$here/target/release/srvd
fi

work=$(mktemp -d /tmp/srvd-zone-memory.XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [[ -n ${KEEP:-} ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/zones"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dns=$(free_port)
http=$(free_port)

zone=$work/zones/big.test.zone
python3 - "$zone" "$MB" <<'EOF'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
target = mb * 1024 * 1024
with open(path, "w") as f:
    f.write("$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 1800 86400 60\n@ NS ns\nns A 192.0.2.1\n")
    i = 0
    while f.tell() < target:
        n = f"host{i:08d}.svc{i % 1000:04d}"
        f.write(f"{n} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        if i % 4 == 0:
            f.write(f"{n} AAAA 2001:db8::{i & 0xffff:x}\n")
        if i % 8 == 0:
            f.write(f"{n} TXT \"v=1 id={i}\"\n")
        if i % 16 == 0:
            f.write(f"_http._tcp.svc{i % 1000:04d} SRV 10 10 80 {n}\n")
        i += 1
EOF
size=$(stat -c %s "$zone")
records=$(wc -l <"$zone")

status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
serial() { dig @127.0.0.1 -p "$dns" big.test SOA +short +time=2 +tries=1 | awk '{print $3}'; }
wait_for() { # wait_for SECONDS COMMAND...: poll until the command succeeds
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < end)) || { echo "timed out: $*" >&2; exit 1; }
    sleep 0.1
  done
}
ready() { curl -fs "127.0.0.1:$http/readyz" >/dev/null; }
# RSS once it has stopped moving: the old version is dropped and trimmed on the index thread
# after the new one is served, which takes seconds for a big zone (RSS holds still while the
# drop runs). Settled: unchanged for 3 s (6 readings); at most 60 s.
settled_rss() {
  local before now same=0
  before=$(status VmRSS)
  for _ in $(seq 1 120); do
    sleep 0.5
    now=$(status VmRSS)
    if [[ $now == "$before" ]]; then
      same=$((same + 1))
      ((same >= 6)) && break
    else
      same=0
    fi
    before=$now
  done
  echo "$now"
}

start=$(date +%s.%N)
"$srvd" --zones "$work/zones" --listen "127.0.0.1:$dns" --http "127.0.0.1:$http" \
  --log-level warn 2>"$work/srvd.log" &
pid=$!
wait_for 600 ready
load_s=$(echo "$(date +%s.%N) - $start" | bc)
steady=$(settled_rss)
peak_load=$(status VmHWM)

declare -a after
for r in $(seq 1 "$RELOADS"); do
  next=$((r + 1))
  sed -i "3s/ SOA ns hostmaster [0-9]* / SOA ns hostmaster $next /" "$zone"
  kill -HUP "$pid"
  served() { [[ $(serial) == "$next" ]]; }
  wait_for 600 served
  after+=("$(settled_rss)")
done
peak_reload=$(status VmHWM)

rm -f "$zone"
kill -HUP "$pid"
refused() { dig @127.0.0.1 -p "$dns" big.test SOA +time=2 +tries=1 | grep -q REFUSED; }
wait_for 600 refused
removed=$(settled_rss)

broken=$work/broken
mkdir -p "$broken"
python3 - "$broken/big.test.zone" "$MB" <<'EOF'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
target = mb * 1024 * 1024
with open(path, "w") as f:
    f.write("$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 1800 86400 60\n@ NS ns\n")
    i = 0
    while f.tell() < target:
        f.write(f"host{i:08d} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
        i += 1
    f.write("last A 10.0.0.300\n")
EOF
check_start=$(date +%s.%N)
check_out=$("$srvd" check --zones "$broken" 2>&1 || true)
check_s=$(echo "$(date +%s.%N) - $check_start" | bc)
located=$(echo "$check_out" | grep -o 'big.test.zone:[0-9]*' | head -1)

mib() { echo "scale=1; $1 / 1024" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
echo
echo "| figure | value |"
echo "|---|---:|"
echo "| zone file | $((size / 1048576)) MiB, $records lines |"
echo "| load -> ready | ${load_s%??????} s |"
echo "| RSS once loaded (steady) | $(mib "$steady") MiB |"
echo "| peak during the first load | $(mib "$peak_load") MiB = **$(ratio "$peak_load" "$steady")x** steady |"
echo "| RSS after each of $RELOADS reloads | $(for a in "${after[@]}"; do printf '%s ' "$(mib "$a")"; done)MiB |"
echo "| peak over all reloads | $(mib "$peak_reload") MiB = **$(ratio "$peak_reload" "$steady")x** steady |"
echo "| RSS after the file is removed | $(mib "$removed") MiB = **$(ratio "$removed" "$steady")x** steady |"
echo "| \`srvd check\` locating an error on the last line | ${check_s%??????} s ($located) |"
