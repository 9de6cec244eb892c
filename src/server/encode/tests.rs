use super::*;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::{A, SRV};
use std::net::Ipv4Addr;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// The question section of `www.example.` A, as a query would carry it.
fn question(qname: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::new();
    for label in name(qname).iter() {
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

fn header() -> Header {
    Header {
        id: 7,
        opcode: 0,
        authoritative: true,
        recursion_desired: true,
        recursion_available: false,
        authentic_data: false,
        checking_disabled: false,
        rcode: ResponseCode::NoError,
    }
}

fn addresses(owner: &str, n: u8) -> Vec<Record> {
    (0..n)
        .map(|i| Record::from_rdata(name(owner), 5, RData::A(A(Ipv4Addr::new(10, 0, 0, i)))))
        .collect()
}

fn limits(max_size: usize, udp: bool) -> Limits {
    Limits {
        max_size,
        udp,
        reserve: 0,
        rotatable: true,
        ttl: TtlAdjust::Keep,
    }
}

/// Walk every record of a message; the walk must end exactly at the end (no trailing bytes).
fn assert_well_formed(bytes: &[u8]) {
    let raw_counts: Vec<usize> = [4, 6, 8, 10]
        .iter()
        .map(|&at| usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]])))
        .collect();
    let mut at = 12;
    for _ in 0..raw_counts[0] {
        while bytes[at] != 0 {
            at += 1 + usize::from(bytes[at]);
        }
        at += 5;
    }
    for _ in 0..raw_counts[1] + raw_counts[2] + raw_counts[3] {
        loop {
            let len = bytes[at];
            if len & 0xC0 == 0xC0 {
                at += 2;
                break;
            }
            at += 1 + usize::from(len);
            if len == 0 {
                break;
            }
        }
        let rdlen = usize::from(u16::from_be_bytes([bytes[at + 8], bytes[at + 9]]));
        at += 10 + rdlen;
    }
    assert_eq!(at, bytes.len(), "trailing bytes after the last record");
    Message::from_vec(bytes).expect("decodes");
}

/// RFC 1035 §4.2.1 / RFC 2181 §9: an answer RRset that does not fit is left out whole and TC
/// set; the message is well formed and keeps its OPT record (RFC 6891 §6.1.1).
#[test]
fn rfc2181_s9_truncation_leaves_out_whole_rrsets_and_keeps_opt() {
    let mut answer = Answer::authoritative();
    answer.answers = addresses("www.example.", 60);
    let q = question("www.example.", 1);
    let edns = ResponseEdns {
        payload: 1232,
        dnssec_ok: true,
        ede: None,
    };
    let mut out = Vec::new();
    let layout = encode(
        &mut out,
        &mut Scratch::default(),
        header(),
        Some(&q),
        Sections::of(&answer),
        Some(edns),
        limits(512, true),
    );
    assert!(layout.truncated);
    assert!(out.len() <= 512);
    assert_well_formed(&out);
    let message = Message::from_vec(&out).unwrap();
    assert!(message.metadata.truncation);
    assert!(message.answers.is_empty(), "no partial RRset over UDP");
    let opt = message.edns.expect("OPT kept");
    assert!(opt.flags().dnssec_ok, "DO echoed");
}

#[test]
fn tcp_cuts_a_too_large_rrset_at_the_last_record_that_fits() {
    let mut answer = Answer::authoritative();
    answer.answers = addresses("www.example.", 200);
    let q = question("www.example.", 1);
    let mut out = Vec::new();
    let layout = encode(
        &mut out,
        &mut Scratch::default(),
        header(),
        Some(&q),
        Sections::of(&answer),
        None,
        limits(1000, false),
    );
    assert!(layout.truncated);
    assert_well_formed(&out);
    let message = Message::from_vec(&out).unwrap();
    assert!(!message.answers.is_empty() && message.answers.len() < 200);
}

