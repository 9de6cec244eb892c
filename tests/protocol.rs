//! Protocol conformance over real sockets (server on port 0): each test is named after the
//! RFC section it checks.

mod common;

use std::time::Duration;

use common::{TestServer, exchange_udp_raw, query, query_tcp, query_udp, tcp_recv, tcp_send};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use srvd::config::FileConfig;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A zone with one name that has 60 A records (~1 KiB answer).
fn big_zone() -> String {
    let mut z = String::from(
        "$TTL 60\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\nns A 192.0.2.53\nsmall A 192.0.2.1\n\
         four A 192.0.2.11\nfour A 192.0.2.12\nfour A 192.0.2.13\nfour A 192.0.2.14\n\
         multi A 192.0.2.21\nmulti AAAA 2001:db8::21\nmulti TXT \"hello\"\nmulti MX 10 small\n",
    );
    for i in 1..=60 {
        z.push_str(&format!("big A 198.51.100.{i}\n"));
    }
    z
}

async fn server() -> TestServer {
    TestServer::start(&[("wire.test.zone", &big_zone())]).await
}

#[tokio::test]
async fn rfc1035_4_2_1_udp_without_edns_truncates_at_512_and_tcp_has_everything() {
    let server = server().await;
    let q = query("big.wire.test.", RecordType::A, None);
    let raw = exchange_udp_raw(server.addr, &q.to_vec().unwrap())
        .await
        .unwrap();
    assert!(raw.len() <= 512, "UDP answer is {} bytes", raw.len());
    let udp = Message::from_vec(&raw).unwrap();
    assert!(udp.metadata.truncation, "TC must be set");
    assert!(udp.edns.is_none(), "no OPT when the query had none");

    let tcp = query_tcp(server.addr, &q).await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 60);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc6891_6_2_5_udp_payload_is_min_of_client_and_ours() {
    let server = server().await;
    // Client allows 4096; we advertise and use at most 1232: 60 A records (~1 KiB) fit.
    let reply = query_udp(
        server.addr,
        &query("big.wire.test.", RecordType::A, Some(4096)),
    )
    .await;
    let edns = reply.edns.as_ref().expect("OPT echoed");
    assert_eq!(edns.max_payload(), 1232);
    assert_eq!(edns.version(), 0);
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 60);

    // Client allows 600: truncated, and never more than 600 bytes.
    let q = query("big.wire.test.", RecordType::A, Some(600));
    let raw = exchange_udp_raw(server.addr, &q.to_vec().unwrap())
        .await
        .unwrap();
    assert!(raw.len() <= 600, "{} bytes", raw.len());
    assert!(Message::from_vec(&raw).unwrap().metadata.truncation);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc6891_6_1_3_unsupported_version_gets_badvers() {
    let server = server().await;
    let mut q = query("small.wire.test.", RecordType::A, Some(1232));
    let mut edns = Edns::new();
    edns.set_version(1);
    q.set_edns(edns);
    let reply = query_udp(server.addr, &q).await;
    assert_eq!(u16::from(reply.metadata.response_code), 16, "BADVERS");
    assert!(reply.answers.is_empty());
    assert_eq!(reply.edns.as_ref().map(Edns::version), Some(0));
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc6891_6_1_2_unknown_options_and_flags_are_ignored() {
    let server = server().await;
    let mut q = query("small.wire.test.", RecordType::A, Some(1232));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    edns.options_mut()
        .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
    q.set_edns(edns);
    let reply = query_udp(server.addr, &q).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1);
    let opt = reply.edns.expect("OPT echoed");
    assert!(
        opt.option(hickory_proto::rr::rdata::opt::EdnsCode::Unknown(65001))
            .is_none()
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc1035_4_1_2_more_than_one_question_is_formerr() {
    let server = server().await;
    let mut q = query("small.wire.test.", RecordType::A, None);
    q.add_query(Query::query(
        Name::from_ascii("big.wire.test.").unwrap(),
        RecordType::A,
    ));
    let reply = query_udp(server.addr, &q).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    let empty = Message::new(7, MessageType::Query, OpCode::Query);
    let reply = query_udp(server.addr, &empty).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.metadata.id, 7);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc1035_4_1_1_malformed_queries_get_formerr_or_silence_and_never_crash() {
    let server = server().await;
    // Header claims one question, body is garbage: FORMERR with the same id.
    let garbage = [
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];
    let reply = exchange_udp_raw(server.addr, &garbage)
        .await
        .expect("a reply");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.metadata.id, 0x1234);
    // Shorter than a header: dropped.
    assert!(exchange_udp_raw(server.addr, &[1, 2, 3]).await.is_none());
    // A response (QR=1) is never answered (no reflection).
    let mut response = query("small.wire.test.", RecordType::A, None);
    response.metadata.message_type = MessageType::Response;
    assert!(
        exchange_udp_raw(server.addr, &response.to_vec().unwrap())
            .await
            .is_none()
    );

    // A bounded storm of pseudo-random packets; the server must still answer afterwards.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 12 + (seed % 100) as usize;
        let packet: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
        sock.send_to(&packet, server.addr).await.unwrap();
    }
    // The storm can overflow the socket buffer (the kernel drops datagrams), so retry the way
    // a stub resolver does.
    let q = query("small.wire.test.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let mut answered = None;
    for _ in 0..5 {
        if let Some(reply) = exchange_udp_raw(server.addr, &q).await {
            answered = Some(Message::from_vec(&reply).unwrap());
            break;
        }
    }
    assert_eq!(
        answered
            .expect("server answers after the storm")
            .answers
            .len(),
        1
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc1035_4_1_1_unknown_opcode_is_notimp() {
    let server = server().await;
    for op in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut q = Message::new(99, MessageType::Query, op);
        q.add_query(Query::query(
            Name::from_ascii("small.wire.test.").unwrap(),
            RecordType::A,
        ));
        let reply = query_udp(server.addr, &q).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NotImp, "{op:?}");
    }
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc1035_3_2_4_other_classes_and_zone_transfers_are_refused() {
    let server = server().await;
    let chaos = |name: &str| {
        let mut q = Message::new(5, MessageType::Query, OpCode::Query);
        let mut chaos = Query::query(Name::from_ascii(name).unwrap(), RecordType::TXT);
        chaos.set_query_class(DNSClass::CH);
        q.add_query(chaos);
        q
    };
    // RFC 4892: the server's identity in CHAOS, as Knot and NSD answer it.
    let version = query_udp(server.addr, &chaos("version.bind.")).await;
    assert_eq!(version.metadata.response_code, ResponseCode::NoError);
    assert_eq!((version.answers.len(), version.answers[0].ttl), (1, 0));
    assert!(!version.metadata.authoritative);
    assert_eq!(
        query_udp(server.addr, &chaos("other.bind."))
            .await
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    let axfr = query("wire.test.", RecordType::AXFR, None);
    assert_eq!(
        query_tcp(server.addr, &axfr).await.metadata.response_code,
        ResponseCode::Refused
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc7766_6_2_1_1_pipelined_tcp_queries_all_get_answers() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let names = ["small.wire.test.", "big.wire.test.", "nope.wire.test."];
    for (i, name) in names.iter().enumerate() {
        let mut q = query(name, RecordType::A, None);
        q.metadata.id = 100 + i as u16;
        tcp_send(&mut stream, &q.to_vec().unwrap()).await;
    }
    let mut ids = Vec::new();
    for _ in names {
        let reply = tcp_recv(&mut stream).await.expect("pipelined reply");
        ids.push(reply.metadata.id);
    }
    ids.sort();
    assert_eq!(ids, vec![100, 101, 102]);
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc7766_6_2_3_idle_tcp_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    common::write_zones(dir.path(), &[("wire.test.zone", &big_zone())]);
    let mut config = common::test_config(dir.path().to_path_buf());
    config.tcp_idle_timeout = Duration::from_secs(1);
    let set = srvd::source::zonefile::load_dir(dir.path(), Default::default()).unwrap();
    let app = srvd::app::start(&config, Some(set)).await.unwrap();
    let mut stream = TcpStream::connect(app.dns_addrs()[0]).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection must be closed: {closed:?}"
    );
    // A half-sent message (length prefix only) is dropped: no reply, the connection closed
    // after the idle timeout, and meanwhile other connections are answered.
    let mut stalled = TcpStream::connect(app.dns_addrs()[0]).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0, 40])
        .await
        .unwrap();
    let reply = query_tcp(
        app.dns_addrs()[0],
        &query("small.wire.test.", RecordType::A, None),
    )
    .await;
    assert_eq!(reply.answers.len(), 1);
    let closed = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a half-sent message gets no reply and its connection is closed: {closed:?}"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn udp_answer_cache_keeps_each_querys_id_rd_and_case() {
    let server = server().await;
    let mut first = query("small.wire.test.", RecordType::A, Some(1232));
    first.metadata.id = 1111;
    let a = query_udp(server.addr, &first).await;
    let mut second = query("small.wire.test.", RecordType::A, Some(1232));
    second.metadata.id = 2222;
    second.metadata.recursion_desired = false;
    let b = query_udp(server.addr, &second).await;
    assert_eq!((a.metadata.id, b.metadata.id), (1111, 2222));
    assert!(a.metadata.recursion_desired && !b.metadata.recursion_desired);
    assert_eq!(a.answers, b.answers);
    // Another spelling of the name is its own entry: the answer keeps the query's case.
    let c = query_udp(
        server.addr,
        &query("SMALL.Wire.test.", RecordType::A, Some(1232)),
    )
    .await;
    assert_eq!(c.answers[0].name.to_ascii(), "SMALL.Wire.test.");
    assert_eq!(c.queries[0].name().to_ascii(), "SMALL.Wire.test.");
    // Without EDNS: no OPT, even though an EDNS answer for the same question is cached.
    let d = query_udp(server.addr, &query("small.wire.test.", RecordType::A, None)).await;
    assert!(d.edns.is_none() && a.edns.is_some());
    server.app.shutdown().await.unwrap();
}

/// A query with EDNS (payload 1232) and the DO bit set.
fn dnssec_ok_query(name: &str, qtype: RecordType) -> Message {
    let mut q = query(name, qtype, Some(1232));
    if let Some(edns) = q.edns.as_mut() {
        edns.set_dnssec_ok(true);
    }
    q
}

#[tokio::test]
async fn rfc3225_the_do_bit_is_echoed_on_every_path() {
    let server = server().await;
    for (case, name) in [
        ("positive", "small.wire.test."),
        ("NXDOMAIN", "nope.wire.test."),
    ] {
        let q = dnssec_ok_query(name, RecordType::A);
        let miss = query_udp(server.addr, &q).await;
        let hit = query_udp(server.addr, &q).await;
        let tcp = query_tcp(server.addr, &q).await;
        for (path, m) in [
            ("UDP, looked up", miss),
            ("UDP, answer cache", hit),
            ("TCP", tcp),
        ] {
            let edns = m.edns.expect("OPT in the reply");
            assert!(edns.flags().dnssec_ok, "{case}, {path}: DO=1 echoed");
        }
        let plain = query_udp(server.addr, &query(name, RecordType::A, Some(1232))).await;
        assert!(
            !plain.edns.unwrap().flags().dnssec_ok,
            "{case}: DO=0 stays 0"
        );
    }
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rfc1035_3_2_5_class_any_questions_are_answered_with_class_in() {
    let server = server().await;
    let mut q = Message::new(6, MessageType::Query, OpCode::Query);
    let mut any = Query::query(Name::from_ascii("small.wire.test.").unwrap(), RecordType::A);
    any.set_query_class(DNSClass::ANY);
    q.add_query(any);
    for m in [
        query_udp(server.addr, &q).await,
        query_tcp(server.addr, &q).await,
    ] {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            m.queries[0].query_class(),
            DNSClass::ANY,
            "the question as asked"
        );
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].dns_class, DNSClass::IN);
    }
    server.app.shutdown().await.unwrap();
}

