//! Which etcd services a query name covers, with CoreDNS `etcd` semantics.
//!
//! - every key at or below the name (a subtree), in key order;
//! - a `*` or `any` label in the query matches any one label;
//! - the zone apex reads `apex.dns.<zone>` instead of the whole zone;
//! - RFC 2782 names (`_web._tcp.<name>`) with nothing stored under them read `<name>` (so stock
//!   SRV clients find registrator's `/<prefix>/<zone>/web/<id>` keys);
//! - `group`: the group of the shortest grouped key wins; ungrouped keys always stay.

use crate::index::{NameKey, ServiceEntry, Snapshot, Zone};

fn is_wildcard(label: &[u8]) -> bool {
    label == b"*" || label == b"any"
}

/// The key of `<labels>.<zone>` (labels given root first).
fn below_zone(zone: &Zone, labels: &[&[u8]]) -> NameKey {
    NameKey::from_labels_root_first(zone.key.labels().chain(labels.iter().copied()))
}

/// The key a lookup of `key` really reads: the apex is redirected to `apex.dns.<zone>`.
fn effective_key(zone: &Zone, key: &NameKey) -> NameKey {
    if key == &zone.key {
        below_zone(zone, &[b"dns", b"apex"])
    } else {
        key.clone()
    }
}

/// The name below the two leading `_service._proto` labels, if the name has that form.
fn rfc2782_base(key: &NameKey) -> Option<NameKey> {
    let labels: Vec<&[u8]> = key.labels().collect();
    let n = labels.len();
    if n < 3 || !labels[n - 1].starts_with(b"_") || !labels[n - 2].starts_with(b"_") {
        return None;
    }
    Some(NameKey::from_labels_root_first(
        labels[..n - 2].iter().copied(),
    ))
}

fn subtree<'a>(snap: &'a Snapshot, key: &NameKey) -> Vec<&'a ServiceEntry> {
    let labels: Vec<&[u8]> = key.labels().collect();
    let Some(first_wild) = labels.iter().position(|l| is_wildcard(l)) else {
        return snap.services_below(key).map(|(_, s)| s).collect();
    };
    let prefix = NameKey::from_labels_root_first(labels[..first_wild].iter().copied());
    snap.services_below(&prefix)
        .filter(|(k, _)| {
            let mut have = k.labels();
            labels
                .iter()
                .all(|want| have.next().is_some_and(|l| is_wildcard(want) || l == *want))
        })
        .map(|(_, s)| s)
        .collect()
}

/// CoreDNS's group rule (see module docs); `entries` are in key order.
fn filter_groups(entries: Vec<&ServiceEntry>) -> Vec<&ServiceEntry> {
    let Some(first) = entries.first() else {
        return entries;
    };
    let depth = |e: &ServiceEntry| e.key.label_count();
    let mut group = first.service.group.as_deref();
    let mut shortest = depth(first);
    for e in &entries {
        if depth(e) < shortest {
            if e.service.group.is_none() {
                break;
            }
            shortest = depth(e);
            group = e.service.group.as_deref();
        }
    }
    let Some(group) = group else {
        return entries;
    };
    let mut kept = Vec::with_capacity(entries.len());
    for e in &entries {
        match e.service.group.as_deref() {
            None => kept.push(*e),
            Some(g) if depth(e) == shortest && g != group => return entries,
            Some(g) if g == group => kept.push(*e),
            Some(_) => {}
        }
    }
    kept
}

/// The services a query for `key` covers. `rfc2782` enables the `_svc._proto` fallback
/// (SRV queries).
pub fn services_for<'a>(
    snap: &'a Snapshot,
    zone: &Zone,
    key: &NameKey,
    rfc2782: bool,
) -> Vec<&'a ServiceEntry> {
    let key = effective_key(zone, key);
    let mut found = subtree(snap, &key);
    if let Some(base) = rfc2782_base(&key).filter(|_| found.is_empty() && rfc2782) {
        found = subtree(snap, &base);
    }
    filter_groups(found)
}

/// True when the name exists for any type: something is stored at or below it, a wildcard
/// query matches something, or it is an RFC 2782 name whose base has services.
pub fn name_exists(snap: &Snapshot, zone: &Zone, key: &NameKey) -> bool {
    if snap.name_exists(key) {
        return true;
    }
    if key.labels().any(is_wildcard) && !subtree(snap, key).is_empty() {
        return true;
    }
    key != &zone.key && rfc2782_base(key).is_some_and(|base| !subtree(snap, &base).is_empty())
}

/// Services at `ns.dns.<zone>` and below: the zone's name servers.
pub fn name_servers<'a>(snap: &'a Snapshot, zone: &Zone) -> Vec<&'a ServiceEntry> {
    subtree(snap, &below_zone(zone, &[b"dns", b"ns"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Service;
    use hickory_proto::rr::Name;

    fn entry(name: &str, group: Option<&str>) -> ServiceEntry {
        let mut service = Service::from_json(br#"{"host":"10.0.0.1"}"#).unwrap();
        service.group = group.map(Box::from);
        ServiceEntry {
            key: NameKey::new(&Name::from_ascii(name).unwrap()),
            service,
        }
    }

    fn names(v: &[&ServiceEntry]) -> Vec<String> {
        v.iter().map(|e| e.name().to_ascii()).collect()
    }

    #[test]
    fn group_rule_matches_coredns() {
        // (case, entries in key order, expected)
        let a = entry("a.x.example.", Some("g1"));
        let b = entry("b.sub.x.example.", Some("g2"));
        let c = entry("c.sub.x.example.", None);
        let d = entry("d.x.example.", Some("g2"));
        let cases: Vec<(&str, Vec<&ServiceEntry>, Vec<&str>)> = vec![
            ("no groups", vec![&c], vec!["c.sub.x.example."]),
            (
                "shortest group wins, ungrouped kept",
                vec![&b, &c, &a],
                vec!["c.sub.x.example.", "a.x.example."],
            ),
            (
                "disagreement at the same level keeps all",
                vec![&a, &d],
                vec!["a.x.example.", "d.x.example."],
            ),
        ];
        for (case, input, want) in cases {
            assert_eq!(names(&filter_groups(input)), want, "{case}");
        }
    }

    #[test]
    fn rfc2782_base_strips_two_underscore_labels() {
        let key = NameKey::new(&Name::from_ascii("_http._tcp.web.example.").unwrap());
        assert_eq!(
            rfc2782_base(&key),
            Some(NameKey::new(&Name::from_ascii("web.example.").unwrap()))
        );
        let key = NameKey::new(&Name::from_ascii("http._tcp.web.example.").unwrap());
        assert_eq!(rfc2782_base(&key), None);
    }
}
