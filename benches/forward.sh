#!/usr/bin/env bash
# Forwarding benchmark: srvd's forwarded answers side by side with Unbound and dnsmasq, all
# forwarding to the same upstream (a Knot DNS), measured with dnsperf and a latency probe.
#
# Usage: benches/forward.sh [N] [M]   (N cached names, default 10000; M cache-miss names per
#                                      forwarder, default 2000)
#
# Environment:
#   DURATION=10       seconds of each dnsperf run (saturation and fixed-rate)
#   RATE=20000        queries per second of the fixed-rate run
#   CLIENTS=4         dnsperf -c
#   OUTSTANDING=200   dnsperf -q at saturation
#   WARM_RATE=5000    queries per second of the warm-up pass (every name once: all misses)
#   FORWARDERS="srvd unbound dnsmasq"   which forwarders to run, in this order
#   AUTH=1            also compare srvd's authoritative answers with and without --forward
#                     (AUTH=0 skips that part)
#   SRVD_BIN=path     use this srvd binary instead of `cargo build --release` (without it the
#                     script builds srvd in the repository: cargo build --release --bin srvd)
#   KEEP=1            keep the work directory (zones, configs, logs, dnsperf output, latencies)
#
# Upstream: Knot DNS (knotd, one UDP worker) on 127.0.0.1 (free port), pinned to CPU 1,
# authoritative for up.test. with N names h<i>.up.test. A and M x (number of forwarders)
# names m<i>.up.test. A, all with TTL 3600 (nothing expires during a run). Its mod-stats
# module counts the queries it receives: that is how the script tells that a cache-hit run
# really hit the cache (upstream queries during the run: 0 expected).
#
# Forwarders, each in turn on 127.0.0.1 (free port), pinned to CPU 0 (all their threads: the
# affinity is inherited), one worker thread, forwarding every name to the Knot upstream:
#   srvd     --zones <empty dir> --forward 127.0.0.1:<knot> --udp-workers 1 --log-level warn
#            (its TCP and forwarding tokio runtimes exist too, on the same CPU)
#   unbound  num-threads: 1, module-config: "iterator" (no DNSSEC validation, no trust anchor),
#            msg-cache-size/rrset-cache-size 64m, forward-zone "." -> Knot, run with -d;
#            local-zone: "test." nodefault (else its built-in RFC 6761 zone answers NXDOMAIN)
#   dnsmasq  --no-resolv --no-hosts --server=127.0.0.1#<knot>, --cache-size large enough for
#            every name of the run (N + M x forwarders + 1000; dnsmasq >= 2.80 has no cap,
#            it only warns above 10000), single-threaded, --keep-in-foreground
# dnsperf and the latency probe run pinned to CPU 1, beside Knot (idle during cache hits).
#
# Per forwarder:
#  1. a dig sanity check: h1.up.test. A must be NOERROR with Knot's address, and a name that
#     does not exist NXDOMAIN;
#  2. warm-up: dnsperf asks every h-name once (-n 1, at WARM_RATE): N misses, N upstream
#     queries; every answer must be NOERROR;
#  3. cache misses: a Python probe (pinned to CPU 1) asks the forwarder's own slice of M
#     m-names, never asked of it before, one query at a time (send, wait for the reply,
#     time.perf_counter_ns around it; 2 s timeout, replies checked for ID, NOERROR and an
#     answer). For every name it also asks Knot directly, interleaved (alternating which goes
#     first), so the direct and forwarded figures are taken at the same moment; Knot keeps no
#     cache, so asking it first changes nothing for the forwarder. p50/p90/p99 of both, and
#     the difference (goal for srvd: p50 forwarded - p50 direct <= 0.2 ms);
#  4. cache hits: 1 s of dnsperf unmeasured, then DURATION s at saturation (-c CLIENTS
#     -q OUTSTANDING, no rate limit) with the query file of the N h-names (shuffled): QPS,
#     forwarder CPU s per 1k answers (utime+stime from /proc of the process and any children;
#     /proc/PID/stat covers all threads), upstream queries during the run; then DURATION s at
#     a fixed RATE: forwarder CPU %.
# Then srvd/Unbound and srvd/dnsmasq ratios.
#
# AUTH=1: the authoritative fast path. srvd serves a zone svc.test. of N A names (the same
# shape as up.test.), once without and once with --forward (to the same Knot), and dnsperf
# asks only names of that zone (saturation and fixed rate, as above): with forwarding on,
# authoritative answers must cost the same.
#
# On the miss latency: the probe and Knot share CPU 1 and the forwarder is on CPU 0, so a
# forwarded miss crosses CPUs four times (probe -> forwarder -> Knot -> forwarder -> probe)
# where a direct query crosses none. The table has a "Knot direct, probe on CPU 0" row (one
# CPU crossing each way) to show that part of the difference, and Unbound and dnsmasq pay it
# the same way as srvd. On some machines the direct query beside Knot (same CPU) is slower than
# the cross-CPU one (the two processes take turns on one CPU), so the goal line gives srvd's
# added p50 against both direct figures.
#
# Traffic goes to 127.0.0.1 only; every dnsperf run is bounded by -l (and -n for the warm-up),
# every probe by a per-query timeout and a total time budget; every server is a child of this
# script, stopped by PID (and on exit by the trap).
set -euo pipefail

