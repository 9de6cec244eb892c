#!/usr/bin/env bash
# Churn benchmark: srvd's CPU per answered query while etcd keeps changing one unrelated key.
#
# Usage: benches/churn.sh [N] [K]      (N services x K endpoints in etcd; default 1000 3)
#
# Environment:
#   DURATION=10       seconds of each dnsperf run (static and churn runs are the same length)
#   PUT_RATE=100      puts per second to the unrelated key during each churn run
#                     (PUT_RATE x DURATION puts, paced on a fixed schedule)
#   CLIENTS=4         dnsperf -c
#   OUTSTANDING=200   dnsperf -q
#   RATE=100000       queries per second of a second static/churn pair at a fixed rate (dnsperf
#                     -Q), so that srvd sees the same offered load in both; 0 skips that pair
#   WARMUP=2          seconds of an unmeasured dnsperf run before the static run
#   ROUNDS=1          static + churn pairs; rounds alternate the order (static-churn,
#                     churn-static, ...) and the figures are summed over all runs of a kind
#   FRESH_DURING=10   freshness probes spread over each churn run (under load)
#   FRESH_AFTER=10    freshness probes after it (load over, churn still on), one every 0.1 s
#   ETCD_CPU=1        CPU that etcd and the writer are pinned to (1 = the load generator's side,
#                     so CPU 0 is srvd's alone; 0 puts them beside srvd instead)
#   SRVD_BIN=path     use this srvd binary instead of `cargo build --release`
#   SRVD_LOG=warn     srvd --log-level (its log is in the work directory: see KEEP)
#   KEEP=1            keep the work directory (etcd data, logs, dnsperf output)
#
# What it does, all on 127.0.0.1 (free ports), every loop bounded in count and time:
#  1. starts its own single-member etcd (data dir in /dev/shm when there is room, else /tmp);
#  2. writes N x K keys /skydns/test/bench/s<i>/e<k> = {"host":"10.a.b.c","port":8080}
#     (etcd's v3 JSON gateway, POST /v3/kv/txn of 1000 puts; benches/churn/churn.py);
#  3. starts `srvd --etcd ... --domain bench.test. --zones <empty dir> --udp-workers 1` pinned to
#     CPU 0 and waits for /readyz 200; checks one A, two SRV and one NXDOMAIN answer;
#  4. writes a fixed dnsperf query file: ~47.5% A e<k>.s<i>, ~23.75% SRV s<i>, ~23.75% SRV
#     _http._tcp.s<i>, ~5% NXDOMAIN (nx<random>.s<i>), all under bench.test.;
#  5. runs dnsperf (pinned to CPU 1) WARMUP s unmeasured, then twice for DURATION s at
#     saturation (-q OUTSTANDING, no rate limit):
#     (a) static: nothing changes in etcd;
#     (b) churn: a writer (churn.py, pinned to ETCD_CPU) puts /skydns/test/bench/unrelated/x,
#         alternating two values, PUT_RATE times a second on a fixed schedule that starts with
#         the dnsperf run (PUT_RATE x DURATION puts); the achieved put rate is measured (first
#         send -> last ack) and must be within 10% of PUT_RATE;
#     then the same pair at a fixed RATE (dnsperf -Q) unless RATE=0;
#     per run: QPS, answers, srvd CPU (utime+stime from /proc/PID/stat) per 1k answers, and
#     srvd's cache-hit share (from /metrics: srvd_dns_queries_total by source);
#  6. freshness (c): during the churn run (FRESH_DURING probes) and after it with the writer
#     still going (FRESH_AFTER probes), each probe asks A p<j>.fresh.bench.test. (NXDOMAIN,
#     which srvd may cache), puts /skydns/test/bench/fresh/p<j>, and checks that the very next
#     query answers the new address (if not, it polls up to 1 s to tell how late);
#  7. checks that srvd applied every put (srvd_etcd_revision moved by the number of puts) and
#     prints a Markdown table: the runs, the ratio churn / static (goal: CPU ratio <= 1.1 at
#     saturation), the put rate and the freshness result (ok/fail).
set -euo pipefail

