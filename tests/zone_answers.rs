//! Table-driven answer cases over the zone-file source: (name, type) -> rcode, answer,
//! authority, additional — every answer rule of the core issue, sent over real UDP.

mod common;

use common::{Case, TestServer, run_cases};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const EXAMPLE: &str = r#"$TTL 300
@               SOA   ns hostmaster 1 7200 1800 86400 60
@               NS    ns
@               MX    10 mail
ns              A     192.0.2.53
mail            A     192.0.2.25
web             A     192.0.2.1
web             A     192.0.2.2
web             AAAA  2001:db8::1
web             TXT   "v=1"
_http._tcp.web  SRV   10 50 80 web
_http._tcp.web  SRV   20 50 80 ext.example.org.
alias           CNAME web
alias2          CNAME alias
out             CNAME www.example.org.
dangling        CNAME nothing
loop1           CNAME loop2
loop2           CNAME loop1
other           CNAME host.other.test.
a.b.c           A     192.0.2.9
Mixed-Case      A     192.0.2.7
long  999999    A     192.0.2.8
"#;

const OTHER: &str = "host 30 A 198.51.100.1\n";

const REVERSE: &str = r#"$ORIGIN 2.0.192.in-addr.arpa.
@  300 SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
1  300 PTR web.example.test.
"#;

const NEG_SOA: &str =
    "example.test. 60 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60";

async fn server() -> TestServer {
    TestServer::start(&[
        ("example.test.zone", EXAMPLE),
        ("other.test.zone", OTHER),
        ("reverse.zone", REVERSE),
    ])
    .await
}

