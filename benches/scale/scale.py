#!/usr/bin/env python3
"""Helper of benches/scale.sh (Python 3 standard library only).

Talks to etcd through its v3 JSON gateway (POST /v3/kv/..., base64 keys and values) and to
srvd over HTTP (/readyz) and UDP DNS (hand-built queries). Every loop is bounded in count and
time; every address is 127.0.0.1. Subcommands:

  load     URL N [--batch B] [--conns C]     write the N scale keys in batched transactions
  ready    HTTP_ADDR --pidfile F             poll /readyz until 200, print the wall time
  query    DNS_PORT NAME                     one A query, print the addresses (sanity check)
  watch    URL PREFIX                        print "<monotonic ns> <key>" per watch event
  latency  URL DNS_PORT COUNT [--svc S]      put->answer latency, raw samples to stdout
  stats    SAMPLES [--watch LOG]             p50/p99 of the samples (and of etcd's watch events)

Key layout: key i (0 <= i < N) is /skydns/local/skydns/svc<i//3>/<i%3> and holds
{"host":"10.a.b.c","port":8080} where a.b.c are the low 3 bytes of i+1.
"""

import argparse
import base64
import http.client
import json
import os
import queue
import random
import socket
import struct
import sys
import threading
import time

PREFIX = "/skydns/local/skydns/"
DOMAIN = "skydns.local."


def die(msg):
    print(f"scale.py: {msg}", file=sys.stderr)
    sys.exit(1)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def hostport(url):
    url = url.removeprefix("http://").rstrip("/")
    host, _, port = url.rpartition(":")
    if host != "127.0.0.1":
        die(f"only 127.0.0.1 endpoints are allowed, not {url}")
    return host, int(port)


def scale_key(i):
    return f"{PREFIX}svc{i // 3}/{i % 3}"


def scale_value(i):
    n = (i + 1) & 0xFFFFFF
    return f'{{"host":"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}","port":8080}}'


class Gateway:
    """One keep-alive connection to etcd's JSON gateway."""

    def __init__(self, url, timeout=60):
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


# --- load ------------------------------------------------------------------------------------


def cmd_load(args):
    n, batch = args.n, args.batch
    batches = queue.Queue()
    for start in range(0, n, batch):
        batches.put((start, min(n, start + batch)))
    errors = []
    done = [0]
    lock = threading.Lock()
    t0 = time.monotonic()
    deadline = t0 + args.timeout

    def worker():
        gw = Gateway(args.url)
        while time.monotonic() < deadline:
            try:
                lo, hi = batches.get_nowait()
            except queue.Empty:
                return
            ops = ",".join(
                '{"requestPut":{"key":"%s","value":"%s"}}' % (b64(scale_key(i)), b64(scale_value(i)))
                for i in range(lo, hi)
            )
            body = ('{"success":[%s]}' % ops).encode()
            try:
                out = gw.post("/v3/kv/txn", body)
            except SystemExit as e:  # die() in a thread: report it from the main thread
                errors.append(str(e))
                return
            if not out.get("succeeded"):
                errors.append(f"txn {lo}..{hi} not succeeded: {str(out)[:200]}")
                return
            with lock:
                done[0] += hi - lo
                if args.progress and done[0] // args.progress != (done[0] - (hi - lo)) // args.progress:
                    el = time.monotonic() - t0
                    print(f"  {done[0]} keys, {el:.1f} s, {done[0] / el:.0f} keys/s", file=sys.stderr)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    elapsed = time.monotonic() - t0
    if errors:
        die("; ".join(errors))
    if done[0] != n:
        die(f"wrote {done[0]} of {n} keys within {args.timeout} s")
    print(f"{n} {elapsed:.3f}")


# --- ready -----------------------------------------------------------------------------------


