//! etcd key <-> DNS name, the SkyDNS/CoreDNS layout: `<prefix>/` + labels reversed, lower case.
//! With prefix `/skydns`, `/skydns/local/skydns/web/1` is `1.web.skydns.local.`.
//! Only the mapping lives here; values are decoded in `record`.

use hickory_proto::rr::Name;
use thiserror::Error;

use crate::name_key::NameKey;
use crate::record::Note;

/// Why a key does not name a served record.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key is not valid UTF-8")]
    NotUtf8,
    #[error("key is not under the prefix {0}")]
    NotUnderPrefix(String),
    #[error("key has an empty label (\"//\" or a trailing \"/\")")]
    EmptyLabel,
    #[error("label {0:?} is longer than 63 bytes")]
    LabelTooLong(String),
    #[error("label {0:?} contains a dot (one key component is one DNS label)")]
    DotInLabel(String),
    #[error("not a valid domain name: {0}")]
    BadName(String),
    #[error("{0} is outside every served domain")]
    OutsideZones(String),
}

/// Maps keys under one prefix to names inside the served domains, and back.
#[derive(Debug, Clone)]
pub struct KeyMapper {
    /// Normalized: leading `/`, no trailing `/`.
    prefix: String,
    domains: Vec<Name>,
    /// The domains as name keys (for [`KeyMapper::name_key_of`]).
    domain_keys: Vec<NameKey>,
}

impl KeyMapper {
    /// `prefix` like `/skydns` (a trailing `/` is ignored); `domains` are the served zones.
    pub fn new(prefix: &str, domains: &[Name]) -> Self {
        let trimmed = prefix.trim_end_matches('/');
        let prefix = if trimmed.starts_with('/') {
            trimmed.to_string()
        } else {
            format!("/{trimmed}")
        };
        KeyMapper {
            prefix,
            domains: domains.iter().map(Name::to_lowercase).collect(),
            domain_keys: domains.iter().map(NameKey::new).collect(),
        }
    }

