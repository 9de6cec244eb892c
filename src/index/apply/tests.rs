use super::*;
use crate::index::Read;
use crate::record::Service;
use crate::source::{Part, ZoneContent};
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::A;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn key(s: &str) -> NameKey {
    NameKey::new(&name(s))
}

fn entry(owner: &str, host: &str) -> ServiceEntry {
    ServiceEntry {
        key: key(owner),
        spelling: None,
        service: Service::from_json(format!(r#"{{"host":"{host}"}}"#).as_bytes()).unwrap(),
    }
}

fn service(i: u8) -> ServiceEntry {
    entry(&format!("{i}.web.example."), &format!("10.0.0.{i}"))
}

fn reset(revision: i64, part: Part, entries: Vec<ServiceEntry>) -> Update {
    Update::Etcd(EtcdChange::Reset {
        revision,
        part,
        entries,
        domains: vec![(name("example."), revision)],
    })
}

fn put(revision: i64, entry: ServiceEntry) -> Update {
    Update::Etcd(EtcdChange::Put { revision, entry })
}

fn delete(revision: i64, owner: &str, spelling: Option<&str>) -> Update {
    Update::Etcd(EtcdChange::Delete {
        revision,
        key: EtcdKey {
            name: key(owner),
            spelling: spelling.map(crate::record::Note::from),
        },
    })
}

fn zone_files(origin: &str, serial: u32, owners: &[&str]) -> Update {
    let names = owners
        .iter()
        .map(|o| {
            let record = Record::from_rdata(name(o), 60, RData::A(A::new(192, 0, 2, 1)));
            (key(o), Arc::from(vec![record]))
        })
        .collect();
    Update::Zones(ZoneSet {
        zones: vec![ZoneContent {
            origin: name(origin),
            serial,
            names,
        }],
        record_count: owners.len(),
    })
}

fn indexer() -> (IndexHandle, Indexer) {
    let handle = IndexHandle::default();
    let indexer = Indexer::new(handle.clone());
    (handle, indexer)
}

#[test]
fn nothing_is_visible_before_publish_and_resets_replace_whole() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(7, Part::Whole, vec![service(1), service(2)]));
    assert_eq!(handle.load().names_from(SourceId::Etcd), 0);
    indexer.publish();
    let snap = handle.load();
    assert_eq!(snap.names_from(SourceId::Etcd), 2);
    assert_eq!(snap.etcd_revision, 7);
    assert!(snap.is_loaded(&[SourceId::Etcd]));
    assert!(!snap.is_loaded(&[SourceId::Etcd, SourceId::Zones]));

    indexer.apply(delete(8, "1.web.example.", None));
    indexer.apply(reset(9, Part::Whole, vec![service(3)]));
    indexer.publish();
    let snap = handle.load();
    let keys: Vec<_> = snap
        .services_below(&key("example."))
        .map(|s| s.name().to_ascii())
        .collect();
    assert_eq!(keys, vec!["3.web.example."]);
    assert_eq!(snap.etcd_revision, 9);
    assert_eq!(snap.generation, 2);
}

#[test]
fn a_split_reset_is_published_only_when_complete() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(5, Part::First, vec![service(1)]));
    indexer.publish();
    indexer.apply(reset(5, Part::Middle, vec![service(2)]));
    indexer.publish();
    assert_eq!(
        handle.load().names_from(SourceId::Etcd),
        0,
        "nothing half-applied"
    );
    assert!(!handle.load().is_loaded(&[SourceId::Etcd]));
    indexer.apply(reset(5, Part::Last, vec![service(3)]));
    indexer.publish();
    assert_eq!(handle.load().names_from(SourceId::Etcd), 3);
    // A new split reset starting over discards a half-received one.
    indexer.apply(reset(6, Part::First, vec![service(4)]));
    indexer.apply(reset(6, Part::First, vec![service(5)]));
    indexer.apply(reset(6, Part::Last, vec![]));
    indexer.publish();
    assert_eq!(handle.load().names_from(SourceId::Etcd), 1);
}

