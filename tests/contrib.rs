//! `contrib/srvd.service`, the systemd unit shipped for running srvd as the host's resolver,
//! is accepted by `systemd-analyze verify` without a single complaint (verify exits 0 even on
//! unknown keys, so its output must be empty too).

use std::process::Command;

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/srvd.service"))
            .expect("contrib/srvd.service");
    // verify checks that every Exec binary exists: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/srvd", env!("CARGO_BIN_EXE_srvd"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("srvd.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) must be installed: scripts/deps.sh installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.trim().is_empty(),
        "systemd-analyze complained:\n{text}"
    );
}
