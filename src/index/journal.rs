//! The journal: recent versions of each zone, for incremental transfers (RFC 1995).
//!
//! Each publish that moves a zone's serial records `(serial, snapshot)` for that zone; the
//! persistent maps share everything a version did not change, so a version costs what its
//! change touched. At most [`DEPTH`] versions are kept per zone, and no more than the newest
//! ones whose changes add up to [`CHANGED_NAMES`] names: memory stays bounded when a zone file
//! is regenerated wholesale, and no IXFR is larger than that. An IXFR from an older serial is
//! answered in full (AXFR style).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::Snapshot;
use crate::name_key::NameKey;

/// Versions kept per zone.
pub const DEPTH: usize = 1024;

/// Names changed, summed over the versions kept after the oldest one.
pub const CHANGED_NAMES: usize = 100_000;

/// One version of a zone: its serial, the snapshot that first had it, and how many names
/// changed since the version before it.
struct Version {
    serial: u32,
    snapshot: Arc<Snapshot>,
    changed: usize,
}

/// One zone's versions, oldest first.
type Versions = VecDeque<Version>;

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
            let Some(last) = versions.back() else {
                versions.push_back(Version {
                    serial: zone.serial,
                    snapshot: snapshot.clone(),
                    changed: 0,
                });
                continue;
            };
            if last.serial == zone.serial {
                continue;
            }
            let changed = snapshot.changed_count(&last.snapshot, &zone.key, CHANGED_NAMES + 1);
            versions.push_back(Version {
                serial: zone.serial,
                snapshot: snapshot.clone(),
                changed,
            });
            trim(versions);
        }
    }

    /// The snapshot at which `zone` had `serial`.
    pub fn version(&self, zone: &NameKey, serial: u32) -> Option<Arc<Snapshot>> {
        let (_, versions) = self.zones.get(zone)?;
        versions
            .iter()
            .rev()
            .find(|v| v.serial == serial)
            .map(|v| v.snapshot.clone())
    }

    pub fn depths(&self) -> Vec<(Name, usize)> {
        self.zones
            .values()
            .map(|(name, v)| (name.clone(), v.len()))
            .collect()
    }
}

/// Drop the oldest versions beyond [`DEPTH`], and while the changes after the oldest kept
/// version add up to more than [`CHANGED_NAMES`] names.
fn trim(versions: &mut Versions) {
    let mut total: usize = versions.iter().skip(1).map(|v| v.changed).sum();
    while versions.len() > DEPTH || (versions.len() > 1 && total > CHANGED_NAMES) {
        versions.pop_front();
        if let Some(front) = versions.front() {
            total -= front.changed;
        }
    }
}
