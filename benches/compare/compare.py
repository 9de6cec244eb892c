#!/usr/bin/python3
"""respdiff-style comparison of srvd against Knot DNS and NSD, plus an RFC 8906 (ednscomp) probe.

What it does
    Starts srvd, knotd and nsd on loopback (each in its own temp dir, all three serving the same
    zone file, zones/cmp.test.zone), then
      1. runs the ednscomp probes (https://ednscomp.isc.org, RFC 8906: plain, edns, edns1/BADVERS,
         edns@512, ednsopt, edns1opt, do, docd, ednsflags, optlist, ednstcp, zflag, DO on
         NXDOMAIN, unknown opcode, type 0 / unknown types, malformed OPT, ...) on fresh servers;
      2. sends every query of queries.txt to all three (pass 1) and compares per query: rcode,
         opcode, header flags (QR AA TC RD RA AD CD and Z), EDNS (present, version, DO, other
         flag bits, payload, option codes, EDE), the question as echoed (exact bytes: 0x20 case),
         section counts, each section as a set of RRsets (owner case-insensitive, TTL, rdata
         compared canonically, then its exact spelling), owner spelling, and "fits" (reply size
         within the UDP limit);
      3. sends the query list again (pass 2): any answer that changed was changed by an earlier
         query (an answer cache keyed on too little).
    A field is a *srvd difference* only when Knot and NSD agree on it and srvd does not. Fields
    where Knot and NSD disagree are *free*; they are listed separately, and so are the free
    fields where srvd matches neither of them.

Requirements (Debian 12)
    apt-get install knot nsd python3-dnspython bind9-utils   # knotd 3.2, NSD 4.6, dnspython 2.3
    Run with /usr/bin/python3 (the pyenv python3 on PATH does not see Debian's dnspython).
    A release srvd: cd /work/main && CARGO_TARGET_DIR=/work/target-compare cargo build --release

Run (about 30 s)
    /usr/bin/python3 benches/compare/compare.py [--srvd /work/target-compare/release/srvd]
    options: --port-base 15400 (srvd, knot, nsd on 127.0.0.1:15400/15401/15402)
             --srvd-arg=--max-ttl=604800 (extra srvd arguments, repeatable)
             --use srvd=127.0.0.1:5353 --use knot=... --use nsd=...  (servers already running;
               they must serve benches/compare/zones/cmp.test.zone)
             --only REGEX (queries whose label matches), --out DIR (default /tmp/compare-out)
             --keep (leave the daemons running; their PIDs are printed), --examples N
    Output: on stdout, srvd's differences grouped by field and values, then one row per
    (name, field) with the types and variants folded, the free fields, pass-2 changes and the
    ednscomp table. In DIR: diffs.txt (every srvd difference: query, field, srvd, knot=nsd),
    free.txt, third.txt, ednscomp.txt, responses.jsonl (every parsed field of every reply).
    Exit status 0 when srvd has no difference and no answer changed between passes, else 1.
    Companion: zone_syntax.py checks zone-file syntax srvd rejects and NSD/BIND accept (srvd
    refuses to start on any zone error, so the test zone avoids those; see its header).

Notes
    NSD is run with rrl-ratelimit: 0: with its default rate limiting it truncates or drops
    answers under this load. Knot's and NSD's ANY answers hold one RRset; which one differs.
    A query label is "NAME TYPE VARIANT" (variants in queries.txt) or the [queries] line itself.
    Only processes this script starts are stopped (by PID). Loopback only.
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

HERE = os.path.dirname(os.path.abspath(__file__))
ZONE_DIR = os.path.join(HERE, "zones")
ZONE_FILE = os.path.join(ZONE_DIR, "cmp.test.zone")
ZONE = "cmp.test."
TIMEOUT = 1.0
SERVERS = ("srvd", "knot", "nsd")

# ----------------------------------------------------------------------------------------------
# daemons


class Daemon:
    def __init__(self, name, addr, proc=None, tmp=None):
        self.name, self.addr, self.proc, self.tmp = name, addr, proc, tmp

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)


KNOT_CONF = """server:
    rundir: "{dir}"
    pidfile: "{dir}/knot.pid"
    listen: {ip}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{dir}"
log:
  - target: "{dir}/knot.log"
    any: info
template:
  - id: default
    storage: "{zonedir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {zone}
    file: "{zonefile}"
"""

NSD_CONF = """server:
    ip-address: {ip}@{port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    database: ""
    zonelistfile: "{dir}/zone.list"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}/xfr"
    pidfile: "{dir}/nsd.pid"
    logfile: "{dir}/nsd.log"
    verbosity: 1
    zonefiles-write: 0
    rrl-ratelimit: 0                 # NSD rate-limits by default (TC/drops under this load)
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "{zone}"
    zonefile: "{zonefile}"
