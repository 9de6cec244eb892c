//! The hickory [`RequestHandler`]: protocol rules around [`lookup`](super::lookup).
//!
//! - EDNS (RFC 6891 §6.1.1): an OPT record only when the query had one; we advertise
//!   [`EDNS_PAYLOAD`] and truncate UDP at `min(client, ours)`; version > 0 gets BADVERS
//!   (§6.1.3); unknown options and flags are ignored.
//! - Opcodes other than QUERY get NOTIMP; zero or several questions get FORMERR; classes
//!   other than IN and zone transfers get REFUSED.
//!
//! Encoding (and TC on overflow) is hickory's. This handler never awaits anything but the send.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::debug;

use super::answer::Answer;
use super::lookup::lookup;
use crate::index::IndexHandle;
use crate::metrics::Metrics;

/// UDP payload size we advertise (the DNS flag day 2020 recommendation).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Answers queries from the current snapshot.
pub struct DnsHandler {
    index: IndexHandle,
    metrics: Arc<Metrics>,
}

impl DnsHandler {
    pub fn new(index: IndexHandle, metrics: Arc<Metrics>) -> Self {
        DnsHandler { index, metrics }
    }

    /// Decide the answer for a request (everything but encoding).
    fn answer(&self, request: &Request) -> (Answer, RecordType) {
        let error = |rcode| {
            let mut a = Answer::refused();
            a.rcode = rcode;
            a
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return (error(ResponseCode::BADVERS), RecordType::NULL);
        }
        if request.metadata.op_code != OpCode::Query {
            return (error(ResponseCode::NotImp), RecordType::NULL);
        }
        let Ok(info) = request.request_info() else {
            return (error(ResponseCode::FormErr), RecordType::NULL);
        };
        let query = info.query.original();
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            return (error(ResponseCode::Refused), qtype);
        }
        let snapshot = self.index.load();
        (lookup(&snapshot, query.name(), qtype), qtype)
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let (answer, qtype) = self.answer(request);

        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(theirs.max_payload().clamp(512, EDNS_PAYLOAD));
            ours.set_version(0);
            ours
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.recursion_available = false;
        metadata.response_code = answer.rcode;
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        let result = response_handle.send_response(response).await;
        self.metrics.query(qtype, answer.rcode, started.elapsed());
        match result {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, "failed to send response");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
