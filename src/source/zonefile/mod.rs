//! The zone-file source: every `*.zone` file of a directory (RFC 1035 master format).
//!
//! The origin is the file's first `$ORIGIN` (before any record), else its file name without
//! `.zone`. Loading validates everything (syntax, names outside the zone, duplicate zones,
//! files that are not regular files or are too large, includes leaving the directory) and
//! reports *all* problems with file and line ([`parse`] reads one file). The watcher reloads
//! the whole directory on any change (or SIGHUP) and hands the index one [`Update::Zones`]; a
//! broken edit is rejected with a log line and a metric, and the previous version keeps
//! serving. This module never touches a snapshot.

mod entries;
mod parse;
mod rdata;

pub use parse::{DEFAULT_MAX_BYTES, Limits};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use hickory_proto::rr::{Name, Record};
use thiserror::Error;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{SourceId, Update, ZoneContent, ZoneSet};
use crate::metrics::Metrics;
use crate::name_key::NameKey;

/// One problem in one zone file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub struct ZoneError {
    pub path: PathBuf,
    /// 1-based line, when it could be located.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

fn zone_err(path: &Path, line: Option<usize>, message: impl Into<String>) -> ZoneError {
    ZoneError {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// One loaded zone file.
#[derive(Debug, Clone)]
pub struct ZoneFile {
    pub origin: Name,
    pub records: Vec<Record>,
    /// The file's part of the zone serial: its SOA serial, else its modification time.
    pub serial: u32,
}

/// The serial a zone file contributes: its SOA's, else its modification time (Unix seconds),
/// so an edit of a file without an SOA still moves the zone's serial forward.
fn file_serial(path: &Path, records: &[Record]) -> u32 {
    let soa = records.iter().find_map(|r| match &r.data {
        hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
        _ => None,
    });
    soa.unwrap_or_else(|| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as u32)
    })
}

/// Load one zone file of the zone directory `dir`.
pub fn load_file(path: &Path, dir: &Path, limits: Limits) -> Result<ZoneFile, ZoneError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| zone_err(path, None, "file name is not valid UTF-8"))?;
    let mut default_origin = Name::from_ascii(stem)
        .map_err(|e| zone_err(path, None, format!("file name is not a domain name: {e}")))?;
    default_origin.set_fqdn(true);
    let (origin, records) = parse::parse_file(path, dir, default_origin, limits)
        .map_err(|e| zone_err(&e.path, e.line, e.message))?;
    let origin = origin.to_lowercase();
    if let Some(outside) = records.iter().find(|r| !origin.zone_of(&r.name)) {
        return Err(zone_err(
            path,
            None,
            format!("record {} is outside the zone {origin}", outside.name),
        ));
    }
    let soas = records
        .iter()
        .filter(|r| r.record_type() == hickory_proto::rr::RecordType::SOA)
        .count();
    if soas > 1 {
        return Err(zone_err(
            path,
            None,
            format!("{soas} SOA records; a zone has one"),
        ));
    }
    let serial = file_serial(path, &records);
    Ok(ZoneFile {
        origin,
        records,
        serial,
    })
}

/// The `*.zone` files of a directory, sorted.
fn zone_files(dir: &Path) -> Result<Vec<PathBuf>, ZoneError> {
    let read = std::fs::read_dir(dir).map_err(|e| zone_err(dir, None, e.to_string()))?;
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "zone"))
        .collect();
    files.sort();
    Ok(files)
}