/// Issue #10: a zone-file reload arriving while an etcd snapshot is still coming in pages
/// used to throw the pages already received away.
#[test]
fn zone_reload_during_a_split_etcd_reset_loses_no_etcd_page() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(5, Part::First, vec![service(1)]));
    indexer.apply(zone_files("static.test.", 1, &["www.static.test."]));
    indexer.apply(reset(5, Part::Middle, vec![service(2)]));
    indexer.apply(zone_files("static.test.", 2, &["www.static.test."]));
    indexer.apply(reset(5, Part::Last, vec![service(3)]));
    indexer.publish();
    let snap = handle.load();
    assert_eq!(snap.names_from(SourceId::Etcd), 3);
    assert_eq!(snap.names_from(SourceId::Zones), 1);
}

/// Issue #10: while etcd has a half-loaded snapshot, zone-file edits must still be served.
#[test]
fn a_pending_etcd_reset_does_not_hold_back_zone_file_edits() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(5, Part::First, vec![service(1)]));
    indexer.apply(zone_files("static.test.", 1, &["www.static.test."]));
    indexer.publish();
    let snap = handle.load();
    assert_eq!(snap.names_from(SourceId::Zones), 1, "zone files published");
    assert_eq!(snap.names_from(SourceId::Etcd), 0, "etcd still staged");
    assert!(snap.is_loaded(&[SourceId::Zones]));
    assert!(!snap.is_loaded(&[SourceId::Etcd]));
}

/// Issue #12: keys that differ only in letter case are one name; each is kept, deleting one
/// leaves the other.
#[test]
fn keys_differing_in_case_are_kept_apart() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(1, Part::Whole, vec![]));
    let mut upper = entry("a.case.example.", "10.0.0.1");
    upper.spelling = Some("example/case/A".into());
    let lower = entry("a.case.example.", "10.0.0.2");
    indexer.apply(put(2, upper));
    indexer.apply(put(3, lower));
    indexer.publish();
    let snap = handle.load();
    assert_eq!(snap.services_at(&key("a.case.example.")).len(), 2);
    indexer.apply(delete(4, "a.case.example.", Some("example/case/A")));
    indexer.publish();
    let snap = handle.load();
    let left = snap.services_at(&key("a.case.example."));
    assert_eq!(left.len(), 1);
    assert!(left[0].spelling.is_none());
    indexer.apply(delete(5, "a.case.example.", None));
    indexer.publish();
    assert!(!handle.load().name_exists(&key("a.case.example.")));
}

#[test]
fn stamps_cover_the_changed_name_and_its_ancestors_only() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(
        1,
        Part::Whole,
        vec![service(1), entry("1.db.example.", "10.1.0.1")],
    ));
    indexer.publish();
    let before = handle.load().generation;
    indexer.apply(put(2, service(2)));
    indexer.publish();
    let snap = handle.load();
    let sub = |s: &str| Read::Subtree(key(s));
    assert!(snap.unchanged_since(&[sub("db.example."), sub("1.web.example.")], before));
    assert!(snap.unchanged_since(&[Read::Exact(key("web.example."))], before));
    for changed in [sub("2.web.example."), sub("web.example."), sub("example.")] {
        assert!(
            !snap.unchanged_since(std::slice::from_ref(&changed), before),
            "{changed:?}"
        );
    }
    assert!(!snap.unchanged_since(&[Read::Exact(key("2.web.example."))], before));
}

