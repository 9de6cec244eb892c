//! Which etcd services a query name covers, with CoreDNS `etcd` semantics.
//!
//! - every key at or below the name (a subtree), in key order;
//! - a `*` or `any` label in the query matches any one label (and everything below it);
//! - the zone apex asked for addresses reads `apex.dns.<zone>`, or the whole zone when nothing
//!   is stored there;
//! - RFC 2782 names (`_web._tcp.<name>`) with nothing stored under them read `<name>` (so stock
//!   SRV clients find registrator's `/<prefix>/<zone>/web/<id>` keys);
//! - only keys that can answer the question count ([`Wanted`]), then CoreDNS's `group` rule.
//!
//! Every selection is bounded: it stops after `limit` usable keys (what a message can carry)
//! and after [`SCAN_LIMIT`] keys examined, so no question costs more than a bounded amount of
//! work however large the zone. Every read is recorded for the answer cache.

use std::net::IpAddr;

use crate::index::{Read, Snapshot, Zone};
use crate::name_key::NameKey;
use crate::record::Host;
use crate::source::ServiceEntry;

/// Most keys examined for one selection (a wildcard in the middle of a name, or one address
/// family in a huge subtree of the other).
pub const SCAN_LIMIT: usize = 20_000;

/// Which keys can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// Keys with a host of this family (A: IPv4, AAAA: IPv6) or a host name.
    Address { v6: bool },
    /// Keys with `text`, or with a host (CoreDNS: a TXT question keeps both).
    Text,
    /// Keys with a host (SRV, MX, NS, CNAME, PTR, other types).
    Host,
}

impl Wanted {
    fn accepts(self, entry: &ServiceEntry) -> bool {
        let host = &entry.service.host;
        match self {
            Wanted::Address { v6 } => match host {
                Host::Ip(IpAddr::V4(_)) => !v6,
                Host::Ip(IpAddr::V6(_)) => v6,
                Host::Name(_) => true,
                Host::None => false,
            },
            Wanted::Text => entry.service.text.is_some() || *host != Host::None,
            Wanted::Host => *host != Host::None,
        }
    }
}

fn is_wildcard(label: &[u8]) -> bool {
    label == b"*" || label == b"any"
}

/// The key of `<labels>.<zone>` (labels given root first).
pub fn below_zone(zone: &Zone, labels: &[&[u8]]) -> NameKey {
    NameKey::from_labels_root_first(zone.key.labels().chain(labels.iter().copied()))
}

/// The name below the two leading `_service._proto` labels, if the name has that form.
pub fn rfc2782_base(key: &NameKey) -> Option<NameKey> {
    let labels: Vec<&[u8]> = key.labels().collect();
    let n = labels.len();
    if n < 3 || !labels[n - 1].starts_with(b"_") || !labels[n - 2].starts_with(b"_") {
        return None;
    }
    Some(NameKey::from_labels_root_first(
        labels[..n - 2].iter().copied(),
    ))
}

/// A bounded walk over the keys a name covers.
struct Walk<'a> {
    snap: &'a Snapshot,
    wanted: Wanted,
    limit: usize,
}

impl<'a> Walk<'a> {
    /// The usable keys at or below `key` (wildcard labels match any one label).
    fn subtree(&self, key: &NameKey, reads: &mut Vec<Read>) -> Vec<&'a ServiceEntry> {
        let labels: Vec<&[u8]> = key.labels().collect();
        let first_wild = labels.iter().position(|l| is_wildcard(l));
        let prefix = match first_wild {
            None => key.clone(),
            Some(at) => NameKey::from_labels_root_first(labels[..at].iter().copied()),
        };
        reads.push(Read::Subtree(prefix.clone()));
        let matches = |entry: &ServiceEntry| {
            first_wild.is_none() || {
                let mut have = entry.key.labels();
                labels
                    .iter()
                    .all(|want| have.next().is_some_and(|l| is_wildcard(want) || l == *want))
            }
        };
        self.snap
            .services_below(&prefix)
            .take(SCAN_LIMIT)
            .filter(|e| matches(e) && self.wanted.accepts(e))
            .take(self.limit)
            .collect()
    }

    /// Whether anything at all (usable or not) is stored at or below `key`.
    fn anything_below(&self, key: &NameKey, reads: &mut Vec<Read>) -> bool {
        reads.push(Read::Subtree(key.clone()));
        self.snap.services_below(key).next().is_some()
    }
}