"""


def start(name, port, srvd_bin, srvd_args=()):
    tmp = tempfile.mkdtemp(prefix=f"compare-{name}-")
    ip = "127.0.0.1"
    log = open(os.path.join(tmp, "stdout.log"), "w")
    if name == "srvd":
        zdir = os.path.join(tmp, "zones")
        os.mkdir(zdir)
        shutil.copy(ZONE_FILE, zdir)
        cmd = [srvd_bin, "--zones", zdir, "--listen", f"{ip}:{port}", "--http", f"{ip}:0",
               *srvd_args]
    elif name == "knot":
        conf = os.path.join(tmp, "knot.conf")
        with open(conf, "w") as f:
            f.write(KNOT_CONF.format(dir=tmp, ip=ip, port=port, zone=ZONE, zonedir=ZONE_DIR,
                                     zonefile=ZONE_FILE))
        cmd = ["knotd", "-c", conf]
    else:
        os.mkdir(os.path.join(tmp, "xfr"))
        conf = os.path.join(tmp, "nsd.conf")
        with open(conf, "w") as f:
            f.write(NSD_CONF.format(dir=tmp, ip=ip, port=port, zone=ZONE, zonefile=ZONE_FILE))
        cmd = ["nsd", "-d", "-c", conf]
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    d = Daemon(name, (ip, port), proc, tmp)
    for _ in range(100):  # bounded: 10 s
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited ({proc.returncode}); see {tmp}")
        r = exchange(d.addr, build(Query("ready", ZONE, 6, opts=["udp", "noedns"])), "udp", 0.2)
        if r is not None and len(r) >= 4 and (r[3] & 0x0F) == 0:
            return d
        time.sleep(0.1)
    d.stop()
    raise SystemExit(f"{name} did not answer SOA {ZONE} within 10 s; see {tmp}")


# ----------------------------------------------------------------------------------------------
# queries


CLASSES = {"IN": 1, "CH": 3, "HS": 4, "NONE": 254, "ANY": 255}


class Query:
    def __init__(self, label, qname, qtype, opts=(), raw=None):
        self.label, self.qname, self.qtype, self.opts = label, qname, qtype, list(opts)
        self.raw = raw  # a function (id) -> bytes, for probes dnspython will not build

    @property
    def transport(self):
        return "tcp" if "tcp" in self.opts else "udp"


def parse_type(text):
    text = text.upper()
    if text.startswith("TYPE"):
        return int(text[4:])
    return int(dns.rdatatype.from_text(text))


def build(q, qid=None):
    """The wire form of a query."""
    qid = qid if qid is not None else int.from_bytes(os.urandom(2), "big")
    if q.raw:
        return q.raw(qid)
    qclass = 1
    flags = 0
    opcode = 0
    edns = None
    payload, ednsflags, options = 1232, 0, []
    for o in q.opts:
        key, _, val = o.partition("=")
        if key in ("udp", "tcp"):
            pass
        elif key == "noedns":
            edns = None
        elif key == "edns":
            edns = int(val)
        elif key == "bufsize":
            payload = int(val)
            edns = 0 if edns is None else edns
        elif key == "do":
            ednsflags |= 0x8000
            edns = 0 if edns is None else edns
        elif key == "ednsflags":
            ednsflags |= int(val, 0)
            edns = 0 if edns is None else edns
        elif key == "ednsopt":
            code, _, data = val.partition(":")
            options.append((int(code), bytes.fromhex(data)))
            edns = 0 if edns is None else edns
        elif key == "rd":
            flags |= 0x0100
        elif key == "nord":
            flags &= ~0x0100
        elif key == "cd":
            flags |= 0x0010
        elif key == "ad":
            flags |= 0x0020
        elif key == "z":
            flags |= 0x0040
        elif key == "class":
            qclass = CLASSES[val.upper()] if val.upper() in CLASSES else int(val)
        elif key == "opcode":
            opcode = int(val)
        else:
            raise ValueError(f"unknown option {o!r} in {q.label}")
    if "noedns" in q.opts:
        edns = None
    name = dns.name.from_text(q.qname).to_wire()
    out = struct.pack("!HHHHHH", qid, flags | (opcode << 11), 1, 0, 0, 1 if edns is not None else 0)
    out += name + struct.pack("!HH", q.qtype, qclass)
    if edns is not None:
        rdata = b"".join(struct.pack("!HH", c, len(d)) + d for c, d in options)
        ttl = (edns << 16) | ednsflags
        out += b"\x00" + struct.pack("!HHIH", 41, payload, ttl, len(rdata)) + rdata
    return out


def exchange(addr, wire, transport, timeout=TIMEOUT):
    """Send one query; the reply bytes, None (no reply in time) or a str (TCP error: "closed", an
    exception name). A UDP reply's ID must match."""
    qid = wire[:2]
    deadline = time.monotonic() + timeout
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(wire, addr)
            for _ in range(10):  # bounded: skip stray datagrams
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                try:
                    data, src = s.recvfrom(65535)
                except socket.timeout:
                    return None
                if src == addr and data[:2] == qid:
                    return data
            return None
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(struct.pack("!H", len(wire)) + wire)

        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    return None
                buf += chunk
            return buf

        head = read(2)
        if head is None:
            return "closed"
        body = read(struct.unpack("!H", head)[0])
        return "closed" if body is None else body
    except socket.timeout:
        return None
    except OSError as e:
        return e.__class__.__name__
    finally:
        s.close()


