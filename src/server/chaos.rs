//! Server identity in class CHAOS (RFC 4892): `version.bind`/`version.server` TXT gives the
//! version, `id.server`/`hostname.bind` TXT the host name, as Knot and NSD answer them (not
//! authoritative, TTL 0). Every other CHAOS question is refused.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::dns::Answer;

/// The answer to a CHAOS-class question.
pub fn answer(name: &Name, qtype: RecordType) -> Answer {
    let text = match name.to_lowercase().to_ascii().as_str() {
        "version.bind." | "version.server." => Some(format!("srvd {}", env!("CARGO_PKG_VERSION"))),
        "id.server." | "hostname.bind." => Some(hostname()),
        _ => None,
    };
    let Some(text) = text.filter(|_| matches!(qtype, RecordType::TXT | RecordType::ANY)) else {
        return Answer::error(ResponseCode::Refused);
    };
    let mut record = Record::from_rdata(name.clone(), 0, RData::TXT(TXT::new(vec![text])));
    record.dns_class = DNSClass::CH;
    let mut answer = Answer::error(ResponseCode::NoError);
    answer.answers.push(record);
    answer
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