def cmd_ready(args):
    """Print "armed", then wait for the PID file (the caller execs srvd after reading "armed"),
    then poll /readyz; print "<wall time at the first 200> <polls> <body>"."""
    host, port = hostport(args.addr)
    deadline = time.monotonic() + args.timeout
    print("armed", flush=True)
    pid = 0
    while not pid and time.monotonic() < deadline:
        try:
            pid = int(open(args.pidfile).read().strip() or 0)
        except (OSError, ValueError):
            time.sleep(0.001)
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/readyz")
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace").strip()
            conn.close()
            if resp.status == 200:
                print(f"{time.time():.6f} {polls} {body}", flush=True)
                return
        except (OSError, http.client.HTTPException):
            pass
        if pid and not os.path.exists(f"/proc/{pid}"):
            die(f"process {pid} exited before /readyz said 200")
        time.sleep(args.interval)
    die(f"/readyz not 200 within {args.timeout} s")


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
    def __init__(self, port, reply_timeout=0.1):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(reply_timeout)

    def ask(self, name):
        """Addresses of `name` (None on timeout)."""
        qid = random.randrange(65536)
        self.sock.send(build_query(qid, name))
        end = time.monotonic() + self.sock.gettimeout()
        while time.monotonic() < end:
            try:
                msg = self.sock.recv(4096)
            except socket.timeout:
                return None
            parsed = parse_a(msg, qid)
            if parsed is not None:
                return parsed[1]
        return None


def cmd_query(args):
    r = Resolver(args.port, 1.0)
    ips = r.ask(args.name)
    if ips is None:
        die(f"no reply for {args.name}")
    print(" ".join(ips))


# --- watch (etcd's own put->event latency, beside srvd's) ------------------------------------


def cmd_watch(args):
    host, port = hostport(args.url)
    end = args.prefix[:-1] + chr(ord(args.prefix[-1]) + 1)
    body = json.dumps({"create_request": {"key": b64(args.prefix), "range_end": b64(end)}})
    conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    conn.request("POST", "/v3/watch", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        die(f"watch: HTTP {resp.status}")
    deadline = time.monotonic() + args.timeout
    out = sys.stdout
    # The gateway streams one JSON object per line.
    while time.monotonic() < deadline:
        line = resp.readline()
        if not line:
            return
        now = time.monotonic_ns()
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line).get("result", {})
        if msg.get("created"):
            print("created", flush=True)
        for ev in msg.get("events", []):
            key = base64.b64decode(ev["kv"]["key"]).decode()
            out.write(f"{now} {ev.get('type', 'PUT')} {key}\n")
        out.flush()


# --- latency ---------------------------------------------------------------------------------


def cmd_latency(args):
    gw = Gateway(args.url, timeout=5)
    res = Resolver(args.port, args.reply_timeout)
    rng = random.Random(42)
    poll = args.poll_us / 1e6
    out = sys.stdout
    for i in range(args.warmup + args.count):
        n = i + 1
        kind = "new" if i % 2 == 0 else "overwrite"
        if kind == "new":
            # a key that did not exist, in a new subtree
            key = f"{PREFIX}lat/{i}"
            name = f"{i}.lat.{DOMAIN}"
            ip = f"100.64.{(n >> 8) & 255}.{n & 255}"
        else:
            # an existing scale key gets a new address
            svc = rng.randrange(args.svc)
            key = f"{PREFIX}svc{svc}/0"
            name = f"0.svc{svc}.{DOMAIN}"
            ip = f"100.65.{(n >> 8) & 255}.{n & 255}"
        gw.put(key, f'{{"host":"{ip}","port":8080}}')
        t0 = time.monotonic_ns()
        deadline = time.monotonic() + args.deadline
        queries = 0
        got = None
        while time.monotonic() < deadline:
            queries += 1
            ips = res.ask(name)
            if ips is not None and ip in ips:
                got = time.monotonic_ns()
                break
            if poll:
                time.sleep(poll)
        if i < args.warmup:
            continue
        lat = "timeout" if got is None else str(got - t0)
        out.write(f"{kind} {t0} {lat} {queries} {key}\n")
    out.flush()


