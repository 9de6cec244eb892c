# Process and dnsperf helpers shared by the benchmark scripts (sourced, not run):
# the CPU time of a server and its descendants read from /proc, process identity that
# survives PID reuse, the CPU of reaped children (dnsperf), and a figure from dnsperf's output.
# shellcheck shell=bash

# A process and all its descendants, one PID a line.
tree_pids() {
    local pid
    local -a queue=("$1") kids
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        echo "$pid"
        mapfile -t kids < <(cat "/proc/$pid/task/"*/children 2>/dev/null | tr ' ' '\n' | grep . || true)
        queue+=("${kids[@]}")
    done
}

# utime+stime (clock ticks) of a process and all its descendants.
tree_ticks() {
    local total=0 pid stat rest
    for pid in $(tree_pids "$1"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }          # fields from 3 (state) on; comm may contain spaces
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))   # fields 14 utime, 15 stime
    done
    echo "$total"
}

# "PID:start time" of a process, which stays unique even if the PID is reused later.
proc_id() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    echo "$1:${f[19]}"   # field 22 starttime
}

# True while the process of a proc_id exists (same start time) and is not a zombie.
alive() {
    local stat
    stat=$(cat "/proc/${1%%:*}/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* && $(proc_id "${1%%:*}") == "$1" ]]
}

# CPU ticks of this script's reaped children (cutime+cstime of $$): around one dnsperf run,
# that is dnsperf's CPU (servers are not reaped until they stop).
reaped_ticks() {
    local stat rest
    stat=$(cat "/proc/$$/stat")
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    echo $((f[13] + f[14]))   # fields 16 cutime, 17 cstime
}

field() { # field FILE REGEX -> first number after it
    sed -nE "s/^ *$2 *([0-9.]+).*/\1/p" "$1" | head -1
}

# Stop a server (our child, its PID in $1) and wait until it and every process it forked are
# gone; clears SERVER_PID when that was it. Needs the calling script's `log`.
stop_server() {
    local pid=$1 p id
    local -a tree=()
    for p in $(tree_pids "$pid"); do
        id=$(proc_id "$p") && tree+=("$id")
    done
    kill -TERM "$pid" 2>/dev/null || true
    for id in "${tree[@]}"; do
        for _ in $(seq 100); do
            alive "$id" || break
            sleep 0.1
        done
        if alive "$id"; then
            log "pid ${id%%:*} did not stop on SIGTERM; killing it"
            kill -KILL "${id%%:*}" 2>/dev/null || true
        fi
        [[ ${id%%:*} == "$pid" ]] && { wait "$pid" 2>/dev/null || true; }
    done
    [[ $pid == "$SERVER_PID" ]] && SERVER_PID=""
    return 0
}
