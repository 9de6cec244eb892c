//! The hickory [`RequestHandler`] serving TCP: the protocol rules shared with UDP
//! (`respond::decide`, `respond::response_edns`) around [`lookup`](super::lookup), encoded by
//! hickory. This handler never awaits anything but the send.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Header, HeaderCounts};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::debug;

use super::respond::{decide, response_edns, response_metadata};
use crate::index::IndexHandle;
use crate::metrics::Metrics;

/// Answers queries from the current snapshot.
pub struct DnsHandler {
    index: IndexHandle,
    metrics: Arc<Metrics>,
}

impl DnsHandler {
    pub fn new(index: IndexHandle, metrics: Arc<Metrics>) -> Self {
        DnsHandler { index, metrics }
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
        let question = request
            .request_info()
            .ok()
            .map(|info| info.query.original());
        let snapshot = self.index.load();
        let (answer, qtype) = decide(
            &snapshot,
            request.edns.as_ref(),
            request.metadata.op_code,
            question,
        );
        let edns = response_edns(request.edns.as_ref());
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let metadata = response_metadata(&request.metadata, &answer);
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