N=${1:-1000}
K=${2:-3}
DURATION=${DURATION:-10}
PUT_RATE=${PUT_RATE:-100}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
RATE=${RATE:-100000}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1}
FRESH_DURING=${FRESH_DURING:-10}
FRESH_AFTER=${FRESH_AFTER:-10}
ETCD_CPU=${ETCD_CPU:-1}
SRVD_LOG=${SRVD_LOG:-warn}
DOMAIN=bench.test
PREFIX=/skydns/test/bench/
SERVER_CPU=0
CLIENT_CPU=1
CPU_GOAL=1.1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER=$REPO/benches/churn/churn.py
TICKS=$(getconf CLK_TCK)

log() { printf '[churn %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in N K DURATION PUT_RATE CLIENTS OUTSTANDING WARMUP ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $FRESH_DURING =~ ^[0-9]+$ && $FRESH_AFTER =~ ^[0-9]+$ ]] || die "FRESH_* must be integers"
[[ $RATE =~ ^[0-9]+$ ]] || die "RATE must be a non-negative integer"
[[ $ETCD_CPU =~ ^[01]$ ]] || die "ETCD_CPU must be 0 or 1"
((PUT_RATE <= 2000)) || die "PUT_RATE above 2000/s is not what this measures"
((ROUNDS <= 20)) || die "ROUNDS must be at most 20"
((FRESH_DURING <= PUT_RATE * DURATION)) || die "FRESH_DURING must be at most PUT_RATE x DURATION"

# --- tools ----------------------------------------------------------------------------------

need_install=()
for tool in etcd:etcd-server etcdctl:etcd-client dnsperf:dnsperf dig:bind9-dnsutils \
    python3:python3 curl:curl ss:iproute2 taskset:util-linux; do
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

shm_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }' || echo 0)
need_kb=$((N * K * 4 + 512 * 1024))
if [[ -n $shm_kb ]] && ((shm_kb > need_kb)); then base=/dev/shm; else base=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$base/srvd-churn.XXXXXX")