#[test]
fn additional_rrsets_that_do_not_fit_are_dropped_without_tc() {
    let mut answer = Answer::authoritative();
    answer.answers = addresses("www.example.", 2);
    answer.additionals = addresses("glue.example.", 60);
    let q = question("www.example.", 1);
    let mut out = Vec::new();
    let layout = encode(
        &mut out,
        &mut Scratch::default(),
        header(),
        Some(&q),
        Sections::of(&answer),
        None,
        limits(512, true),
    );
    assert!(!layout.truncated);
    assert_well_formed(&out);
    let message = Message::from_vec(&out).unwrap();
    assert_eq!(message.answers.len(), 2);
    assert!(message.additionals.is_empty());
}

/// RFC 8482 §4.1: an ANY answer may leave out RRsets, never all of them.
#[test]
fn rfc8482_any_leaves_out_rrsets_that_do_not_fit() {
    let mut answer = Answer::authoritative();
    answer.partial = true;
    answer.answers = addresses("www.example.", 3);
    let big = Record::from_rdata(
        name("www.example."),
        5,
        RData::TXT(hickory_proto::rr::rdata::TXT::new(vec!["x".repeat(250); 4])),
    );
    answer.answers.push(big);
    let q = question("www.example.", 255);
    let mut out = Vec::new();
    let layout = encode(
        &mut out,
        &mut Scratch::default(),
        header(),
        Some(&q),
        Sections::of(&answer),
        None,
        limits(512, true),
    );
    assert!(!layout.truncated);
    assert_well_formed(&out);
    assert_eq!(Message::from_vec(&out).unwrap().answers.len(), 3);
}

#[test]
fn names_compress_case_insensitively_against_the_question() {
    let mut answer = Answer::authoritative();
    answer.answers = addresses("www.example.", 1);
    let q = question("WwW.ExAmple.", 1);
    let mut out = Vec::new();
    encode(
        &mut out,
        &mut Scratch::default(),
        header(),
        Some(&q),
        Sections::of(&answer),
        None,
        limits(512, true),
    );
    assert_well_formed(&out);
    // header + question + (pointer 2 + 10 + 4)
    assert_eq!(out.len(), 12 + q.len() + 16);
    let message = Message::from_vec(&out).unwrap();
    assert_eq!(message.answers[0].name.to_ascii(), "WwW.ExAmple.");
}

/// Rotating the records of a rotatable RRset in the encoded bytes keeps the message valid:
/// no name outside the RRset points into it.
#[test]
fn rotated_rrsets_stay_well_formed() {
    let mut answer = Answer::authoritative();
    answer.answers = (0..4u16)
        .map(|i| {
            let target = name(&format!("t{i}.svc.example."));
            Record::from_rdata(
                name("svc.example."),
                5,
                RData::SRV(SRV::new(10, 25, 80 + i, target)),
            )
        })
        .collect();
    answer.additionals = (0..4u8)
        .map(|i| {
            let owner = name(&format!("t{i}.svc.example."));
            Record::from_rdata(owner, 5, RData::A(A(Ipv4Addr::new(10, 0, 0, i))))
        })
        .collect();
    let q = question("svc.example.", 33);
    let mut out = Vec::new();
    let layout = encode(
        &mut out,
        &mut Scratch::default(),
        header(),
        Some(&q),
        Sections::of(&answer),
        None,
        limits(1232, true),
    );
    assert_eq!(layout.rotations.len(), 1);
    let span = &layout.rotations[0];
    assert_eq!(span.lengths.len(), 4);
    let original = Message::from_vec(&out).unwrap();
    for by in 1..4usize {
        let mut rotated = out.clone();
        let start = usize::from(span.start);
        let split = start
            + span.lengths[..by]
                .iter()
                .map(|&l| usize::from(l))
                .sum::<usize>();
        let end = start + span.lengths.iter().map(|&l| usize::from(l)).sum::<usize>();
        let mut body = out[split..end].to_vec();
        body.extend_from_slice(&out[start..split]);
        rotated[start..end].copy_from_slice(&body);
        assert_well_formed(&rotated);
        let message = Message::from_vec(&rotated).unwrap();
        assert_eq!(message.answers[0], original.answers[by]);
        assert_eq!(message.additionals, original.additionals);
    }
}