/// CoreDNS's group rule (`msg.Group`), order-dependent exactly as CoreDNS's: starting from the
/// first key, a strictly shorter key takes over with its group, a strictly shorter key without
/// a group stops the scan; ungrouped keys always stay; a different group at the chosen depth
/// keeps everything.
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

/// What a selection looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select {
    pub wanted: Wanted,
    /// Most keys returned.
    pub limit: usize,
    /// Read `<name>` for `_svc._proto.<name>` when nothing is stored under the latter (SRV).
    pub rfc2782: bool,
}

/// The services a question for `key` covers (see the module docs).
pub fn services_for<'a>(
    snap: &'a Snapshot,
    zone: &Zone,
    key: &NameKey,
    select: Select,
    reads: &mut Vec<Read>,
) -> Vec<&'a ServiceEntry> {
    let walk = Walk {
        snap,
        wanted: select.wanted,
        limit: select.limit,
    };
    let found = if key == &zone.key && matches!(select.wanted, Wanted::Address { .. }) {
        let apex = below_zone(zone, &[b"dns", b"apex"]);
        if walk.anything_below(&apex, reads) {
            walk.subtree(&apex, reads)
        } else {
            walk.subtree(key, reads)
        }
    } else {
        let found = walk.subtree(key, reads);
        match rfc2782_base(key) {
            Some(base)
                if found.is_empty() && select.rfc2782 && !walk.anything_below(key, reads) =>
            {
                walk.subtree(&base, reads)
            }
            _ => found,
        }
    };
    filter_groups(found)
}

/// The services stored at exactly `key` that can answer `wanted` (CNAME and PTR questions).
pub fn services_at<'a>(
    snap: &'a Snapshot,
    key: &NameKey,
    wanted: Wanted,
    reads: &mut Vec<Read>,
) -> Vec<&'a ServiceEntry> {
    reads.push(Read::Exact(key.clone()));
    let entries: Vec<&ServiceEntry> = snap
        .services_at(key)
        .iter()
        .map(|e| &**e)
        .filter(|e| wanted.accepts(e))
        .collect();
    filter_groups(entries)
}

/// True when the name exists for any type: something is stored at or below it, a wildcard
/// query matches something, or it is an RFC 2782 name whose base has services.
pub fn name_exists(snap: &Snapshot, zone: &Zone, key: &NameKey, reads: &mut Vec<Read>) -> bool {
    reads.push(Read::Subtree(key.clone()));
    if snap.name_exists(key) {
        return true;
    }
    let any = Walk {
        snap,
        wanted: Wanted::Text,
        limit: 1,
    };
    if key.labels().any(is_wildcard) && !any.subtree(key, reads).is_empty() {
        return true;
    }
    key != &zone.key && rfc2782_base(key).is_some_and(|base| any.anything_below(&base, reads))
}

/// Services at `ns.dns.<zone>` and below: the zone's name servers.
pub fn name_servers<'a>(
    snap: &'a Snapshot,
    zone: &Zone,
    limit: usize,
    reads: &mut Vec<Read>,
) -> Vec<&'a ServiceEntry> {
    let walk = Walk {
        snap,
        wanted: Wanted::Host,
        limit,
    };
    walk.subtree(&below_zone(zone, &[b"dns", b"ns"]), reads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Service;
    use hickory_proto::rr::Name;

    fn entry(name: &str, group: Option<&str>) -> ServiceEntry {
        let mut service = Service::from_json(br#"{"host":"10.0.0.1"}"#).unwrap();
        service.group = group.map(crate::record::Note::from);
        ServiceEntry {
            key: NameKey::new(&Name::from_ascii(name).unwrap()),
            spelling: None,
            service,
        }
    }

    fn names(v: &[&ServiceEntry]) -> Vec<String> {
        v.iter().map(|e| e.name().to_ascii()).collect()
    }

    #[test]
    fn group_rule_matches_coredns() {
        // (case, entries in key order, expected): CoreDNS msg/service_test.go TestGroup.
        let a = entry("a.x.example.", Some("g1"));
        let b = entry("b.sub.x.example.", Some("g2"));
        let c = entry("c.sub.x.example.", None);
        let d = entry("d.x.example.", Some("g2"));
        let e = entry("e.x.example.", None);
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
            (
                "an ungrouped first key disables grouping",
                vec![&e, &a, &b],
                vec!["e.x.example.", "a.x.example.", "b.sub.x.example."],
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
