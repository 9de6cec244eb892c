//! Table-driven answer cases for records written into a real etcd (CoreDNS `etcd` plugin
//! semantics), queried over DNS.

mod common;

use common::etcd::EtcdCluster;
use common::{Case, TestServer, run_cases};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const KEYS: &[(&str, &str)] = &[
    (
        "/skydns/local/skydns/web/1",
        r#"{"host":"10.0.0.1","port":8080}"#,
    ),
    (
        "/skydns/local/skydns/web/2",
        r#"{"host":"10.0.0.2","port":8080,"weight":50}"#,
    ),
    (
        "/skydns/local/skydns/web/3",
        r#"{"host":"2001:db8::3","port":8080}"#,
    ),
    (
        "/skydns/local/skydns/db/1",
        r#"{"host":"10.0.1.1","port":5432,"priority":20}"#,
    ),
    (
        "/skydns/local/skydns/db/2",
        r#"{"host":"10.0.1.2","port":5432}"#,
    ),
    (
        "/skydns/local/skydns/alias",
        r#"{"host":"web.skydns.local"}"#,
    ),
    (
        "/skydns/local/skydns/ext",
        r#"{"host":"www.example.org","port":443}"#,
    ),
    (
        "/skydns/local/skydns/dangling",
        r#"{"host":"nothing.skydns.local"}"#,
    ),
    ("/skydns/local/skydns/txt/1", r#"{"text":"hello world"}"#),
    (
        "/skydns/local/skydns/mx/1",
        r#"{"host":"mail.example.org","mail":true,"priority":5}"#,
    ),
    (
        "/skydns/local/skydns/mx/2",
        r#"{"host":"10.0.6.1","mail":true,"priority":10}"#,
    ),
    (
        "/skydns/local/skydns/strip/a/b",
        r#"{"host":"10.0.2.1","port":80,"targetstrip":1}"#,
    ),
    (
        "/skydns/local/skydns/noport",
        r#"{"host":"10.0.3.1","port":-1}"#,
    ),
    (
        "/skydns/local/skydns/ttl",
        r#"{"host":"10.0.4.1","ttl":30}"#,
    ),
    (
        "/skydns/local/skydns/bigttl",
        r#"{"host":"10.0.4.2","ttl":999999}"#,
    ),
    (
        "/skydns/local/skydns/dom/a",
        r#"{"host":"10.0.5.1","group":"g1"}"#,
    ),
    (
        "/skydns/local/skydns/dom/sub/b",
        r#"{"host":"10.0.5.2","group":"g1"}"#,
    ),
    (
        "/skydns/local/skydns/dom2/a",
        r#"{"host":"10.0.5.3","group":"g1"}"#,
    ),
    (
        "/skydns/local/skydns/dom2/sub/b",
        r#"{"host":"10.0.5.4","group":"g2"}"#,
    ),
    (
        "/skydns/local/skydns/dom3/a",
        r#"{"host":"10.0.5.5","group":"g1"}"#,
    ),
    ("/skydns/local/skydns/dom3/sub/b", r#"{"host":"10.0.5.6"}"#),
    (
        "/skydns/local/skydns/svc/1",
        r#"{"host":"db.skydns.local","port":99}"#,
    ),
    ("/skydns/local/skydns/dns/apex/1", r#"{"host":"10.9.9.9"}"#),
    ("/skydns/local/skydns/dns/ns/ns1", r#"{"host":"10.9.9.53"}"#),
    (
        "/skydns/arpa/in-addr/10/0/0/1",
        r#"{"host":"web1.skydns.local"}"#,
    ),
    ("/skydns/local/skydns/Case/X", r#"{"host":"10.0.7.1"}"#),
    // Bad values: skipped, never hiding the good keys above.
    ("/skydns/local/skydns/web/bad", "{not json"),
    ("/skydns/local/skydns/web/badip", r#"{"host":"10.0.0.300"}"#),
    (
        "/skydns/local/skydns/web/badport",
        r#"{"host":"10.0.0.9","port":70000}"#,
    ),
    ("/skydns/local/other/outside", r#"{"host":"10.0.0.8"}"#),
];

const STATIC: &str = "static 60 A 192.0.2.1\n";

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_all(v: &[&'static str]) -> &'static [&'static str] {
    Box::leak(v.to_vec().into_boxed_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coredns_etcd_record_rules() {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .unwrap();
    for (key, value) in KEYS {
        cluster.put(key, value).await;
    }
    let (_, _lease) = cluster
        .put_with_lease(
            "/skydns/local/skydns/leased",
            r#"{"host":"10.0.8.1","ttl":300}"#,
            60,
        )
        .await;
    let revision = cluster.revision().await;
    let server = TestServer::start_etcd(
        &[("skydns.local.zone", STATIC)],
        cluster.endpoints(),
        &["skydns.local.", "0.10.in-addr.arpa."],
        |_| {},
    )
    .await;
    server.wait_revision(revision).await;
    // The zone's serial: the zone file's part (its modification time: it has no SOA) plus the
    // etcd revision that last changed the zone.
    let mtime = std::fs::metadata(server.dir.path().join("skydns.local.zone"))
        .and_then(|m| m.modified())
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let serial = mtime.wrapping_add(revision as u32);
    let soa = leak(format!(
        "skydns.local. 5 IN SOA ns.dns.skydns.local. hostmaster.skydns.local. {serial} 7200 1800 86400 5"
    ));
    let soa: &'static [&'static str] = Box::leak(Box::new([soa]));

    use RecordType::*;
    use ResponseCode::*;
    let web_srv: &[&str] = &[
        "web.skydns.local. 5 IN SRV 10 40 8080 1.web.skydns.local.",
        "web.skydns.local. 5 IN SRV 10 20 8080 2.web.skydns.local.",
        "web.skydns.local. 5 IN SRV 10 40 8080 3.web.skydns.local.",
    ];
    let web_glue: &[&str] = &[
        "1.web.skydns.local. 5 IN A 10.0.0.1",
        "2.web.skydns.local. 5 IN A 10.0.0.2",
        "3.web.skydns.local. 5 IN AAAA 2001:db8::3",
    ];
    let cases = [
        Case {
            name: "A: every address in the subtree",
            qname: "web.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "web.skydns.local. 5 IN A 10.0.0.1",
                "web.skydns.local. 5 IN A 10.0.0.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            // RFC 8482 allows fewer; Java's JNDI asks {"SRV","A"} as one ANY question.
            name: "ANY on an etcd name: every type it has, SRV included",
            qname: "web.skydns.local.",
            qtype: ANY,
            rcode: NoError,
            answer: leak_all(&[
                "web.skydns.local. 5 IN A 10.0.0.1",
                "web.skydns.local. 5 IN A 10.0.0.2",
                "web.skydns.local. 5 IN AAAA 2001:db8::3",
                web_srv[0],
                web_srv[1],
                web_srv[2],
            ]),
            authority: &[],
            additional: web_glue,
        },
        Case {
            name: "AAAA from the subtree",
            qname: "web.skydns.local.",
            qtype: AAAA,
            rcode: NoError,
            answer: &["web.skydns.local. 5 IN AAAA 2001:db8::3"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "A of one instance",
            qname: "1.web.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["1.web.skydns.local. 5 IN A 10.0.0.1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "SRV: one per key, weights scaled per priority, A and AAAA glue",
            qname: "web.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: web_srv,
            authority: &[],
            additional: web_glue,
        },
        Case {
            name: "SRV for RFC 2782 name from registrator-style keys",
            qname: "_http._tcp.web.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: &[
                "_http._tcp.web.skydns.local. 5 IN SRV 10 40 8080 1.web.skydns.local.",
                "_http._tcp.web.skydns.local. 5 IN SRV 10 20 8080 2.web.skydns.local.",
                "_http._tcp.web.skydns.local. 5 IN SRV 10 40 8080 3.web.skydns.local.",
            ],
            authority: &[],
            additional: web_glue,
        },
        Case {
            name: "RFC 2782 name exists for other types (NODATA, not NXDOMAIN)",
            qname: "_http._tcp.web.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[],
            authority: soa,
            additional: &[],
        },
        Case {
            name: "SRV priorities: default 10, weights per priority",
            qname: "db.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: &[
                "db.skydns.local. 5 IN SRV 20 100 5432 1.db.skydns.local.",
                "db.skydns.local. 5 IN SRV 10 100 5432 2.db.skydns.local.",
            ],
            authority: &[],
            additional: &[
                "1.db.skydns.local. 5 IN A 10.0.1.1",
                "2.db.skydns.local. 5 IN A 10.0.1.2",
            ],
        },
        Case {
            name: "SRV target is an in-zone host name: its addresses as glue",
            qname: "svc.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: &["svc.skydns.local. 5 IN SRV 10 100 99 db.skydns.local."],
            authority: &[],
            additional: &[
                "db.skydns.local. 5 IN A 10.0.1.1",
                "db.skydns.local. 5 IN A 10.0.1.2",
            ],
        },
        Case {
            name: "SRV target out of zone: no glue",
            qname: "ext.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: &["ext.skydns.local. 5 IN SRV 10 100 443 www.example.org."],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "targetstrip drops leftmost labels of the target",
            qname: "strip.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: &["strip.skydns.local. 5 IN SRV 10 100 80 a.strip.skydns.local."],
            authority: &[],
            additional: &["a.strip.skydns.local. 5 IN A 10.0.2.1"],
        },
        Case {
            name: "negative port: not an SRV target (NODATA)",
            qname: "noport.skydns.local.",
            qtype: SRV,
            rcode: NoError,
            answer: &[],
            authority: soa,
            additional: &[],
        },
        Case {
            name: "negative port still answers A",
            qname: "noport.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["noport.skydns.local. 5 IN A 10.0.3.1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "host name: CNAME, followed inside the zone",
            qname: "alias.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "alias.skydns.local. 5 IN CNAME web.skydns.local.",
                "web.skydns.local. 5 IN A 10.0.0.1",
                "web.skydns.local. 5 IN A 10.0.0.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "host name outside our zones: CNAME for the resolver",
            qname: "ext.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["ext.skydns.local. 5 IN CNAME www.example.org."],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "unresolvable in-zone CNAME chain: NODATA",
            qname: "dangling.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[],
            authority: soa,
            additional: &[],
        },
        Case {
            name: "TXT from text",
            qname: "txt.skydns.local.",
            qtype: TXT,
            rcode: NoError,
            answer: &["txt.skydns.local. 5 IN TXT hello world"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "MX from mail keys, glue for key-name exchanges",
            qname: "mx.skydns.local.",
            qtype: MX,
            rcode: NoError,
            answer: &[
                "mx.skydns.local. 5 IN MX 5 mail.example.org.",
                "mx.skydns.local. 5 IN MX 10 2.mx.skydns.local.",
            ],
            authority: &[],
            additional: &["2.mx.skydns.local. 5 IN A 10.0.6.1"],
        },
        Case {
            name: "value ttl",
            qname: "ttl.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["ttl.skydns.local. 30 IN A 10.0.4.1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "ttl clamped to max_ttl",
            qname: "bigttl.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["bigttl.skydns.local. 604800 IN A 10.0.4.2"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "lease caps the ttl (never the lease ID)",
            qname: "leased.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["leased.skydns.local. 60 IN A 10.0.8.1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "group: same group everywhere, all kept",
            qname: "dom.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "dom.skydns.local. 5 IN A 10.0.5.1",
                "dom.skydns.local. 5 IN A 10.0.5.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "group: shortest key's group wins",
            qname: "dom2.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["dom2.skydns.local. 5 IN A 10.0.5.3"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "group: ungrouped keys always included",
            qname: "dom3.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "dom3.skydns.local. 5 IN A 10.0.5.5",
                "dom3.skydns.local. 5 IN A 10.0.5.6",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "wildcard label matches any one label",
            qname: "*.web.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "*.web.skydns.local. 5 IN A 10.0.0.1",
                "*.web.skydns.local. 5 IN A 10.0.0.2",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "any label matches too",
            qname: "1.any.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &[
                "1.any.skydns.local. 5 IN A 10.0.0.1",
                "1.any.skydns.local. 5 IN A 10.0.1.1",
            ],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "apex A from dns/apex",
            qname: "skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["skydns.local. 5 IN A 10.9.9.9"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "apex NS from dns/ns with glue",
            qname: "skydns.local.",
            qtype: NS,
            rcode: NoError,
            answer: &["skydns.local. 5 IN NS ns1.ns.dns.skydns.local."],
            authority: &[],
            additional: &["ns1.ns.dns.skydns.local. 5 IN A 10.9.9.53"],
        },
        Case {
            name: "apex SOA synthesized, serial = zone file time + etcd revision",
            qname: "skydns.local.",
            qtype: SOA,
            rcode: NoError,
            answer: soa,
            authority: &[],
            additional: &[],
        },
        Case {
            name: "PTR from a reverse key",
            qname: "1.0.0.10.in-addr.arpa.",
            qtype: PTR,
            rcode: NoError,
            answer: &["1.0.0.10.in-addr.arpa. 5 IN PTR web1.skydns.local."],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "mixed-case key is served lower case, query case kept",
            qname: "X.CASE.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["X.CASE.skydns.local. 5 IN A 10.0.7.1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "static zone file merged with etcd",
            qname: "static.skydns.local.",
            qtype: A,
            rcode: NoError,
            answer: &["static.skydns.local. 60 IN A 192.0.2.1"],
            authority: &[],
            additional: &[],
        },
        Case {
            name: "NXDOMAIN with the synthesized SOA",
            qname: "nope.skydns.local.",
            qtype: A,
            rcode: NXDomain,
            answer: &[],
            authority: soa,
            additional: &[],
        },
        Case {
            name: "NODATA: name exists, no such type",
            qname: "web.skydns.local.",
            qtype: MX,
            rcode: NoError,
            answer: &[],
            authority: soa,
            additional: &[],
        },
        Case {
            name: "bad values only: the key does not exist",
            qname: "bad.web.skydns.local.",
            qtype: A,
            rcode: NXDomain,
            answer: &[],
            authority: soa,
            additional: &[],
        },
        Case {
            name: "keys outside every domain: REFUSED",
            qname: "outside.other.local.",
            qtype: A,
            rcode: Refused,
            answer: &[],
            authority: &[],
            additional: &[],
        },
    ];
    run_cases(&server, &cases).await;

    let http = server.app.http_addr();
    let metrics = tokio::task::spawn_blocking(move || common::http_get(http, "/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"srvd_source_bad_values_total{source="etcd"} 4"#),
        "{metrics}"
    );
    server.app.shutdown().await.unwrap();
}
