//! Zone files are watched: a good edit is served within a second, atomically; a broken edit is
//! rejected (log line + `srvd_source_reload_errors_total`) and the previous version keeps
//! serving.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, render};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const V1: &str =
    "$TTL 60\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\nns A 192.0.2.53\nweb A 192.0.2.1\n";
const V2: &str = "$TTL 60\n@ SOA ns hostmaster 2 7200 1800 86400 5\n@ NS ns\nns A 192.0.2.53\nweb A 192.0.2.2\nnew A 192.0.2.3\n";
const BROKEN: &str = "$TTL 60\n@ SOA ns hostmaster 3 7200 1800 86400 5\n@ NS ns\nns A 192.0.2.53\nweb A 192.0.2.99\nbad A not-an-ip\n";

async fn web(server: &TestServer) -> Vec<String> {
    render(&server.udp("web.reload.test.", RecordType::A).await.answers)
}

/// Poll until `web` answers `want` (or 3 s pass); returns how long it took.
async fn wait_for(server: &TestServer, want: &[&str]) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if web(server).await == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("web never answered {want:?}; last {:?}", web(server).await);
}

#[tokio::test]
async fn good_edit_is_served_within_a_second() {
    let server = TestServer::start(&[("reload.test.zone", V1)]).await;
    assert_eq!(
        web(&server).await,
        vec!["web.reload.test. 60 IN A 192.0.2.1"]
    );
    let path = server.dir.path().join("reload.test.zone");
    std::fs::write(&path, V2).unwrap();
    let took = wait_for(&server, &["web.reload.test. 60 IN A 192.0.2.2"]).await;
    assert!(took < Duration::from_secs(1), "reload took {took:?}");
    let new = server.udp("new.reload.test.", RecordType::A).await;
    assert_eq!(new.answers.len(), 1, "the whole new version is served");

    // A new zone file appears: a new zone is served. Removing it: REFUSED again.
    let extra = server.dir.path().join("extra.test.zone");
    std::fs::write(&extra, V1.replace("web", "api")).unwrap();
    let start = Instant::now();
    while server
        .udp("api.extra.test.", RecordType::A)
        .await
        .answers
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "new zone not served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_file(&extra).unwrap();
    let start = Instant::now();
    while server
        .udp("api.extra.test.", RecordType::A)
        .await
        .metadata
        .response_code
        != ResponseCode::Refused
    {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "removed zone still served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn broken_edit_is_rejected_and_the_previous_version_keeps_serving() {
    let server = TestServer::start(&[("reload.test.zone", V1)]).await;
    let path = server.dir.path().join("reload.test.zone");
    std::fs::write(&path, BROKEN).unwrap();
    let http = server.app.http_addr();
    let start = Instant::now();
    loop {
        let metrics = tokio::task::spawn_blocking(move || common::http_get(http, "/metrics"))
            .await
            .unwrap();
        if metrics.contains(r#"srvd_source_reload_errors_total{source="zones"} 1"#) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "no reload error counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Never the half-good new version (192.0.2.99): the old one, whole.
    assert_eq!(
        web(&server).await,
        vec!["web.reload.test. 60 IN A 192.0.2.1"]
    );

    // Fixing the file is picked up again.
    std::fs::write(&path, V2).unwrap();
    wait_for(&server, &["web.reload.test. 60 IN A 192.0.2.2"]).await;
    server.app.shutdown().await.unwrap();
}
