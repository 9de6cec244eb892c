//! Tests of the etcd test harness itself (tests/common/etcd.rs): real etcd processes on
//! loopback, 1 and 3 members, kill/restart, compaction, TLS with client certificates and
//! authentication.

#[path = "common/etcd.rs"]
mod etcd;
#[path = "common/ports.rs"]
mod ports;

use std::time::{Duration, Instant};

use etcd::{EtcdCluster, EtcdOptions, SRVD_PASSWORD, SRVD_USER};
use etcd_client::{
    Certificate, Client, ConnectOptions, EventType, GetOptions, Identity, TlsOptions, WatchOptions,
};
use tonic::Code;

fn grpc_code(e: &etcd_client::Error) -> Option<Code> {
    match e {
        etcd_client::Error::GRpcStatus(s) => Some(s.code()),
        _ => None,
    }
}

async fn get_value(client: &mut Client, key: &str) -> Option<String> {
    let r = client.get(key, None).await.unwrap();
    r.kvs()
        .first()
        .map(|kv| kv.value_str().unwrap().to_string())
}

#[tokio::test]
async fn single_member_put_get_delete_and_lease() {
    let cluster = EtcdCluster::start(1);
    assert_eq!(cluster.endpoints(), vec![cluster.endpoint_of(0)]);
    assert!(cluster.endpoint_of(0).starts_with("http://127.0.0.1:"));

    let r1 = cluster.put("/skydns/test/a", "1").await;
    let r2 = cluster.put("/skydns/test/b", "2").await;
    assert_eq!(r2, r1 + 1);
    assert_eq!(cluster.revision().await, r2);
    assert_eq!(
        cluster.get_prefix("/skydns/test/").await,
        vec![
            ("/skydns/test/a".to_string(), "1".to_string()),
            ("/skydns/test/b".to_string(), "2".to_string()),
        ]
    );
    let mut client = cluster.client().await;
    assert_eq!(
        get_value(&mut client, "/skydns/test/a").await.as_deref(),
        Some("1")
    );

    let r3 = cluster.delete("/skydns/test/a").await;
    assert_eq!(r3, r2 + 1);
    assert_eq!(get_value(&mut client, "/skydns/test/a").await, None);

    let (r4, lease) = cluster.put_with_lease("/skydns/test/l", "x", 2).await;
    assert_eq!(r4, r3 + 1);
    assert_ne!(lease, 0);
    let kv = client.get("/skydns/test/l", None).await.unwrap();
    assert_eq!(kv.kvs()[0].lease(), lease);
    // The key goes away with its lease.
    let deadline = Instant::now() + Duration::from_secs(8);
    while get_value(&mut client, "/skydns/test/l").await.is_some() {
        assert!(Instant::now() < deadline, "leased key never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(cluster.revision().await > r4);
}

#[tokio::test]
async fn three_members_survive_leader_kill_and_rejoin() {
    let mut cluster = EtcdCluster::start(3);
    assert_eq!(cluster.endpoints().len(), 3);
    cluster.put("/skydns/k", "v1").await;

    let leader = cluster.leader().await;
    let pid = cluster.pid(leader).unwrap();
    cluster.kill(leader);
    assert!(!cluster.is_running(leader));
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(cluster.live_endpoints().len(), 2);

    // Writes still go through (after the election) and every survivor serves them.
    let rev = cluster.put("/skydns/k", "v2").await;
    assert_ne!(cluster.leader().await, leader);
    for i in (0..3).filter(|&i| i != leader) {
        let mut c = Client::connect([cluster.endpoint_of(i)], None)
            .await
            .unwrap();
        assert_eq!(get_value(&mut c, "/skydns/k").await.as_deref(), Some("v2"));
    }

    // The killed member comes back on the same port and data dir, and catches up.
    cluster.restart(leader);
    assert!(cluster.is_running(leader));
    let mut c = Client::connect([cluster.endpoint_of(leader)], None)
        .await
        .unwrap();
    let r = c
        .get("/skydns/k", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    assert_eq!(r.kvs()[0].value_str().unwrap(), "v2");
    assert!(r.header().unwrap().revision() >= rev);

    // A full stop and start keeps the data.
    cluster.kill_all();
    assert!(cluster.live_endpoints().is_empty());
    cluster.restart_all();
    assert_eq!(
        cluster.get_prefix("/skydns/").await,
        vec![("/skydns/k".to_string(), "v2".to_string())]
    );
    assert_eq!(cluster.revision().await, rev);
}

#[tokio::test]
async fn compaction_discards_old_revisions() {
    let cluster = EtcdCluster::start(1);
    let r1 = cluster.put("/skydns/k", "v1").await;
    let r2 = cluster.put("/skydns/k", "v2").await;
    cluster.put("/skydns/k", "v3").await;
    cluster.compact(r2).await;

    let mut c = cluster.client().await;
    let err = c
        .get("/skydns/k", Some(GetOptions::new().with_revision(r1)))
        .await
        .unwrap_err();
    assert_eq!(grpc_code(&err), Some(Code::OutOfRange), "{err}");
    assert!(err.to_string().contains("compacted"), "{err}");
    let at_r2 = c
        .get("/skydns/k", Some(GetOptions::new().with_revision(r2)))
        .await
        .unwrap();
    assert_eq!(at_r2.kvs()[0].value_str().unwrap(), "v2");

    // A watch from before the compaction is cancelled with the compact revision.
    let mut watch = c
        .watch(
            "/skydns/",
            Some(WatchOptions::new().with_prefix().with_start_revision(r1)),
        )
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let resp = watch.message().await.unwrap().expect("watch response");
            if resp.canceled() || !resp.events().is_empty() {
                return resp;
            }
        }
    })
    .await
    .expect("watch answers");
    assert!(resp.canceled());
    assert_eq!(resp.compact_revision(), r2);
}

