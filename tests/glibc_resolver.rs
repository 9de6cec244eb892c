//! A stock resolver finds names through srvd: glibc's `getaddrinfo` (via `getent ahosts`) in a
//! private mount namespace whose `/etc/resolv.conf` points at srvd on `<loopback>:53`
//! (resolv.conf cannot name a port). Needs root (port 53, `unshare -m`), as CI has.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const SRVD: &str = env!("CARGO_BIN_EXE_srvd");
const ZONE: &str = "$TTL 5\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\nns A 127.0.0.1\n\
web A 192.0.2.11\nweb A 192.0.2.12\nweb AAAA 2001:db8::11\napi CNAME web\n";

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn glibc_getaddrinfo_resolves_through_srvd() {
    for tool in ["unshare", "getent", "mount"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        assert!(
            found.status.success(),
            "{tool} is required for this test (util-linux, libc-bin)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/glibc.test.zone"), ZONE).unwrap();
    // A loopback address unlikely to be in use, derived from our PID.
    let ip = format!(
        "127.53.{}.{}",
        (std::process::id() >> 8) % 250 + 1,
        std::process::id() % 250 + 1
    );
    let mut child = Guard(
        Command::new(SRVD)
            .args([
                "--zones",
                "zones",
                "--listen",
                &format!("{ip}:53"),
                "--http",
                "127.0.0.1:0",
            ])
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
            _ => panic!(
                "srvd did not start on {ip}:53 (binding port 53 needs root): {:?}",
                child.0.try_wait()
            ),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));

    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {ip}\noptions timeout:2 attempts:3\n"),
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && getent ahosts api.glibc.test && echo --- && getent ahostsv6 web.glibc.test && echo --- && getent hosts nope.glibc.test; echo nope=$?",
        resolv.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unshare failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{stdout}");
    // getaddrinfo follows the CNAME and returns both addresses, canonical name first line.
    assert!(
        parts[0].contains("192.0.2.11") && parts[0].contains("192.0.2.12"),
        "{stdout}"
    );
    assert!(
        parts[0]
            .lines()
            .next()
            .unwrap_or("")
            .contains("web.glibc.test"),
        "{stdout}"
    );
    assert!(parts[1].contains("2001:db8::11"), "{stdout}");
    // NXDOMAIN: getent exits 2 ("key not found").
    assert!(parts[2].contains("nope=2"), "{stdout}");
}
