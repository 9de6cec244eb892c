use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// An encoded reply to `qname A`: one A record, or (NXDOMAIN) the zone's SOA in authority.
fn reply(qname: &str, rcode: ResponseCode, edns: bool) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Response, hickory_proto::op::OpCode::Query);
    m.metadata.response_code = rcode;
    m.add_query(Query::query(name(qname), RecordType::A));
    if rcode == ResponseCode::NoError {
        m.add_answer(Record::from_rdata(
            name(qname),
            5,
            RData::A(A::new(10, 0, 0, 1)),
        ));
    } else {
        let soa = SOA::new(name("ns.example."), name("h.example."), 1, 2, 3, 4, 5);
        m.add_authority(Record::from_rdata(name("example."), 5, RData::SOA(soa)));
    }
    if edns {
        m.set_edns(Edns::new());
    }
    m.to_vec().unwrap()
}

fn limiter(rate: u32, slip: u32) -> Limiter {
    Limiter::new(RrlSettings {
        rate,
        slip,
        ..RrlSettings::default()
    })
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn off_when_the_rate_is_zero() {
    assert!(Limiter::new(RrlSettings::default()).is_none());
}

#[test]
fn one_prefix_gets_rate_replies_per_answer_then_is_limited() {
    let rrl = limiter(5, 0);
    let www = reply("www.example.", ResponseCode::NoError, false);
    let sent = (0..20)
        .filter(|_| rrl.check(ip("192.0.2.1"), &www) == Verdict::Send)
        .count();
    assert_eq!(sent, 5, "a burst of one second's worth");
    // Same /24, same answer: the same bucket.
    assert_eq!(rrl.check(ip("192.0.2.200"), &www), Verdict::Drop);
    // Another prefix, or another answer: their own buckets.
    assert_eq!(rrl.check(ip("198.51.100.1"), &www), Verdict::Send);
    let api = reply("api.example.", ResponseCode::NoError, false);
    assert_eq!(rrl.check(ip("192.0.2.1"), &api), Verdict::Send);
}

#[test]
fn nxdomain_for_random_names_of_one_zone_shares_the_zones_bucket() {
    let rrl = limiter(3, 0);
    let sent = (0..10)
        .filter(|i| {
            let nx = reply(&format!("r{i}.example."), ResponseCode::NXDomain, false);
            rrl.check(ip("2001:db8::1"), &nx) == Verdict::Send
        })
        .count();
    assert_eq!(sent, 3);
}

#[test]
fn every_slip_th_limited_reply_is_sent_truncated() {
    let rrl = limiter(1, 2);
    let www = reply("www.example.", ResponseCode::NoError, true);
    assert_eq!(rrl.check(ip("192.0.2.1"), &www), Verdict::Send);
    let verdicts: Vec<Verdict> = (0..4).map(|_| rrl.check(ip("192.0.2.1"), &www)).collect();
    assert_eq!(
        verdicts,
        [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
    );
}

#[test]
fn rfc6891_a_slipped_reply_is_truncated_empty_and_keeps_opt() {
    let mut www = reply("www.example.", ResponseCode::NoError, true);
    slip(&mut www);
    let m = Message::from_vec(&www).unwrap();
    assert!(m.metadata.truncation);
    assert_eq!(m.queries.len(), 1);
    assert!(m.answers.is_empty() && m.authorities.is_empty());
    assert!(m.edns.is_some(), "OPT kept");
    let mut plain = reply("www.example.", ResponseCode::NoError, false);
    slip(&mut plain);
    let m = Message::from_vec(&plain).unwrap();
    assert!(m.edns.is_none() && m.metadata.truncation);
}