# ----------------------------------------------------------------------------------------------
# fields of a response


def rrset_text(rrset):
    return sorted(r.to_text() for r in rrset)


def rdata_key(r):
    try:
        return r.to_digestable().hex()
    except Exception:  # noqa: BLE001 - some rdata types cannot be digested
        return r.to_text().lower()


def fields(q, wire, sent):
    """Flatten one reply into comparable fields (all values are JSON-able and hashable)."""
    f = {}
    if wire is None:
        f["reply"] = "timeout"
        return f
    if isinstance(wire, str):
        f["reply"] = wire
        return f
    if len(wire) < 12:
        f["reply"] = f"short({len(wire)})"
        return f
    f["reply"] = "ok"
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", wire[:12])
    f["opcode"] = (flags >> 11) & 0xF
    for name, bit in (("qr", 0x8000), ("aa", 0x0400), ("tc", 0x0200), ("rd", 0x0100),
                      ("ra", 0x0080), ("z", 0x0040), ("ad", 0x0020), ("cd", 0x0010)):
        f["flag." + name] = bool(flags & bit)
    f["counts"] = (qd, an, ns, ar)
    limit = 65535
    if q.transport == "udp":
        limit = 512
        for o in q.opts:
            if o.startswith("bufsize="):
                limit = max(512, int(o[8:]))
        if "noedns" in q.opts:
            limit = 512
    f["fits"] = len(wire) <= limit
    # question, raw (exact case)
    try:
        at = 12
        qs = []
        for _ in range(qd):
            name, used = dns.name.from_wire(wire, at)
            at += used
            t, c = struct.unpack("!HH", wire[at:at + 4])
            at += 4
            qs.append(f"{name.to_text()} {c} {t}")
        f["question"] = " | ".join(qs) if qs else "(none)"
        if struct.unpack("!H", sent[4:6])[0] == 1:
            sent_name, used = dns.name.from_wire(sent, 12)
            t, c = struct.unpack("!HH", sent[12 + used:16 + used])
            f["question.echoed"] = (qd == 1 and qs[0] == f"{sent_name.to_text()} {c} {t}")
    except Exception as e:  # noqa: BLE001
        f["question"] = f"unparseable: {e.__class__.__name__}"
    try:
        m = dns.message.from_wire(wire, ignore_trailing=True, question_only=False)
    except Exception as e:  # noqa: BLE001
        f["parse"] = f"{e.__class__.__name__}: {e}"[:120]
        f["rcode"] = dns.rcode.to_text(flags & 0xF)
        return f
    f["rcode"] = dns.rcode.to_text(m.rcode())
    if m.edns < 0:
        f["edns"] = False
    else:
        f["edns"] = True
        f["edns.version"] = m.edns
        f["edns.do"] = bool(m.ednsflags & 0x8000)
        f["edns.mbz"] = m.ednsflags & 0x7FFF
        f["edns.payload"] = m.payload
        f["edns.options"] = sorted(int(o.otype) for o in m.options)
        ede = [o.to_wire() for o in m.options if int(o.otype) == 15]
        if ede:
            f["edns.ede"] = sorted(f"{int.from_bytes(w[:2], 'big')} {w[2:].decode(errors='replace')!r}"
                                   for w in ede)
    f["tsig"] = m.had_tsig
    for sec_name, sec in (("answer", m.answer), ("authority", m.authority),
                          ("additional", m.additional)):
        keys = []
        owners = []
        for rrset in sec:
            k = f"{rrset.name.to_text().lower()} {dns.rdataclass.to_text(rrset.rdclass)} " \
                f"{dns.rdatatype.to_text(rrset.rdtype)}"
            keys.append(k)
            owners.append(rrset.name.to_text())
            f[f"{sec_name}[{k}].ttl"] = rrset.ttl
            f[f"{sec_name}[{k}].rdata"] = rrset_text(rrset)
            f[f"{sec_name}[{k}].rdata#"] = sorted(rdata_key(r) for r in rrset)
            f[f"{sec_name}[{k}].rdata-case"] = rrset_text(rrset)
        f[sec_name] = sorted(keys)
        f[f"{sec_name}.owner-case"] = sorted(set(owners))
    return f