/// Load every zone file of a directory, collecting every problem.
pub fn load_dir(dir: &Path, limits: Limits) -> Result<ZoneSet, Vec<ZoneError>> {
    let files = zone_files(dir).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut loaded: Vec<(ZoneFile, PathBuf)> = Vec::new();
    for path in files {
        match load_file(&path, dir, limits) {
            Ok(file) => {
                if let Some((_, first)) = loaded.iter().find(|(f, _)| f.origin == file.origin) {
                    errors.push(zone_err(
                        &path,
                        None,
                        format!(
                            "zone {} is already defined by {}",
                            file.origin,
                            first.display()
                        ),
                    ));
                    continue;
                }
                loaded.push((file, path));
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(zone_set(loaded.into_iter().map(|(f, _)| f).collect()))
}

/// Group the files' records by owner name, each name under its closest zone.
fn zone_set(files: Vec<ZoneFile>) -> ZoneSet {
    let mut by_name: BTreeMap<NameKey, Vec<Record>> = BTreeMap::new();
    let mut record_count = 0;
    let mut zones: Vec<ZoneContent> = Vec::new();
    for file in files {
        record_count += file.records.len();
        for record in file.records {
            by_name
                .entry(NameKey::new(&record.name))
                .or_default()
                .push(record);
        }
        zones.push(ZoneContent {
            origin: file.origin,
            serial: file.serial,
            names: Vec::new(),
        });
    }
    let keys: Vec<NameKey> = zones.iter().map(|z| NameKey::new(&z.origin)).collect();
    for (name, mut records) in by_name {
        // One RRset's records together (the encoder writes RRsets whole), each record once.
        records.sort_by_key(|r| u16::from(r.record_type()));
        records.dedup_by(|a, b| a.record_type() == b.record_type() && a.data == b.data);
        let closest = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| name.is_at_or_below(k))
            .max_by_key(|(_, k)| k.label_count())
            .map(|(i, _)| i);
        if let Some(i) = closest {
            zones[i].names.push((name, records.into()));
        }
    }
    ZoneSet {
        zones,
        record_count,
    }
}

/// How long to wait for an editor's burst of writes to settle before reloading.
const SETTLE: Duration = Duration::from_millis(150);

/// Watch `dir` and send a fresh [`Change::Reset`] after every change that loads cleanly.
/// Returns when the index is gone. The watcher is set up before this is spawned.
pub struct ZoneWatcher {
    dir: PathBuf,
    limits: Limits,
    events: mpsc::UnboundedReceiver<()>,
    trigger: mpsc::UnboundedSender<()>,
    _watcher: notify::RecommendedWatcher,
}

impl ZoneWatcher {
    /// Start watching a directory (errors if it cannot be watched).
    pub fn new(dir: &Path, limits: Limits) -> Result<Self, notify::Error> {
        use notify::Watcher;
        let (trigger, events) = mpsc::unbounded_channel();
        let tx = trigger.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(ZoneWatcher {
            dir: dir.to_path_buf(),
            limits,
            events,
            trigger,
            _watcher: watcher,
        })
    }

    /// A handle that asks for a reload (SIGHUP), as a change in the directory would.
    pub fn trigger(&self) -> mpsc::UnboundedSender<()> {
        self.trigger.clone()
    }

    /// Reload on every change until the index stops listening.
    pub async fn run(mut self, updates: mpsc::Sender<Update>, metrics: Arc<Metrics>) {
        while self.events.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while self.events.try_recv().is_ok() {}
            let dir = self.dir.clone();
            let limits = self.limits;
            let loaded = tokio::task::spawn_blocking(move || load_dir(&dir, limits)).await;
            match loaded {
                Ok(Ok(set)) => {
                    info!(
                        dir = %self.dir.display(),
                        zones = set.zones.len(),
                        records = set.record_count,
                        "zone files reloaded"
                    );
                    // The index gives the previous version's memory back once it is swapped
                    // out.
                    if updates.send(Update::Zones(set)).await.is_err() {
                        return;
                    }
                }
                Ok(Err(errors)) => {
                    metrics.reload_error(SourceId::Zones.as_str());
                    for e in errors {
                        error!("zone reload rejected, previous version keeps serving: {e}");
                    }
                    let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
                }
                Err(e) => {
                    metrics.reload_error(SourceId::Zones.as_str());
                    warn!("zone reload task failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = "$TTL 60\n@ IN SOA ns hostmaster 1 7200 1800 86400 5\n@ IN NS ns\nns IN A 192.0.2.1\nwww IN A 192.0.2.2\n";

    #[test]
    fn origin_from_file_name_and_directive() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "example.test.zone", GOOD);
        let file = load_file(&p, dir.path(), Limits::default()).unwrap();
        assert_eq!(file.origin.to_ascii(), "example.test.");
        assert_eq!(file.records.len(), 4);
        assert_eq!(file.serial, 1, "the SOA's serial");
        let p = write(
            dir.path(),
            "other.zone",
            &format!("$ORIGIN Other.Test.\n{GOOD}"),
        );
        assert_eq!(
            load_file(&p, dir.path(), Limits::default())
                .unwrap()
                .origin
                .to_ascii(),
            "other.test."
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{GOOD}bad IN A 999.1.1.1\nok IN A 192.0.2.3\n");
        let p = write(dir.path(), "example.test.zone", &text);
        let err = load_file(&p, dir.path(), Limits::default()).unwrap_err();
        assert_eq!(err.line, Some(6), "{err}");
        assert!(err.to_string().contains("example.test.zone:6:"), "{err}");
    }

    #[test]
    fn rejects_records_outside_zone_and_duplicate_zones_collecting_all() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.test.zone",
            &format!("{GOOD}elsewhere.org. IN A 192.0.2.9\n"),
        );
        write(dir.path(), "b.zone", &format!("$ORIGIN c.test.\n{GOOD}"));
        write(dir.path(), "c.test.zone", GOOD);
        let errors = load_dir(dir.path(), Limits::default()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].message.contains("outside the zone"));
        assert!(errors[1].message.contains("already defined"));
    }
}
