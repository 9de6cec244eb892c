#!/usr/bin/python3
"""Zone-file syntax that NSD (and BIND) accept and srvd may not: one small zone per case.

A comparison on "the same zone file" fails outright when srvd rejects the file (srvd refuses to
start on any zone error), so every record syntax a realistic zone may hold is checked here:
`srvd check --zones DIR` against `nsd-checkzone` and `named-checkzone` (knotd has no stand-alone
checker in Debian's knot package; a case where NSD and BIND agree is what matters).

Run:  /usr/bin/python3 benches/compare/zone_syntax.py [--srvd /work/target-compare/release/srvd]
Prints one row per case (ok / FAIL and srvd's message) and exits 1 if srvd rejects a case that
both NSD and BIND accept.
"""

import argparse
import os
import subprocess
import sys
import tempfile

BASE = """$ORIGIN cmp.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 1800 1209600 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.2
"""

CASES = [
    ("unknown type, RFC 3597", r"unk IN TYPE65534 \# 4 0A000001"),
    ("known type, generic rdata", r"gen IN A \# 4 C0000201"),
    ("unknown type, empty rdata", r"unk0 IN TYPE65280 \# 0"),
    ("TTL units", "units 1h30m IN A 192.0.2.1"),
    ("no class", "nocls 300 A 192.0.2.1"),
    ("class before TTL", "cbt IN 300 A 192.0.2.1"),
    ("TXT escapes", r'esc IN TXT "a\"b\\c\010d" "semi;colon"'),
    ("TXT unquoted words", "unq IN TXT hello world"),
    ("TXT 255-byte string", 'long IN TXT "' + "x" * 255 + '"'),
    ("SPF", 'spf IN SPF "v=spf1 -all"'),
    ("NAPTR", 'naptr IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .'),
    ("SSHFP", "sshfp IN SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789"),
    ("TLSA", "_443._tcp.tlsa IN TLSA 3 1 1 "
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("SVCB", "svcb IN SVCB 1 svc.example. alpn=h2,h3 port=8443"),
    ("HTTPS", "https IN HTTPS 1 . alpn=h2 ipv4hint=192.0.2.1"),
    ("DNAME", "dname IN DNAME target.example."),
    ("LOC", "loc IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"),
    ("URI", 'uri IN URI 10 1 "https://example.com/"'),
    ("RP", "rp IN RP admin.cmp.test. txt.cmp.test."),
    ("AFSDB", "afsdb IN AFSDB 1 afs.example."),
    ("DS (at a delegation)", "dssub IN NS ns.example.\ndssub IN DS 12345 13 2 "
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("DNSKEY", "@ IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+"
     "KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="),
    ("RRSIG", "www IN RRSIG A 13 3 3600 20300101000000 20200101000000 12345 cmp.test. AAAA"),
    ("NSEC", "www IN NSEC zz.cmp.test. A RRSIG NSEC"),
    ("NSEC3PARAM", "@ IN NSEC3PARAM 1 0 0 -"),
    ("CDS", "@ IN CDS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
    ("CAA issuewild", 'caa2 IN CAA 0 issuewild ";"'),
    ("CERT", "cert IN CERT 1 0 0 AAAA"),
    ("MINFO", "minfo IN MINFO rm.example. em.example."),
    ("OPENPGPKEY", "opk IN OPENPGPKEY AAAA"),
    ("CSYNC", "@ IN CSYNC 1 3 A NS AAAA"),
    ("ZONEMD", "@ IN ZONEMD 2026010101 1 1 " + "0123456789abcdef" * 6),
    ("EUI48", "eui IN EUI48 00-00-5e-00-53-2a"),
    ("APL", "apl IN APL 1:192.168.32.0/21"),
    ("WKS", "wks IN WKS 192.0.2.1 TCP 25"),
    ("NULL generic", r"nul IN NULL \# 2 0102"),
    ("$INCLUDE (file beside the zone)", "$INCLUDE {DIR}/inc.inc"),
    ("parentheses over lines", "ml IN MX ( 10\n  mail.example. )"),
    ("blank owner continues", "blank IN A 192.0.2.5\n      IN AAAA 2001:db8::5"),
    ("@ owner mid-file", "@ IN TXT \"apex\""),
    ("escaped dot in label", r"esc\.dot IN A 192.0.2.6"),
    ("decimal escape in label", r"esc\065 IN A 192.0.2.7"),
    ("_dmarc TXT with ;", '_dmarc IN TXT "v=DMARC1; p=none"'),
    ("wildcard MX", "*.w2 IN MX 10 mail.example."),
    ("$ORIGIN change mid-file", "$ORIGIN sub2.cmp.test.\nhost IN A 192.0.2.9"),
    ("relative name in rdata", "rel IN CNAME www"),
    ("comment after record", "cmt IN A 192.0.2.10 ; comment"),
    ("CRLF line ends", "crlf IN A 192.0.2.11\r\ncrlf2 IN A 192.0.2.12\r"),
    ("TTL 0", "zero 0 IN A 192.0.2.13"),
    ("TTL 2^31-1", "maxttl 2147483647 IN A 192.0.2.14"),
    ("uppercase type/class", "upc in a 192.0.2.15"),
    ("IPv4-mapped AAAA", "v4m IN AAAA ::ffff:192.0.2.1"),
    ("HINFO unquoted", "hinfo2 IN HINFO PC Linux"),
]


def check(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    msg = (p.stdout + p.stderr).strip().splitlines()
    return p.returncode == 0, (msg[0] if msg else "")[:110]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srvd", default="/work/target-compare/release/srvd")
    args = ap.parse_args()
    bad = 0
    print(f"{'case':30} {'srvd':5} {'nsd':5} {'bind':5}  srvd says")
    with tempfile.TemporaryDirectory(prefix="zone-syntax-") as tmp:
        for i, (name, rec) in enumerate(CASES):
            d = os.path.join(tmp, str(i))
            os.mkdir(d)
            path = os.path.join(d, "cmp.test.zone")
            with open(os.path.join(d, "inc.inc"), "w") as f:
                f.write("incl IN A 192.0.2.99\n")
            with open(path, "w", newline="") as f:
                f.write(BASE + rec.replace("{DIR}", d) + "\n")
            s, smsg = check([args.srvd, "check", "--zones", d])
            n, _ = check(["nsd-checkzone", "cmp.test", path])
            b, _ = check(["named-checkzone", "cmp.test", path])
            flag = ""
            if not s and n and b:
                flag, bad = "  <-- srvd rejects", bad + 1
            print(f"{name:30} {'ok' if s else 'FAIL':5} {'ok' if n else 'FAIL':5} "
                  f"{'ok' if b else 'FAIL':5}  {'' if s else smsg}{flag}")
    print(f"\n{bad} case(s) NSD and BIND accept but srvd rejects")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
