use super::keys::parse_keys;
use super::*;

const KEYFILE: &str = r#"
# made with tsig-keygen
key "xfr-key" {
	algorithm hmac-sha256;
	secret "LQEiX7B7Ao3vhQZdQ6oZyzVRvDf+MsTz3k2cK6GRhgA=";
};
/* a second one */ key "other." { algorithm hmac-sha512; secret "c2VjcmV0"; };
"#;

fn keyring() -> Keyring {
    let mut ring = Keyring::default();
    for key in parse_keys(KEYFILE).unwrap() {
        ring.insert(key);
    }
    ring
}

/// A minimal query message: header + question.
fn query() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(b"\x07example\x00\x00\x06\x00\x01");
    m
}

#[test]
fn tsig_keygen_files_are_read() {
    let ring = keyring();
    let key = ring.get(&Name::from_ascii("XFR-Key.").unwrap()).unwrap();
    assert_eq!(key.algorithm, Algorithm::HmacSha256);
    assert!(ring.get(&Name::from_ascii("other.").unwrap()).is_some());
    assert!(parse_keys(r#"key "k" { algorithm hmac-md5; secret "AA=="; };"#).is_err());
}

#[test]
fn rfc8945_signed_requests_verify_and_tampering_is_badsig() {
    let ring = keyring();
    let key = ring.get(&Name::from_ascii("xfr-key.").unwrap()).unwrap();
    let mut msg = query();
    let mac = sign_request(&key, &mut msg);
    let at = query().len();
    let tsig = Tsig::read(&msg, at).unwrap();
    assert_eq!(tsig.mac, mac);
    assert!(matches!(check(&ring, &msg, &tsig), Checked::Valid { .. }));

    let mut tampered = msg.clone();
    tampered[13] ^= 0x20; // letter case of the question changes the MAC
    assert!(matches!(
        check(&ring, &tampered, &Tsig::read(&tampered, at).unwrap()),
        Checked::Invalid { error: BADSIG, .. }
    ));
    let unknown = Keyring::default();
    assert!(matches!(
        check(&unknown, &msg, &tsig),
        Checked::Invalid { error: BADKEY, .. }
    ));
}

#[test]
fn rfc8945_a_stale_time_is_badtime_and_the_error_answer_is_signed() {
    let ring = keyring();
    let key = ring.get(&Name::from_ascii("xfr-key.").unwrap()).unwrap();
    let mut msg = query();
    let mut signer = Signer::new(key.clone(), Vec::new());
    signer.time -= 10_000;
    signer.sign(&mut msg);
    let tsig = Tsig::read(&msg, query().len()).unwrap();
    let checked = check(&ring, &msg, &tsig);
    assert!(matches!(checked, Checked::Invalid { error: BADTIME, .. }));
    let mut reply = query();
    reply[2] |= 0x80;
    append_error(&mut reply, &checked);
    let answer = Tsig::read(&reply, query().len()).unwrap();
    assert_eq!(answer.error, BADTIME);
    assert_eq!(answer.mac.len(), 32, "a BADTIME answer is signed");
    assert_eq!(answer.other.len(), 6, "with the server's time");
}

#[test]
fn rfc8945_5_3_1_every_message_of_a_stream_is_signed_over_the_previous_mac() {
    let ring = keyring();
    let key = ring.get(&Name::from_ascii("xfr-key.").unwrap()).unwrap();
    let request_mac = vec![7u8; 32];
    let mut signer = Signer::new(key.clone(), request_mac.clone());
    let mut first = query();
    first[2] |= 0x80;
    signer.sign(&mut first);
    let mut second = query();
    second[2] |= 0x80;
    signer.sign(&mut second);
    let t1 = Tsig::read(&first, query().len()).unwrap();
    assert!(check_response(&key, &request_mac, &first, &t1));
    // The second's MAC: previous MAC, the message, then the timers only.
    let t2 = Tsig::read(&second, query().len()).unwrap();
    let mut data = (t1.mac.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&t1.mac);
    data.extend(unsigned(&second, &t2));
    data.extend_from_slice(&u48(t2.time_signed));
    data.extend_from_slice(&t2.fudge.to_be_bytes());
    assert!(ring::hmac::verify(&key.hmac, &data, &t2.mac).is_ok());
}