ETCD_PID=""
SRVD_PID=""
DNSPERF_PID=""
WRITER_PID=""
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
        log "$name (pid $pid) did not stop on SIGTERM within 10 s; its threads (name state wchan):"
        for t in /proc/"$pid"/task/*; do
            log "  $(cat "$t/comm" 2>/dev/null) $(awk '{ sub(/.*\) /, ""); print $1 }' "$t/stat" 2>/dev/null) $(cat "$t/wchan" 2>/dev/null)"
        done
        log "killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$DNSPERF_PID" dnsperf
    stop_pid "$WRITER_PID" writer
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
# shellcheck source=benches/procs.sh
source "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

ticks() { # utime+stime of a live process, clock ticks
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    rest=${stat##*) }          # fields from 3 (state) on; comm may contain spaces
    read -r -a f <<<"$rest"
    echo $((f[11] + f[12]))   # fields 14 utime, 15 stime
}
pct() { awk -v c="$1" -v tk="$TICKS" -v ms="$2" 'BEGIN { printf "%.0f", (ms > 0 ? c / tk / ms * 100000 : 0) }'; }  # ticks, ms
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2f", a / b; else printf "-" }'; }
# Wait (bounded) for a background child to exit; KILL it after LIMIT seconds.
wait_bounded() { # wait_bounded PID NAME LIMIT
    local pid=$1 name=$2 limit=$3 rc=0
    for _ in $(seq $((limit * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        log "$name (pid $pid) still running after $limit s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    return "$rc"
}

# --- etcd ------------------------------------------------------------------------------------

CLIENT_PORT=$(free_port)
PEER_PORT=$(free_port)
ETCD_URL=http://127.0.0.1:$CLIENT_PORT
export ETCDCTL_API=3
ectl() { etcdctl --endpoints "$ETCD_URL" --dial-timeout=2s --command-timeout=30s "$@"; }

ETCD_VERSION=$(etcd --version | sed -n 's/^etcd Version: //p')
log "work directory $WORK ($(nproc) CPUs); etcd $ETCD_VERSION on $ETCD_URL, pinned to CPU $ETCD_CPU"
taskset -c "$ETCD_CPU" etcd --name churn --data-dir "$WORK/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "churn=http://127.0.0.1:$PEER_PORT" \
    --max-txn-ops 10000 --max-request-bytes 33554432 \
    >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
for i in $(seq 150); do
    kill -0 "$ETCD_PID" 2>/dev/null || { tail -20 "$WORK/etcd.log" >&2; die "etcd exited"; }
    ectl --command-timeout=2s endpoint health >/dev/null 2>&1 && break
    ((i < 150)) || { tail -20 "$WORK/etcd.log" >&2; die "etcd not healthy within 30 s"; }
    sleep 0.2
done

log "writing $N services x $K endpoints"
read -r KEYS LOAD_S < <(taskset -c "$ETCD_CPU" python3 "$HELPER" load "$ETCD_URL" "$N" "$K")
[[ ${KEYS:-0} == $((N * K)) ]] || die "loading the keys failed"
COUNT=$(ectl get --prefix "$PREFIX" --limit 1 -w json |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("count", 0))')
((COUNT == N * K)) || die "etcd holds $COUNT keys under $PREFIX, expected $((N * K))"
log "etcd holds $COUNT keys (written in $LOAD_S s)"

# --- srvd ------------------------------------------------------------------------------------

if [[ -n ${SRVD_BIN:-} ]]; then
    BIN=$SRVD_BIN
    SRVD_DESC="$SRVD_BIN"
else
    log "building srvd (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet --bin srvd) >&2
    BIN=$REPO/target/release/srvd
    SRVD_DESC="$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo '+dirty')"
fi
[[ -x $BIN ]] || die "no srvd binary at $BIN"

mkdir -p "$WORK/zones"
DNS_PORT=$(free_port)
HTTP_PORT=$(free_port)
taskset -c "$SERVER_CPU" "$BIN" --etcd "$ETCD_URL" --domain "$DOMAIN." --zones "$WORK/zones" \
    --listen "127.0.0.1:$DNS_PORT" --http "127.0.0.1:$HTTP_PORT" --udp-workers 1 \
    --log-level "$SRVD_LOG" >"$WORK/srvd.log" 2>&1 &
SRVD_PID=$!
for i in $(seq 600); do
    kill -0 "$SRVD_PID" 2>/dev/null || { tail -20 "$WORK/srvd.log" >&2; die "srvd exited during start"; }
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$HTTP_PORT/readyz" || true) == 200 ]] && break
    ((i < 600)) || { tail -20 "$WORK/srvd.log" >&2; die "srvd not ready within 120 s"; }
    sleep 0.2
done
log "srvd ready (pid $SRVD_PID, 127.0.0.1:$DNS_PORT, pinned to CPU $SERVER_CPU): $(curl -s --max-time 2 "http://127.0.0.1:$HTTP_PORT/readyz")"

digq() { dig +tries=1 +time=2 -p "$DNS_PORT" @127.0.0.1 "$@"; }
a=$(digq +short "e0.s0.$DOMAIN." A)
[[ $a == 10.0.0.1 ]] || die "A e0.s0.$DOMAIN. answered '$a', expected 10.0.0.1"
for q in "s0.$DOMAIN." "_http._tcp.s0.$DOMAIN."; do
    n=$(digq +short "$q" SRV | grep -c . || true)
    ((n == K)) || die "SRV $q answered $n records, expected $K"
done
nx=$(digq "nx1.s0.$DOMAIN." A | sed -nE 's/.*status: ([A-Z]+).*/\1/p')
[[ $nx == NXDOMAIN ]] || die "nx1.s0.$DOMAIN. answered $nx, expected NXDOMAIN"
log "sanity: A e0.s0 -> $a; SRV s0 and _http._tcp.s0 -> $K records each; nx -> $nx"

