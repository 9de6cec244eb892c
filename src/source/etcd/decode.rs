//! Decoding etcd keys and values into the source's types: a key into its name (and spelling),
//! a key/value into a [`ServiceEntry`]. A bad key or value is skipped with a warning naming
//! the key and the bad-value metric; nothing here talks to etcd.

use etcd_client::KeyValue;
use tracing::warn;

use super::EtcdSource;
use crate::record::Service;
use crate::source::{EtcdKey, ServiceEntry, SourceId};

impl EtcdSource {
    /// The identity of a key, or `None` when it names no served record.
    pub(super) fn etcd_key(&self, raw: &[u8]) -> Option<EtcdKey> {
        let name = self.mapper.name_key_of(raw).ok()?;
        Some(EtcdKey {
            name,
            spelling: self.mapper.spelling(raw),
        })
    }

    /// Decode a key/value into an entry; `None` (after a warning and a metric) when the key or
    /// value is bad. Its lease must have been resolved.
    pub(super) fn decode(&self, kv: &KeyValue) -> Option<ServiceEntry> {
        let key = String::from_utf8_lossy(kv.key());
        let key_name = match self.mapper.name_key_of(kv.key()) {
            Ok(name) => name,
            Err(e) => {
                warn!(key = %key, "skipping etcd key: {e}");
                self.metrics.bad_value(SourceId::Etcd.as_str());
                return None;
            }
        };
        let mut service = match Service::from_json(kv.value()) {
            Ok(service) => service,
            Err(e) => {
                warn!(key = %key, "skipping etcd value: {e}");
                self.metrics.bad_value(SourceId::Etcd.as_str());
                return None;
            }
        };
        if kv.lease() != 0 {
            service.lease_ttl = Some(self.leases.get(kv.lease()).unwrap_or(1));
        }
        Some(ServiceEntry {
            key: key_name,
            spelling: self.mapper.spelling(kv.key()),
            service,
        })
    }
}
