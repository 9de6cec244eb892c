//! The SkyDNS / CoreDNS `etcd` JSON value, decoded and validated at the edge.
//!
//! `{"host","port","priority","weight","text","mail","ttl","targetstrip","group"}` becomes a
//! [`Service`]. Everything that can be wrong with a value is caught here and reported as a
//! [`RecordError`]; nothing downstream re-validates. This module knows nothing about etcd
//! keys or DNS answers.

use std::net::IpAddr;

use hickory_proto::rr::Name;
use serde::Deserialize;
use thiserror::Error;

/// Priority used when a value has none (CoreDNS's default).
pub const DEFAULT_PRIORITY: u16 = 10;
/// Weight used when a value has none (CoreDNS's default).
pub const DEFAULT_WEIGHT: u16 = 100;
/// Longest `text` served: its TXT record (plus a header, the longest question and an OPT
/// record) must fit a 64 KiB message.
pub const MAX_TEXT: usize = 64_000;
/// Largest TTL a record may carry (RFC 2181 §8); larger values are clamped to it.
const MAX_TTL: u32 = i32::MAX as u32;

/// Why a value was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("no \"host\" and no \"text\": nothing to serve")]
    Empty,
    #[error("\"host\" {0:?} is neither an IP address nor a valid domain name")]
    BadHost(String),
    #[error("\"port\" {0} is out of range (0..=65535, or negative for no SRV)")]
    BadPort(i64),
    #[error("\"{field}\" {value} is out of range (0..=65535)")]
    OutOfRange { field: &'static str, value: i64 },
    #[error("\"ttl\" {0} is out of range (0..=4294967295)")]
    BadTtl(i64),
    #[error("\"text\" is longer than {MAX_TEXT} bytes: it could never fit a DNS message")]
    TextTooLong,
}

/// Where a service's `host` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An address: A or AAAA.
    Ip(IpAddr),
    /// A domain name: CNAME for address queries, SRV/MX target, PTR for reverse names.
    /// Boxed: most hosts are addresses, and a `Name` is 80 bytes (memory per key matters at
    /// a million keys).
    Name(Box<Name>),
    /// No host (a TXT-only value).
    None,
}

/// A string most values do not have (`text`, `group`, a key's spelling), one pointer wide:
/// `Option<Note>` takes 8 bytes where `Option<Box<str>>` takes 16. Per key that adds up at a
/// million keys (benches/scale.sh: the RSS target is 400 MB).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Note(Box<Box<str>>);

impl std::ops::Deref for Note {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Note {
    fn from(s: String) -> Self {
        Note(Box::new(s.into_boxed_str()))
    }
}

impl From<&str> for Note {
    fn from(s: &str) -> Self {
        Note(Box::new(s.into()))
    }
}

/// A validated service value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub host: Host,
    /// SRV port; `None` when the value's port is negative (not an SRV target).
    pub port: Option<u16>,
    pub priority: u16,
    /// Raw weight; `0` means "unset" and counts as [`DEFAULT_WEIGHT`].
    pub weight: u16,
    pub text: Option<Note>,
    pub mail: bool,
    /// The value's own TTL, if it set one.
    pub ttl: Option<u32>,
    /// Granted TTL of the etcd lease the key is attached to, if any.
    pub lease_ttl: Option<u32>,
    pub targetstrip: u8,
    pub group: Option<Note>,
}

#[derive(Deserialize)]
struct RawService {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: i64,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    weight: i64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    mail: bool,
    #[serde(default)]
    ttl: i64,
    #[serde(default)]
    targetstrip: i64,
    #[serde(default)]
    group: String,
}

fn in_u16(field: &'static str, value: i64) -> Result<u16, RecordError> {
    u16::try_from(value).map_err(|_| RecordError::OutOfRange { field, value })
}

impl Service {
    /// Decode and validate one JSON value.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        let raw: RawService =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Json(e.to_string()))?;
        let host = parse_host(&raw.host)?;
        if host == Host::None && raw.text.is_empty() {
            return Err(RecordError::Empty);
        }
        let port = match raw.port {
            p if p < 0 => None,
            p => Some(u16::try_from(p).map_err(|_| RecordError::BadPort(p))?),
        };
        let priority = match in_u16("priority", raw.priority)? {
            0 => DEFAULT_PRIORITY,
            p => p,
        };
        let weight = in_u16("weight", raw.weight)?;
        if !(0..=i64::from(u32::MAX)).contains(&raw.ttl) {
            return Err(RecordError::BadTtl(raw.ttl));
        }
        if raw.text.len() > MAX_TEXT {
            return Err(RecordError::TextTooLong);
        }
        let targetstrip = u8::try_from(raw.targetstrip.clamp(0, 127)).unwrap_or(0);
        Ok(Service {
            host,
            port,
            priority,
            weight,
            text: (!raw.text.is_empty()).then(|| Note::from(raw.text)),
            mail: raw.mail,
            ttl: (raw.ttl > 0).then_some((raw.ttl as u32).min(MAX_TTL)),
            lease_ttl: None,
            targetstrip,
            group: (!raw.group.is_empty()).then(|| Note::from(raw.group)),
        })
    }

    /// The weight used in SRV arithmetic (`0` counts as the default).
    pub fn effective_weight(&self) -> u32 {
        match self.weight {
            0 => u32::from(DEFAULT_WEIGHT),
            w => u32::from(w),
        }
    }
}