def freeze(v):
    return json.dumps(v, sort_keys=True)


# ----------------------------------------------------------------------------------------------
# the query list


def load_queries(path):
    sections = collections.defaultdict(list)
    cur = None
    with open(path) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            m = re.match(r"^\[(\w+)\]$", line)
            if m:
                cur = m.group(1)
                continue
            sections[cur].append(line)
    types = " ".join(sections["types"]).split()
    variants = [(v.split()[0], v.split()[1:]) for v in sections["variants"]]
    out = []
    for name in sections["names"]:
        for t in types:
            for label, opts in variants:
                out.append(Query(f"{name} {t} {label}", name, parse_type(t), opts))
    for line in sections["queries"]:
        parts = line.split()
        out.append(Query(" ".join(parts), parts[0], parse_type(parts[1]), parts[2:]))
    return out


# ----------------------------------------------------------------------------------------------
# RFC 8906 / ednscomp probes


def probe_list():
    z = ZONE
    P = []

    def add(label, expect, qname, qtype, opts, raw=None):
        P.append((label, expect, Query("ednscomp " + label, qname, qtype, opts, raw)))

    # expectations: functions of the fields dict -> list of failed checks
    def want(**checks):
        def check(f):
            bad = []
            for k, v in checks.items():
                k = k.replace("__", ".")
                got = f.get(k, "-")
                if callable(v):
                    if not v(got, f):
                        bad.append(f"{k}={got}")
                elif got != v:
                    bad.append(f"{k}={got}!={v}")
            return bad
        return check

    has_soa = lambda got, f: any(k.endswith(" SOA") for k in (got if isinstance(got, list) else []))  # noqa: E731
    no_ans = lambda got, f: got in ([], "-")  # noqa: E731
    no_opt100 = lambda got, f: got == "-" or 100 not in got  # noqa: E731
    # first, on fresh servers: does an EDNS version 1 query change the answer to version 0?
    add("cache: edns1 first", want(rcode="BADVERS", edns=True, edns__version=0), "txt-short." + z,
        16, ["udp", "edns=1", "bufsize=1232", "nord"])
    add("cache: then edns0, same key", want(rcode="NOERROR", edns=True), "txt-short." + z, 16,
        ["udp", "edns=0", "bufsize=1232", "nord"])
    add("dns (plain)", want(rcode="NOERROR", edns=False, answer=has_soa, flag__aa=True), z, 6,
        ["udp", "noedns", "nord"])
    add("edns", want(rcode="NOERROR", edns=True, edns__version=0, answer=has_soa), z, 6,
        ["udp", "edns=0", "bufsize=4096", "nord"])
    add("edns1 (BADVERS)", want(rcode="BADVERS", edns=True, edns__version=0, answer=no_ans), z, 6,
        ["udp", "edns=1", "bufsize=4096", "nord"])
    add("edns100 (BADVERS)", want(rcode="BADVERS", edns=True, edns__version=0, answer=no_ans), z,
        6, ["udp", "edns=100", "bufsize=4096", "nord"])
    add("edns@512 DNSKEY", want(edns=True, fits=True), z, 48,
        ["udp", "edns=0", "bufsize=512", "do", "nord"])
    add("edns@512 big ANY", want(edns=True, fits=True), "big." + z, 255,
        ["udp", "edns=0", "bufsize=512", "do", "nord"])
    add("ednsopt (opt 100)", want(rcode="NOERROR", edns=True, answer=has_soa,
                                  edns__options=no_opt100), z, 6,
        ["udp", "edns=0", "bufsize=4096", "ednsopt=100", "nord"])
    add("edns1opt", want(rcode="BADVERS", edns=True, edns__version=0, answer=no_ans,
                         edns__options=no_opt100), z, 6,
        ["udp", "edns=1", "bufsize=4096", "ednsopt=100", "nord"])
    add("do", want(rcode="NOERROR", edns=True, edns__do=True, answer=has_soa), z, 6,
        ["udp", "edns=0", "bufsize=4096", "do", "nord"])
    add("docd", want(rcode="NOERROR", edns=True, edns__do=True, flag__cd=True), z, 6,
        ["udp", "edns=0", "bufsize=4096", "do", "cd", "nord"])
    add("ednsflags (0x80)", want(rcode="NOERROR", edns=True, edns__mbz=0, answer=has_soa), z, 6,
        ["udp", "edns=0", "bufsize=4096", "ednsflags=0x80", "nord"])
    add("ednsflags (0x7fff)", want(rcode="NOERROR", edns=True, edns__mbz=0), z, 6,
        ["udp", "edns=0", "bufsize=4096", "ednsflags=0x7fff", "nord"])
    add("optlist (nsid ecs expire cookie)", want(rcode="NOERROR", edns=True, answer=has_soa), z,
        6, ["udp", "edns=0", "bufsize=4096", "ednsopt=3", "ednsopt=8:00010000", "ednsopt=9",
            "ednsopt=10:0102030405060708", "nord"])
    add("ednsopt twice + padding", want(rcode="NOERROR", edns=True), z, 6,
        ["udp", "edns=0", "bufsize=4096", "ednsopt=100:01", "ednsopt=100:02", "ednsopt=12:0000",
         "nord"])
    add("ednstcp", want(rcode="NOERROR", edns=True, answer=has_soa), z, 6,
        ["tcp", "edns=0", "bufsize=4096", "nord"])
    add("tcp (plain)", want(rcode="NOERROR", edns=False, answer=has_soa), z, 6,
        ["tcp", "noedns", "nord"])
    add("zflag", want(rcode="NOERROR", flag__z=False, answer=has_soa), z, 6,
        ["udp", "noedns", "z", "nord"])
    add("zflag+edns", want(rcode="NOERROR", flag__z=False), z, 6,
        ["udp", "edns=0", "bufsize=4096", "z", "nord"])
    add("aa (query AA set)", want(rcode="NOERROR", flag__aa=True), z, 6,
        ["udp", "noedns", "nord"], raw=lambda qid: _set_bits(build(Query("", z, 6, ["noedns"]),
                                                                    qid), 0x0400))
    add("dnssec-ok NXDOMAIN", want(rcode="NXDOMAIN", edns=True, edns__do=True), "nx." + z, 1,
        ["udp", "edns=0", "bufsize=4096", "do", "nord"])
    add("dnssec-ok NODATA", want(rcode="NOERROR", edns=True, edns__do=True), "www." + z, 16,
        ["udp", "edns=0", "bufsize=4096", "do", "nord"])
    add("opcode 15 (NOTIMP)", want(rcode="NOTIMP"), z, 6, ["udp", "noedns", "opcode=15", "nord"])
    add("opcode 15 + edns", want(rcode="NOTIMP"), z, 6,
        ["udp", "edns=0", "bufsize=4096", "opcode=15", "nord"])
    add("opcode 1 IQUERY", want(), z, 6, ["udp", "noedns", "opcode=1", "nord"])
    add("opcode 2 STATUS", want(), z, 6, ["udp", "noedns", "opcode=2", "nord"])
    add("type 0", want(), z, 0, ["udp", "noedns", "nord"])
    add("type666 (unknown)", want(rcode="NOERROR", answer=no_ans), z, 666,
        ["udp", "noedns", "nord"])
    add("type666 + edns", want(rcode="NOERROR", edns=True, answer=no_ans), z, 666,
        ["udp", "edns=0", "bufsize=4096", "nord"])
    add("type65534 at a name with data", want(rcode="NOERROR", answer=no_ans), "web." + z, 65534,
        ["udp", "edns=0", "bufsize=4096", "nord"])
    add("class CH SOA", want(), z, 6, ["udp", "noedns", "class=CH", "nord"])
    add("qdcount 0", want(), z, 6, ["udp", "noedns"],
        raw=lambda qid: struct.pack("!HHHHHH", qid, 0, 0, 0, 0, 0))
    add("qdcount 0 + edns", want(), z, 6, ["udp"],
        raw=lambda qid: struct.pack("!HHHHHH", qid, 0, 0, 0, 0, 1) +
        b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0))
    add("qdcount 2", want(), z, 6, ["udp", "noedns"],
        raw=lambda qid: _two_questions(qid))
    add("two OPT records", want(rcode="FORMERR"), z, 6, ["udp"],
        raw=lambda qid: _two_opts(qid))
    add("OPT not at root", want(rcode="FORMERR"), z, 6, ["udp"],
        raw=lambda qid: _opt_owner(qid))
    add("truncated option", want(rcode="FORMERR"), z, 6, ["udp"],
        raw=lambda qid: _bad_option(qid))
    add("trailing garbage", want(), z, 6, ["udp"],
        raw=lambda qid: build(Query("", z, 6, ["noedns"]), qid) + b"\x00\x01")
    add("bufsize 0", want(rcode="NOERROR", edns=True), z, 6,
        ["udp", "edns=0", "bufsize=0", "nord"])
    add("bufsize 511", want(rcode="NOERROR", edns=True), z, 6,
        ["udp", "edns=0", "bufsize=511", "nord"])
    add("query with QR=1", want(reply="timeout"), z, 6, ["udp"],
        raw=lambda qid: _set_bits(build(Query("", z, 6, ["noedns"]), qid), 0x8000))
    add("query with TC=1", want(), z, 6, ["udp"],
        raw=lambda qid: _set_bits(build(Query("", z, 6, ["noedns"]), qid), 0x0200))
    add("query with rcode=5", want(), z, 6, ["udp"],
        raw=lambda qid: _set_bits(build(Query("", z, 6, ["noedns"]), qid), 0x0005))
    add("NOTIFY unsigned", want(), z, 6, ["udp", "noedns", "opcode=4"])
    add("UPDATE", want(), z, 6, ["udp", "noedns", "opcode=5"])
    add("AXFR udp", want(), z, 252, ["udp", "noedns"])
    add("AXFR tcp", want(), z, 252, ["tcp", "noedns"])
    add("IXFR tcp (no SOA)", want(), z, 251, ["tcp", "noedns"])
    add("ANY tcp", want(rcode="NOERROR"), z, 255, ["tcp", "noedns"])
    add("ANY udp", want(rcode="NOERROR"), z, 255, ["udp", "noedns"])
    add("RRSIG do", want(), z, 46, ["udp", "edns=0", "bufsize=4096", "do"])
    return P


