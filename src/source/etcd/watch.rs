//! Following the watch stream after a snapshot: one task reads the stream (and checks its
//! first response for a rewound history), another decodes each response (lease look-ups
//! included) and hands its events to the index in order, advancing the position; a probe
//! keeps the staleness figure true while nothing changes.

use std::sync::Arc;

use etcd_client::{Client, EventType, KeyValue, WatchOptions, WatchResponse};
use tokio::sync::mpsc;
use tracing::debug;

use super::{
    EtcdChange, EtcdError, EtcdSource, EtcdStatus, MAX_MESSAGE, PROBE_EVERY, Position, READ_AHEAD,
};

impl EtcdSource {
    /// Apply watch events from `from` on. One task reads the stream; this one decodes (lease
    /// look-ups included) and hands over, advancing `position` after each response.
    pub(super) async fn watch(
        &mut self,
        client: &Client,
        from: i64,
        position: &mut Position,
    ) -> Result<(), EtcdError> {
        let options = WatchOptions::new().with_prefix().with_start_revision(from);
        let stream = client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .watch(self.mapper.watch_prefix(), Some(options))
            .await
            .map_err(EtcdError::from_client)?;
        debug!(from, "etcd watch started");
        let (responses, mut received) = mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(read_watch(stream, self.status.clone(), responses, from));
        let result = async {
            while let Some(response) = received.recv().await {
                self.backoff.reset();
                self.apply_watch_response(client, response, position)
                    .await?;
            }
            Ok(())
        }
        .await;
        let read_result = match result {
            Ok(()) => reader.await.unwrap_or(Err(EtcdError::StreamEnded)),
            Err(e) => {
                reader.abort();
                Err(e)
            }
        };
        read_result.and(Err(EtcdError::StreamEnded))
    }

    pub(super) async fn apply_watch_response(
        &mut self,
        client: &Client,
        response: WatchResponse,
        position: &mut Position,
    ) -> Result<(), EtcdError> {
        let events = response.events();
        let leases = events
            .iter()
            .filter(|e| e.event_type() == EventType::Put)
            .filter_map(|e| e.kv().map(KeyValue::lease));
        self.leases.resolve(client, leases).await?;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let revision = kv.mod_revision();
            let put = event.event_type() == EventType::Put;
            let change = match (put, self.decode(kv)) {
                (true, Some(entry)) => Some(EtcdChange::Put { revision, entry }),
                // A key whose new value is bad must not keep serving its old value.
                _ => self
                    .etcd_key(kv.key())
                    .map(|key| EtcdChange::Delete { revision, key }),
            };
            if let Some(change) = change {
                self.send(change).await?;
            }
            position.resume = Some(revision + 1);
            position.last_event = Some((kv.key().to_vec(), put));
        }
        Ok(())
    }
}

/// Read a watch stream into `out` until it fails; checks the stream's first (created)
/// response for a rewound history.
async fn read_watch(
    mut stream: etcd_client::WatchStream,
    status: Arc<EtcdStatus>,
    out: mpsc::Sender<WatchResponse>,
    from: i64,
) -> Result<(), EtcdError> {
    loop {
        let Some(response) = stream.message().await.map_err(EtcdError::from_client)? else {
            return Err(EtcdError::StreamEnded);
        };
        status.contact();
        if response.created() {
            let current = response.header().map_or(i64::MAX, |h| h.revision());
            if current < from - 1 {
                return Err(EtcdError::Rewound(format!(
                    "revision went back from {} to {current}",
                    from - 1
                )));
            }
        }
        if response.canceled() {
            if response.compact_revision() > 0 {
                return Err(EtcdError::Compacted);
            }
            return Err(EtcdError::Cancelled(response.cancel_reason().to_string()));
        }
        if response.events().is_empty() {
            continue;
        }
        if out.send(response).await.is_err() {
            return Ok(());
        }
    }
}

/// Probe the connection every second so staleness is known even when nothing changes, and
/// report a changed cluster (an etcd replaced under us).
pub(super) async fn probe(
    mut client: Client,
    status: Arc<EtcdStatus>,
    cluster_id: u64,
    rewound: mpsc::Sender<String>,
) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Ok(Ok(response)) = tokio::time::timeout(PROBE_EVERY * 2, client.status()).await else {
            continue;
        };
        status.contact();
        let now = response.header().map_or(0, |h| h.cluster_id());
        if cluster_id != 0 && now != 0 && now != cluster_id {
            let _ = rewound
                .send(format!("cluster id changed from {cluster_id:x} to {now:x}"))
                .await;
            return;
        }
    }
}
