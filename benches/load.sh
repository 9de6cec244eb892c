#!/usr/bin/env bash
# Load benchmark: srvd side by side with Knot DNS and NSD, measured with dnsperf.
#
# Usage: benches/load.sh [N] [K]      (N services x K endpoints; default 1000 3)
#
# Environment:
#   DURATION=10       seconds of each dnsperf run (saturation and fixed-rate)
#   RATE=20000        queries per second of the fixed-rate run
#   CLIENTS=4         dnsperf -c
#   OUTSTANDING=200   dnsperf -q at saturation
#   SERVERS="srvd knot nsd"   which servers to run, in this order
#   SRVD_BIN=path     use this srvd binary instead of `cargo build --release`
#   KEEP=1            keep the work directory (zone, configs, logs, dnsperf output)
#   MODE=udp          transport of every dnsperf run: udp (default) or tcp (`dnsperf -m tcp`)
#
# One data set is generated: bench.test.zone with A records e<k>.s<n>.bench.test. and SRV
# records _http._tcp.s<n>.bench.test. pointing at them (plus SOA/NS), and a dnsperf query
# file mixing A (~47.5%), SRV (~47.5%) and NXDOMAIN (~5%) names. Each server serves it in
# turn on 127.0.0.1 (free port), pinned to CPU 0; dnsperf runs pinned to CPU 1.
#
# Per server: QPS at saturation (no rate limit), server CPU seconds per 1k answers during
# that run (utime+stime from /proc of the server and its child processes), and server CPU%
# at a fixed RATE. Then the ratio srvd/Knot of each figure. Output: a Markdown table.
#
# MODE=tcp: the same runs over TCP. dnsperf -m tcp opens one TCP connection per client (-c)
# and keeps it for the whole run (no -O num-queries-per-conn, so no reconnects); -q caps the
# queries in flight over all of them (-q 200 -c 4: ~50 pipelined per connection). Each server
# answers TCP with one worker too (srvd: the tokio runtime, one thread when pinned to one CPU;
# Knot `tcp-workers: 1`; NSD: its one server process). The sanity check uses dig +tcp.
# dnsperf writes every query with its own send() and does not set TCP_NODELAY, so over TCP the
# QPS depends on how a server drains a pipelined connection (one message per event-loop turn
# or a whole buffer at once) and on -c/-q, and both sides can idle waiting on each other: read
# the CPU columns, and try other depths (e.g. CLIENTS=50: 4 queries in flight per connection).
#
# Traffic goes to 127.0.0.1 only; every dnsperf run is bounded by -l; every server is a child
# of this script, stopped by PID (and on exit by the trap).
set -euo pipefail

N=${1:-1000}
K=${2:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-20000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
SERVERS=${SERVERS:-"srvd knot nsd"}
MODE=${MODE:-udp}
ZONE=bench.test
SERVER_CPU=0
CLIENT_CPU=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/srvd-load.XXXXXX)
chmod 755 "$WORK"
TICKS=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }
die() { log "load.sh: $*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ && $K =~ ^[1-9][0-9]*$ ]] || die "N and K must be positive integers"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer"
case $MODE in
    udp) MODE_ARGS=() DIG_MODE=() ;;   # dnsperf's default transport: the UDP command as before
    tcp) MODE_ARGS=(-m tcp) DIG_MODE=(+tcp) ;;
    *) die "MODE must be udp or tcp" ;;
esac

# --- children and cleanup -------------------------------------------------------------------