/// A cache check a few publishes back reads the recent changed names; one many publishes
/// back falls back to the stamps. Both must say the same.
#[test]
fn recent_changes_and_stamps_agree_on_what_changed() {
    let (handle, mut indexer) = indexer();
    indexer.apply(reset(1, Part::Whole, vec![service(1)]));
    indexer.publish();
    let start = handle.load().generation;
    for i in 0..100 {
        let owner = format!("{i}.other.example.");
        indexer.apply(put(2 + i, entry(&owner, "10.2.0.1")));
        indexer.publish();
    }
    let last_other = handle.load().generation;
    indexer.apply(put(200, service(2)));
    indexer.publish();
    let snap = handle.load();
    let sub = |s: &str| Read::Subtree(key(s));
    // 101 changes since `start`: more than one check compares, so the stamps decide.
    assert!(snap.unchanged_since(&[sub("1.web.example.")], start));
    assert!(!snap.unchanged_since(&[sub("other.example.")], start));
    assert!(!snap.unchanged_since(&[sub("web.example.")], start));
    // One change since `last_other`: the recent list decides.
    assert!(snap.unchanged_since(&[sub("other.example.")], last_other));
    assert!(snap.unchanged_since(&[Read::Exact(key("web.example."))], last_other));
    assert!(!snap.unchanged_since(&[sub("web.example.")], last_other));
    assert!(!snap.unchanged_since(&[Read::Exact(key("2.web.example."))], last_other));
}

#[test]
fn zone_serials_follow_the_last_change_of_each_zone() {
    let (handle, mut indexer) = indexer();
    indexer.apply(Update::Etcd(EtcdChange::Reset {
        revision: 10,
        part: Part::Whole,
        entries: vec![service(1)],
        domains: vec![(name("example."), 8), (name("other."), 3)],
    }));
    indexer.publish();
    let serial = |snap: &Snapshot, z: &str| {
        snap.zones()
            .iter()
            .find(|zone| zone.key == key(z))
            .unwrap()
            .serial
    };
    let snap = handle.load();
    assert_eq!((serial(&snap, "example."), serial(&snap, "other.")), (8, 3));
    indexer.apply(put(11, service(2)));
    indexer.publish();
    let snap = handle.load();
    assert_eq!(
        (serial(&snap, "example."), serial(&snap, "other.")),
        (11, 3)
    );
    // A zone file of the same zone adds its own part.
    indexer.apply(zone_files("example.", 1000, &["www.example."]));
    indexer.publish();
    assert_eq!(serial(&handle.load(), "example."), 1011);
}

/// A reload that changes one record keeps every other name's records (the same allocation),
/// so the versions the journal holds share them.
#[test]
fn a_zone_reload_shares_the_unchanged_names_with_the_previous_version() {
    let (handle, mut indexer) = indexer();
    let owners: Vec<String> = (0..50).map(|i| format!("h{i}.example.")).collect();
    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
    indexer.apply(zone_files("example.", 1, &owners));
    indexer.publish();
    let before = handle.load();
    indexer.apply(zone_files("example.", 2, &owners));
    indexer.publish();
    let after = handle.load();
    let shared = owners
        .iter()
        .filter(|o| {
            let (a, b) = (&before.records[&key(o)], &after.records[&key(o)]);
            Arc::ptr_eq(a, b)
        })
        .count();
    assert_eq!(shared, owners.len(), "unchanged names keep their records");
}

/// The journal keeps versions until their changes add up to its budget of names: a zone
/// regenerated wholesale keeps only its newest version (memory stays bounded).
#[test]
fn the_journal_drops_versions_beyond_its_budget_of_changed_names() {
    let (handle, mut indexer) = indexer();
    let small: Vec<&str> = vec!["a.example.", "b.example."];
    for serial in 1..=3 {
        indexer.apply(zone_files("example.", serial, &small));
        indexer.publish();
    }
    let depth = |h: &IndexHandle| h.journal_depths()[0].1;
    assert_eq!(depth(&handle), 3, "small changes: every version kept");
    let many: Vec<String> = (0..crate::index::journal::CHANGED_NAMES + 10)
        .map(|i| format!("n{i}.example."))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    indexer.apply(zone_files("example.", 4, &many));
    indexer.publish();
    assert_eq!(
        depth(&handle),
        1,
        "a change over the budget leaves the newest version only"
    );
    assert!(handle.version(&key("example."), 3).is_none());
    assert!(handle.version(&key("example."), 4).is_some());
}