# --- metrics ---------------------------------------------------------------------------------

# "cache lookup other generation revision" from srvd's /metrics.
scrape() {
    curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" | awk '
        /^srvd_dns_queries_total\{/ {
            if ($0 ~ /source="cache"/) c += $NF; else if ($0 ~ /source="lookup"/) l += $NF; else o += $NF
        }
        /^srvd_index_generation / { g = $NF }
        /^srvd_etcd_revision / { r = $NF }
        END { printf "%.0f %.0f %.0f %.0f %.0f\n", c, l, o, g, r }'
}

# --- queries ---------------------------------------------------------------------------------

QUERIES=$(( N * K * 2 > 100000 ? N * K * 2 : 100000 ))
QUERIES=$(( QUERIES > 1000000 ? 1000000 : QUERIES ))
awk -v n="$N" -v k="$K" -v q="$QUERIES" -v zone="$DOMAIN" 'BEGIN {
    srand(42)
    for (i = 0; i < q; i++) {
        r = rand(); s = int(rand() * n)
        if (r < 0.05)         printf "nx%d.s%d.%s A\n", int(rand() * 1000000), s, zone
        else if (r < 0.525)   printf "e%d.s%d.%s A\n", int(rand() * k), s, zone
        else if (r < 0.7625)  printf "s%d.%s SRV\n", s, zone
        else                  printf "_http._tcp.s%d.%s SRV\n", s, zone
    }
}' >"$WORK/queries.txt"

DNSPERF_CMD=(dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries.txt" -c "$CLIENTS"
    -q "$OUTSTANDING" -t 2)
run_dnsperf() { # run_dnsperf SECONDS OUT [dnsperf args]
    local rc=0 secs=$1 out=$2
    shift 2
    # In the background so that a signal reaches our trap at once; the trap stops it too.
    taskset -c "$CLIENT_CPU" "${DNSPERF_CMD[@]}" -l "$secs" "$@" >"$out" 2>&1 &
    DNSPERF_PID=$!
    wait_bounded "$DNSPERF_PID" dnsperf $((secs + 30)) || rc=$?
    DNSPERF_PID=""
    if ((rc)); then
        cat "$out" >&2
        die "dnsperf failed"
    fi
}

# Totals per mode (static, churn) over every round.
declare -A R_N R_TICKS R_ANS R_SECS R_CLIENT R_ETCD R_WRITER R_CACHE R_LOOKUP R_GENS R_LOST R_QPS CODES LAST1K
MODES="static churn static@rate churn@rate"
for m in $MODES; do
    R_N[$m]=0 R_TICKS[$m]=0 R_ANS[$m]=0 R_SECS[$m]=0 R_CLIENT[$m]=0 R_ETCD[$m]=0 R_WRITER[$m]=0
    R_CACHE[$m]=0 R_LOOKUP[$m]=0 R_GENS[$m]=0 R_LOST[$m]=0 R_QPS[$m]=0
