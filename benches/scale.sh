#!/usr/bin/env bash
# Scale benchmark: srvd following an etcd prefix that holds N keys (default 1,000,000).
#
# Usage: benches/scale.sh [N]
#
# Environment:
#   BATCH=1000        puts per etcd transaction while loading (etcd runs with --max-txn-ops 10000)
#   CONNS=4           concurrent gateway connections while loading
#   RUNS=3            timed runs of each range read and of srvd's start (median reported)
#   COUNT=1000        put->answer samples (half new keys, half overwrites of loaded keys)
#   WARMUP=20         put->answer changes made first and not counted
#   PAGE=10000        page size of the paged range read (srvd reads pages of 250000)
#   PAGE_SWEEP=100000 other page sizes to time the paged read at, for comparison ("" for none)
#   POLL_US=50        sleep between two DNS polls of one change
#   SRVD_BIN=path     use this srvd binary instead of `cargo build --release`
#   KEEP=1            keep the work directory (etcd data, logs, samples)
#
# What it does, all on 127.0.0.1 (free ports), every loop bounded in count and time:
#  1. starts its own single-member etcd (data dir in /dev/shm when it has room, else /tmp) with
#     --max-txn-ops 10000 --max-request-bytes 32 MiB --quota-backend-bytes 8 GiB;
#  2. writes N keys /skydns/local/skydns/svc<i/3>/<i%3> = {"host":"10.a.b.c","port":8080} in
#     batched transactions through etcd's v3 JSON gateway (POST /v3/kv/txn) from CONNS
#     concurrent connections (benches/scale/scale.py, Python standard library only);
#  3. times a plain prefix range read of those keys: one `etcdctl get --prefix` request to
#     /dev/null, and a paged read (`etcdctl get --limit PAGE --rev R` per page, as srvd pages);
#  4. starts `srvd --etcd ... --domain skydns.local.` (empty zone dir) RUNS times and times exec
#     -> first `/readyz` 200; reads VmRSS/VmHWM from /proc/PID/status once ready; also srvd's
#     CPU seconds to ready and when it logged "etcd snapshot loaded";
#  5. with the last srvd: COUNT puts, each timestamped at etcd's acknowledgement, then polls srvd
#     over UDP (hand-built A query, 100 ms reply timeout, at most 2 s per change) until the new
#     address is answered: put->answer p50/p99. A separate watcher (etcd gateway /v3/watch)
#     timestamps the same puts' watch events: etcd's own put->event latency, for reference;
#  6. prints a Markdown table with the figures and each one against its target:
#     ready <= 1.5 x plain range read; RSS <= 400 MB (10^6 bytes); put->answer p99 <= 2 ms.
set -euo pipefail

N=${1:-1000000}
BATCH=${BATCH:-1000}
CONNS=${CONNS:-4}
RUNS=${RUNS:-3}
COUNT=${COUNT:-1000}
WARMUP=${WARMUP:-20}
PAGE=${PAGE:-10000}
PAGE_SWEEP=${PAGE_SWEEP-100000}
POLL_US=${POLL_US:-50}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-1800}   # seconds the load may take
READY_TIMEOUT=${READY_TIMEOUT:-600}  # seconds one srvd start may take
DOMAIN=skydns.local.
PREFIX=/skydns/

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=$REPO/benches/scale/scale.py

