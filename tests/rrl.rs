//! Response rate limiting (RRL, as Knot DNS and NSD ship it): off by default; when on, one
//! source prefix gets `rate` UDP replies per second per answer, every `slip`-th reply over
//! that goes out truncated (TC=1, no records) and the rest are dropped; TCP is never limited.

mod common;

use std::time::Duration;

use common::{TestServer, query, query_tcp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

const ZONE: &str = "$TTL 60\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\n\
ns A 192.0.2.53\nweb A 192.0.2.10\n";

/// Send `n` identical queries from one socket at once; the replies that come back within
/// half a second.
async fn burst(server: &TestServer, name: &str, n: usize) -> Vec<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bytes = query(name, RecordType::A, Some(1232)).to_vec().unwrap();
    for _ in 0..n {
        socket.send_to(&bytes, server.addr).await.unwrap();
    }
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(len)) =
        tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await
    {
        replies.push(Message::from_vec(&buf[..len]).unwrap());
    }
    replies
}

#[tokio::test]
async fn rrl_is_off_by_default() {
    let server = TestServer::start(&[("example.test.zone", ZONE)]).await;
    let replies = burst(&server, "web.example.test.", 200).await;
    assert_eq!(replies.len(), 200);
    assert!(replies.iter().all(|m| !m.answers.is_empty()));
}

#[tokio::test]
async fn rrl_limits_one_prefix_per_answer_slips_every_second_and_spares_tcp() {
    let server = TestServer::start_with(&[("example.test.zone", ZONE)], |f| {
        f.rrl_rate = Some(10);
        f.rrl_slip = Some(2);
    })
    .await;
    let replies = burst(&server, "web.example.test.", 200).await;
    let full = replies.iter().filter(|m| !m.answers.is_empty()).count();
    let slipped: Vec<&Message> = replies.iter().filter(|m| m.answers.is_empty()).collect();
    // A burst sent within well under a second: the bucket's 10, plus a refill token or two.
    assert!((10..=15).contains(&full), "{full} full replies");
    assert!(
        slipped
            .iter()
            .all(|m| m.metadata.truncation && m.edns.is_some()),
        "slipped replies are truncated, with OPT"
    );
    let limited = 200 - full;
    assert!(
        slipped.len().abs_diff(limited / 2) <= 1,
        "every second limited reply slips: {} of {limited}",
        slipped.len()
    );
    // Another answer has its own bucket; TCP is never limited.
    let other = burst(&server, "nope.example.test.", 1).await;
    assert_eq!(other[0].metadata.response_code, ResponseCode::NXDomain);
    let tcp = query_tcp(
        server.addr,
        &query("web.example.test.", RecordType::A, None),
    )
    .await;
    assert_eq!(tcp.answers.len(), 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("srvd_rrl_limited_total{action=\"dropped\"}")
            && metrics.contains("srvd_rrl_limited_total{action=\"slipped\"}"),
        "{metrics}"
    );
}
