use super::wire::{hex, sig_time};
use super::*;

fn toks(text: &str) -> Vec<Token> {
    tokenize(text).unwrap()
}

fn origin() -> Name {
    Name::from_ascii("example.").unwrap()
}

fn wire(rtype: &str, text: &str) -> Vec<u8> {
    let t = record_type(rtype).unwrap();
    match parse(t, &toks(text), &origin()).unwrap().unwrap() {
        RData::Unknown { rdata, .. } => rdata.anything.to_vec(),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .flat_map(|s| {
                let mut v = vec![s.len() as u8];
                v.extend_from_slice(s);
                v
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn txt_escapes_are_bytes() {
    assert_eq!(
        wire("TXT", r#""a\010b" "\065" "\255" x\"y"#),
        b"\x03a\nb\x01A\x01\xff\x03x\"y"
    );
}

#[test]
fn generic_form_for_any_type() {
    assert_eq!(wire("TYPE65534", r"\# 3 abcdef"), vec![0xab, 0xcd, 0xef]);
    let a = parse(RecordType::A, &toks(r"\# 4 0A000001"), &origin())
        .unwrap()
        .unwrap();
    assert_eq!(
        a,
        RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, 1)),
        "a known type"
    );
}

#[test]
fn types_hickory_refuses() {
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("DNAME", "target", b"\x06target\x07example\x00".to_vec()),
        ("AFSDB", "1 afs", b"\x00\x01\x03afs\x07example\x00".to_vec()),
        (
            "URI",
            "10 1 \"https://x/\"",
            b"\x00\x0a\x00\x01https://x/".to_vec(),
        ),
        (
            "EUI48",
            "00-00-5e-00-53-2a",
            vec![0, 0, 0x5e, 0, 0x53, 0x2a],
        ),
        (
            "DS",
            "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
            {
                let mut v = vec![0xec, 0x45, 5, 1];
                v.extend(hex("2BB183AF5F22588179A53B0A98631FAD1A292118").unwrap());
                v
            },
        ),
        ("NSEC", "host.example. A MX RRSIG NSEC TYPE1234", {
            let mut v = b"\x04host\x07example\x00".to_vec();
            // RFC 4034 §4.3: window 0 (A MX RRSIG NSEC), window 4 (TYPE1234 = bit 210).
            v.extend([0, 6, 0x40, 0x01, 0, 0, 0, 0x03, 4, 27]);
            v.extend([0; 26]);
            v.push(0x20);
            v
        }),
    ];
    for (t, text, want) in cases {
        assert_eq!(wire(t, text), want, "{t}");
    }
    // RFC 4034 §3.2 example times.
    assert_eq!(sig_time("20040509183619").unwrap(), 1_084_127_779);
    assert!(wire("RRSIG", "A 5 3 86400 20030322173103 20030220173103 2642 example. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=").len() > 18);
}