#[tokio::test]
async fn tls_with_client_certs_and_auth() {
    let cluster = EtcdCluster::start_with(EtcdOptions {
        members: 1,
        tls: true,
        auth: true,
    });
    let endpoint = cluster.endpoint_of(0);
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    for path in [
        cluster.ca_path(),
        cluster.client_cert_path(),
        cluster.client_key_path(),
    ] {
        assert!(path.is_file(), "{}", path.display());
    }
    // The root helpers work.
    cluster.put("/skydns/test/a", "1").await;
    cluster.put("/other/x", "secret").await;

    let ca = Certificate::from_pem(std::fs::read(cluster.ca_path()).unwrap());
    let identity = Identity::from_pem(
        std::fs::read(cluster.client_cert_path()).unwrap(),
        std::fs::read(cluster.client_key_path()).unwrap(),
    );
    let full_tls = TlsOptions::new()
        .ca_certificate(ca.clone())
        .identity(identity);

    // srvd's user with the CA and client certificate reads and watches /skydns ...
    let srvd_options = ConnectOptions::new()
        .with_user(SRVD_USER, SRVD_PASSWORD)
        .with_tls(full_tls.clone());
    let mut srvd = Client::connect(cluster.endpoints(), Some(srvd_options))
        .await
        .unwrap();
    let r = srvd
        .get("/skydns/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(r.kvs().len(), 1);
    assert_eq!(r.kvs()[0].key_str().unwrap(), "/skydns/test/a");
    let mut watch = srvd
        .watch("/skydns/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    cluster.put("/skydns/test/b", "2").await;
    let event_key = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let resp = watch.message().await.unwrap().expect("watch response");
            if let Some(ev) = resp.events().first() {
                assert_eq!(ev.event_type(), EventType::Put);
                return ev.kv().unwrap().key_str().unwrap().to_string();
            }
        }
    })
    .await
    .expect("watch event");
    assert_eq!(event_key, "/skydns/test/b");

    // ... but may not write there, nor read elsewhere.
    let err = srvd.put("/skydns/test/c", "3", None).await.unwrap_err();
    assert_eq!(grpc_code(&err), Some(Code::PermissionDenied), "{err}");
    let err = srvd.get("/other/x", None).await.unwrap_err();
    assert_eq!(grpc_code(&err), Some(Code::PermissionDenied), "{err}");

    // The same helper-made client.
    let mut srvd2 = cluster.srvd_client().await;
    assert_eq!(
        get_value(&mut srvd2, "/skydns/test/b").await.as_deref(),
        Some("2")
    );

    // A wrong password is refused.
    let wrong = ConnectOptions::new()
        .with_user(SRVD_USER, "wrong")
        .with_tls(full_tls.clone());
    assert!(
        Client::connect(cluster.endpoints(), Some(wrong))
            .await
            .is_err()
    );

    // The client certificate alone (no user) grants nothing.
    let cert_only = ConnectOptions::new().with_tls(full_tls);
    let mut anon = Client::connect(cluster.endpoints(), Some(cert_only))
        .await
        .unwrap();
    assert!(anon.get("/skydns/test/a", None).await.is_err());

    // Without a client certificate the TLS handshake is refused.
    let no_cert = ConnectOptions::new()
        .with_user(SRVD_USER, SRVD_PASSWORD)
        .with_tls(TlsOptions::new().ca_certificate(ca))
        .with_connect_timeout(Duration::from_secs(2));
    let attempt = async {
        let mut c = Client::connect(cluster.endpoints(), Some(no_cert)).await?;
        c.get("/skydns/test/a", None).await
    };
    let result = tokio::time::timeout(Duration::from_secs(5), attempt).await;
    assert!(
        !matches!(result, Ok(Ok(_))),
        "a client without a certificate was served"
    );

    // Plain http to the TLS port fails too.
    let plain = cluster.endpoint_of(0).replace("https://", "http://");
    let attempt = async {
        let mut c = Client::connect([plain], None).await?;
        c.get("/skydns/test/a", None).await
    };
    let result = tokio::time::timeout(Duration::from_secs(5), attempt).await;
    assert!(!matches!(result, Ok(Ok(_))), "plain http was served");
}

#[tokio::test]
async fn auth_without_tls() {
    let cluster = EtcdCluster::start_with(EtcdOptions {
        members: 1,
        tls: false,
        auth: true,
    });
    cluster.put("/skydns/test/a", "1").await;
    let mut srvd = cluster.srvd_client().await;
    assert_eq!(
        get_value(&mut srvd, "/skydns/test/a").await.as_deref(),
        Some("1")
    );
    let err = srvd.delete("/skydns/test/a", None).await.unwrap_err();
    assert_eq!(grpc_code(&err), Some(Code::PermissionDenied), "{err}");

    // Anonymous clients get nothing.
    let mut anon = Client::connect(cluster.endpoints(), None).await.unwrap();
    assert!(anon.get("/skydns/test/a", None).await.is_err());
}

/// A sync test: the blocking API works outside a runtime, and dropping the cluster kills
/// every member.
#[test]
fn drop_kills_every_member() {
    let mut cluster = EtcdCluster::start(3);
    cluster.kill(1);
    let pids: Vec<u32> = [0, 2].iter().map(|&i| cluster.pid(i).unwrap()).collect();
    let dir = cluster.data_dir(0).parent().unwrap().to_path_buf();
    drop(cluster);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "etcd {pid} outlived its cluster"
        );
    }
    assert!(!dir.exists(), "temp dir left behind");
}