fn parse_host(host: &str) -> Result<Host, RecordError> {
    let host = host.trim();
    if host.is_empty() {
        return Ok(Host::None);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        // An IPv4-mapped IPv6 address is an IPv4 address (as CoreDNS serves it: A).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        return Ok(Host::Ip(ip));
    }
    let bad = || RecordError::BadHost(host.to_string());
    // Not an address, so it must be a name: no spaces or slashes, no ':' (a broken IPv6
    // address), and no all-numeric top label (a broken IPv4 address such as 10.0.0.300).
    let top = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':')
        || top.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let mut name = Name::from_ascii(host).map_err(|_| bad())?;
    name.set_fqdn(true);
    if name.is_root() {
        return Err(bad());
    }
    Ok(Host::Name(Box::new(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_fields() {
        let s = Service::from_json(
            br#"{"host":"10.0.0.1","port":8080,"priority":20,"weight":50,"text":"hi","mail":true,"ttl":30,"targetstrip":1,"group":"g"}"#,
        )
        .unwrap();
        assert_eq!(s.host, Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(s.port, Some(8080));
        assert_eq!(s.priority, 20);
        assert_eq!(s.weight, 50);
        assert_eq!(s.text.as_deref(), Some("hi"));
        assert!(s.mail);
        assert_eq!(s.ttl, Some(30));
        assert_eq!(s.targetstrip, 1);
        assert_eq!(s.group.as_deref(), Some("g"));
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let s = Service::from_json(br#"{"host":"web.example.","extra":1}"#).unwrap();
        assert_eq!(
            s.host,
            Host::Name(Box::new(Name::from_ascii("web.example.").unwrap()))
        );
        assert_eq!(s.port, Some(0));
        assert_eq!(s.priority, DEFAULT_PRIORITY);
        assert_eq!(s.effective_weight(), 100);
        assert_eq!(s.ttl, None);
    }

    #[test]
    fn rejects_bad_values() {
        let cases: &[(&str, &[u8])] = &[
            ("not json", b"{"),
            ("empty", b"{}"),
            ("bad host", br#"{"host":"a b"}"#),
            ("bad ipv4", br#"{"host":"10.0.0.300"}"#),
            ("bad ipv6", br#"{"host":"2001:db8::zz"}"#),
            (
                "long label",
                format!(r#"{{"host":"{}.x"}}"#, "a".repeat(64))
                    .as_bytes()
                    .to_vec()
                    .leak(),
            ),
            ("port too big", br#"{"host":"10.0.0.1","port":70000}"#),
            ("weight negative", br#"{"host":"10.0.0.1","weight":-1}"#),
            ("ttl negative", br#"{"host":"10.0.0.1","ttl":-5}"#),
            ("port string", br#"{"host":"10.0.0.1","port":"80"}"#),
        ];
        for (name, json) in cases {
            assert!(Service::from_json(json).is_err(), "{name} must be rejected");
        }
    }

    #[test]
    fn accepts_what_coredns_accepts() {
        // CoreDNS stores the TTL as uint32; RFC 2181 §8 caps a served TTL at 2^31-1.
        let s = Service::from_json(br#"{"host":"10.0.0.1","ttl":4294967295}"#).unwrap();
        assert_eq!(s.ttl, Some(i32::MAX as u32));
        // An IPv4-mapped IPv6 address is served as A (Go's net.ParseIP().To4()).
        let s = Service::from_json(br#"{"host":"::ffff:10.1.2.3"}"#).unwrap();
        assert_eq!(s.host, Host::Ip("10.1.2.3".parse().unwrap()));
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(MAX_TEXT + 1));
        assert_eq!(
            Service::from_json(long.as_bytes()),
            Err(RecordError::TextTooLong)
        );
    }

    #[test]
    fn negative_port_means_no_srv() {
        let s = Service::from_json(br#"{"host":"10.0.0.1","port":-1}"#).unwrap();
        assert_eq!(s.port, None);
    }
}
