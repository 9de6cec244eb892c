use super::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::{Name, RecordType};

fn packet(edns: Option<Edns>, op: OpCode, questions: usize) -> Vec<u8> {
    let mut m = Message::new(77, MessageType::Query, op);
    for _ in 0..questions {
        m.add_query(HQuery::query(
            Name::from_ascii("Web.Example.").unwrap(),
            RecordType::SRV,
        ));
    }
    if let Some(e) = edns {
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[test]
fn reads_a_plain_query_and_its_edns() {
    let plain = packet(None, OpCode::Query, 1);
    let q = Query::parse(&plain).unwrap();
    assert_eq!((q.id, q.qtype, q.qclass, q.edns), (77, 33, 1, None));
    assert_eq!(q.question.unwrap().len(), 13 + 4);

    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns.set_dnssec_ok(true);
    let q = packet(Some(edns), OpCode::Query, 1);
    assert_eq!(
        Query::parse(&q).unwrap().edns,
        Some(EdnsQuery {
            payload: 4096,
            version: 0,
            dnssec_ok: true
        })
    );
}

/// RFC 1035 §4.1.1 and RFC 6891 §6.1.1: what is dropped and what gets FORMERR, one rule for
/// every transport.
#[test]
fn malformed_queries_are_rejected_alike() {
    let plain = packet(None, OpCode::Query, 1);
    let flags = u16::from_be_bytes([plain[2], plain[3]]);
    let formerr = Err(Reject::FormErr {
        id: 77,
        flags,
        question: None,
    });
    let formerr_q = Err(Reject::FormErr {
        id: 77,
        flags,
        question: Some((12, 12 + 13 + 4)),
    });
    let mut response = plain.clone();
    response[2] |= 0x80;
    let mut broken_option = packet(Some(Edns::new()), OpCode::Query, 1);
    // OPT RDATA: one option whose length runs past the record.
    let n = broken_option.len();
    broken_option[n - 2..].copy_from_slice(&4u16.to_be_bytes());
    broken_option.extend_from_slice(&[0, 10, 0, 9]);
    let cases: Vec<(&str, Vec<u8>, Result<(), Reject>)> = vec![
        ("short", vec![0; 5], Err(Reject::Drop)),
        ("response", response, Err(Reject::Drop)),
        ("two questions", packet(None, OpCode::Query, 2), formerr),
        ("truncated", plain[..plain.len() - 1].to_vec(), formerr),
        (
            "trailing bytes",
            [plain.clone(), vec![0]].concat(),
            formerr_q,
        ),
        ("broken EDNS option", broken_option, formerr_q),
    ];
    for (case, bytes, want) in cases {
        assert_eq!(Query::parse(&bytes).map(|_| ()), want, "{case}");
    }
    let notify = packet(None, OpCode::Notify, 1);
    assert_eq!(Query::parse(&notify).unwrap().opcode, 4);
    let none = packet(None, OpCode::Query, 0);
    assert!(Query::parse(&none).unwrap().question.is_none());
}