def _set_bits(wire, bits):
    flags = struct.unpack("!H", wire[2:4])[0] | bits
    return wire[:2] + struct.pack("!H", flags) + wire[4:]


def _two_questions(qid):
    n = dns.name.from_text(ZONE).to_wire()
    return struct.pack("!HHHHHH", qid, 0, 2, 0, 0, 0) + n + struct.pack("!HH", 6, 1) + n + \
        struct.pack("!HH", 2, 1)


def _two_opts(qid):
    n = dns.name.from_text(ZONE).to_wire()
    opt = b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0)
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 2) + n + struct.pack("!HH", 6, 1) + opt + opt


def _opt_owner(qid):
    n = dns.name.from_text(ZONE).to_wire()
    opt = n + struct.pack("!HHIH", 41, 4096, 0, 0)
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1) + n + struct.pack("!HH", 6, 1) + opt


def _bad_option(qid):
    n = dns.name.from_text(ZONE).to_wire()
    rdata = struct.pack("!HH", 100, 8) + b"\x01\x02"  # says 8 bytes, has 2
    opt = b"\x00" + struct.pack("!HHIH", 41, 4096, 0, len(rdata)) + rdata
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1) + n + struct.pack("!HH", 6, 1) + opt


# ----------------------------------------------------------------------------------------------
# running and comparing