N=${1:-10000}
M=${2:-2000}
DURATION=${DURATION:-10}
RATE=${RATE:-20000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-200}
WARM_RATE=${WARM_RATE:-5000}
FORWARDERS=${FORWARDERS:-"srvd unbound dnsmasq"}
AUTH=${AUTH:-1}
UP=up.test
AUTHZONE=svc.test
SERVER_CPU=0
CLIENT_CPU=1
PROBE_TIMEOUT=2     # seconds one probe query may take
PROBE_BUDGET=300    # seconds one probe run may take in all

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/srvd-forward.XXXXXX)
chmod 755 "$WORK"
TICKS=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }
die() { log "forward.sh: $*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ && $M =~ ^[1-9][0-9]*$ ]] || die "N and M must be positive integers"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer"
[[ $RATE =~ ^[1-9][0-9]*$ && $WARM_RATE =~ ^[1-9][0-9]*$ ]] || die "RATE and WARM_RATE must be positive integers"
for f in $FORWARDERS; do
    case $f in srvd | unbound | dnsmasq) ;; *) die "unknown forwarder $f (srvd, unbound, dnsmasq)" ;; esac
done
read -r -a FWD_LIST <<<"$FORWARDERS"
((${#FWD_LIST[@]})) || die "FORWARDERS is empty"

# --- children and cleanup -------------------------------------------------------------------

SERVER_PID=""   # the forwarder (or srvd) currently running, a child of this script, if any
KNOT_PID=""     # the upstream
CLIENT_PID=""   # the dnsperf run or latency probe in progress, if any
cleanup() {
    if [[ -n $CLIENT_PID ]]; then
        kill -TERM "$CLIENT_PID" 2>/dev/null || true
        wait "$CLIENT_PID" 2>/dev/null || true
    fi
    if [[ -n $SERVER_PID ]]; then stop_server "$SERVER_PID"; fi
    if [[ -n $KNOT_PID ]]; then stop_server "$KNOT_PID"; KNOT_PID=""; fi
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
for tool in knotd:knot knotc:knot unbound:unbound dnsmasq:dnsmasq dnsperf:dnsperf \
    dig:bind9-dnsutils taskset:util-linux python3:python3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need_install+=("${tool#*:}")
done
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    [[ $(id -u) == 0 ]] || die "need root to apt-get install ${need_install[*]}"
    apt-get update -qq >&2
    mapfile -t need_install < <(printf '%s\n' "${need_install[@]}" | sort -u)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >&2
fi
# Packages may start their daemons on install (on systemd hosts); they listen on port 53,
# which this script never uses, so they do not disturb it.

# --- helpers --------------------------------------------------------------------------------

# A port free for both UDP and TCP on 127.0.0.1.
# shellcheck source=benches/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
# shellcheck source=benches/procs.sh
source "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

# Wait until a server answers QNAME QTYPE with at least one record.
wait_ready() {
    local name=$1 pid=$2 port=$3 logf=$4 qname=$5 qtype=$6
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || { cat "$logf" >&2 || true; die "$name exited during start"; }
        if dig +tries=1 +time=1 +short -p "$port" @127.0.0.1 "$qname" "$qtype" 2>/dev/null | grep -q .; then
            return
        fi
        sleep 0.2
    done
    cat "$logf" >&2 || true
    die "$name did not answer within 120 s"
}

# Run a client command (dnsperf or the probe) pinned to the client CPU, in the background so
# that a signal reaches our trap at once (bash defers traps until a foreground child ends);
# the trap stops it too. Usage: run_client OUT CMD...
run_client() {
    local out=$1 rc=0
    shift
    taskset -c "$CLIENT_CPU" "$@" >"$out" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    if ((rc)); then
        cat "$out" >&2
        die "$1 failed (exit $rc)"
    fi
}

# dnsperf against 127.0.0.1:PORT with query file FILE; the rest are dnsperf options.
run_dnsperf() {
    local port=$1 file=$2 out=$3
    shift 3
    run_client "$out" dnsperf -s 127.0.0.1 -p "$port" -d "$file" -c "$CLIENTS" -t 2 "$@"
}

# The kernel thread that runs the server CPU's deferred network work (softirq) when there is
# too much of it to run on the way out of the process's own system calls: its CPU is work the
# server caused but is not in the server's /proc/PID/stat.
KSOFTIRQD=$(ps -eo pid=,comm= | awk -v c="ksoftirqd/$SERVER_CPU" '$2 == c { print $1 }')

# Busy clock ticks of CPU N so far (user nice system irq softirq steal, from /proc/stat).
cpu_busy() {
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Queries Knot has received so far (its mod-stats module), or empty if it cannot tell.
upstream_queries() {
    knotc -c "$WORK/knot/knot.conf" stats mod-stats.request-protocol 2>/dev/null |
        awk -F' = ' '/request-protocol/ { s += $2; n++ } END { if (n) print s }'
}

# --- data -----------------------------------------------------------------------------------

NFWD=${#FWD_LIST[@]}
MTOTAL=$((M * NFWD))
mkdir -p "$WORK/upzones" "$WORK/authzones" "$WORK/empty"
log "generating $UP. ($N h-names, $MTOTAL m-names) and $AUTHZONE. ($N names) in $WORK"
zone() { # zone ORIGIN: SOA, NS and the glue of a zone with TTL 3600
    printf '$ORIGIN %s.\n$TTL 3600\n' "$1"
    printf '@ IN SOA ns.%s. hostmaster.%s. 1 7200 1800 86400 3600\n' "$1" "$1"
    printf '@ IN NS ns.%s.\nns IN A 127.0.0.1\n' "$1"
}
{
    zone "$UP"
    awk -v n="$N" -v m="$MTOTAL" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
        for (i = 0; i < m; i++)
            printf "m%d IN A 11.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
    }'
} >"$WORK/upzones/$UP.zone"
{
    zone "$AUTHZONE"
    awk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "a%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
    }'
} >"$WORK/authzones/$AUTHZONE.zone"

# shuffled PREFIX ZONE: the N names PREFIX<i>.ZONE. A in a fixed random order, one a line.
shuffled() {
    awk -v n="$N" -v p="$1" -v z="$2" 'BEGIN {
        srand(42)
        for (i = 0; i < n; i++) printf "%.9f %s%d.%s. A\n", rand(), p, i, z
    }' | sort -n | cut -d' ' -f2-
}
shuffled h "$UP" >"$WORK/hits.txt"
shuffled a "$AUTHZONE" >"$WORK/auth.txt"
# The miss slices: forwarder k (0-based) gets m<k*M> .. m<k*M+M-1>.
for ((k = 0; k < NFWD; k++)); do
    awk -v lo=$((k * M)) -v m="$M" -v z="$UP" 'BEGIN { for (i = lo; i < lo + m; i++) printf "m%d.%s. A\n", i, z }' \
        >"$WORK/miss.$k.txt"
done
# Baseline rows (Knot direct only): any names will do, Knot keeps no cache.
head -n "$M" "$WORK/hits.txt" >"$WORK/baseline.txt"

# The latency probe: one query at a time, each name asked of every port in turn.
cat >"$WORK/probe.py" <<'EOF'
"""probe.py NAMES TIMEOUT BUDGET OUTPREFIX PORT...: for each name of NAMES (one "name type" a
line), ask 127.0.0.1:PORT of every PORT in turn (rotating which goes first), one query at a
time, timing send -> matching reply with time.perf_counter_ns. Writes each port's latencies
(ns, answered NOERROR with an answer only) to OUTPREFIX.PORT and prints one line a port:
port ok lost bad p50 p90 p99 mean (ms)."""
import math, random, socket, struct, sys, time

names_file, timeout, budget, prefix = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ports = [int(p) for p in sys.argv[5:]]
names = [line.split()[0] for line in open(names_file) if line.strip()]
deadline = time.monotonic() + budget
socks = {}
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", p))
    socks[p] = s
lat = {p: [] for p in ports}
lost = {p: 0 for p in ports}
bad = {p: 0 for p in ports}

def query(name, qid):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)

def ask(p, name):
    s = socks[p]
    qid = random.getrandbits(16)
    msg = query(name, qid)
    t0 = time.perf_counter_ns()
    s.send(msg)
    while True:
        left = timeout - (time.perf_counter_ns() - t0) / 1e9
        if left <= 0:
            lost[p] += 1
            return
        s.settimeout(left)
        try:
            r = s.recv(4096)
        except socket.timeout:
            lost[p] += 1
            return
        t1 = time.perf_counter_ns()
        if len(r) >= 12 and struct.unpack("!H", r[:2])[0] == qid:
            break  # else: a late reply to an earlier query; keep waiting
    flags, _, ancount = struct.unpack("!HHH", r[2:8])
    if flags & 0x8000 and flags & 0xF == 0 and ancount >= 1:
        lat[p].append(t1 - t0)
    else:
        bad[p] += 1

for i, name in enumerate(names):
    if time.monotonic() > deadline:
        print("probe: time budget spent after %d names" % i, file=sys.stderr)
        break
    order = ports[i % len(ports):] + ports[:i % len(ports)]
    for p in order:
        ask(p, name)

def pct(v, q):
    return v[max(0, math.ceil(q / 100 * len(v)) - 1)] / 1e6 if v else float("nan")

for p in ports:
    v = sorted(lat[p])
    with open("%s.%d" % (prefix, p), "w") as f:
        f.write("\n".join(str(x) for x in lat[p]) + "\n")
    mean = sum(v) / len(v) / 1e6 if v else float("nan")
    print(p, len(v), lost[p], bad[p], "%.4f %.4f %.4f %.4f" % (pct(v, 50), pct(v, 90), pct(v, 99), mean))
EOF
chmod -R a+rX "$WORK"

# --- the upstream ---------------------------------------------------------------------------

start_knot() {
    local dir=$WORK/knot
    mkdir -p "$dir/db" "$dir/run"
    KNOT_PORT=$(free_port)
    cat >"$dir/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: "$dir/run"
    user: root:root
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$dir/db"
mod-stats:
  - id: default
template:
  - id: default
    storage: "$WORK/upzones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    global-module: mod-stats/default
zone:
  - domain: $UP
    file: "$UP.zone"
EOF
    knotc -c "$dir/knot.conf" conf-check >&2 || die "bad knot.conf"
    # Pinned to the client CPU: CPU 0 is the forwarder's alone.
    taskset -c "$CLIENT_CPU" knotd -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 &
    KNOT_PID=$!
    wait_ready knot "$KNOT_PID" "$KNOT_PORT" "$dir/knotd.log" "$UP." SOA
    [[ -n $(upstream_queries) ]] || die "knotc stats mod-stats gives no query count"
}

# --- forwarders -----------------------------------------------------------------------------

# Each start_* sets PID and PORT, with the server pinned to the server CPU and SERVER_PID set.

SRVD=""
srvd_bin() {
    if [[ -z $SRVD ]]; then
        if [[ -n ${SRVD_BIN:-} ]]; then
            SRVD=$SRVD_BIN
        else
            log "building srvd (cargo build --release)"
            (cd "$REPO" && cargo build --release --quiet --bin srvd) >&2
            SRVD=$REPO/target/release/srvd
        fi
        [[ -x $SRVD ]] || die "no srvd binary at $SRVD"
    fi
}

# start_srvd_with LOGNAME ZONESDIR [srvd options...]
start_srvd_with() {
    local logname=$1 zones=$2 http
    shift 2
    srvd_bin
    PORT=$(free_port)
    http=$(free_port)
    SRVD_HTTP=$http
    taskset -c "$SERVER_CPU" "$SRVD" --zones "$zones" --listen "127.0.0.1:$PORT" \
        --http "127.0.0.1:$http" --log-level warn --udp-workers 1 "$@" >"$WORK/$logname.log" 2>&1 &
    PID=$!
    SERVER_PID=$PID
}

start_srvd() {
    start_srvd_with srvd "$WORK/empty" --forward "127.0.0.1:$KNOT_PORT"
    wait_ready srvd "$PID" "$PORT" "$WORK/srvd.log" "h0.$UP." A
}

start_unbound() {
    local dir=$WORK/unbound
    mkdir -p "$dir"
    PORT=$(free_port)
    cat >"$dir/unbound.conf" <<EOF
server:
    num-threads: 1
    interface: 127.0.0.1@$PORT
    port: $PORT
    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    # test. is one of Unbound's default local zones (RFC 6761, answered NXDOMAIN locally).
    local-zone: "test." nodefault
    msg-cache-size: 64m
    rrset-cache-size: 64m
    chroot: ""
    username: ""
    directory: "$dir"
    pidfile: "$dir/unbound.pid"
    use-syslog: no
    logfile: "$dir/unbound.log"
    verbosity: 1
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$KNOT_PORT
EOF
    unbound-checkconf "$dir/unbound.conf" >&2 || die "bad unbound.conf"
    taskset -c "$SERVER_CPU" unbound -d -c "$dir/unbound.conf" >"$dir/unbound.out" 2>&1 &
    PID=$!
    SERVER_PID=$PID
    wait_ready unbound "$PID" "$PORT" "$dir/unbound.out" "h0.$UP." A
}

start_dnsmasq() {
    local dir=$WORK/dnsmasq
    mkdir -p "$dir"
    PORT=$(free_port)
    DNSMASQ_CACHE=$((N + MTOTAL + 1000))
    # --conf-file=/dev/null: not /etc/dnsmasq.conf; --log-facility: a file, not syslog.
    taskset -c "$SERVER_CPU" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
        --no-hosts --server="127.0.0.1#$KNOT_PORT" --listen-address=127.0.0.1 --port="$PORT" \
        --bind-interfaces --cache-size="$DNSMASQ_CACHE" --user=root --group=root \
        --pid-file="$dir/dnsmasq.pid" --log-facility="$dir/dnsmasq.log" >"$dir/dnsmasq.out" 2>&1 &
    PID=$!
    SERVER_PID=$PID
    wait_ready dnsmasq "$PID" "$PORT" "$dir/dnsmasq.out" "h0.$UP." A
}

# --- measure --------------------------------------------------------------------------------

declare -A SOFTIRQD OTHERS QPS CPU1K CPURATE RATEQPS CODES LOST CLIENTCPU SERVERSAT UPSAT WARMOK WARMUP_Q CHECK
declare -A MISS DIRECT MISSUPQ

check_answers() {
    local name=$1 port=$2 want got nx
    local -a d=(dig +tries=1 +time=2 -p "$port" @127.0.0.1)
    want=$(dig +tries=1 +time=2 +short -p "$KNOT_PORT" @127.0.0.1 "h1.$UP." A)
    got=$("${d[@]}" "h1.$UP." A | sed -nE 's/.*status: ([A-Z]+).*/\1/p; s/^h1\.[^[:space:]]+[[:space:]]+([0-9]+)[[:space:]]+IN[[:space:]]+A[[:space:]]+(.*)/A \2 TTL \1/p' | paste -sd' ')
    nx=$("${d[@]}" "nope.$UP." A | sed -nE 's/.*status: ([A-Z]+).*/\1/p')
    CHECK[$name]="h1: $got; nope: $nx"
    log "$name: h1.$UP. A -> $got (Knot: $want); nope.$UP. -> $nx"
    [[ $got == "NOERROR A $want TTL "* ]] || die "$name: wrong answer for h1.$UP. A: $got"
    [[ $nx == NXDOMAIN ]] || log "$name: WARNING: nope.$UP. gave $nx, not NXDOMAIN"
}

# measure_hits NAME FILE: warm-up pass excluded; saturation then fixed rate, as load.sh.
measure_hits() {
    local name=$1 file=$2 out t0 t1 c0 c1 k0 k1 u0 u1 b0 b1 s0=0 s1=0 answers
    run_dnsperf "$PORT" "$file" "$WORK/$name.warm1s.txt" -l 1 -q "$OUTSTANDING"

    out=$WORK/$name.sat.txt
    u0=$(upstream_queries)
    [[ -n $KSOFTIRQD ]] && s0=$(tree_ticks "$KSOFTIRQD")
    b0=$(cpu_busy "$SERVER_CPU"); c0=$(tree_ticks "$PID"); k0=$(reaped_ticks); t0=$(date +%s.%N)
    run_dnsperf "$PORT" "$file" "$out" -l "$DURATION" -q "$OUTSTANDING"
    t1=$(date +%s.%N); k1=$(reaped_ticks); c1=$(tree_ticks "$PID"); b1=$(cpu_busy "$SERVER_CPU")
    [[ -n $KSOFTIRQD ]] && s1=$(tree_ticks "$KSOFTIRQD")
    u1=$(upstream_queries)
    answers=$(field "$out" 'Queries completed:')
    QPS[$name]=$(printf '%.0f' "$(field "$out" 'Queries per second:')")
    LOST[$name]=$(field "$out" 'Queries lost:')
    CODES[$name]=$(sed -nE 's/^ *Response codes: *//p' "$out")
    UPSAT[$name]=$((u1 - u0))
    CPU1K[$name]=$(awk -v c=$((c1 - c0)) -v t="$TICKS" -v a="$answers" 'BEGIN { printf "%.4f", a ? c / t / a * 1000 : 0 }')
    SERVERSAT[$name]=$(awk -v c=$((c1 - c0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / tk / (b - a) * 100 }')
    SOFTIRQD[$name]=$(awk -v c=$((s1 - s0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / tk / (b - a) * 100 }')
    OTHERS[$name]=$(awk -v c=$((b1 - b0 - (c1 - c0) - (s1 - s0))) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / tk / (b - a) * 100 }')
    CLIENTCPU[$name]=$(awk -v c=$((k1 - k0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / tk / (b - a) * 100 }')

    out=$WORK/$name.rate.txt
    c0=$(tree_ticks "$PID"); t0=$(date +%s.%N)
    run_dnsperf "$PORT" "$file" "$out" -l "$DURATION" -Q "$RATE"
    c1=$(tree_ticks "$PID"); t1=$(date +%s.%N)
    RATEQPS[$name]=$(printf '%.0f' "$(field "$out" 'Queries per second:')")
    CPURATE[$name]=$(awk -v c=$((c1 - c0)) -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", c / tk / (b - a) * 100 }')
    log "$name: ${QPS[$name]} qps at saturation (CPU ${SERVERSAT[$name]}%, dnsperf CPU ${CLIENTCPU[$name]}%, ${UPSAT[$name]} upstream queries), ${CPURATE[$name]}% CPU at ${RATEQPS[$name]} qps"
}

# probe LABEL CPU NAMES PORT...: the latency probe; sets PROBE[port]="ok lost bad p50 p90 p99 mean".
declare -A PROBE
probe() {
    local label=$1 cpu=$2 names=$3 out=$WORK/probe.$1.txt line
    shift 3
    local saved=$CLIENT_CPU
    CLIENT_CPU=$cpu
    run_client "$out" timeout $((PROBE_BUDGET + 30)) python3 "$WORK/probe.py" "$names" \
        "$PROBE_TIMEOUT" "$PROBE_BUDGET" "$WORK/latency.$label" "$@"
    CLIENT_CPU=$saved
    while read -r line; do
        [[ $line =~ ^[0-9]+\  ]] && PROBE[${line%% *}]=${line#* }
    done <"$out"
}

measure_forwarder() {
    local name=$1 k=$2 u0 u1 out
    log "== $name"
    "start_$name"
    log "$name: pid $PID, 127.0.0.1:$PORT"
    check_answers "$name" "$PORT"

    # Warm-up: every h-name once (misses), at a modest rate.
    out=$WORK/$name.warm.txt
    u0=$(upstream_queries)
    run_dnsperf "$PORT" "$WORK/hits.txt" "$out" -n 1 -Q "$WARM_RATE" -q 100 -l $((N / WARM_RATE * 3 + 30))
    u1=$(upstream_queries)
    WARMUP_Q[$name]=$((u1 - u0))
    WARMOK[$name]=$(sed -nE 's/^ *Response codes: *NOERROR ([0-9]+).*/\1/p' "$out")
    WARMOK[$name]=${WARMOK[$name]:-0}
    log "$name: warm-up: ${WARMOK[$name]} NOERROR of $N ($(sed -nE 's/^ *Response codes: *//p' "$out")), ${WARMUP_Q[$name]} upstream queries"

    # Cache misses, interleaved with the same names asked of Knot directly.
    u0=$(upstream_queries)
    probe "$name" "$CLIENT_CPU" "$WORK/miss.$k.txt" "$KNOT_PORT" "$PORT"
    u1=$(upstream_queries)
    MISS[$name]=${PROBE[$PORT]}
    DIRECT[$name]=${PROBE[$KNOT_PORT]}
    # Upstream queries per forwarded miss (Knot also counts the probe's own direct queries).
    MISSUPQ[$name]=$(awk -v u=$((u1 - u0)) -v m="$M" 'BEGIN { printf "%.2f", (u - m) / m }')
    log "$name: misses (ok lost bad p50 p90 p99 mean): direct ${DIRECT[$name]}; via $name ${MISS[$name]}"

    measure_hits "$name" "$WORK/hits.txt"

    if [[ $name == srvd ]]; then
        curl -s --max-time 5 "http://127.0.0.1:$SRVD_HTTP/metrics" 2>/dev/null |
            grep -E '^srvd_forward_(cache|refused|queries)' >"$WORK/srvd.metrics.txt" || true
        log "srvd forwarding metrics:"; sed 's/^/    /' "$WORK/srvd.metrics.txt" >&2 || true
        if [[ -s $WORK/srvd.log ]]; then
            log "srvd log ($(wc -l <"$WORK/srvd.log") lines), first 20:"; head -20 "$WORK/srvd.log" >&2
        fi
    fi
    stop_server "$PID"
}

# The authoritative path: srvd serving svc.test. with and without --forward.
measure_auth() {
    local label=$1
    shift
    log "== $label"
    start_srvd_with "$label" "$WORK/authzones" "$@"
    wait_ready "$label" "$PID" "$PORT" "$WORK/$label.log" "a1.$AUTHZONE." A
    measure_hits "$label" "$WORK/auth.txt"
    stop_server "$PID"
}

log "== knot (upstream)"
start_knot
log "knot: pid $KNOT_PID, 127.0.0.1:$KNOT_PORT"

# Baselines: Knot asked directly, probe on the client CPU (beside Knot) and on the server CPU.
probe base1 "$CLIENT_CPU" "$WORK/baseline.txt" "$KNOT_PORT"
BASE_SAME=${PROBE[$KNOT_PORT]}
probe base0 "$SERVER_CPU" "$WORK/baseline.txt" "$KNOT_PORT"
BASE_CROSS=${PROBE[$KNOT_PORT]}
log "knot direct (ok lost bad p50 p90 p99 mean): probe on CPU $CLIENT_CPU: $BASE_SAME; on CPU $SERVER_CPU: $BASE_CROSS"

for ((k = 0; k < NFWD; k++)); do
    measure_forwarder "${FWD_LIST[k]}" "$k"
done
if [[ $AUTH == 1 ]]; then
    measure_auth srvd-auth
    measure_auth srvd-auth+fwd --forward "127.0.0.1:$KNOT_PORT"
fi

# --- report ---------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "") printf "%.2f", a / b; else printf "-" }'; }
# ms FIELDS I: field I (1-based) of "ok lost bad p50 p90 p99 mean", in ms with 3 decimals.
ms() { awk -v i="$2" '{ printf "%.3f", $i }' <<<"$1"; }
diffms() { awk -v i="$3" -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%+.3f", x[i] - y[i] }'; }
upname() { case $1 in srvd) echo srvd ;; unbound) echo Unbound ;; dnsmasq) echo dnsmasq ;; *) echo "$1" ;; esac; }

echo
echo "### Forwarded answers: srvd vs Unbound vs dnsmasq, all forwarding to one Knot DNS"
echo
echo "UDP over 127.0.0.1; forwarder on CPU $SERVER_CPU (one worker thread), upstream Knot $(knotd --version | sed -E 's/.*version //') and dnsperf on CPU $CLIENT_CPU;"
echo "$(nproc) CPUs, $(uname -r). Upstream zone $UP.: $N names h<i> A (TTL 3600) for cache hits, $M fresh names m<i> A per forwarder for misses."
echo
echo "#### Cache hits ($N names, every one asked once before: dnsperf -c $CLIENTS, ${DURATION} s per run)"
echo
echo "| forwarder | QPS at saturation (-q $OUTSTANDING) | CPU s / 1k answers | CPU % at $RATE qps | achieved qps | lost | CPU % at saturation | dnsperf CPU % | ksoftirqd/$SERVER_CPU % | others on CPU $SERVER_CPU % | upstream queries during the run | warm-up NOERROR | response codes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for s in "${FWD_LIST[@]}"; do
    echo "| $(upname "$s") | ${QPS[$s]} | ${CPU1K[$s]} | ${CPURATE[$s]} | ${RATEQPS[$s]} | ${LOST[$s]} | ${SERVERSAT[$s]} | ${CLIENTCPU[$s]} | ${SOFTIRQD[$s]} | ${OTHERS[$s]} | ${UPSAT[$s]} | ${WARMOK[$s]} / $N | ${CODES[$s]} |"
done
for other in unbound dnsmasq; do
    if [[ -n ${QPS[srvd]:-} && -n ${QPS[$other]:-} ]]; then
        echo "| **srvd / $(upname "$other")** | **$(ratio "${QPS[srvd]}" "${QPS[$other]}")** | **$(ratio "${CPU1K[srvd]}" "${CPU1K[$other]}")** | **$(ratio "${CPURATE[srvd]}" "${CPURATE[$other]}")** | | | | | | | | | |"
    fi
done
if [[ -n ${CPU1K[srvd]:-} && -n ${CPU1K[unbound]:-} ]]; then
    r=$(ratio "${CPU1K[srvd]}" "${CPU1K[unbound]}")
    echo
    echo "Goal (srvd at least as fast as Unbound on cache hits): CPU per answer srvd / Unbound = $r ($(awk -v r="$r" 'BEGIN { print (r + 0 <= 1 ? "met" : "NOT met") }')),"
    echo "QPS srvd / Unbound = $(ratio "${QPS[srvd]}" "${QPS[unbound]}") (a lower bound for whichever side had dnsperf at ~100 %)."
fi
echo
echo "QPS: higher is better; CPU columns: lower is better. If dnsperf CPU % is near 100 while the"
echo "forwarder's is well below, the client was the bottleneck and that QPS is a lower bound."
echo "Upstream queries during the run: queries Knot received during the saturation run (0: all hits)."
echo "ksoftirqd/$SERVER_CPU: the kernel thread's CPU during the saturation run (network work the forwarder caused, deferred"
echo "off its own system calls; not in the forwarder's CPU columns). Others on CPU $SERVER_CPU: that CPU's busy time (/proc/stat)"
echo "less the forwarder's and ksoftirqd's: other processes of the machine; near 0 means CPU $SERVER_CPU was the forwarder's alone."
echo
echo "#### Cache misses: latency of one query at a time ($M fresh names per forwarder)"
echo
echo "Each name asked once of the forwarder (never seen by it: a miss, one upstream query) and once of"
echo "Knot directly, interleaved; probe (Python, perf_counter_ns around send -> reply) on CPU $CLIENT_CPU beside Knot."
echo
echo "| path | answered | lost / bad | p50 ms | p90 ms | p99 ms | mean ms | added p50 ms | added p90 ms | added p99 ms | upstream queries per miss |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
row() { # row LABEL FIELDS [DIRECT-FIELDS UPQ]
    local label=$1 f=$2 d=${3:-} u=${4:-}
    local a b c
    read -r a b c _ <<<"$f"
    if [[ -n $d ]]; then
        echo "| $label | $a | $b / $c | $(ms "$f" 4) | $(ms "$f" 5) | $(ms "$f" 6) | $(ms "$f" 7) | $(diffms "$f" "$d" 4) | $(diffms "$f" "$d" 5) | $(diffms "$f" "$d" 6) | $u |"
    else
        echo "| $label | $a | $b / $c | $(ms "$f" 4) | $(ms "$f" 5) | $(ms "$f" 6) | $(ms "$f" 7) | | | | |"
    fi
}
row "Knot direct, probe on CPU $CLIENT_CPU (baseline)" "$BASE_SAME"
row "Knot direct, probe on CPU $SERVER_CPU (baseline, crosses CPUs)" "$BASE_CROSS"
for s in "${FWD_LIST[@]}"; do
    row "Knot direct (interleaved with $(upname "$s"))" "${DIRECT[$s]}"
    row "**via $(upname "$s")**" "${MISS[$s]}" "${DIRECT[$s]}" "${MISSUPQ[$s]}"
done
if [[ -n ${MISS[srvd]:-} ]]; then
    added=$(diffms "${MISS[srvd]}" "${DIRECT[srvd]}" 4)
    cross=$(diffms "${MISS[srvd]}" "$BASE_CROSS" 4)
    verdict=$(awk -v a="$added" -v b="$cross" 'BEGIN { print (a + 0 <= 0.2 && b + 0 <= 0.2 ? "met" : a + 0 <= 0.2 ? "met against the interleaved direct figure only" : "NOT met") }')
    echo
    echo "Goal (srvd miss p50 - direct p50 <= 0.2 ms): $added ms against Knot asked directly (interleaved, probe"
    echo "beside Knot), $cross ms against the cross-CPU baseline (probe on CPU $SERVER_CPU, Knot on CPU $CLIENT_CPU): $verdict."
fi
echo
echo "Added: forwarded minus direct (same names, same moment). A forwarded miss crosses CPUs four"
echo "times (probe -> forwarder on CPU $SERVER_CPU -> Knot on CPU $CLIENT_CPU -> forwarder -> probe), a direct query none;"
echo "the two baseline rows show what crossing costs on this machine. Answered: NOERROR with an answer."
if [[ $AUTH == 1 ]]; then
    echo
    echo "#### Authoritative fast path: srvd serving $AUTHZONE. ($N A names), with and without --forward"
    echo
    echo "| srvd | QPS at saturation (-q $OUTSTANDING) | CPU s / 1k answers | CPU % at $RATE qps | achieved qps | lost | CPU % at saturation | dnsperf CPU % | ksoftirqd/$SERVER_CPU % | others on CPU $SERVER_CPU % | upstream queries during the run | response codes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for s in srvd-auth srvd-auth+fwd; do
        label="no --forward"; [[ $s == srvd-auth+fwd ]] && label="--forward 127.0.0.1:<knot>"
        echo "| $label | ${QPS[$s]} | ${CPU1K[$s]} | ${CPURATE[$s]} | ${RATEQPS[$s]} | ${LOST[$s]} | ${SERVERSAT[$s]} | ${CLIENTCPU[$s]} | ${SOFTIRQD[$s]} | ${OTHERS[$s]} | ${UPSAT[$s]} | ${CODES[$s]} |"
    done
    echo "| **with / without** | **$(ratio "${QPS[srvd-auth+fwd]}" "${QPS[srvd-auth]}")** | **$(ratio "${CPU1K[srvd-auth+fwd]}" "${CPU1K[srvd-auth]}")** | **$(ratio "${CPURATE[srvd-auth+fwd]}" "${CPURATE[srvd-auth]}")** | | | | | | | | |"
fi
echo
echo "Versions: srvd ${SRVD:-} ($("$SRVD" --version 2>/dev/null | head -1 || true)), Knot $(knotd --version | sed -E 's/.*version //'),"
echo "Unbound $(unbound -V | head -1 | sed -E 's/^Version //'), $(dnsmasq --version | head -1 | sed -E 's/ +Copyright.*//'), dnsperf $(dnsperf -h 2>&1 | sed -nE 's/^Version //p'), $(python3 --version)."
echo "dnsmasq --cache-size=${DNSMASQ_CACHE:-} (every name of the run fits); Unbound msg/rrset caches 64m; srvd's default --forward-cache-size."
echo "dnsperf commands: \`taskset -c $CLIENT_CPU dnsperf -s 127.0.0.1 -p PORT -d hits.txt -c $CLIENTS -t 2 -l $DURATION -q $OUTSTANDING\` (saturation), \`... -Q $RATE\` (fixed rate)."
echo "Command: \`DURATION=$DURATION RATE=$RATE benches/forward.sh $N $M\`."