/// RFC 8482 §4.1: a zone-file name answers QTYPE ANY with one RRset (the lowest type, as
/// Knot does); names with etcd data answer every type (tests/etcd_answers.rs).
#[tokio::test]
async fn rfc8482_qtype_any_is_one_rrset_for_zone_file_names_and_never_nothing() {
    let server = server().await;
    let q = query("multi.wire.test.", RecordType::ANY, Some(1232));
    for m in [
        query_udp(server.addr, &q).await,
        query_tcp(server.addr, &q).await,
    ] {
        let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, vec![RecordType::A]);
    }
    // Without EDNS the 60-address RRset cannot fit: TC rather than nothing.
    let big = query_udp(server.addr, &query("big.wire.test.", RecordType::ANY, None)).await;
    assert!(big.metadata.truncation || !big.answers.is_empty());
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_aaaa_and_srv_answers_rotate_per_response_even_from_the_cache() {
    let server = server().await;
    let mut firsts = std::collections::HashSet::new();
    let mut sets = std::collections::HashSet::new();
    for _ in 0..8 {
        let m = query_udp(
            server.addr,
            &query("four.wire.test.", RecordType::A, Some(1232)),
        )
        .await;
        firsts.insert(m.answers[0].data.clone());
        let mut all: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        all.sort();
        sets.insert(all);
    }
    assert!(
        firsts.len() > 1,
        "the first address changes between responses"
    );
    assert_eq!(sets.len(), 1, "always the same four addresses");
    server.app.shutdown().await.unwrap();

    let fixed = TestServer::start_with(&[("wire.test.zone", &big_zone())], |f| {
        f.rotate = Some(false)
    })
    .await;
    let orders: std::collections::HashSet<Vec<String>> = futures_free_orders(&fixed).await;
    assert_eq!(orders.len(), 1, "--rotate off: one order");
    fixed.app.shutdown().await.unwrap();
}