def run_all(daemons, queries):
    """results[label][server] = fields"""
    results = {q.label: {} for q in queries}

    def worker(d):
        for q in queries:
            wire = build(q)
            reply = exchange(d.addr, wire, q.transport)
            results[q.label][d.name] = fields(q, reply, wire)

    threads = [threading.Thread(target=worker, args=(d,)) for d in daemons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def compare(results):
    diffs, free = [], []
    for label, per in results.items():
        s, k, n = (per.get(x, {}) for x in SERVERS)
        keys = set(s) | set(k) | set(n)
        for key in sorted(keys):
            if key.endswith(".rdata#"):
                continue
            if key.endswith((".ttl", ".rdata", ".rdata-case")) and "[" in key:
                # per-RRset fields: only where the RRset is in every reply being compared (a
                # missing RRset is reported once, by the section's field)
                if key not in k or key not in n:
                    continue
                if key not in s:
                    continue
            if key.endswith(".rdata"):
                # compare on the canonical form (names case-insensitive)
                sv, kv, nv = (d.get(key[:-6] + ".rdata#", "-") for d in (s, k, n))
            else:
                sv, kv, nv = (d.get(key, "-") for d in (s, k, n))
            if key.endswith(".owner-case"):
                # exact spelling of owners: only when the section holds the same RRsets
                if len({freeze(d.get(key[:-11], "-")) for d in (s, k, n)}) > 1:
                    continue
            if key.endswith(".rdata-case"):
                # exact spelling: only when the canonical rdata is the same everywhere
                base = key[:-5] + "#"
                if len({freeze(d.get(base, "-")) for d in (s, k, n)}) > 1:
                    continue
            if freeze(kv) != freeze(nv):
                free.append((label, key, s.get(key, "-"), k.get(key, "-"), n.get(key, "-")))
            elif freeze(sv) != freeze(kv):
                diffs.append((label, key, s.get(key, "-"), k.get(key, "-")))
    return diffs, free


def norm_field(key):
    """Group fields: answer[www.cmp.test. IN A].ttl -> answer[*].ttl"""
    return re.sub(r"\[[^\]]*\]", "[*]", key)


def short(v, n=90):
    t = v if isinstance(v, str) else json.dumps(v)
    return t if len(t) <= n else t[:n - 3] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--srvd", default="/work/target-compare/release/srvd")
    ap.add_argument("--port-base", type=int, default=15400)
    ap.add_argument("--srvd-arg", action="append", default=[],
                    help="extra srvd argument (repeat), e.g. --srvd-arg=--max-ttl=604800")
    ap.add_argument("--use", action="append", default=[], help="NAME=IP:PORT of a running server")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries.txt"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--out", default="/tmp/compare-out")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--examples", type=int, default=4)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    given = {}
    for u in args.use:
        name, _, addr = u.partition("=")
        ip, _, port = addr.rpartition(":")
        given[name] = Daemon(name, (ip, int(port)))
    daemons = []
    try:
        for i, name in enumerate(SERVERS):
            daemons.append(given.get(name) or start(name, args.port_base + i, args.srvd,
                                                     args.srvd_arg))
        for d in daemons:
            print(f"# {d.name}: {d.addr[0]}:{d.addr[1]}"
                  + (f" pid {d.proc.pid} dir {d.tmp}" if d.proc else " (given)"))
        queries = load_queries(args.queries)
        if args.only:
            queries = [q for q in queries if re.search(args.only, q.label)]
        probes = probe_list()
        t0 = time.time()
        # the ednscomp probes on fresh servers, then the query list twice: an answer that
        # changed between the passes was changed by an earlier query (an answer cache).
        presults = run_all(daemons, [p[2] for p in probes])
        results = run_all(daemons, queries)
        again = run_all(daemons, queries)
        print(f"# {len(queries)} queries (twice) + {len(probes)} ednscomp probes x "
              f"{len(daemons)} servers in {time.time() - t0:.1f} s")
        with open(os.path.join(args.out, "responses.jsonl"), "w") as fh:
            for label, per in list(results.items()) + list(presults.items()):
                fh.write(json.dumps({"query": label, **per}, sort_keys=True) + "\n")
        diffs, free = compare(results)
        report(args, diffs, free)
        changed = stability(args, results, again)
        ednscomp(args, probes, presults)
        return 1 if diffs or changed else 0
    finally:
        for d in daemons:
            if d.proc and not args.keep:
                d.stop()
            elif d.proc:
                print(f"# left running: {d.name} pid {d.proc.pid}")


