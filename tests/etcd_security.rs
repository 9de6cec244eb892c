//! etcd with TLS (server and client certificates generated at test time) and user/password
//! auth: srvd reads with a read-only user; a wrong password leaves it serving what it has
//! (zone files) and not ready, never crashing.

mod common;

use std::time::{Duration, Instant};

use common::etcd::{EtcdCluster, EtcdOptions, SRVD_PASSWORD, SRVD_USER};
use common::{TestServer, query, render};
use hickory_proto::rr::RecordType;

const STATIC: &str = "static 60 A 192.0.2.1\n";

async fn secure_cluster() -> EtcdCluster {
    tokio::task::spawn_blocking(|| {
        EtcdCluster::start_with(EtcdOptions {
            members: 1,
            tls: true,
            auth: true,
        })
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates_and_user_password() {
    let cluster = secure_cluster().await;
    cluster
        .put(
            "/skydns/local/skydns/web/1",
            r#"{"host":"10.6.0.1","port":443}"#,
        )
        .await;
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, format!("{SRVD_PASSWORD}\n")).unwrap();
    let (ca, cert, key) = (
        cluster.ca_path().to_path_buf(),
        cluster.client_cert_path().to_path_buf(),
        cluster.client_key_path().to_path_buf(),
    );
    assert!(cluster.endpoints()[0].starts_with("https://"));
    let server = TestServer::start_etcd(&[], cluster.endpoints(), &["skydns.local."], |f| {
        f.etcd_ca = Some(ca);
        f.etcd_cert = Some(cert);
        f.etcd_key = Some(key);
        f.etcd_user = Some(SRVD_USER.into());
        f.etcd_password_file = Some(password_file);
    })
    .await;
    let reply = server.udp("web.skydns.local.", RecordType::SRV).await;
    assert_eq!(
        render(&reply.answers),
        vec!["web.skydns.local. 5 IN SRV 10 100 443 1.web.skydns.local."]
    );

    // The watch works over TLS + auth too.
    let revision = cluster
        .put("/skydns/local/skydns/web/2", r#"{"host":"10.6.0.2"}"#)
        .await;
    server.wait_revision(revision).await;
    let reply = server.udp("web.skydns.local.", RecordType::A).await;
    assert_eq!(reply.answers.len(), 2);
    server.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_not_ready_but_serves_zone_files() {
    let cluster = secure_cluster().await;
    let (ca, cert, key) = (
        cluster.ca_path().to_path_buf(),
        cluster.client_cert_path().to_path_buf(),
        cluster.client_key_path().to_path_buf(),
    );
    let dir = tempfile::tempdir().unwrap();
    common::write_zones(dir.path(), &[("skydns.local.zone", STATIC)]);
    let mut file = srvd::config::FileConfig {
        listen: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        http: Some("127.0.0.1:0".parse().unwrap()),
        zones: Some(dir.path().to_path_buf()),
        etcd: Some(cluster.endpoints()),
        domain: Some(vec!["skydns.local.".into()]),
        etcd_ca: Some(ca),
        etcd_cert: Some(cert),
        etcd_key: Some(key),
        etcd_user: Some(SRVD_USER.into()),
        ..Default::default()
    };
    let wrong = dir.path().join("wrong-password");
    std::fs::write(&wrong, "wrong\n").unwrap();
    file.etcd_password_file = Some(wrong);
    let etcd = file.etcd_args();
    let config = srvd::config::Config::from_file_config(file, etcd).unwrap();
    let set = srvd::source::zonefile::load_dir(dir.path(), Default::default()).unwrap();
    let app = srvd::app::start(&config, Some(set)).await.unwrap();
    let addr = app.dns_addrs()[0];
    let http = app.http_addr();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let ready = tokio::task::spawn_blocking(move || common::http_get(http, "/readyz"))
            .await
            .unwrap();
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reply = common::query_udp(addr, &query("static.skydns.local.", RecordType::A, None)).await;
    assert_eq!(reply.answers.len(), 1, "zone files keep serving");
    let metrics = tokio::task::spawn_blocking(move || common::http_get(http, "/metrics"))
        .await
        .unwrap();
    let reconnects: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("srvd_etcd_reconnects_total "))
        .unwrap_or_else(|| panic!("no srvd_etcd_reconnects_total in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        reconnects > 0,
        "the failed logins are counted as reconnects"
    );
    app.shutdown().await.unwrap();
}
