#!/usr/bin/env python3
"""Helper of benches/churn.sh (Python 3 standard library only).

Talks to etcd through its v3 JSON gateway (POST /v3/kv/put and /v3/kv/txn, base64 keys and
values) and to srvd over UDP DNS (hand-built A queries). Every loop is bounded in count and
time; every address is 127.0.0.1. Subcommands:

  load   URL N K                 write N services x K endpoints in batched transactions
  churn  URL DNS_PORT COUNT      COUNT paced puts to one unrelated key, plus freshness probes

Key layout: /skydns/test/bench/s<i>/e<k> (name e<k>.s<i>.bench.test.) holds
{"host":"10.a.b.c","port":8080} where a.b.c are the low 3 bytes of i*K+k+1. The churned key
is /skydns/test/bench/unrelated/x (x.unrelated.bench.test.), which no benchmark query reads.
Freshness probes use new keys /skydns/test/bench/fresh/p<j> (p<j>.fresh.bench.test.), also
outside what the benchmark queries read.
"""

import argparse
import base64
import http.client
import json
import random
import socket
import struct
import sys
import time

PREFIX = "/skydns/test/bench/"
DOMAIN = "bench.test."
UNRELATED_KEY = PREFIX + "unrelated/x"
UNRELATED_VALUES = ('{"host":"10.255.255.1","port":8080}', '{"host":"10.255.255.2","port":8080}')


def die(msg):
    print(f"churn.py: {msg}", file=sys.stderr)
    sys.exit(1)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def hostport(url):
    url = url.removeprefix("http://").rstrip("/")
    host, _, port = url.rpartition(":")
    if host != "127.0.0.1":
        die(f"only 127.0.0.1 endpoints are allowed, not {url}")
    return host, int(port)