def report(args, diffs, free):
    with open(os.path.join(args.out, "diffs.txt"), "w") as fh:
        fh.write("query\tfield\tsrvd\tknot=nsd\n")
        for row in diffs:
            fh.write("\t".join(short(x, 400) for x in row) + "\n")
    with open(os.path.join(args.out, "free.txt"), "w") as fh:
        fh.write("query\tfield\tsrvd\tknot\tnsd\n")
        for row in free:
            fh.write("\t".join(short(x, 400) for x in row) + "\n")
    groups = collections.OrderedDict()
    for label, key, sv, kv in diffs:
        g = (norm_field(key), short(sv, 60) if not key.endswith(("]", ".rdata", ".ttl"))
             else "", short(kv, 60) if not key.endswith(("]", ".rdata", ".ttl")) else "")
        groups.setdefault(g, []).append((label, key, sv, kv))
    print(f"\n== srvd differs from Knot and NSD (which agree): {len(diffs)} field rows, "
          f"{len({d[0] for d in diffs})} queries ==")
    for (field, sv, kv), rows in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        pattern = f"srvd={sv} ref={kv}" if sv or kv else ""
        print(f"\n[{len(rows)}] {field} {pattern}")
        for label, key, s, k in rows[:args.examples]:
            print(f"    {label:48} {key}\n        srvd: {short(s, 150)}\n        ref : {short(k, 150)}")
    print("\n== the same, one row per (name, field); types and variants folded ==")
    byname = collections.OrderedDict()
    for label, key, sv, kv in diffs:
        parts = label.split()
        e = byname.setdefault((parts[0].lower(), norm_field(key)), [set(), set(), None])
        e[0].add(parts[1])
        e[1].add(" ".join(parts[2:]))
        e[2] = (label, sv, kv)
    for (name, field), (types, variants, (label, sv, kv)) in byname.items():
        print(f"  {name:26} {field:20} types={','.join(sorted(types))[:70]} "
              f"variants={','.join(sorted(variants))[:40]}\n      e.g. {label}: "
              f"srvd={short(sv, 70)} ref={short(kv, 70)}")
    third = [r for r in free if freeze(r[2]) not in (freeze(r[3]), freeze(r[4]))
             and not r[1].endswith((".ttl", ".rdata"))]
    with open(os.path.join(args.out, "third.txt"), "w") as fh:
        fh.write("query\tfield\tsrvd\tknot\tnsd\n")
        for row in third:
            fh.write("\t".join(short(x, 400) for x in row) + "\n")
    tgroups = collections.Counter((r[0].split()[0].lower(), norm_field(r[1])) for r in third)
    print(f"\n== free fields where srvd matches neither Knot nor NSD: {len(third)} rows "
          f"(in {args.out}/third.txt) ==")
    for (name, field), count in tgroups.most_common():
        ex = next(r for r in third if (r[0].split()[0].lower(), norm_field(r[1])) == (name, field))
        print(f"  [{count}] {name} {field}  e.g. {ex[0]}: srvd={short(ex[2], 50)} "
              f"knot={short(ex[3], 50)} nsd={short(ex[4], 50)}")
    fgroups = collections.Counter(norm_field(r[1]) for r in free)
    print(f"\n== free fields (Knot and NSD disagree): {len(free)} rows ==")
    for field, count in fgroups.most_common():
        ex = next(r for r in free if norm_field(r[1]) == field)
        print(f"  [{count}] {field}   e.g. {ex[0]}: srvd={short(ex[2], 40)} knot={short(ex[3], 40)}"
              f" nsd={short(ex[4], 40)}")
    print(f"\n(full tables: {args.out}/diffs.txt, {args.out}/free.txt)")