#[tokio::test]
async fn rfc1034_answers_from_zone_files() {
    use RecordType::*;
    use ResponseCode::*;
    let cases = [
        Case {
            name: "A rrset",
            qname: "web.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "web.example.test. 300 IN A 192.0.2.1",
                "web.example.test. 300 IN A 192.0.2.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "AAAA",
            qname: "web.example.test.",
            qtype: AAAA,
            rcode: NoError,
            answer: &["web.example.test. 300 IN AAAA 2001:db8::1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "TXT",
            qname: "web.example.test.",
            qtype: TXT,
            rcode: NoError,
            answer: &["web.example.test. 300 IN TXT v=1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "SRV with in-zone target glue (A and AAAA), none for out-of-zone targets",
            qname: "_http._tcp.web.example.test.",
            qtype: SRV,
            rcode: NoError,
            answer: &[
                "_http._tcp.web.example.test. 300 IN SRV 10 50 80 web.example.test.",
                "_http._tcp.web.example.test. 300 IN SRV 20 50 80 ext.example.org.",
            ],
            authority: &[],
            additional: &[
                "web.example.test. 300 IN A 192.0.2.1",
                "web.example.test. 300 IN A 192.0.2.2",
                "web.example.test. 300 IN AAAA 2001:db8::1",
            ],
        },
        Case {
            name: "CNAME chain followed",
            qname: "alias2.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "alias2.example.test. 300 IN CNAME alias.example.test.",
                "alias.example.test. 300 IN CNAME web.example.test.",
                "web.example.test. 300 IN A 192.0.2.1",
                "web.example.test. 300 IN A 192.0.2.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            // Names compress case-insensitively against the question, as Knot's do, so the
            // zone's own suffix comes back in the query's spelling.
            name: "query case preserved, matching case-insensitive",
            qname: "ALIAS.Example.TEST.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "ALIAS.Example.TEST. 300 IN CNAME web.Example.TEST.",
                "web.Example.TEST. 300 IN A 192.0.2.1",
                "web.Example.TEST. 300 IN A 192.0.2.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "owner with upper case in the zone answers in the query's case",
            qname: "mixed-case.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &["mixed-case.example.test. 300 IN A 192.0.2.7"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "CNAME query returns the CNAME itself",
            qname: "alias.example.test.",
            qtype: CNAME,
            rcode: NoError,
            answer: &["alias.example.test. 300 IN CNAME web.example.test."],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "CNAME out of our zones: left to the resolver",
            qname: "out.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &["out.example.test. 300 IN CNAME www.example.org."],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "CNAME to a missing name: NXDOMAIN of the target (RFC 6604)",
            qname: "dangling.example.test.",
            qtype: A,
            rcode: NXDomain,
            answer: &["dangling.example.test. 300 IN CNAME nothing.example.test."],
            authority: &[NEG_SOA],
            additional: &[],
        },
        Case {
            name: "CNAME loop stops",
            qname: "loop1.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "loop1.example.test. 300 IN CNAME loop2.example.test.",
                "loop2.example.test. 300 IN CNAME loop1.example.test.",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "CNAME into another served zone",
            qname: "other.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "other.example.test. 300 IN CNAME host.other.test.",
                "host.other.test. 30 IN A 198.51.100.1",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "NXDOMAIN with SOA, TTL = min(SOA TTL, minimum) (RFC 2308 §3)",
            qname: "nope.example.test.",
            qtype: A,
            rcode: NXDomain,
            answer: &[],
            authority: &[NEG_SOA],
            additional: &[],
        },
        Case {
            name: "NXDOMAIN below an existing name",
            qname: "x.web.example.test.",
            qtype: A,
            rcode: NXDomain,
            answer: &[],
            authority: &[NEG_SOA],
            additional: &[],
        },
        Case {
            name: "NODATA: name exists, type does not",
            qname: "web.example.test.",
            qtype: MX,
            rcode: NoError,
            answer: &[],
            authority: &[NEG_SOA],
            additional: &[],
        },
        Case {
            name: "empty non-terminal is NODATA",
            qname: "b.c.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &[],
            authority: &[NEG_SOA],
            additional: &[],
        },
        Case {
            name: "empty non-terminal two levels up is NODATA",
            qname: "c.example.test.",
            qtype: TXT,
            rcode: NoError,
            answer: &[],
            authority: &[NEG_SOA],
            additional: &[],
        },
        Case {
            name: "MX with glue",
            qname: "example.test.",
            qtype: MX,
            rcode: NoError,
            answer: &["example.test. 300 IN MX 10 mail.example.test."],
            authority: &[],
            additional: &["mail.example.test. 300 IN A 192.0.2.25"],
        },
        Case {
            name: "NS with glue",
            qname: "example.test.",
            qtype: NS,
            rcode: NoError,
            answer: &["example.test. 300 IN NS ns.example.test."],
            authority: &[],
            additional: &["ns.example.test. 300 IN A 192.0.2.53"],
        },
        Case {
            name: "SOA from the zone file",
            qname: "example.test.",
            qtype: SOA,
            rcode: NoError,
            answer: &[
                "example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "PTR in a reverse zone",
            qname: "1.2.0.192.in-addr.arpa.",
            qtype: PTR,
            rcode: NoError,
            answer: &["1.2.0.192.in-addr.arpa. 300 IN PTR web.example.test."],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "TTL clamped to max_ttl",
            qname: "long.example.test.",
            qtype: A,
            rcode: NoError,
            answer: &["long.example.test. 604800 IN A 192.0.2.8"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "out of every zone: REFUSED",
            qname: "example.com.",
            qtype: A,
            rcode: Refused,
            answer: &[],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "parent of a zone: REFUSED",
            qname: "test.",
            qtype: A,
            rcode: Refused,
            answer: &[],
            authority: &[],
            additional: &[],
        },
    ];
    let server = server().await;
    run_cases(&server, &cases).await;
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn answers_are_authoritative_without_recursion() {
    let server = server().await;
    for qname in ["web.example.test.", "nope.example.test."] {
        let reply = server.udp(qname, RecordType::A).await;
        assert!(reply.metadata.authoritative, "{qname}: AA");
        assert!(!reply.metadata.recursion_available, "{qname}: RA");
        assert_eq!(reply.metadata.id, 4242);
    }
    let reply = server.udp("example.com.", RecordType::A).await;
    assert!(
        !reply.metadata.authoritative,
        "REFUSED is not authoritative"
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn zone_without_soa_gets_a_synthesized_one() {
    let server = server().await;
    let reply = server.udp("nope.other.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let soa = reply.authorities.first().expect("SOA in authority");
    let RData::SOA(data) = &soa.data else {
        panic!("not an SOA: {soa}");
    };
    assert_eq!(soa.name.to_ascii(), "other.test.");
    assert_eq!(data.mname.to_ascii(), "ns.dns.other.test.");
    assert_eq!(data.rname.to_ascii(), "hostmaster.other.test.");
    assert_eq!(
        (data.refresh, data.retry, data.expire, data.minimum),
        (7200, 1800, 86400, 5)
    );
    assert!(data.serial > 0);
    assert_eq!(soa.ttl, 5);

    let reply = server.udp("other.test.", RecordType::NS).await;
    assert_eq!(
        common::render(&reply.answers),
        vec!["other.test. 5 IN NS ns.dns.other.test."]
    );
    server.app.shutdown().await.unwrap();
}