done
measure() { # measure MODE TAG: one DURATION run (MODE *@rate: at -Q RATE)
    local mode=$1 out=$WORK/$2.txt c0 c1 k0 k1 e0 e1 t0 t1 s0 s1 secs answers qps lost hit cpu1k
    read -r -a s0 < <(scrape)
    c0=$(ticks "$SRVD_PID"); e0=$(ticks "$ETCD_PID"); k0=$(reaped_ticks)
    t0=$EPOCHREALTIME
    if [[ $mode == *@rate ]]; then run_dnsperf "$DURATION" "$out" -Q "$RATE"; else run_dnsperf "$DURATION" "$out"; fi
    t1=$EPOCHREALTIME
    c1=$(ticks "$SRVD_PID"); e1=$(ticks "$ETCD_PID"); k1=$(reaped_ticks)
    read -r -a s1 < <(scrape)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')   # ms
    answers=$(field "$out" 'Queries completed:')
    qps=$(printf '%.0f' "$(field "$out" 'Queries per second:')")
    lost=$(field "$out" 'Queries lost:')
    [[ -n $answers && -n $qps ]] || { cat "$out" >&2; die "no figures in dnsperf's output"; }
    CODES[$mode]=$(sed -nE 's/^ *Response codes: *//p' "$out")
    R_N[$mode]=$((R_N[$mode] + 1))
    R_TICKS[$mode]=$((R_TICKS[$mode] + c1 - c0))
    R_ANS[$mode]=$((R_ANS[$mode] + answers))
    R_SECS[$mode]=$((R_SECS[$mode] + secs))
    R_CLIENT[$mode]=$((R_CLIENT[$mode] + k1 - k0))
    R_ETCD[$mode]=$((R_ETCD[$mode] + e1 - e0))
    R_CACHE[$mode]=$((R_CACHE[$mode] + s1[0] - s0[0]))
    R_LOOKUP[$mode]=$((R_LOOKUP[$mode] + s1[1] - s0[1]))
    R_GENS[$mode]=$((R_GENS[$mode] + s1[3] - s0[3]))
    R_LOST[$mode]=$((R_LOST[$mode] + ${lost:-0}))
    R_QPS[$mode]=$((R_QPS[$mode] + qps))
    cpu1k=$(awk -v c=$((c1 - c0)) -v t="$TICKS" -v a="$answers" 'BEGIN { printf "%.9f", (a ? c / t / a * 1000 : 0) }')
    LAST1K[$mode]=$cpu1k
    hit=$(awk -v c=$((s1[0] - s0[0])) -v l=$((s1[1] - s0[1])) 'BEGIN { printf "%.1f", (c + l ? c / (c + l) * 100 : 0) }')
    log "$2: $qps qps, $(printf '%.5f' "$cpu1k") srvd CPU s / 1k answers (srvd $(pct $((c1 - c0)) "$secs")%, dnsperf $(pct $((k1 - k0)) "$secs")%, etcd $(pct $((e1 - e0)) "$secs")%), cache hits $hit%, $((s1[3] - s0[3])) snapshots published"
}