log() { printf '[scale %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in N BATCH CONNS RUNS COUNT PAGE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $WARMUP =~ ^[0-9]+$ && $POLL_US =~ ^[0-9]+$ ]] || die "WARMUP and POLL_US must be integers"
((BATCH <= 10000)) || die "BATCH must be at most 10000 (etcd --max-txn-ops)"

# --- tools ----------------------------------------------------------------------------------

need_install=()
for tool in etcd:etcd-server etcdctl:etcd-client dig:bind9-dnsutils python3:python3 ss:iproute2; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_install+=("${tool#*:}")
done
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install ${need_install[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >&2
fi
# The Debian etcd-server package may start its own etcd on 2379 (systemd hosts); this script
# never uses that port, so it does not matter.

# --- work directory, children, cleanup -------------------------------------------------------

# etcd's data (WAL + bolt file) takes roughly 1.5 KB a key here; use RAM when there is room.
need_kb=$((N * 3 / 2 + 2 * 1024 * 1024))
shm_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }' || echo 0)
if [[ -n $shm_kb ]] && ((shm_kb > need_kb)); then base=/dev/shm; else base=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$base/srvd-scale.XXXXXX")

ETCD_PID=""
SRVD_PID=""
WATCH_PID=""
POLLER_PID=""
stop_pid() { # stop_pid PID NAME: TERM, wait up to 10 s, then KILL; PID is our child
    local pid=$1 name=$2
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        log "$name (pid $pid) did not stop on SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$WATCH_PID" watcher
    stop_pid "$POLLER_PID" "readiness poller"
    stop_pid "$SRVD_PID" srvd
    stop_pid "$ETCD_PID" etcd
    if [[ ${KEEP:-0} == 1 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=benches/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

now() { echo "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cpu_s() { # utime+stime of a live process, seconds
    awk -v tk="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / tk }' "/proc/$1/stat"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb * 1024 / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2f", a / b; else printf "-" }'; }
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "nan") print "?"; else if (a + 0 <= b + 0) print "**pass**"; else print "**FAIL**" }'; }
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }

# --- etcd ------------------------------------------------------------------------------------

CLIENT_PORT=$(free_port)
PEER_PORT=$(free_port)
ETCD_URL=http://127.0.0.1:$CLIENT_PORT
export ETCDCTL_API=3
ectl() { etcdctl --endpoints "$ETCD_URL" --command-timeout=600s "$@"; }

log "work directory $WORK ($(nproc) CPUs); etcd $(etcd --version | sed -n 's/^etcd Version: //p') on $ETCD_URL"
etcd --name scale --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "scale=http://127.0.0.1:$PEER_PORT" \
    --quota-backend-bytes 8589934592 --max-txn-ops 10000 --max-request-bytes 33554432 \
    >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for i in $(seq 150); do
    kill -0 "$ETCD_PID" 2>/dev/null || { tail -20 "$WORK/etcd.log" >&2; die "etcd exited"; }
    ectl --dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1 && break
    ((i < 150)) || { tail -20 "$WORK/etcd.log" >&2; die "etcd not healthy within 30 s"; }
    sleep 0.2
done

# --- srvd binary -----------------------------------------------------------------------------

if [[ -n ${SRVD_BIN:-} ]]; then
    BIN=$SRVD_BIN
else
    log "building srvd (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet --bin srvd) >&2
    BIN=$REPO/target/release/srvd
fi
[[ -x $BIN ]] || die "no srvd binary at $BIN"

# --- load ------------------------------------------------------------------------------------

log "writing $N keys in transactions of $BATCH puts over $CONNS connections"
read -r _ LOAD_S < <(python3 "$HELPER" load "$ETCD_URL" "$N" --batch "$BATCH" --conns "$CONNS" \
    --timeout "$LOAD_TIMEOUT")
[[ -n ${LOAD_S:-} ]] || die "loading the keys failed"
LOAD_RATE=$(awk -v n="$N" -v s="$LOAD_S" 'BEGIN { printf "%.0f", n / s }')
log "wrote $N keys in $LOAD_S s ($LOAD_RATE keys/s)"

read -r COUNT_KEYS REV < <(ectl get "$PREFIX" "${PREFIX%/}0" --limit 1 -w json |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("count", 0), d["header"]["revision"])')
((${COUNT_KEYS:-0} == N)) || die "etcd holds $COUNT_KEYS keys under $PREFIX, expected $N"
DB_BYTES=$(ectl endpoint status -w json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])')
log "etcd: $COUNT_KEYS keys at revision $REV, db $(mb $((DB_BYTES / 1024))) MB, etcd VmRSS $(mb "$(status_kb "$ETCD_PID" VmRSS)") MB"

# --- plain range reads ------------------------------------------------------------------------

# One request for the whole prefix, printed (key and value lines) to /dev/null.
range_once() {
    local t0 t1
    t0=$(now)
    ectl get --prefix "$PREFIX" --rev "$REV" >/dev/null
    t1=$(now)
    sub "$t1" "$t0"
}

# Paged at one revision like srvd: PAGE keys per request, the next page starts at the last key
# (asked for with one more key, the repeated one not counted).
paged_once() { # paged_once [PAGE]
    local size=${1:-$PAGE}
    local t0 t1 start=$PREFIX limit=$size got total=0 lines last pages=0
    local page=$WORK/page.txt
    t0=$(now)
    while ((pages <= N / size + 2)); do
        ectl get "$start" "${PREFIX%/}0" --rev "$REV" --limit "$limit" >"$page"
        pages=$((pages + 1))
        lines=$(wc -l <"$page")
        got=$((lines / 2))
        if ((pages == 1)); then total=$got; else total=$((total + got - 1)); fi
        ((got == limit)) || break
        last=$(tail -n 2 "$page" | head -n 1)
        start=$last
        limit=$((size + 1))
    done
    t1=$(now)
    ((total == N)) || die "paged read saw $total keys, expected $N"
    echo "$(sub "$t1" "$t0") $pages"
}

log "range reads ($RUNS timed runs each, after one untimed)"
range_once >/dev/null
RANGE_ALL=""
for _ in $(seq "$RUNS"); do RANGE_ALL+="$(range_once) "; done
RANGE_S=$(median <<<"$RANGE_ALL")
PAGED_ALL=""
for _ in $(seq "$RUNS"); do
    s=""
    read -r s PAGES < <(paged_once)
    [[ -n $s ]] || die "paged range read failed"
    PAGED_ALL+="$s "
done
PAGED_S=$(median <<<"$PAGED_ALL")
declare -A SWEEP_S SWEEP_PAGES
for size in $PAGE_SWEEP; do
    [[ $size =~ ^[1-9][0-9]*$ ]] || die "PAGE_SWEEP holds '$size', not a page size"
    all=""
    for _ in $(seq "$RUNS"); do
        s=""
        read -r s SWEEP_PAGES[$size] < <(paged_once "$size")
        [[ -n $s ]] || die "paged range read failed"
        all+="$s "
    done
    SWEEP_S[$size]=$(median <<<"$all")
    log "paged range read, pages of $size: ${SWEEP_S[$size]} s in ${SWEEP_PAGES[$size]} pages (runs: $all)"
done
# What one etcdctl invocation costs by itself (process start + connect), times the pages.
OVH_ALL=""
for _ in $(seq 5); do
    t0=$(now); ectl get /nonexistent-key >/dev/null; t1=$(now)
    OVH_ALL+="$(sub "$t1" "$t0") "
done
CALL_S=$(median <<<"$OVH_ALL")
log "range read: one request ${RANGE_S} s (runs: $RANGE_ALL); paged ${PAGED_S} s in $PAGES pages (runs: $PAGED_ALL); etcdctl call overhead ${CALL_S} s"

# --- srvd start -> ready ----------------------------------------------------------------------

mkdir -p "$WORK/zones"
DNS_PORT=""
start_srvd() { # start_srvd RUN: sets SRVD_PID, DNS_PORT; appends to READY_ALL etc.
    local run=$1 attempt
    for attempt in 1 2 3; do
        start_srvd_once "$run" && return
        grep -q 'Address already in use' "$WORK/srvd.$run.log" && ((attempt < 3)) ||
            { tail -20 "$WORK/srvd.$run.log" >&2; die "srvd did not get ready"; }
        log "srvd run $run: a port was taken; again with other ports"
        wait "$SRVD_PID" 2>/dev/null || true
        SRVD_PID=""
    done
}

start_srvd_once() { # returns 1 when srvd exits before it is ready
    local run=$1 http t0 t1 e0 e1 readyline loaded_at
    DNS_PORT=$(free_port)
    http=$(free_port)
    # The poller (Python starts in ~0.25 s) is started and armed before srvd is exec'd.
    local out=$WORK/ready.$run pidfile=$WORK/srvd.$run.pid poller
    : >"$out"
    python3 "$HELPER" ready "127.0.0.1:$http" --timeout "$READY_TIMEOUT" --pidfile "$pidfile" >"$out" &
    poller=$!
    POLLER_PID=$poller
    for i in $(seq 200); do
        [[ -s $out ]] && break
        ((i < 200)) || die "readiness poller did not start"
        sleep 0.05
    done
    e0=$(cpu_s "$ETCD_PID")
    t0=$(now)
    "$BIN" --zones "$WORK/zones" --listen "127.0.0.1:$DNS_PORT" --http "127.0.0.1:$http" \
        --etcd "$ETCD_URL" --domain "$DOMAIN" --log-level info >"$WORK/srvd.$run.log" 2>&1 &
    SRVD_PID=$!
    echo "$SRVD_PID" >"$pidfile"
    wait "$poller" || { POLLER_PID=""; return 1; }
    POLLER_PID=""
    readyline=$(sed -n 2p "$out")
    t1=${readyline%% *}
    READY_ALL+="$(sub "$t1" "$t0") "
    SRVD_CPU_ALL+="$(cpu_s "$SRVD_PID") "
    e1=$(cpu_s "$ETCD_PID")
    ETCD_CPU_ALL+="$(sub "$e1" "$e0") "
    RSS_ALL+="$(status_kb "$SRVD_PID" VmRSS) "
    HWM_ALL+="$(status_kb "$SRVD_PID" VmHWM) "
    loaded_at=$(sed -n 's/^\([0-9T:.-]*Z\) .*etcd snapshot loaded.*/\1/p' "$WORK/srvd.$run.log" | head -1)
    if [[ -n $loaded_at ]]; then
        LOADED_ALL+="$(sub "$(date -d "$loaded_at" +%s.%N)" "$t0") "
    fi
    HTTP_PORT=$http
    log "srvd run $run: ready in $(sub "$t1" "$t0") s (${readyline#* }); VmRSS $(mb "$(status_kb "$SRVD_PID" VmRSS)") MB, VmHWM $(mb "$(status_kb "$SRVD_PID" VmHWM)") MB, CPU $(cpu_s "$SRVD_PID") s"
}

READY_ALL="" SRVD_CPU_ALL="" ETCD_CPU_ALL="" RSS_ALL="" HWM_ALL="" LOADED_ALL=""
for run in $(seq "$RUNS"); do
    start_srvd "$run"
    if ((run < RUNS)); then
        stop_pid "$SRVD_PID" srvd
        SRVD_PID=""
    fi
done
READY_S=$(median <<<"$READY_ALL")
SRVD_CPU_S=$(median <<<"$SRVD_CPU_ALL")
ETCD_CPU_S=$(median <<<"$ETCD_CPU_ALL")
LOADED_S=$( [[ -n $LOADED_ALL ]] && median <<<"$LOADED_ALL" || echo "?")
RSS_KB=$(tr ' ' '\n' <<<"$RSS_ALL" | grep . | sort -n | tail -1)
HWM_KB=$(tr ' ' '\n' <<<"$HWM_ALL" | grep . | sort -n | tail -1)

# Sanity: the first and the last key are answered; the index holds every name.
first_ip=$(python3 "$HELPER" query "$DNS_PORT" "0.svc0.$DOMAIN")
last=$((N - 1))
last_ip=$(python3 "$HELPER" query "$DNS_PORT" "$((last % 3)).svc$((last / 3)).$DOMAIN")
[[ $first_ip == 10.0.0.1 ]] || die "0.svc0.$DOMAIN answered '$first_ip', expected 10.0.0.1"
n=$(((last + 1) & 0xFFFFFF))
[[ $last_ip == "10.$((n >> 16)).$(((n >> 8) & 255)).$((n & 255))" ]] || die "last key answered '$last_ip'"
NAMES=$(python3 - "$HTTP_PORT" <<'EOF'
import http.client, re, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", "/metrics")
m = re.search(r'^srvd_index_names\{source="etcd"\} (\d+)', c.getresponse().read().decode(), re.M)
print(m.group(1) if m else "?")
EOF
)
log "sanity: first and last keys answered; srvd_index_names{source=\"etcd\"} = $NAMES"

# --- put -> answer ----------------------------------------------------------------------------

log "put->answer: $COUNT changes (+$WARMUP warm-up) at $N keys"
python3 "$HELPER" watch "$ETCD_URL" "$PREFIX" --timeout 900 >"$WORK/watch.log" 2>"$WORK/watch.err" &
WATCH_PID=$!
for i in $(seq 100); do
    grep -q '^created' "$WORK/watch.log" 2>/dev/null && break
    ((i < 100)) || die "watcher not created within 10 s"
    sleep 0.1
done
python3 "$HELPER" latency "$ETCD_URL" "$DNS_PORT" "$COUNT" --svc $(((N + 2) / 3)) \
    --warmup "$WARMUP" --poll-us "$POLL_US" >"$WORK/samples.txt"
sleep 0.5   # let the watcher log the last events
stop_pid "$WATCH_PID" watcher
WATCH_PID=""
declare -A P50 P99 PMAX NS TO QS
while read -r row n to p50 p99 pmax q; do
    NS[$row]=$n TO[$row]=$to P50[$row]=$p50 P99[$row]=$p99 PMAX[$row]=$pmax QS[$row]=$q
done < <(python3 "$HELPER" stats "$WORK/samples.txt" --watch "$WORK/watch.log" --warmup "$WARMUP")
RSS_AFTER_KB=$(status_kb "$SRVD_PID" VmRSS)
HWM_AFTER_KB=$(status_kb "$SRVD_PID" VmHWM)
log "put->answer p50 ${P50[all]} ms, p99 ${P99[all]} ms (${TO[all]} timeouts); etcd watch p50 ${P50[etcd]} ms, p99 ${P99[etcd]} ms"

# --- report -----------------------------------------------------------------------------------

READY_LIMIT=$(awk -v r="$RANGE_S" 'BEGIN { printf "%.3f", 1.5 * r }')
READY_RATIO=$(ratio "$READY_S" "$RANGE_S")
RSS_MB=$(mb "$RSS_KB")
HWM_MB=$(mb "$HWM_KB")
ms() { [[ ${TO[$1]} == 0 ]] && echo "${P50[$1]} / ${P99[$1]} / ${PMAX[$1]}" || echo "${P50[$1]} / ${P99[$1]} / ${PMAX[$1]} (${TO[$1]} timeouts)"; }
p99_ok=$( ((TO[all] == 0)) && verdict "${P99[all]}" 2 || echo "**FAIL**")

echo
echo "### srvd at scale: $(thousands "$N") keys in etcd"
echo
echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p'), one member, data in $base; srvd $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo '+dirty'); $(nproc) CPUs, $(uname -r); all on 127.0.0.1."
echo "Times are medians of $RUNS runs (srvd RSS: the largest). MB = 10^6 bytes."
echo
echo "| figure | value | target | ratio | verdict |"
echo "|---|---:|---:|---:|---|"
echo "| keys loaded (txns of $BATCH puts, $CONNS gateway connections) | $(thousands "$N") in ${LOAD_S} s = $(thousands "$LOAD_RATE") keys/s | | | |"
echo "| etcd db size / etcd VmRSS | $(mb $((DB_BYTES / 1024))) MB / $(mb "$(status_kb "$ETCD_PID" VmRSS)") MB | | | |"
echo "| plain range read, one request (\`etcdctl get --prefix\` > /dev/null) | ${RANGE_S} s | | | |"
echo "| paged range read, $PAGES × \`etcdctl get --limit $PAGE --rev\` | ${PAGED_S} s (of which ~$(awk -v c="$CALL_S" -v p="$PAGES" 'BEGIN { printf "%.2f", c * p }') s etcdctl start-up) | | | |"
for size in $PAGE_SWEEP; do
    echo "| … same, ${SWEEP_PAGES[$size]} × \`etcdctl get --limit $size --rev\` (for comparison) | ${SWEEP_S[$size]} s | | | |"
done
echo "| **srvd start → /readyz 200** | **${READY_S} s** | ≤ 1.5 × ${RANGE_S} = ${READY_LIMIT} s | ready / range read = **${READY_RATIO}** (≤ 1.5) | $(verdict "$READY_RATIO" 1.5) |"
echo "| … ready / paged range read | | | $(ratio "$READY_S" "$PAGED_S") | |"
echo "| … srvd logged \"etcd snapshot loaded\" at | ${LOADED_S} s after exec | | | |"
echo "| … CPU to ready: srvd / etcd (during srvd's start) | ${SRVD_CPU_S} s / ${ETCD_CPU_S} s | | | |"
echo "| **srvd VmRSS once ready** | **${RSS_MB} MB** | ≤ 400 MB | $(ratio "$RSS_MB" 400) | $(verdict "$RSS_MB" 400) |"
echo "| srvd VmHWM (peak) once ready | ${HWM_MB} MB | | $(ratio "$HWM_MB" 400) | |"
echo "| srvd VmRSS / VmHWM after the put->answer run | $(mb "$RSS_AFTER_KB") MB / $(mb "$HWM_AFTER_KB") MB | | | |"
echo "| **put→answer p50 / p99 / max**, all ${NS[all]} puts | **$(ms all) ms** | p99 ≤ 2 ms | $(ratio "${P99[all]}" 2) | $p99_ok |"
echo "| … new key (\`lat/<i>\`), ${NS[new]} puts | $(ms new) ms | | | |"
echo "| … overwrite of a loaded key (\`svc<k>/0\`), ${NS[overwrite]} puts | $(ms overwrite) ms | | | |"
echo "| etcd's own put→watch event (gateway watcher), same puts | $(ms etcd) ms | | | |"
echo
echo "put→answer: from the put's acknowledgement (etcd JSON gateway) until a UDP A query answers"
echo "the new address (polled every ~${POLL_US} µs + one query round trip, ~${QS[all]} queries per change)."
echo "Command: \`benches/scale.sh $N\` (BATCH=$BATCH CONNS=$CONNS RUNS=$RUNS COUNT=$COUNT PAGE=$PAGE)."
