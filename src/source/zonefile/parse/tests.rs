use super::*;
use hickory_proto::rr::RecordType;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p
}

fn load(dir: &Path, path: &Path, max_bytes: u64) -> Result<(Name, Vec<Record>), ParseError> {
    parse_file(path, dir, name("example.test."), Limits { max_bytes })
}

/// What hickory's parser makes of the whole text at once: the reference for chunked parsing.
fn whole(text: &str) -> Vec<String> {
    let (_, sets) = Parser::new(text, None, Some(name("example.test.")))
        .parse()
        .unwrap();
    let mut out: Vec<String> = sets
        .into_values()
        .flat_map(|s| {
            s.records_without_rrsigs()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn chunked_parsing_gives_what_a_whole_parse_gives() {
    // More entries than a chunk, blank owners and TTL-less records across chunk boundaries,
    // no $TTL (the last explicit TTL carries), then a $TTL and an $ORIGIN change.
    let mut text = String::from("@ 3600 IN SOA ns hostmaster 1 7200 1800 86400 5\n");
    for i in 0..2500 {
        text.push_str(&format!("h{i} {} A 192.0.2.{}\n", 60 + i % 7, i % 250));
        text.push_str(&format!("  AAAA 2001:db8::{i:x}\n"));
        text.push_str(&format!("t{i} TXT \"x{i}\" \"( ; )\"\n"));
    }
    text.push_str("$TTL 30\nlate A 192.0.2.9\n$ORIGIN sub.example.test.\nx A 192.0.2.10\n");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "example.test.zone", &text);
    let (apex, records) = load(dir.path(), &p, 1 << 30).unwrap();
    assert_eq!(apex, name("example.test."));
    let mut got: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    got.sort();
    assert_eq!(got, whole(&text));
    assert!(records.iter().any(|r| r.record_type() == RecordType::SOA));
}

#[test]
fn an_error_is_located_in_one_pass_even_on_the_last_line() {
    let mut text = String::from("$TTL 60\n");
    for i in 0..5000 {
        text.push_str(&format!("h{i} A 192.0.2.1\n"));
    }
    text.push_str("bad A 999.1.1.1\n");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "example.test.zone", &text);
    let e = load(dir.path(), &p, 1 << 30).unwrap_err();
    assert_eq!(e.line, Some(5002), "{e:?}");
}

#[test]
fn includes_are_followed_inside_the_zone_directory_only() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "part.inc", "www A 192.0.2.7\n");
    write(dir.path(), "self.inc", "$INCLUDE self.inc\n");
    let ok = write(
        dir.path(),
        "ok.zone",
        "$TTL 60\n$INCLUDE part.inc\n$INCLUDE part.inc sub.example.test.\nafter A 192.0.2.8\n",
    );
    let (_, records) = load(dir.path(), &ok, 1 << 20).unwrap();
    let names: Vec<String> = records.iter().map(|r| r.name.to_ascii()).collect();
    assert!(
        names.contains(&"www.example.test.".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"www.sub.example.test.".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"after.example.test.".to_string()),
        "origin restored: {names:?}"
    );

    let outside = tempfile::tempdir().unwrap();
    let secret = write(outside.path(), "secret.inc", "x A 192.0.2.1\n");
    std::os::unix::fs::symlink(&secret, dir.path().join("link.inc")).unwrap();
    let fifo = dir.path().join("fifo.inc");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("loop-b.inc", dir.path().join("loop-a.inc")).unwrap();
    std::os::unix::fs::symlink("loop-a.inc", dir.path().join("loop-b.inc")).unwrap();
    let cases = [
        ("/dev/zero", "not a regular file"),
        ("/etc/hostname", "outside the zone directory"),
        ("../secret.inc", "No such file"),
        ("link.inc", "outside the zone directory"),
        ("fifo.inc", "not a regular file"),
        ("loop-a.inc", "symbolic link loop"),
        ("self.inc", "includes itself"),
        ("missing.inc", "No such file"),
    ];
    for (target, want) in cases {
        let p = write(
            dir.path(),
            "bad.zone",
            &format!("$TTL 60\n$INCLUDE {target}\n"),
        );
        let e = load(dir.path(), &p, 1 << 20).unwrap_err();
        assert!(e.message.contains(want), "{target}: {e:?}");
    }
}

#[test]
fn files_over_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.inc", &"x A 192.0.2.1\n".repeat(100));
    let p = write(
        dir.path(),
        "example.test.zone",
        "$TTL 60\n$INCLUDE big.inc\n",
    );
    let e = load(dir.path(), &p, 1000).unwrap_err();
    assert!(e.message.contains("limit"), "{e:?}");
    assert!(load(dir.path(), &p, 10_000).is_ok());
}