# Churn-run totals: writer figures, srvd's revision and generation moves, freshness probes.
PUTS=0 PUT_MS=0 RATE_MIN="" RATE_MAX="" MAX_LAG=0 ALL_PUTS=0 REV_DELTA=0 GEN_DELTA=0
FD_N=0 FD_OK=0 FD_NEVER=0 FD_WORST=nan FA_N=0 FA_OK=0 FA_NEVER=0 FA_WORST=nan
maxf() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan") print b; else if (b == "nan") print a; else print (a + 0 > b + 0 ? a : b) }'; }
churn_run() { # churn_run MODE TAG
    local mode=$1 tag=$2 before after i wait_s n s rate lag total cpu dn dok dnev dw an aok anev aw
    read -r -a before < <(scrape)
    START_AT=$(awk -v n="$EPOCHREALTIME" 'BEGIN { printf "%.6f", n + 1.5 }')
    taskset -c "$ETCD_CPU" python3 "$HELPER" churn "$ETCD_URL" "$DNS_PORT" $((PUT_RATE * DURATION)) \
        --rate "$PUT_RATE" --start-at "$START_AT" --fresh-during "$FRESH_DURING" \
        --fresh-after "$FRESH_AFTER" >"$WORK/$tag.writer.out" 2>"$WORK/$tag.writer.err" &
    WRITER_PID=$!
    for i in $(seq 100); do
        grep -q '^armed' "$WORK/$tag.writer.out" 2>/dev/null && break
        kill -0 "$WRITER_PID" 2>/dev/null || { cat "$WORK/$tag.writer.err" >&2; die "writer exited"; }
        ((i < 100)) || die "writer not armed within 10 s"
        sleep 0.1
    done
    wait_s=$(awk -v t="$START_AT" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; printf "%.6f", (d > 0 ? d : 0) }')
    sleep "$wait_s"
    measure "$mode" "$tag"
    wait_bounded "$WRITER_PID" writer $((FRESH_AFTER + 60)) || { cat "$WORK/$tag.writer.err" >&2; die "writer failed"; }
    WRITER_PID=""
    sleep 0.2   # let srvd apply the last events
    read -r -a after < <(scrape)
    read -r _ n s rate lag total cpu < <(grep '^puts ' "$WORK/$tag.writer.out")
    [[ -n ${rate:-} ]] || { cat "$WORK/$tag.writer.err" >&2; die "writer printed no put figures"; }
    read -r _ _ dn dok dnev dw < <(grep '^fresh during ' "$WORK/$tag.writer.out")
    read -r _ _ an aok anev aw < <(grep '^fresh after ' "$WORK/$tag.writer.out")
    grep '^# probe' "$WORK/$tag.writer.err" >&2 || true
    PUTS=$((PUTS + n))
    # The writer's own CPU over its paced puts (it reports it; it may be gone by dnsperf's end).
    R_WRITER[$mode]=$((R_WRITER[$mode] + $(awk -v c="$cpu" -v t="$TICKS" 'BEGIN { printf "%.0f", c * t }')))
    PUT_MS=$((PUT_MS + $(awk -v s="$s" 'BEGIN { printf "%.0f", s * 1000 }')))
    RATE_MIN=$( [[ -z $RATE_MIN ]] && echo "$rate" || awk -v a="$RATE_MIN" -v b="$rate" 'BEGIN { print (b + 0 < a + 0 ? b : a) }')
    RATE_MAX=$( [[ -z $RATE_MAX ]] && echo "$rate" || awk -v a="$RATE_MAX" -v b="$rate" 'BEGIN { print (b + 0 > a + 0 ? b : a) }')
    MAX_LAG=$(maxf "$MAX_LAG" "$lag")
    ALL_PUTS=$((ALL_PUTS + total + dn + an))
    REV_DELTA=$((REV_DELTA + after[4] - before[4]))
    GEN_DELTA=$((GEN_DELTA + after[3] - before[3]))
    FD_N=$((FD_N + dn)) FD_OK=$((FD_OK + dok)) FD_NEVER=$((FD_NEVER + dnev)) FD_WORST=$(maxf "$FD_WORST" "$dw")
    FA_N=$((FA_N + an)) FA_OK=$((FA_OK + aok)) FA_NEVER=$((FA_NEVER + anev)) FA_WORST=$(maxf "$FA_WORST" "$aw")
    log "$tag writer: $n puts in $s s = $rate/s, max lag $lag ms; srvd revision +$((after[4] - before[4])) for $((total + dn + an)) puts; freshness: during load $dok/$dn, after $aok/$an next-query ok"
}

log "warm-up: ${WARMUP} s of dnsperf (not measured)"
run_dnsperf "$WARMUP" "$WORK/warmup.txt"

# Round r runs static then churn when r is odd, churn then static when r is even (ABBA...), so a
# steady drift of the machine's background load cancels out over an even number of rounds.
ROUND_RATIOS="" ROUND_RATIOS_RATE=""
for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then order="static churn static@rate churn@rate"; else order="churn static churn@rate static@rate"; fi
    for m in $order; do
        [[ $m == *@rate ]] && ((RATE == 0)) && continue
        what="${DURATION} s of dnsperf $([[ $m == *@rate ]] && echo "at $RATE qps" || echo "at saturation")"
        tag=${m/@/-}.$r
        if [[ $m == static* ]]; then
            log "(a) $m, round $r: $what, nothing changes in etcd"
            measure "$m" "$tag"
        else
            log "(b) $m, round $r: $what while $((PUT_RATE * DURATION)) puts go to ${PREFIX}unrelated/x at $PUT_RATE/s"
            churn_run "$m" "$tag"
        fi
    done
    ROUND_RATIOS+="$(ratio "${LAST1K[churn]}" "${LAST1K[static]}") "
    ((RATE == 0)) || ROUND_RATIOS_RATE+="$(ratio "${LAST1K[churn@rate]}" "${LAST1K[static@rate]}") "
