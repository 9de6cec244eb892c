use super::*;

#[test]
fn defaults() {
    let c = Config::from_file_config(FileConfig::default(), EtcdArgs::default()).unwrap();
    assert_eq!(c.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
    assert_eq!(c.http, "127.0.0.1:9153".parse().unwrap());
    assert_eq!(c.ttl, TtlPolicy::default());
    assert_eq!(c.zones, PathBuf::from("zones"));
}

#[test]
fn flags_win_over_file() {
    let file: FileConfig = toml::from_str("ttl = 30\nmax_ttl = 60\n").unwrap();
    let flags = FileConfig {
        ttl: Some(7),
        ..FileConfig::default()
    };
    let c = Config::from_file_config(file.overlay(flags), EtcdArgs::default()).unwrap();
    assert_eq!(c.ttl.default, 7);
    assert_eq!(c.ttl.max, 60);
}

#[test]
fn reports_every_problem() {
    let file = FileConfig {
        min_ttl: Some(10),
        max_ttl: Some(5),
        log_level: Some("loud!!".into()),
        listen: Some(vec![]),
        ..FileConfig::default()
    };
    let problems = Config::from_file_config(file, EtcdArgs::default()).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn etcd_settings_are_validated() {
    let file = FileConfig {
        etcd: Some(vec!["http://127.0.0.1:2379,http://127.0.0.2:2379".into()]),
        domain: Some(vec!["SkyDNS.local".into()]),
        ..FileConfig::default()
    };
    let etcd = Config::from_file_config(file.clone(), file.etcd_args())
        .unwrap()
        .etcd
        .unwrap();
    assert_eq!(etcd.connection.endpoints.len(), 2);
    assert_eq!(etcd.domains[0].to_ascii(), "skydns.local.");
    assert_eq!(etcd.connection.prefix, "/skydns");

    let file = FileConfig {
        etcd: Some(vec!["http://127.0.0.1:2379".into()]),
        ..FileConfig::default()
    };
    let problems = Config::from_file_config(file.clone(), file.etcd_args()).unwrap_err();
    assert_eq!(problems.len(), 1, "no domain: {problems:?}");

    let file = FileConfig {
        domain: Some(vec!["skydns.local.".into()]),
        ..FileConfig::default()
    };
    let problems = Config::from_file_config(file, EtcdArgs::default()).unwrap_err();
    assert_eq!(problems.len(), 1, "domain without etcd: {problems:?}");
}

#[test]
fn transfer_rules_name_keys_from_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.conf");
    std::fs::write(
        &keys,
        "key \"xfr\" {\n algorithm hmac-sha256;\n secret \"c2VjcmV0c2VjcmV0\";\n};\n",
    )
    .unwrap();
    let file: FileConfig = toml::from_str(&format!(
        "tsig_key_file = {keys:?}\nallow_transfer = [\"127.0.0.0/8,key=xfr\"]\n\
         notify = [\"127.0.0.1:5300,key=xfr\"]\n\
         [transfer.\"example.org.\"]\nallow_transfer = [\"192.0.2.1\"]\n"
    ))
    .unwrap();
    let c = Config::from_file_config(file, EtcdArgs::default()).unwrap();
    assert_eq!(c.xfr.allow.len(), 1);
    assert_eq!(c.xfr.notify[0].addr.port(), 5300);
    assert_eq!(c.xfr.zones.len(), 1);

    let file = FileConfig {
        allow_transfer: Some(vec!["127.0.0.1,key=missing".into(), "nonsense".into()]),
        notify: Some(vec!["127.0.0.1".into()]),
        tsig_key_file: Some(dir.path().join("absent.conf")),
        ..FileConfig::default()
    };
    let problems = Config::from_file_config(file, EtcdArgs::default()).unwrap_err();
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[test]
fn unknown_keys_and_syntax_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("srvd.toml");
    std::fs::write(&p, "ttl = 5\nbogus = 1\n").unwrap();
    let e = FileConfig::load(&p).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
}
