# Sourced by the benchmark scripts (needs their `die`): free_port prints a port free for both
# UDP and TCP on 127.0.0.1, below the ephemeral range (so no outgoing connection takes it in
# the meantime), in no socket of any state, and never the same one twice in one run.
read -r EPH_LO _ </proc/sys/net/ipv4/ip_local_port_range
if ((EPH_LO > 12000)); then PORT_LO=10000 PORT_SPAN=$((EPH_LO - 10000)); else PORT_LO=61000 PORT_SPAN=4000; fi
USED_PORTS=" "
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((PORT_LO + RANDOM % PORT_SPAN))
        [[ $USED_PORTS == *" $port "* ]] && continue
        if ! ss -Hantu "( sport = :$port )" | grep -q .; then
            USED_PORTS+="$port "
            echo "$port"
            return
        fi
    done
    die "no free port found"
}
