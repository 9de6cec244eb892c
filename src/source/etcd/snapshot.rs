//! Reading a consistent snapshot of the prefix: page by page at one revision, each page
//! decoded while etcd reads the next, handed to the index as the parts of one reset, with the
//! revision that last changed each served domain. Only reading etcd and handing over here;
//! the watch that follows is in the parent module.

use std::sync::Arc;

use etcd_client::{Client, GetOptions, GetResponse, KeyValue, KvClient};
use hickory_proto::rr::Name;
use tokio_util::task::AbortOnDropHandle;
use tracing::info;

use super::{EtcdError, EtcdSource, MAX_MESSAGE, PAGE, Position, history, prefix_end};
use crate::name_key::NameKey;
use crate::source::{EtcdChange, Part, ServiceEntry};

impl EtcdSource {
    /// The served domain a key's name falls in (the closest).
    pub(super) fn domain_of(&self, name: &NameKey) -> Option<usize> {
        self.domain_keys
            .iter()
            .enumerate()
            .filter(|(_, (d, _))| name.is_at_or_below(d))
            .max_by_key(|(_, (_, labels))| *labels)
            .map(|(i, _)| i)
    }

    /// The served domain of a raw etcd key, if it names a record.
    pub(super) fn domain_of_raw(&self, raw: &[u8]) -> Option<usize> {
        self.etcd_key(raw).and_then(|key| self.domain_of(&key.name))
    }

    /// Read the whole prefix at one revision and hand it to the index page by page as one
    /// split reset (the index swaps it in only when the last page is in).
    pub(super) async fn snapshot(
        &mut self,
        client: &Client,
        position: &mut Position,
    ) -> Result<(), EtcdError> {
        let prefix = self.mapper.watch_prefix().into_bytes();
        let end: Arc<[u8]> = prefix_end(&prefix).into();
        let kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
        let mut total = 0;
        self.leases.clear();
        self.domain_revisions = vec![0; self.settings.domains.len()];
        // Page 0 at etcd's current revision; every later page at that same revision.
        let mut response = self.read_page(kv.clone(), prefix, end.clone(), 0).await?;
        let header = response.header();
        let revision = header.map_or(0, |h| h.revision());
        position.cluster_id = header.map_or(0, |h| h.cluster_id());
        for page in 0.. {
            let kvs = response.take_kvs();
            // An empty page cannot advance `start`: treat it as the end, never loop on it.
            let more = response.more() && !kvs.is_empty();
            // etcd reads the next page while this one is decoded and handed over.
            let next = kvs.last().filter(|_| more).map(|last| {
                let mut start = last.key().to_vec();
                start.push(0);
                let read = self.read_page(kv.clone(), start, end.clone(), revision);
                AbortOnDropHandle::new(tokio::spawn(read))
            });
            let entries = self.page_entries(client, kvs).await?;
            total += entries.len();
            if !more {
                self.domain_revisions = self.last_domain_changes(client, revision).await;
            }
            self.send(EtcdChange::Reset {
                revision,
                part: Part::of_page(page, more),
                entries,
                domains: self.domains_with_revisions(),
            })
            .await?;
            let Some(next) = next else { break };
            response = next.await.map_err(|e| EtcdError::Task(e.to_string()))??;
        }
        info!(revision, keys = total, "etcd snapshot loaded");
        self.metrics.etcd_resync();
        self.backoff.reset();
        position.resume = Some(revision + 1);
        position.last_event = None;
        Ok(())
    }

    /// Range-read one page from `start` up to `end`, at `revision` (0: the current one). The
    /// future owns what it needs, so the next page can be read while one is decoded.
    pub(super) fn read_page(
        &self,
        mut kv: KvClient,
        start: Vec<u8>,
        end: Arc<[u8]>,
        revision: i64,
    ) -> impl std::future::Future<Output = Result<GetResponse, EtcdError>> + Send + 'static {
        let status = self.status.clone();
        async move {
            let mut options = GetOptions::new().with_range(&*end).with_limit(PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let response = kv
                .get(start, Some(options))
                .await
                .map_err(EtcdError::from_client)?;
            status.contact();
            Ok(response)
        }
    }

    /// Decode one snapshot page into entries, noting the revision that changed each domain.
    pub(super) async fn page_entries(
        &mut self,
        client: &Client,
        kvs: Vec<KeyValue>,
    ) -> Result<Vec<ServiceEntry>, EtcdError> {
        self.leases
            .resolve(client, kvs.iter().map(KeyValue::lease))
            .await?;
        let mut entries = Vec::with_capacity(kvs.len());
        for kv in &kvs {
            let entry = self.decode(kv);
            // Bad values count too: the watch path counts them as the key's removal.
            let domain = match &entry {
                Some(entry) => self.domain_of(&entry.key),
                None => self.domain_of_raw(kv.key()),
            };
            if let Some(d) = domain {
                self.domain_revisions[d] = self.domain_revisions[d].max(kv.mod_revision());
            }
            entries.extend(entry);
        }
        Ok(entries)
    }

    /// The revision that last changed each domain as of `revision`, deletes included.
    pub(super) async fn last_domain_changes(&self, client: &Client, revision: i64) -> Vec<i64> {
        history::last_changes(
            client,
            &self.mapper.watch_prefix(),
            revision,
            &self.domain_revisions,
            |raw| self.domain_of_raw(raw),
        )
        .await
    }

    pub(super) fn domains_with_revisions(&self) -> Vec<(Name, i64)> {
        self.settings
            .domains
            .iter()
            .cloned()
            .zip(self.domain_revisions.iter().copied())
            .collect()
    }
}