def stability(args, first, second):
    """Fields whose value changed between two passes of the same queries, per server."""
    changed = []
    for label, per in first.items():
        for server in SERVERS:
            a, b = per.get(server, {}), second[label].get(server, {})
            for key in sorted(set(a) | set(b)):
                if freeze(a.get(key, "-")) != freeze(b.get(key, "-")):
                    changed.append((server, label, key, a.get(key, "-"), b.get(key, "-")))
    print(f"\n== answers that changed between pass 1 and pass 2 (after the probes): "
          f"{len(changed)} rows ==")
    for server, label, key, a, b in changed[:40]:
        print(f"  {server:5} {label:44} {key:16} {short(a, 40)} -> {short(b, 40)}")
    srvd_changed = [c for c in changed if c[0] == "srvd"]
    return srvd_changed


EDNS_COLS = ("reply", "rcode", "flag.aa", "flag.tc", "flag.z", "flag.cd", "edns", "edns.version",
             "edns.do", "edns.mbz", "edns.payload", "edns.options", "edns.ede", "question", "counts",
             "fits")


def ednscomp(args, probes, results):
    lines = ["\n== RFC 8906 / ednscomp probes (ok = expectation met; fields differing shown) =="]
    for label, expect, q in probes:
        per = results[q.label]
        verdicts = []
        for s in SERVERS:
            bad = expect(per.get(s, {}))
            verdicts.append("ok" if not bad else "FAIL(" + ",".join(bad) + ")")
        lines.append(f"\n{label:34} srvd: {verdicts[0]}  knot: {verdicts[1]}  nsd: {verdicts[2]}")
        for col in EDNS_COLS + ("answer", "authority"):
            vals = [freeze(per.get(s, {}).get(col, "-")) for s in SERVERS]
            if len(set(vals)) > 1 or col in ("reply", "rcode"):
                mark = ""
                if vals[1] == vals[2] and vals[0] != vals[1]:
                    mark = "   <-- srvd differs"
                elif vals[1] != vals[2]:
                    mark = "   (knot/nsd disagree)"
                lines.append(f"    {col:14} srvd={short(vals[0], 42):44} knot={short(vals[1], 42):44}"
                             f" nsd={short(vals[2], 42)}{mark}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "ednscomp.txt"), "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
