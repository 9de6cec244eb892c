//! srvd as a host's only nameserver: stock stub resolvers (glibc's getaddrinfo via `getent`,
//! and a static musl program, as on Alpine) with a private `/etc/resolv.conf` naming only srvd
//! (bind-mounted under `unshare -m`; srvd listens on a loopback address, port 53, since
//! resolv.conf cannot name a port). They must resolve srvd's own names, names srvd forwards to
//! an upstream, and short names through the `search` list. Needs root (port 53, unshare), as
//! CI has.

mod common;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use common::ChildGuard;
use common::stub::{Mode, Stub};

const SRVD: &str = env!("CARGO_BIN_EXE_srvd");
const ZONE: &str = "$TTL 5\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\nns A 127.0.0.1\n\
web A 192.0.2.11\nweb AAAA 2001:db8::11\napi CNAME web\n";

/// The getaddrinfo test program (built with musl-gcc -static at test time).
const GAI_C: &str = r#"
#include <stdio.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
int main(int argc, char **argv) {
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[1], NULL, &hints, &res);
    if (rc) { printf("error %s\n", gai_strerror(rc)); return 2; }
    for (ai = res; ai; ai = ai->ai_next) {
        char buf[INET6_ADDRSTRLEN];
        void *a = ai->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                           : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        printf("%s\n", inet_ntop(ai->ai_family, a, buf, sizeof buf));
    }
    return 0;
}
"#;

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{tool} is required for this test (Debian package {package}; scripts/deps.sh installs it)"
    );
}

fn build_musl_program(dir: &Path) -> std::path::PathBuf {
    let source = dir.join("gai.c");
    std::fs::write(&source, GAI_C).unwrap();
    let binary = dir.join("gai-musl");
    let status = Command::new("musl-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "musl-gcc failed");
    binary
}

/// Run `command` (a shell command) with `resolv` bind-mounted over /etc/resolv.conf.
fn with_resolv_conf(resolv: &Path, command: &str) -> String {
    let script = format!(
        "mount --bind {} /etc/resolv.conf && {command}",
        resolv.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glibc_and_musl_resolve_own_forwarded_and_searched_names_through_srvd() {
    for (tool, package) in [
        ("unshare", "util-linux"),
        ("mount", "mount"),
        ("getent", "libc-bin"),
        ("musl-gcc", "musl-tools"),
    ] {
        require(tool, package);
    }
    let upstream = Stub::start(Mode::Answer { ttl: 60 }).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/svc.test.zone"), ZONE).unwrap();
    let gai = build_musl_program(dir.path());
    let ip = Ipv4Addr::new(
        127,
        54,
        ((std::process::id() >> 8) % 250 + 1) as u8,
        (std::process::id() % 250 + 1) as u8,
    );
    let mut child = ChildGuard(
        Command::new(SRVD)
            .args(["--zones", "zones", "--http", "127.0.0.1:0"])
            .args(["--listen", &format!("{ip}:53")])
            .args(["--forward", &upstream.addr.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("serving DNS") => break,
            Some(Ok(_)) => continue,
            _ => panic!("srvd did not start on {ip}:53 (binding port 53 needs root)"),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {ip}\nsearch svc.test\noptions timeout:2 attempts:2\n"),
    )
    .unwrap();

    let gai = gai.display().to_string();
    // (what, command, expected address)
    let cases = [
        (
            "glibc, srvd's own name",
            "getent ahosts api.svc.test".to_string(),
            "192.0.2.11",
        ),
        (
            "glibc, a forwarded name",
            "getent ahosts www.example.org".to_string(),
            "192.0.2.1",
        ),
        (
            "glibc, a short name via search",
            "getent ahosts web".to_string(),
            "192.0.2.11",
        ),
        (
            "musl, srvd's own name",
            format!("{gai} api.svc.test"),
            "192.0.2.11",
        ),
        (
            "musl, a forwarded name",
            format!("{gai} www.example.org"),
            "192.0.2.1",
        ),
        (
            "musl, a short name via search",
            format!("{gai} web"),
            "192.0.2.11",
        ),
        (
            "musl, AAAA of srvd's name",
            format!("{gai} web.svc.test"),
            "2001:db8::11",
        ),
    ];
    for (what, command, want) in cases {
        let resolv = resolv.clone();
        let out = tokio::task::spawn_blocking(move || with_resolv_conf(&resolv, &command))
            .await
            .unwrap();
        assert!(out.contains(want), "{what}: got\n{out}");
    }
    assert!(upstream.queries() >= 2, "the forwarded name went upstream");
}
