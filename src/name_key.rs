//! `NameKey`: a domain name as an ordered byte key whose prefixes are its ancestors.
//!
//! Labels are lower-cased and stored root first, each followed by a `0x00` terminator (bytes
//! `0x00`/`0x01` inside a label are escaped), so every name below `web.example.` has the key of
//! `web.example.` as a byte prefix and a subtree is one contiguous range of an ordered map.
//! It is the shared vocabulary of `source` (which keys what it emits) and `index` (which
//! stores by it). This module only encodes names; it holds no records.

use std::fmt;
use std::sync::Arc;

use hickory_proto::rr::Name;

/// Ordered, case-folded key of a domain name (see the module docs). Shared (`Arc`), so the
/// copy-on-write index nodes clone keys without allocating.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NameKey(Arc<[u8]>);

const TERMINATOR: u8 = 0x00;
const ESCAPE: u8 = 0x01;

fn push_label(out: &mut Vec<u8>, label: &[u8]) {
    for &b in label {
        match b {
            TERMINATOR | ESCAPE => {
                out.push(ESCAPE);
                out.push(b + 1);
            }
            b => out.push(b.to_ascii_lowercase()),
        }
    }
    out.push(TERMINATOR);
}

impl NameKey {
    /// Key of a name.
    pub fn new(name: &Name) -> Self {
        Self::from_labels_root_first(name.iter().rev())
    }

    /// Key from labels given root first (`["local", "skydns", "web"]`).
    pub fn from_labels_root_first<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut out = Vec::with_capacity(64);
        for label in labels {
            push_label(&mut out, label);
        }
        NameKey(out.into())
    }

    /// True when `self` is `ancestor` or below it.
    pub fn is_at_or_below(&self, ancestor: &NameKey) -> bool {
        self.0.starts_with(&ancestor.0)
    }

    /// Number of labels in the name.
    pub fn label_count(&self) -> usize {
        self.0.iter().filter(|&&b| b == TERMINATOR).count()
    }

    /// The (lower-case) name this key encodes.
    pub fn to_name(&self) -> Name {
        let escaped = self.0.contains(&ESCAPE);
        let name = if escaped {
            let labels: Vec<Vec<u8>> = self.labels().map(unescape).collect();
            Name::from_labels(labels.iter().rev().map(Vec::as_slice))
        } else {
            let labels: Vec<&[u8]> = self.labels().collect();
            Name::from_labels(labels.into_iter().rev())
        };
        let mut name = name.unwrap_or_default();
        name.set_fqdn(true);
        name
    }

    /// The key of this name without its `n` leftmost labels (`targetstrip`); unchanged when
    /// `n` is 0 or not less than the number of labels (as CoreDNS).
    pub fn strip_leftmost(&self, n: u8) -> NameKey {
        let count = self.label_count();
        if n == 0 || usize::from(n) >= count {
            return self.clone();
        }
        self.self_and_ancestors()
            .nth(usize::from(n))
            .unwrap_or_else(|| self.clone())
    }

    /// Bytes of the name in wire form (labels with their length octets and the root).
    pub fn wire_len(&self) -> usize {
        self.0.len() - self.0.iter().filter(|&&b| b == ESCAPE).count() + 1
    }

    /// The labels, root first, as they are stored (lower case, escaped).
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        let bytes: &[u8] = &self.0;
        let body = bytes.strip_suffix(&[TERMINATOR]).unwrap_or(bytes);
        body.split(|&b| b == TERMINATOR)
            .filter(move |_| !bytes.is_empty())
    }

    /// This key and every ancestor up to the root (the root's key is empty), nearest first.
    pub fn self_and_ancestors(&self) -> impl Iterator<Item = NameKey> + '_ {
        let bytes: &[u8] = &self.0;
        let ends = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == TERMINATOR)
            .map(|(i, _)| i + 1);
        std::iter::once(0)
            .chain(ends)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(move |end| NameKey(bytes[..end].into()))
    }

    /// Smallest key strictly greater than every key in this key's subtree, or `None` for the
    /// root (whose subtree is everything). Keys in the subtree continue the final terminator
    /// `0x00`; bumping it to `0x01` bounds them, and a sibling label sharing the prefix
    /// (`webx` after `web`) has a label byte `>= 0x01` at that position, so it sorts after.
    pub fn subtree_end(&self) -> Option<NameKey> {
        let (_, body) = self.0.split_last()?;
        let mut end = Vec::with_capacity(self.0.len());
        end.extend_from_slice(body);
        end.push(TERMINATOR + 1);
        Some(NameKey(end.into()))
    }
}

fn unescape(label: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len());
    let mut bytes = label.iter();
    while let Some(&b) = bytes.next() {
        match b {
            ESCAPE => out.push(bytes.next().map_or(0, |e| e - 1)),
            b => out.push(b),
        }
    }
    out
}

impl fmt::Debug for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .labels()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        write!(f, "NameKey({})", labels.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> NameKey {
        NameKey::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn case_folds_and_orders_subtrees_together() {
        assert_eq!(key("WEB.Example."), key("web.example."));
        assert!(key("1.web.example.").is_at_or_below(&key("web.example.")));
        assert!(key("web.example.").is_at_or_below(&key("web.example.")));
        assert!(!key("xweb.example.").is_at_or_below(&key("web.example.")));
        assert!(!key("webx.example.").is_at_or_below(&key("web.example.")));
        assert_eq!(key("a.b.example.").label_count(), 3);
        assert_eq!(key(".").label_count(), 0);
    }

    #[test]
    fn subtree_end_bounds_the_subtree() {
        let web = key("web.example.");
        let end = web.subtree_end().unwrap();
        assert!(key(".").subtree_end().is_none());
        for inside in ["web.example.", "a.web.example.", "zzz.y.web.example."] {
            let k = key(inside);
            assert!(k >= web && k < end, "{inside}");
        }
        for outside in ["webx.example.", "x.example.", "example."] {
            let k = key(outside);
            assert!(!(k >= web && k < end), "{outside}");
        }
    }

    #[test]
    fn ancestors_nearest_first_up_to_the_root() {
        let got: Vec<NameKey> = key("a.b.example.").self_and_ancestors().collect();
        let want = vec![
            key("a.b.example."),
            key("b.example."),
            key("example."),
            key("."),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn strip_leftmost_as_coredns_targetstrip() {
        let k = key("a.b.web.example.");
        assert_eq!(k.strip_leftmost(0), k);
        assert_eq!(k.strip_leftmost(2), key("web.example."));
        assert_eq!(k.strip_leftmost(4), k, "stripping every label strips none");
        assert_eq!(
            k.wire_len(),
            Name::from_ascii("a.b.web.example.").unwrap().len() + 1
        );
    }

    #[test]
    fn labels_root_first() {
        let k = key("1.Web.example.");
        let labels: Vec<&[u8]> = k.labels().collect();
        assert_eq!(labels, vec![&b"example"[..], b"web", b"1"]);
        assert_eq!(key(".").labels().count(), 0);
    }

    #[test]
    fn to_name_round_trips() {
        for s in ["1.Web.example.", "x.y.z.", "."] {
            let n = Name::from_ascii(s).unwrap();
            assert_eq!(key(s).to_name(), n.to_lowercase(), "{s}");
        }
        let odd = Name::from_labels(vec![&b"a\x00\x01b"[..], b"test"]).unwrap();
        assert_eq!(NameKey::new(&odd).to_name().to_ascii(), odd.to_ascii());
    }
}