    /// What to range over / watch: `<prefix>/`.
    pub fn watch_prefix(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// The served domains.
    pub fn domains(&self) -> &[Name] {
        &self.domains
    }

    /// The DNS name a key stands for.
    pub fn name_of(&self, key: &[u8]) -> Result<Name, KeyError> {
        let path = self.path_of(key)?;
        let lower: Vec<String> = path
            .split('/')
            .rev()
            .map(|l| l.to_ascii_lowercase())
            .collect();
        let mut name = Name::from_labels(lower.iter().map(String::as_bytes))
            .map_err(|e| KeyError::BadName(e.to_string()))?;
        name.set_fqdn(true);
        if !self.domains.iter().any(|d| d.zone_of(&name)) {
            return Err(KeyError::OutsideZones(name.to_ascii()));
        }
        Ok(name)
    }

    /// The name key of the name a key stands for: `NameKey::new(&name_of(key)?)`, built
    /// straight from the key's path (root first, as the index stores names) without a `Name`.
    /// It runs for every key of a snapshot: measured at a million keys, building the `Name`
    /// first was a third of the decode time. Anything unusual (a name over 255 bytes, a key
    /// outside the domains) takes `name_of`, so the errors are the same.
    pub fn name_key_of(&self, key: &[u8]) -> Result<NameKey, KeyError> {
        let path = self.path_of(key)?;
        let wire_length: usize = path.split('/').map(|l| l.len() + 1).sum::<usize>() + 1;
        if wire_length <= 255 {
            let name = NameKey::from_labels_root_first(path.split('/').map(str::as_bytes));
            if self.domain_keys.iter().any(|d| name.is_at_or_below(d)) {
                return Ok(name);
            }
        }
        self.name_of(key).map(|name| NameKey::new(&name))
    }

    /// The checked path of a key below the prefix (`local/skydns/web/1`).
    fn path_of<'a>(&self, key: &'a [u8]) -> Result<&'a str, KeyError> {
        let key = std::str::from_utf8(key).map_err(|_| KeyError::NotUtf8)?;
        let path = key
            .strip_prefix(&self.prefix)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| KeyError::NotUnderPrefix(self.prefix.clone()))?;
        if path.split('/').any(str::is_empty) {
            return Err(KeyError::EmptyLabel);
        }
        if let Some(long) = path.split('/').find(|l| l.len() > 63) {
            return Err(KeyError::LabelTooLong(long.to_string()));
        }
        if let Some(dotted) = path.split('/').find(|l| l.contains('.')) {
            return Err(KeyError::DotInLabel(dotted.to_string()));
        }
        Ok(path)
    }

    /// The key's path below the prefix when it has upper-case letters (so keys that differ
    /// only in case stay apart); `None` for the usual lower-case key.
    pub fn spelling(&self, key: &[u8]) -> Option<Note> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        rest.bytes()
            .any(|b| b.is_ascii_uppercase())
            .then(|| Note::from(rest))
    }

    /// The key of a name (`1.web.skydns.local.` -> `/skydns/local/skydns/web/1`).
    pub fn key_of(&self, name: &Name) -> String {
        let mut key = self.prefix.clone();
        for label in name.to_lowercase().iter().rev() {
            key.push('/');
            key.push_str(&String::from_utf8_lossy(label));
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper() -> KeyMapper {
        KeyMapper::new("/skydns/", &[Name::from_ascii("skydns.local.").unwrap()])
    }

    #[test]
    fn maps_keys_both_ways() {
        let m = mapper();
        let cases = [
            ("/skydns/local/skydns/web/1", Ok("1.web.skydns.local.")),
            (
                "/skydns/local/skydns/east/prod/rails/1",
                Ok("1.rails.prod.east.skydns.local."),
            ),
            ("/skydns/local/skydns/Web/X1", Ok("x1.web.skydns.local.")),
            ("/skydns/local/skydns", Ok("skydns.local.")),
            ("/skydns/local/other/web", Err("outside")),
            ("/skydnsx/local/skydns/web", Err("prefix")),
            ("/skydns/local/skydns//web", Err("empty")),
            ("/skydns/local/skydns/web/", Err("empty")),
            ("/skydns/local/skydns/a.b/c", Err("dot")),
        ];
        for (key, want) in cases {
            let got = m.name_of(key.as_bytes());
            match (want, got) {
                (Ok(name), Ok(got)) => {
                    assert_eq!(got.to_ascii(), name, "{key}");
                    assert_eq!(m.key_of(&got), key.to_ascii_lowercase(), "{key}");
                }
                (Err(what), Err(e)) => assert!(
                    e.to_string().contains(what) || format!("{e:?}").to_lowercase().contains(what),
                    "{key}: {e}"
                ),
                (want, got) => panic!("{key}: want {want:?}, got {got:?}"),
            }
        }
        let long = format!("/skydns/local/skydns/{}", "a".repeat(64));
        assert!(matches!(
            m.name_of(long.as_bytes()),
            Err(KeyError::LabelTooLong(_))
        ));
        assert_eq!(m.watch_prefix(), "/skydns/");
        assert_eq!(
            m.spelling(b"/skydns/local/skydns/Web/1").as_deref(),
            Some("local/skydns/Web/1")
        );
        assert_eq!(m.spelling(b"/skydns/local/skydns/web/1"), None);
    }
    /// `name_key_of` is `name_of` then `NameKey::new`, errors included, for odd keys too.
    #[test]
    fn name_keys_straight_from_keys_equal_name_keys_of_names() {
        let m = KeyMapper::new(
            "/skydns",
            &[
                Name::from_ascii("skydns.local.").unwrap(),
                Name::from_ascii("Other.TEST.").unwrap(),
            ],
        );
        let label = "x".repeat(63);
        let too_long = format!("/skydns/local/skydns/{}", [label.as_str(); 4].join("/"));
        let mut keys: Vec<Vec<u8>> = [
            "/skydns/local/skydns/web/1",
            "/skydns/local/skydns/Web/X1",
            "/skydns/local/skydns",
            "/skydns/test/other/A/b",
            "/skydns/TEST/Other/a",
            "/skydns/local/skydnsx/web",
            "/skydns/local/other/web",
            "/skydns/local/skydns//web",
            "/skydns/local/skydns/a.b",
            "/skydns/local/skydns/caf\u{e9}",
            "/skydnsx/local/skydns/web",
            "/skydns/",
            "/skydns",
            too_long.as_str(),
        ]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
        keys.push(b"/skydns/local/skydns/\x00\x01".to_vec());
        keys.push(b"/skydns/local/skydns/a\x00b/\x01".to_vec());
        keys.push(b"/skydns/local/skydns/\xff".to_vec());
        for key in &keys {
            let key = key.as_slice();
            let via_name = m.name_of(key).map(|n| NameKey::new(&n));
            let direct = m.name_key_of(key);
            assert_eq!(direct, via_name, "{}", String::from_utf8_lossy(key));
        }
    }
}