async fn futures_free_orders(server: &TestServer) -> std::collections::HashSet<Vec<String>> {
    let mut orders = std::collections::HashSet::new();
    for _ in 0..6 {
        let m = query_udp(
            server.addr,
            &query("four.wire.test.", RecordType::A, Some(1232)),
        )
        .await;
        orders.insert(m.answers.iter().map(|r| r.data.to_string()).collect());
    }
    orders
}

/// RFC 6891 §6.1.1 / §7: a malformed OPT record is FORMERR, the same over UDP and TCP, cached
/// or not.
#[tokio::test]
async fn rfc6891_a_broken_edns_option_is_formerr_on_udp_and_tcp() {
    let server = server().await;
    // Warm the cache with the well-formed question first.
    query_udp(
        server.addr,
        &query("small.wire.test.", RecordType::A, Some(1232)),
    )
    .await;
    let mut bytes = query("small.wire.test.", RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    let n = bytes.len();
    bytes[n - 2..].copy_from_slice(&4u16.to_be_bytes());
    bytes.extend_from_slice(&[0, 10, 0, 9]); // option length 9 in 0 bytes of data
    let udp = Message::from_vec(&exchange_udp_raw(server.addr, &bytes).await.unwrap()).unwrap();
    assert_eq!(udp.metadata.response_code, ResponseCode::FormErr);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    tcp_send(&mut stream, &bytes).await;
    let tcp = tcp_recv(&mut stream).await.expect("a TCP reply");
    assert_eq!(tcp.metadata.response_code, ResponseCode::FormErr);
    server.app.shutdown().await.unwrap();
}

/// RFC 6891 §6.1.1 and §7: a truncated UDP answer is a well-formed message (no half record
/// after the last one) that keeps its OPT record.
#[tokio::test]
async fn rfc6891_truncated_udp_answers_are_well_formed_and_keep_opt() {
    let server = server().await;
    for payload in [512u16, 600, 1000] {
        let q = query("big.wire.test.", RecordType::A, Some(payload));
        let raw = exchange_udp_raw(server.addr, &q.to_vec().unwrap())
            .await
            .unwrap();
        assert!(raw.len() <= usize::from(payload));
        let m = Message::from_vec(&raw).unwrap();
        assert!(m.metadata.truncation, "{payload}");
        assert!(m.edns.is_some(), "{payload}: OPT kept");
        // Re-encoding what was decoded gives the same length: nothing trails the message.
        assert_eq!(
            m.to_vec().unwrap().len(),
            raw.len(),
            "{payload}: trailing bytes"
        );
    }
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn random_letter_case_shares_one_cached_answer() {
    let server = server().await;
    let spellings = [
        "small.wire.test.",
        "SMALL.wire.test.",
        "sMaLl.WiRe.TeSt.",
        "Small.Wire.Test.",
    ];
    for name in spellings {
        let m = query_udp(server.addr, &query(name, RecordType::A, Some(1232))).await;
        assert_eq!(m.answers[0].name.to_ascii(), name, "the query's spelling");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"srvd_dns_queries_total{qtype="A",rcode="NOERROR",source="cache"} 3"#),
        "{metrics}"
    );
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn tcp_connections_beyond_the_cap_close_the_idlest_and_are_served() {
    let server =
        TestServer::start_with(&[("wire.test.zone", &big_zone())], |f: &mut FileConfig| {
            f.tcp_max_connections = Some(3)
        })
        .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The fourth connection is served; the idlest (the first) is closed to make room.
    let reply = query_tcp(server.addr, &query("small.wire.test.", RecordType::A, None)).await;
    assert_eq!(reply.answers.len(), 1);
    let mut buf = [0u8; 8];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("srvd_tcp_connections_evicted_total 1"),
        "{metrics}"
    );
    server.app.shutdown().await.unwrap();
}
