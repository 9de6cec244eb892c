//! The journal: recent versions of each zone, for incremental transfers (RFC 1995).
//!
//! Each publish that moves a zone's serial records `(serial, snapshot)` for that zone; the
//! persistent maps share everything a version did not change, so a version costs what its
//! change touched. At most [`DEPTH`] versions are kept per zone; an IXFR from an older serial
//! is answered in full (AXFR style).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::Snapshot;
use crate::name_key::NameKey;

/// Versions kept per zone.
pub const DEPTH: usize = 1024;

/// One zone's versions: serial and the snapshot that first had it, oldest first.
type Versions = VecDeque<(u32, Arc<Snapshot>)>;

/// Recent versions per zone.
#[derive(Default)]
pub struct Journal {
    zones: HashMap<NameKey, (Name, Versions)>,
}

impl Journal {
    /// Note the zones whose serial `snapshot` moves; forget zones it no longer serves.
    pub fn record(&mut self, snapshot: &Arc<Snapshot>) {
        self.zones
            .retain(|key, _| snapshot.zones().iter().any(|z| &z.key == key));
        for zone in snapshot.zones() {
            let (_, versions) = self
                .zones
                .entry(zone.key.clone())
                .or_insert_with(|| (zone.origin.clone(), VecDeque::new()));
            if versions
                .back()
                .is_some_and(|(serial, _)| *serial == zone.serial)
            {
                continue;
            }
            versions.push_back((zone.serial, snapshot.clone()));
            if versions.len() > DEPTH {
                versions.pop_front();
            }
        }
    }

    /// The snapshot at which `zone` had `serial`.
    pub fn version(&self, zone: &NameKey, serial: u32) -> Option<Arc<Snapshot>> {
        let (_, versions) = self.zones.get(zone)?;
        versions
            .iter()
            .rev()
            .find(|(s, _)| *s == serial)
            .map(|(_, snap)| snap.clone())
    }

    pub fn depths(&self) -> Vec<(Name, usize)> {
        self.zones
            .values()
            .map(|(name, v)| (name.clone(), v.len()))
            .collect()
    }
}