done
ROUND_RATIOS=${ROUND_RATIOS% } ROUND_RATIOS_RATE=${ROUND_RATIOS_RATE% }
((RATE == 0)) && MODES="static churn"

# --- report ----------------------------------------------------------------------------------

declare -A QPS CPU1K_RAW CPU1K SRVDPCT CLIENTPCT ETCDPCT WRITERPCT HIT
for m in $MODES; do
    QPS[$m]=$((R_QPS[$m] / R_N[$m]))
    CPU1K_RAW[$m]=$(awk -v c="${R_TICKS[$m]}" -v t="$TICKS" -v a="${R_ANS[$m]}" 'BEGIN { printf "%.9f", (a ? c / t / a * 1000 : 0) }')
    CPU1K[$m]=$(printf '%.5f' "${CPU1K_RAW[$m]}")
    SRVDPCT[$m]=$(pct "${R_TICKS[$m]}" "${R_SECS[$m]}")
    CLIENTPCT[$m]=$(pct "${R_CLIENT[$m]}" "${R_SECS[$m]}")
    ETCDPCT[$m]=$(pct "${R_ETCD[$m]}" "${R_SECS[$m]}")
    WRITERPCT[$m]=$([[ $m == churn* ]] && pct "${R_WRITER[$m]}" "${R_SECS[$m]}" || echo "-")
    HIT[$m]=$(awk -v c="${R_CACHE[$m]}" -v l="${R_LOOKUP[$m]}" 'BEGIN { printf "%.1f", (c + l ? c / (c + l) * 100 : 0) }')
done
CPU_RATIO=$(ratio "${CPU1K_RAW[churn]}" "${CPU1K_RAW[static]}")
((RATE == 0)) || CPU_RATIO_RATE=$(ratio "${CPU1K_RAW[churn@rate]}" "${CPU1K_RAW[static@rate]}")
VERDICT=$(awk -v r="$CPU_RATIO" -v g="$CPU_GOAL" 'BEGIN { if (r == "-") print "?"; else if (r + 0 <= g + 0) print "**pass**"; else print "**FAIL**" }')
PUT_RATE_GOT=$(awk -v n="$PUTS" -v ms="$PUT_MS" 'BEGIN { printf "%.1f", (ms > 0 ? n / ms * 1000 : 0) }')
RATE_OK=$(awk -v a="$RATE_MIN" -v b="$RATE_MAX" -v t="$PUT_RATE" 'BEGIN { d = a / t - 1; e = b / t - 1; if (d < 0) d = -d; if (e < 0) e = -e
    print ((d <= 0.10 && e <= 0.10) ? "ok, within 10%" : "**off by more than 10%**") }')
FRESH=$([[ $FD_OK == "$FD_N" && $FA_OK == "$FA_N" ]] && echo "**ok**" || echo "**fail**")
worst() { [[ $1 == nan ]] && echo "-" || echo "$1 ms"; }
runs() { ((ROUNDS > 1)) && echo " ($ROUNDS runs)" || true; }
log "writer: $PUTS puts in $((PUT_MS / 1000)).$(printf '%03d' $((PUT_MS % 1000))) s = $PUT_RATE_GOT/s (target $PUT_RATE: $RATE_OK); srvd revision +$REV_DELTA for $ALL_PUTS puts"
log "freshness: during load $FD_OK/$FD_N next-query ok, after load $FA_OK/$FA_N -> $FRESH"

