//! [`Answer`]: what the lookup hands to the wire stage.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Record;

/// The result of one lookup: rcode and the three record sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// We are authoritative for the question's zone.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    /// An empty authoritative NOERROR answer, to be filled.
    pub fn authoritative() -> Self {
        Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }

    /// The name is in none of our zones.
    pub fn refused() -> Self {
        Answer {
            rcode: ResponseCode::Refused,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }

    /// An error reply (FORMERR, NOTIMP, BADVERS, REFUSED...): not authoritative, no records.
    pub fn error(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            ..Answer::refused()
        }
    }

    /// Add an additional record unless an equal one is already there.
    pub fn push_additional(&mut self, record: Record) {
        let dup = self
            .additionals
            .iter()
            .chain(self.answers.iter())
            .any(|r| r.name == record.name && r.data == record.data);
        if !dup {
            self.additionals.push(record);
        }
    }
}
