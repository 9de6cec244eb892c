//! The real `srvd` binary: help, `check`, configuration and zone errors (exit 2, file and
//! line, before binding), and graceful shutdown on SIGTERM/SIGINT.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use common::{ChildGuard, SRVD, spawn_srvd};
const GOOD: &str =
    "$TTL 60\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\nns A 192.0.2.53\nweb A 192.0.2.1\n";

fn srvd(args: &[&str], cwd: &Path) -> Output {
    Command::new(SRVD)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_explains_every_flag() {
    let out = srvd(&["--help"], Path::new("."));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--zones",
        "--http",
        "--ttl",
        "--min-ttl",
        "--max-ttl",
        "--negative-ttl",
        "--log-level",
        "check",
        "serve",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}

#[test]
fn check_accepts_good_zones_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("good.test.zone"), GOOD).unwrap();
    let out = srvd(&["check", "--zones", "zones"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 zone(s)"));

    std::fs::write(
        zones.join("bad1.test.zone"),
        format!("{GOOD}x A 300.1.1.1\n"),
    )
    .unwrap();
    std::fs::write(zones.join("bad2.test.zone"), format!("{GOOD}\ny BOGUS 1\n")).unwrap();
    let out = srvd(
        &[
            "check",
            "--zones",
            "zones",
            "--min-ttl",
            "9",
            "--max-ttl",
            "3",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad1.test.zone:6:"), "{err}");
    assert!(err.contains("bad2.test.zone:7:"), "{err}");
    assert!(
        err.contains("min_ttl (9) is greater than max_ttl (3)"),
        "{err}"
    );
}

#[test]
fn config_file_errors_name_file_and_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("srvd.toml"),
        "ttl = 5\nlisten = \"not an address\"\n",
    )
    .unwrap();
    let out = srvd(&["--config", "srvd.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("srvd.toml") && err.contains("line 2"), "{err}");

    let out = srvd(&["--config", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"));

    let out = srvd(&["--zones", "no-such-dir"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-dir: zone directory does not exist"));
}

#[test]
fn bad_zone_fails_before_any_port_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("bad.test.zone"), format!("{GOOD}x A 1.2.3\n")).unwrap();
    // Hold the port: if srvd tried to bind it would fail with a bind error instead.
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().to_string();
    let out = srvd(&["--zones", "zones", "--listen", &port], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.test.zone:6:") && !err.contains("bind"),
        "{err}"
    );
}

fn spawn_server(dir: &Path) -> (ChildGuard, SocketAddr, SocketAddr) {
    spawn_srvd(&["--zones", "zones"], dir)
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/good.test.zone"), GOOD).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for signal in ["-TERM", "-INT"] {
        let (mut child, dns, _http) = spawn_server(dir.path());
        let reply = rt.block_on(common::query_udp(
            dns,
            &common::query("web.good.test.", RecordType::A, None),
        ));
        assert_eq!(reply.answers.len(), 1);
        // An open TCP connection must not hold shutdown up beyond the drain grace.
        let _conn = std::net::TcpStream::connect(dns).unwrap();
        child.signal(signal);
        assert_eq!(
            child.wait_exit(Duration::from_secs(15)),
            Some(0),
            "{signal}"
        );
    }
}

#[test]
fn http_endpoints_report_health_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/good.test.zone"), GOOD).unwrap();
    let (mut child, dns, http) = spawn_server(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::query_udp(
        dns,
        &common::query("web.good.test.", RecordType::A, None),
    ));
    rt.block_on(common::query_udp(
        dns,
        &common::query("nope.good.test.", RecordType::A, None),
    ));
    assert!(common::http_get(http, "/healthz").starts_with("HTTP/1.1 200"));
    let ready = common::http_get(http, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = common::http_get(http, "/metrics");
    for needle in [
        r#"srvd_dns_queries_total{qtype="A",rcode="NOERROR",source="lookup"} 1"#,
        r#"srvd_dns_queries_total{qtype="A",rcode="NXDOMAIN",source="lookup"} 1"#,
        "srvd_dns_answer_seconds_bucket",
        r#"srvd_index_names{source="zones"} 3"#,
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
    child.signal("-TERM");
    assert_eq!(child.wait_exit(Duration::from_secs(15)), Some(0));
}