echo
echo "### srvd under churn: $N services x $K endpoints in etcd, one unrelated key put $PUT_RATE/s"
echo
echo "etcd $ETCD_VERSION (one member, data in $base, CPU $ETCD_CPU with the writer); srvd $SRVD_DESC on CPU $SERVER_CPU (\`--udp-workers 1\`);"
echo "dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p') on CPU $CLIENT_CPU, UDP over 127.0.0.1, ${DURATION} s per run after a ${WARMUP} s warm-up, $ROUNDS round(s); queries ~47.5% A,"
echo "~23.75% SRV s<i>, ~23.75% SRV _http._tcp.s<i> ($K SRV + $K glue each), ~5% NXDOMAIN; $(nproc) CPUs, $(uname -r)."
echo
echo "| run | QPS | answers | srvd CPU s / 1k answers | srvd CPU % | dnsperf CPU % | etcd CPU % | writer CPU % | cache hits | snapshots published | lost | response codes (last run) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
row() { # row MODE LABEL
    echo "| $2$(runs) | ${QPS[$1]} | ${R_ANS[$1]} | ${CPU1K[$1]} | ${SRVDPCT[$1]} | ${CLIENTPCT[$1]} | ${ETCDPCT[$1]} | ${WRITERPCT[$1]} | ${HIT[$1]}% | ${R_GENS[$1]} | ${R_LOST[$1]} | ${CODES[$1]} |"
}
row static "(a) static, saturation"
row churn "(b) churn, saturation"
echo "| **churn / static at saturation** | $(ratio "${QPS[churn]}" "${QPS[static]}") | | **${CPU_RATIO}** (goal ≤ $CPU_GOAL: $VERDICT)$( ((ROUNDS > 1)) && echo "; per round: $ROUND_RATIOS") | | | | | | | | |"
if ((RATE > 0)); then
    row static@rate "(a) static at $RATE qps"
    row churn@rate "(b) churn at $RATE qps"
    echo "| churn / static at $RATE qps | $(ratio "${QPS[churn@rate]}" "${QPS[static@rate]}") | | ${CPU_RATIO_RATE}$( ((ROUNDS > 1)) && echo "; per round: $ROUND_RATIOS_RATE") | $(ratio "${SRVDPCT[churn@rate]}" "${SRVDPCT[static@rate]}") | | | | | | | |"
fi
echo
echo "| churn writer and freshness | value |"
echo "|---|---|"
echo "| puts to ${PREFIX}unrelated/x during the churn run(s) | $PUTS in $((PUT_MS / 1000)).$(printf '%03d' $((PUT_MS % 1000))) s (first send → last ack) = **$PUT_RATE_GOT/s**$( ((ROUNDS > 1)) && echo " (runs: $RATE_MIN to $RATE_MAX/s)") (target $PUT_RATE/s: $RATE_OK); max lag behind schedule $MAX_LAG ms |"
echo "| srvd applied every put (srvd_etcd_revision) | +$REV_DELTA for $ALL_PUTS puts: $([[ $REV_DELTA == "$ALL_PUTS" ]] && echo yes || echo '**no**'); $GEN_DELTA snapshots published meanwhile |"
echo "| (c) freshness, during load + churn: new key, then the very next query | $FD_OK / $FD_N saw it$( ((FD_N > FD_OK)) && echo "; missed ones seen within $(worst "$FD_WORST") ($FD_NEVER never within 1 s)") |"
echo "| (c) freshness, after the load (churn on): new key, then the very next query | $FA_OK / $FA_N saw it$( ((FA_N > FA_OK)) && echo "; missed ones seen within $(worst "$FA_WORST") ($FA_NEVER never within 1 s)") |"
echo "| **freshness** | $FRESH |"
echo
echo "CPU from /proc/PID/stat (utime+stime) summed over the dnsperf runs; cache hits: srvd_dns_queries_total"
echo "source=\"cache\" / (cache + lookup). At saturation dnsperf shares CPU $CLIENT_CPU with etcd and the writer in the churn"
echo "run, so it may offer less load, and srvd answers more per wake-up the busier it is: the fixed-rate pair"
echo "compares srvd at the same offered load. dnsperf command: \`taskset -c $CLIENT_CPU ${DNSPERF_CMD[*]//$WORK\//} -l $DURATION\`"
echo "(+ \`-Q $RATE\` for the fixed-rate runs)."
echo "Command: \`benches/churn.sh $N $K\` (DURATION=$DURATION PUT_RATE=$PUT_RATE RATE=$RATE ROUNDS=$ROUNDS CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING ETCD_CPU=$ETCD_CPU)."