SERVER_PID=""   # the server currently running (a child of this script), if any
DNSPERF_PID=""  # the dnsperf run in progress, if any
cleanup() {
    if [[ -n $DNSPERF_PID ]]; then
        kill -TERM "$DNSPERF_PID" 2>/dev/null || true
        wait "$DNSPERF_PID" 2>/dev/null || true
    fi
    if [[ -n $SERVER_PID ]]; then stop_server "$SERVER_PID"; fi
    if [[ ${KEEP:-0} == 1 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ----------------------------------------------------------------------------------

need_install=()
for tool in knotd:knot nsd:nsd dnsperf:dnsperf dig:bind9-dnsutils taskset:util-linux; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_install+=("${tool#*:}")
done
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install ${need_install[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq knot nsd dnsperf bind9-dnsutils >&2
fi
# Packages may start their daemons on install (on systemd hosts); they listen on port 53,
# which this script never uses, so they do not disturb it.

# --- helpers --------------------------------------------------------------------------------

# A port free for both UDP and TCP on 127.0.0.1.
# shellcheck source=benches/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
# shellcheck source=benches/procs.sh
source "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

wait_ready() {
    local name=$1 pid=$2 port=$3 logf=$4
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || { cat "$logf" >&2; die "$name exited during start"; }
        if dig +tries=1 +time=1 +short -p "$port" @127.0.0.1 "$ZONE." SOA 2>/dev/null | grep -q .; then
            return
        fi
        sleep 0.2
    done
    cat "$logf" >&2
    die "$name did not answer within 120 s"
}

# dnsperf pinned to the client CPU, bounded by -l. Prints its output file.
run_dnsperf() {
    local port=$1 out=$2 rc=0
    shift 2
    # In the background so that a signal reaches our trap at once (bash defers traps until a
    # foreground child ends); the trap stops it too.
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" \
        -l "$DURATION" -c "$CLIENTS" -t 2 ${MODE_ARGS[@]+"${MODE_ARGS[@]}"} "$@" >"$out" 2>&1 &
    DNSPERF_PID=$!
    wait "$DNSPERF_PID" || rc=$?
    DNSPERF_PID=""
    if ((rc)); then
        cat "$out" >&2
        die "dnsperf failed"
    fi
}

# --- data -----------------------------------------------------------------------------------

mkdir -p "$WORK/zones"
log "generating $N services x $K endpoints in $WORK"
awk -v n="$N" -v k="$K" -v zone="$ZONE" 'BEGIN {
    printf "$ORIGIN %s.\n$TTL 5\n", zone
    printf "@ IN SOA ns.%s. hostmaster.%s. 1 7200 1800 86400 5\n", zone, zone
    printf "@ IN NS ns.%s.\nns IN A 127.0.0.1\n", zone
    for (s = 0; s < n; s++) {
        for (e = 0; e < k; e++) {
            i = s * k + e
            printf "e%d.s%d IN A 10.%d.%d.%d\n", e, s, int(i / 65536) % 256, int(i / 256) % 256, i % 256
            printf "_http._tcp.s%d IN SRV 10 100 8080 e%d.s%d.%s.\n", s, e, s, zone
        }
    }
}' >"$WORK/zones/$ZONE.zone"

QUERIES=$(( N * K * 2 > 100000 ? N * K * 2 : 100000 ))
QUERIES=$(( QUERIES > 1000000 ? 1000000 : QUERIES ))
awk -v n="$N" -v k="$K" -v q="$QUERIES" -v zone="$ZONE" 'BEGIN {
    srand(42)
    for (i = 0; i < q; i++) {
        r = rand(); s = int(rand() * n)
        if (r < 0.05)       printf "nx%d.s%d.%s A\n", int(rand() * 1000000), s, zone
        else if (r < 0.525) printf "e%d.s%d.%s A\n", int(rand() * k), s, zone
        else                printf "_http._tcp.s%d.%s SRV\n", s, zone
    }
}' >"$WORK/queries.txt"
chmod -R a+rX "$WORK"

# --- servers --------------------------------------------------------------------------------

# Each start_* sets PID and PORT, with the server pinned to the server CPU.

start_srvd() {
    local bin=${SRVD_BIN:-}
    if [[ -z $bin ]]; then
        log "building srvd (cargo build --release)"
        (cd "$REPO" && cargo build --release --quiet --bin srvd) >&2
        bin=$REPO/target/release/srvd
    fi
    PORT=$(free_port)
    local http
    http=$(free_port)
    taskset -c "$SERVER_CPU" "$bin" --zones "$WORK/zones" --listen "127.0.0.1:$PORT" \
        --http "127.0.0.1:$http" --log-level warn --udp-workers 1 >"$WORK/srvd.log" 2>&1 &
    PID=$!
    SERVER_PID=$PID
    wait_ready srvd "$PID" "$PORT" "$WORK/srvd.log"
}

start_knot() {
    local dir=$WORK/knot
    mkdir -p "$dir/db" "$dir/run"
    PORT=$(free_port)
    cat >"$dir/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$PORT
    rundir: "$dir/run"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$dir/db"
template:
  - id: default
    storage: "$WORK/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: $ZONE
    file: "$ZONE.zone"
EOF
    knotc -c "$dir/knot.conf" conf-check >&2 || die "bad knot.conf"
    taskset -c "$SERVER_CPU" knotd -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 &
    PID=$!
    SERVER_PID=$PID
    wait_ready knot "$PID" "$PORT" "$dir/knotd.log"
}

start_nsd() {
    local dir=$WORK/nsd
    mkdir -p "$dir"
    PORT=$(free_port)
    cat >"$dir/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$PORT
    port: $PORT
    server-count: 1
    rrl-ratelimit: 0
    username: ""
    chroot: ""
    zonesdir: "$WORK/zones"
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    xfrdir: "$dir"
    pidfile: "$dir/nsd.pid"
    logfile: "$dir/nsd.log"
    verbosity: 0
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: $ZONE
    zonefile: "$ZONE.zone"
EOF
    nsd-checkconf "$dir/nsd.conf" >&2 || die "bad nsd.conf"
    # -d: stay in the foreground (NSD still forks its xfrd and server-count server processes;
    # their CPU is counted through the process tree).
    taskset -c "$SERVER_CPU" nsd -d -c "$dir/nsd.conf" >"$dir/nsd.out" 2>&1 &
    PID=$!
    SERVER_PID=$PID
    wait_ready nsd "$PID" "$PORT" "$dir/nsd.out"
}

# --- measure --------------------------------------------------------------------------------

declare -A QPS CPU1K CPURATE RATEQPS CODES LOST CLIENTCPU SERVERSAT

check_answers() {
    local name=$1 port=$2 a srv nx
    local -a d=(dig +tries=1 +time=2 ${DIG_MODE[@]+"${DIG_MODE[@]}"} -p "$port" @127.0.0.1)
    a=$("${d[@]}" +noall +answer "e0.s0.$ZONE." A | grep -c . || true)
    srv=$("${d[@]}" "_http._tcp.s0.$ZONE." SRV |
        sed -nE 's/.*ANSWER: ([0-9]+), AUTHORITY: ([0-9]+), ADDITIONAL: ([0-9]+).*/\1 ans, \3 add/p')
    nx=$("${d[@]}" "nx1.s0.$ZONE." A | sed -nE 's/.*status: ([A-Z]+).*/\1/p')
    log "$name ($MODE): A -> $a record(s); SRV -> $srv; nx -> $nx"
}

measure() {
    local name=$1 out t0 t1 c0 c1 answers
    log "== $name"
    "start_$name"
    log "$name: pid $PID, 127.0.0.1:$PORT"
    check_answers "$name" "$PORT"

    # Warm-up (1 s, not measured).
    local saved=$DURATION
    DURATION=1 run_dnsperf "$PORT" "$WORK/$name.warm.txt" -q "$OUTSTANDING"
    DURATION=$saved

    # Saturation.
    out=$WORK/$name.sat.txt
    local k0 k1
    c0=$(tree_ticks "$PID"); k0=$(reaped_ticks); t0=$(date +%s.%N)
    run_dnsperf "$PORT" "$out" -q "$OUTSTANDING"
    t1=$(date +%s.%N); k1=$(reaped_ticks); c1=$(tree_ticks "$PID")
    answers=$(field "$out" 'Queries completed:')
    QPS[$name]=$(printf '%.0f' "$(field "$out" 'Queries per second:')")
    LOST[$name]=$(field "$out" 'Queries lost:')
    CODES[$name]=$(sed -nE 's/^ *Response codes: *//p' "$out")
    CPU1K[$name]=$(awk -v c=$((c1 - c0)) -v t="$TICKS" -v a="$answers" 'BEGIN { printf "%.4f", a ? c / t / a * 1000 : 0 }')
    SERVERSAT[$name]=$(awk -v c=$((c1 - c0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / tk / (b - a) * 100 }')
    CLIENTCPU[$name]=$(awk -v c=$((k1 - k0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / tk / (b - a) * 100 }')

    # Fixed rate.
    out=$WORK/$name.rate.txt
    c0=$(tree_ticks "$PID"); t0=$(date +%s.%N)
    run_dnsperf "$PORT" "$out" -Q "$RATE"
    c1=$(tree_ticks "$PID"); t1=$(date +%s.%N)
    RATEQPS[$name]=$(printf '%.0f' "$(field "$out" 'Queries per second:')")
    CPURATE[$name]=$(awk -v c=$((c1 - c0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", c / tk / (b - a) * 100 }')

    stop_server "$PID"
    log "$name: ${QPS[$name]} qps at saturation (server CPU ${SERVERSAT[$name]}%, dnsperf CPU ${CLIENTCPU[$name]}%), ${CPURATE[$name]}% CPU at ${RATEQPS[$name]} qps"
}

for server in $SERVERS; do
    case $server in
        srvd | knot | nsd) measure "$server" ;;
        *) die "unknown server $server (srvd, knot, nsd)" ;;
    esac
done

# --- report ---------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2f", a / b; else printf "-" }'; }

echo
if [[ $MODE == tcp ]]; then
    echo "### srvd vs Knot DNS vs NSD over TCP: $N services x $K endpoints ($((N * K)) A + $((N * K)) SRV records)"
    echo
    echo "TCP over 127.0.0.1 (dnsperf -m tcp: $CLIENTS connections, one per client, open for the whole run; up to"
    echo "$OUTSTANDING queries in flight over them at saturation, ~$((OUTSTANDING / CLIENTS)) pipelined per connection); server on CPU $SERVER_CPU"
    echo "with one TCP worker (srvd: tokio on 1 CPU, Knot tcp-workers: 1, NSD server-count: 1), dnsperf on CPU $CLIENT_CPU; ${DURATION} s per run;"
else
echo "### srvd vs Knot DNS vs NSD: $N services x $K endpoints ($((N * K)) A + $((N * K)) SRV records)"
echo
echo "UDP over 127.0.0.1; server on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU (-c $CLIENTS); ${DURATION} s per run;"
fi
echo "queries: ~47.5% A, ~47.5% SRV (${K} SRV + ${K} glue), ~5% NXDOMAIN; $(nproc) CPUs, $(uname -r)."
echo
echo "| server | QPS at saturation (-q $OUTSTANDING) | server CPU s / 1k answers | server CPU % at $RATE qps | achieved qps | lost | server CPU % at saturation | dnsperf CPU % | response codes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for s in $SERVERS; do
    echo "| $s | ${QPS[$s]} | ${CPU1K[$s]} | ${CPURATE[$s]} | ${RATEQPS[$s]} | ${LOST[$s]} | ${SERVERSAT[$s]} | ${CLIENTCPU[$s]} | ${CODES[$s]} |"
done
if [[ -n ${QPS[srvd]:-} && -n ${QPS[knot]:-} ]]; then
    echo "| **srvd / Knot** | $(ratio "${QPS[srvd]}" "${QPS[knot]}") | $(ratio "${CPU1K[srvd]}" "${CPU1K[knot]}") | $(ratio "${CPURATE[srvd]}" "${CPURATE[knot]}") | | | | | |"
fi
if [[ -n ${QPS[srvd]:-} && -n ${QPS[nsd]:-} ]]; then
    echo "| srvd / NSD | $(ratio "${QPS[srvd]}" "${QPS[nsd]}") | $(ratio "${CPU1K[srvd]}" "${CPU1K[nsd]}") | $(ratio "${CPURATE[srvd]}" "${CPURATE[nsd]}") | | | | | |"
fi
echo
echo "QPS: higher is better; CPU columns: lower is better. If dnsperf CPU % is near 100 while the"
echo "server's is well below, the client was the bottleneck and that QPS is a lower bound."
if [[ $MODE == tcp ]]; then
    echo
    echo "dnsperf commands (saturation, fixed rate): \`taskset -c $CLIENT_CPU dnsperf -s 127.0.0.1 -p PORT -d queries.txt -l $DURATION -c $CLIENTS -t 2 -m tcp -q $OUTSTANDING\`,"
    echo "\`... -m tcp -Q $RATE\` (dnsperf's default -T 1: one sending and one receiving thread)."
    echo "dnsperf sends each query with its own write, without TCP_NODELAY; when server and dnsperf are"
    echo "both well below 100% CPU, the run was bound by round trips on the $CLIENTS connections, not by"
    echo "either side's CPU, and the QPS ratio says how servers drain pipelined connections, not capacity."
    echo "Command: \`MODE=tcp benches/load.sh $N $K\`."
fi
