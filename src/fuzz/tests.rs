use super::*;

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter in DNS messages and JSON values.
const INTERESTING: [u8; 16] = [
    0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff, 0x29, b'.', b'/', b'"', b'{', b'}', b'A', b'0',
];

/// One input: a seed with 1..=4 mutations (flip, set, truncate, splice, insert, delete,
/// duplicate).
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
            }
            2 => data.truncate(rng.below(len + 1)),
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let cut = rng.below(len + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at..end);
            }
            6 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let piece = data[at..end].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, piece);
            }
            7 if len >= 12 => {
                // A section count or the header's flags.
                let at = 2 + 2 * rng.below(5);
                data[at + 1] = data[at + 1].wrapping_add(1 + rng.below(2) as u8);
            }
            _ => {}
        }
    }
    data
}

fn read_all(files: &[PathBuf]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn run(target: &str, input: &[u8]) {
    match target {
        "query" => query(input),
        _ => {
            let (key, value) = split_etcd_input(input);
            etcd_value(key, value);
        }
    }
}

/// The regressions of bugs found and not fixed yet: `fuzz/regressions/OPEN`, one
/// `<target>/<file>` a line (`#` comments).
fn open_bugs() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/OPEN");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Replay the corpus and the regressions of `target`; the inputs to mutate. A regression
/// listed in `OPEN` must still fail (and is not mutated); when it passes, the bug is fixed
/// and its line must go.
fn replay(target: &str) -> Vec<Vec<u8>> {
    let corpus = read_all(&inputs("corpus", target));
    assert!(corpus.len() >= 4, "fuzz/corpus/{target} has its seeds");
    for input in &corpus {
        run(target, input);
    }
    let open = open_bugs();
    let mut seeds = corpus;
    for path in inputs("regressions", target) {
        let input = read_all(std::slice::from_ref(&path)).remove(0);
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let id = format!("{target}/{file}");
        if open.contains(&id) {
            let fails = std::panic::catch_unwind(|| run(target, &input)).is_err();
            assert!(
                fails,
                "{id} passes now: remove it from fuzz/regressions/OPEN"
            );
            eprintln!("fuzz/regressions/{id}: a known open bug (fuzz/regressions/OPEN)");
        } else {
            run(target, &input);
            seeds.push(input);
        }
    }
    seeds
}

/// `packet` signed with the fixture's key, now.
fn signed(mut packet: Vec<u8>) -> Vec<u8> {
    crate::xfr::tsig::sign_request(&tsig_key(), &mut packet);
    packet
}

/// An IXFR query for `zone` from `serial` (its SOA in the authority section).
fn ixfr(zone: &str, serial: u32, payload: Option<u16>) -> Vec<u8> {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::SOA;
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Question::query(name(zone), RecordType::IXFR));
    let soa = SOA::new(name(zone), name(zone), serial, 0, 0, 0, 0);
    m.add_authority(Record::from_rdata(name(zone), 0, RData::SOA(soa)));
    if let Some(payload) = payload {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn first_serial(zone: &str) -> u32 {
    let zone = name(zone);
    fixture()
        .first_serials
        .iter()
        .find(|(z, _)| *z == zone)
        .map(|(_, s)| *s)
        .unwrap()
}

/// Queries signed now (valid signatures, which the corpus's cannot keep), and transfers.
fn fresh_seeds() -> Vec<Vec<u8>> {
    let q = |qname: &str, qtype, payload| question_packet(&name(qname), qtype, payload).unwrap();
    let old = first_serial("skydns.test.");
    vec![
        signed(q("web.fuzz.test.", RecordType::A, None)),
        signed(q("big.skydns.test.", RecordType::SRV, Some(1232))),
        signed(q("skydns.test.", RecordType::AXFR, None)),
        signed(ixfr("skydns.test.", old, None)),
        signed(ixfr("skydns.test.", old, Some(1232))),
        ixfr("fuzz.test.", first_serial("fuzz.test."), None),
        ixfr(
            "fuzz.test.",
            first_serial("fuzz.test.").wrapping_add(7),
            None,
        ),
        q("fuzz.test.", RecordType::AXFR, None),
        q("10.in-addr.arpa.", RecordType::AXFR, Some(4096)),
    ]
}

#[test]
fn the_fixture_answers_as_expected() {
    let f = fixture();
    let reply = |packet: &[u8], transport| match answer(&f.plain, packet, transport) {
        Got::Reply(_, m) => m,
        _ => panic!("no reply to {}", hex(packet)),
    };
    let ask = |qname: &str, qtype, payload, transport| {
        reply(
            &question_packet(&name(qname), qtype, payload).unwrap(),
            transport,
        )
    };
    let m = ask(
        "_http._tcp.web.fuzz.test.",
        RecordType::SRV,
        None,
        Transport::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // Four from the zone file, one from the etcd service at `web.fuzz.test.`.
    assert_eq!(m.answers.len(), 5, "{m}");
    let m = ask("big.skydns.test.", RecordType::SRV, None, Transport::Udp);
    assert!(
        m.metadata.truncation || m.answers.len() < 100,
        "100 SRV in 512 bytes? {m}"
    );
    let m = ask("huge.big.fuzz.test.", RecordType::TXT, None, Transport::Tcp);
    assert!(
        m.answers.len() > 200 && m.answers.len() < 300,
        "{}",
        m.answers.len()
    );
    let m = ask("nope.fuzz.test.", RecordType::A, Some(1232), Transport::Udp);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // Two keys for one name (`.../web/1` and `.../Web/1`).
    let m = ask("1.web.skydns.test.", RecordType::A, None, Transport::Udp);
    assert_eq!(m.answers.len(), 2, "{m}");
    let m = ask("x.sub.fuzz.test.", RecordType::A, None, Transport::Udp);
    assert!(!m.authorities.is_empty(), "a referral");

    // Signed queries get signed answers; transfers stream where allowed.
    let m = reply(
        &signed(question_packet(&name("web.fuzz.test."), RecordType::A, None).unwrap()),
        Transport::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let last = m.additionals.last().map(|r| u16::from(r.record_type()));
    assert_eq!(last, Some(TYPE_TSIG), "{m}");
    let axfr = |zone: &str| question_packet(&name(zone), RecordType::AXFR, None).unwrap();
    let streams = |packet: &[u8]| matches!(answer(&f.plain, packet, Transport::Tcp), Got::Transfer);
    assert!(streams(&axfr("fuzz.test.")));
    assert!(streams(&signed(axfr("skydns.test."))));
    assert!(
        !streams(&axfr("skydns.test.")),
        "skydns.test. takes the key"
    );
    let m = reply(&axfr("skydns.test."), Transport::Tcp);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let old = first_serial("skydns.test.");
    assert!(streams(&signed(ixfr("skydns.test.", old, None))));
    let m = reply(
        &signed(ixfr("skydns.test.", old, Some(1232))),
        Transport::Udp,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // The difference (40 records) does not fit 1232 bytes: the SOA alone (RFC 1995 §2).
    assert_eq!(m.answers.len(), 1, "{m}");
}

#[test]
fn smoke_query() {
    let mut seeds = replay("query");
    for seed in fresh_seeds() {
        query(&seed);
        seeds.push(seed);
    }
    let mut rng = Rng(0x5eed_d0e5_0000_0001);
    for _ in 0..200_000 {
        query(&mutate(&mut rng, &seeds));
    }
}

#[test]
fn smoke_etcd_value() {
    let seeds = replay("etcd_value");
    let mut rng = Rng(0x5eed_e7cd_0000_0002);
    for _ in 0..50_000 {
        let input = mutate(&mut rng, &seeds);
        let (key, value) = split_etcd_input(&input);
        etcd_value(key, value);
    }
}