# --- stats -----------------------------------------------------------------------------------


def pct(sorted_ns, q):
    """Nearest-rank percentile of sorted nanosecond samples, in ms."""
    if not sorted_ns:
        return float("nan")
    k = max(0, min(len(sorted_ns) - 1, -(-len(sorted_ns) * q // 100) - 1))
    return sorted_ns[int(k)] / 1e6


def cmd_stats(args):
    """Percentiles of `latency` samples; with the `watch` log, etcd's own put->event latency.

    Output lines: "<row> <count> <timeouts> <p50 ms> <p99 ms> <max ms> <mean queries>".
    """
    samples = [line.split() for line in open(args.samples) if line.strip()]
    rows = {"all": [], "new": [], "overwrite": []}
    timeouts = {"all": 0, "new": 0, "overwrite": 0}
    queries = {"all": 0, "new": 0, "overwrite": 0}
    for kind, _, lat, q, _ in samples:
        for row in ("all", kind):
            queries[row] += int(q)
            if lat == "timeout":
                timeouts[row] += 1
            else:
                rows[row].append(int(lat))
    if args.watch:
        events = []
        for line in open(args.watch):
            parts = line.split()
            if len(parts) == 3:
                events.append((int(parts[0]), parts[2]))
        events = events[args.warmup:]
        etcd = []
        missing = 0
        for i, (_, t0, _, _, key) in enumerate(samples):
            if i < len(events) and events[i][1] == key:
                etcd.append(max(0, events[i][0] - int(t0)))
            else:
                missing += 1
        rows["etcd"] = etcd
        timeouts["etcd"] = missing
        queries["etcd"] = 0
    for row, vals in rows.items():
        vals.sort()
        n = len(vals) + timeouts[row]
        mean_q = queries[row] / n if n else 0
        print(f"{row} {n} {timeouts[row]} {pct(vals, 50):.3f} {pct(vals, 99):.3f} "
              f"{(vals[-1] / 1e6 if vals else float('nan')):.3f} {mean_q:.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("load")
    s.add_argument("url")
    s.add_argument("n", type=int)
    s.add_argument("--batch", type=int, default=10000)
    s.add_argument("--conns", type=int, default=3)
    s.add_argument("--timeout", type=float, default=3600)
    s.add_argument("--progress", type=int, default=100000)
    s.set_defaults(fn=cmd_load)

    s = sub.add_parser("ready")
    s.add_argument("addr")
    s.add_argument("--timeout", type=float, default=600)
    s.add_argument("--interval", type=float, default=0.005)
    s.add_argument("--pidfile", required=True)
    s.set_defaults(fn=cmd_ready)

    s = sub.add_parser("query")
    s.add_argument("port", type=int)
    s.add_argument("name")
    s.set_defaults(fn=cmd_query)

    s = sub.add_parser("watch")
    s.add_argument("url")
    s.add_argument("prefix")
    s.add_argument("--timeout", type=float, default=600)
    s.set_defaults(fn=cmd_watch)

    s = sub.add_parser("latency")
    s.add_argument("url")
    s.add_argument("port", type=int)
    s.add_argument("count", type=int)
    s.add_argument("--svc", type=int, default=1, help="number of svc<k> subtrees loaded")
    s.add_argument("--warmup", type=int, default=20)
    s.add_argument("--poll-us", type=int, default=50)
    s.add_argument("--reply-timeout", type=float, default=0.1)
    s.add_argument("--deadline", type=float, default=2.0)
    s.set_defaults(fn=cmd_latency)

    s = sub.add_parser("stats")
    s.add_argument("samples")
    s.add_argument("--watch")
    s.add_argument("--warmup", type=int, default=20)
    s.set_defaults(fn=cmd_stats)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