class Gateway:
    """One keep-alive connection to etcd's JSON gateway."""

    def __init__(self, url, timeout=30):
        self.host, self.port = hostport(url)
        self.timeout = timeout
        self.conn = None

    def post(self, path, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request("POST", path, data, {"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                payload = resp.read()
                if resp.status != 200:
                    die(f"{path}: HTTP {resp.status}: {payload[:300]!r}")
                out = json.loads(payload)
                if "error" in out:
                    die(f"{path}: {out}")
                return out
            except (ConnectionError, http.client.HTTPException, socket.timeout) as e:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    die(f"{path}: {e}")
                time.sleep(0.2)
        return None

    def put(self, key, value):
        return self.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})


def endpoint_value(i):
    n = (i + 1) & 0xFFFFFF
    return f'{{"host":"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}","port":8080}}'


# --- load ------------------------------------------------------------------------------------


def cmd_load(args):
    gw = Gateway(args.url)
    keys = [(s, e) for s in range(args.n) for e in range(args.k)]
    deadline = time.monotonic() + args.timeout
    t0 = time.monotonic()
    for lo in range(0, len(keys), args.batch):
        if time.monotonic() > deadline:
            die(f"loading took more than {args.timeout} s")
        ops = ",".join(
            '{"requestPut":{"key":"%s","value":"%s"}}'
            % (b64(f"{PREFIX}s{s}/e{e}"), b64(endpoint_value(s * args.k + e)))
            for s, e in keys[lo:lo + args.batch]
        )
        out = gw.post("/v3/kv/txn", ('{"success":[%s]}' % ops).encode())
        if not out.get("succeeded"):
            die(f"txn at {lo} not succeeded: {str(out)[:200]}")
    print(f"{len(keys)} {time.monotonic() - t0:.3f}")


# --- DNS -------------------------------------------------------------------------------------


def build_query(qid, name, qtype=1):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    # flags 0: standard query, RD off (we are asking an authoritative server)
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


def skip_name(msg, off):
    while True:
        length = msg[off]
        if length == 0:
            return off + 1
        if length & 0xC0 == 0xC0:
            return off + 2
        off += 1 + length


def parse_a(msg, qid):
    """(rcode, [IPv4 strings of every A answer]) or None if not our reply."""
    if len(msg) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if rid != qid or not flags & 0x8000:
        return None
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    ips = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return flags & 0xF, ips


class Resolver:
    def __init__(self, port, reply_timeout):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(reply_timeout)
        self.timeout = reply_timeout

    def ask(self, name):
        """(rcode, addresses) of `name`, or None on timeout."""
        qid = random.randrange(65536)
        self.sock.send(build_query(qid, name))
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            try:
                msg = self.sock.recv(4096)
            except socket.timeout:
                return None
            parsed = parse_a(msg, qid)
            if parsed is not None:
                return parsed
        return None


# --- churn + freshness -----------------------------------------------------------------------


class Prober:
    """Freshness probe j: ask p<j>.fresh (NXDOMAIN, which srvd may cache), put the key, then
    check that the very next query answers the new address; if not, poll (bounded) for how
    long it takes."""

    def __init__(self, gw, port, reply_timeout, poll_limit):
        self.gw = gw
        self.res = Resolver(port, reply_timeout)
        self.poll_limit = poll_limit
        self.results = []  # (phase, j, first_ok, ms_until_seen or None, detail)

    def probe(self, phase, j):
        name = f"p{j}.fresh.{DOMAIN}"
        ip = f"10.254.{(j >> 8) & 255}.{j & 255}"
        before = self.res.ask(name)
        self.gw.put(f"{PREFIX}fresh/p{j}", f'{{"host":"{ip}","port":8080}}')
        acked = time.monotonic()
        first = self.res.ask(name)
        first_ok = first is not None and first[0] == 0 and first[1] == [ip]
        seen_ms = 0.0 if first_ok else None
        last = first
        if not first_ok:
            for _ in range(100000):
                if time.monotonic() - acked > self.poll_limit:
                    break
                last = self.res.ask(name)
                if last is not None and last[0] == 0 and last[1] == [ip]:
                    seen_ms = (time.monotonic() - acked) * 1000
                    break
        detail = f"before={fmt(before)} first={fmt(first)} last={fmt(last)}"
        self.results.append((phase, j, first_ok, seen_ms, detail))


def fmt(reply):
    if reply is None:
        return "timeout"
    rcode, ips = reply
    return f"rcode{rcode}:{','.join(ips) or '-'}"


def cmd_churn(args):
    if args.rate <= 0 or args.count <= 0:
        die("rate and count must be positive")
    gw = Gateway(args.url)
    prober = Prober(gw, args.dns_port, args.reply_timeout, args.poll_limit)
    # Open the gateway connection before the start (a read of the key, not a put).
    gw.post("/v3/kv/range", {"key": b64(UNRELATED_KEY)})
    print("armed", flush=True)

    # Wall-clock start shared with the dnsperf run; pacing itself is on the monotonic clock.
    wait = args.start_at - time.time()
    if wait > 30:
        die("start time more than 30 s ahead")
    if wait > 0:
        time.sleep(wait)
    t0 = time.monotonic()
    cpu0 = time.process_time()
    cpu_main = 0.0
    interval = 1.0 / args.rate

    # Slots of the main run at which a freshness probe follows the put.
    during = {int((j + 0.5) * args.count / args.fresh_during) for j in range(args.fresh_during)} \
        if args.fresh_during else set()
    # After the main run: the same put rate goes on for fresh_after probes, one every
    # `fresh_gap` puts.
    gap = max(1, int(args.rate * args.fresh_gap))
    total = args.count + args.fresh_after * gap
    hard_end = t0 + total * interval + args.timeout

    max_lag = 0.0
    first_send = last_ack = None
    probe_j = 0
    for i in range(total):
        due = t0 + i * interval
        now = time.monotonic()
        if now > hard_end:
            die(f"churn overran its time bound at put {i} of {total}")
        if due > now:
            time.sleep(due - now)
        else:
            max_lag = max(max_lag, now - due)
        sent = time.monotonic()
        gw.put(UNRELATED_KEY, UNRELATED_VALUES[i % 2])
        if i == 0:
            first_send = sent
        if i == args.count - 1:
            last_ack = time.monotonic()
            cpu_main = time.process_time() - cpu0
        if i in during:
            prober.probe("during", probe_j)
            probe_j += 1
        elif i >= args.count and (i - args.count) % gap == gap - 1:
            prober.probe("after", probe_j)
            probe_j += 1

    elapsed = last_ack - first_send
    rate = args.count / elapsed if elapsed > 0 else float("nan")
    print(f"puts {args.count} {elapsed:.3f} {rate:.1f} {max_lag * 1000:.1f} {total} {cpu_main:.3f}")
    for phase in ("during", "after"):
        rows = [r for r in prober.results if r[0] == phase]
        ok = sum(1 for r in rows if r[2])
        seen = sorted(r[3] for r in rows if r[3] is not None)
        worst = f"{seen[-1]:.2f}" if seen else "nan"
        print(f"fresh {phase} {len(rows)} {ok} {len(rows) - len(seen)} {worst}")
        for _, j, first_ok, seen_ms, detail in rows:
            if not first_ok:
                print(f"# probe {phase} p{j}: next query did not see it; seen after "
                      f"{'never' if seen_ms is None else f'{seen_ms:.2f} ms'}; {detail}",
                      file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("load")
    s.add_argument("url")
    s.add_argument("n", type=int)
    s.add_argument("k", type=int)
    s.add_argument("--batch", type=int, default=1000)
    s.add_argument("--timeout", type=float, default=600)
    s.set_defaults(fn=cmd_load)

    s = sub.add_parser("churn", help="prints 'armed', then at --start-at: COUNT puts at --rate; "
                       "then 'puts COUNT ELAPSED_S RATE MAX_LAG_MS TOTAL_PUTS CPU_S' and one "
                       "'fresh PHASE PROBES FIRST_OK NEVER_SEEN WORST_MS' line per phase")
    s.add_argument("url")
    s.add_argument("dns_port", type=int)
    s.add_argument("count", type=int)
    s.add_argument("--rate", type=float, default=100)
    s.add_argument("--start-at", type=float, default=0, help="wall-clock start (epoch seconds)")
    s.add_argument("--fresh-during", type=int, default=10, help="probes spread over the paced puts")
    s.add_argument("--fresh-after", type=int, default=10, help="probes after them, churn still on")
    s.add_argument("--fresh-gap", type=float, default=0.1, help="seconds of puts between later probes")
    s.add_argument("--reply-timeout", type=float, default=0.5)
    s.add_argument("--poll-limit", type=float, default=1.0, help="seconds to poll a missed probe")
    s.add_argument("--timeout", type=float, default=60, help="seconds allowed beyond the schedule")
    s.set_defaults(fn=cmd_churn)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
