//! srvd as a hidden primary: zone transfers (AXFR, IXFR), NOTIFY and TSIG, so stock
//! secondaries (Knot, NSD, BIND) serve what etcd holds.
//!
//! - [`view`]: the deterministic records a transfer carries; [`transfer`]: AXFR/IXFR streams
//!   from the index's journal of zone versions;
//! - [`tsig`]: keys and signatures; [`notify`]: NOTIFY to secondaries when a zone's serial
//!   moves;
//! - this module: who may transfer what ([`Acl`]), and the settings.
//!
//! Nothing here reads sockets; `server` hands transfer requests in and sends what comes out.

pub mod notify;
pub mod transfer;
pub mod tsig;
pub mod view;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use hickory_proto::rr::Name;
use thiserror::Error;

use crate::name_key::NameKey;
pub use tsig::Keyring;

/// An address prefix (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum XfrConfigError {
    #[error("{0:?} is not an address or address/prefix")]
    Prefix(String),
    #[error("{0:?} is not ADDR:PORT (port included)")]
    Target(String),
    #[error("{what}: unknown option {option:?} (only key=NAME)")]
    Option { what: String, option: String },
    #[error("{what}: key {key:?} is not in the --tsig-key-file")]
    UnknownKey { what: String, key: String },
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, XfrConfigError> {
        let bad = || XfrConfigError::Prefix(text.to_string());
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(bad());
        }
        Ok(Prefix { addr, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// `VALUE[,key=NAME]`: the value and the key it names, if any.
fn split_key(text: &str, what: &str) -> Result<(String, Option<Name>), XfrConfigError> {
    let mut parts = text.split(',');
    let value = parts.next().unwrap_or_default().trim().to_string();
    let mut key = None;
    for option in parts {
        match option.trim().split_once('=') {
            Some(("key", name)) => {
                let mut name =
                    Name::from_ascii(name.trim()).map_err(|_| XfrConfigError::Option {
                        what: what.to_string(),
                        option: option.to_string(),
                    })?;
                name.set_fqdn(true);
                key = Some(name.to_lowercase());
            }
            _ => {
                return Err(XfrConfigError::Option {
                    what: what.to_string(),
                    option: option.to_string(),
                });
            }
        }
    }
    Ok((value, key))
}

fn check_key(key: &Option<Name>, keys: &Keyring, what: &str) -> Result<(), XfrConfigError> {
    match key {
        Some(k) if keys.get(k).is_none() => Err(XfrConfigError::UnknownKey {
            what: what.to_string(),
            key: k.to_ascii(),
        }),
        _ => Ok(()),
    }
}

/// One `--allow-transfer` rule: a source prefix, and the key requests must be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    pub prefix: Prefix,
    pub key: Option<Name>,
}

impl AllowRule {
    pub fn parse(text: &str, keys: &Keyring) -> Result<AllowRule, XfrConfigError> {
        let (prefix, key) = split_key(text, &format!("--allow-transfer {text}"))?;
        check_key(&key, keys, &format!("--allow-transfer {text}"))?;
        Ok(AllowRule {
            prefix: Prefix::parse(&prefix)?,
            key,
        })
    }
}

/// One `--notify` target: a secondary's address, and the key NOTIFYs are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub addr: SocketAddr,
    pub key: Option<Name>,
}

impl NotifyTarget {
    pub fn parse(text: &str, keys: &Keyring) -> Result<NotifyTarget, XfrConfigError> {
        let (addr, key) = split_key(text, &format!("--notify {text}"))?;
        check_key(&key, keys, &format!("--notify {text}"))?;
        Ok(NotifyTarget {
            addr: addr
                .parse()
                .map_err(|_| XfrConfigError::Target(addr.to_string()))?,
            key,
        })
    }
}

/// Transfer and NOTIFY settings: global, and per zone where the configuration names one.
#[derive(Debug, Clone, Default)]
pub struct XfrSettings {
    pub keys: Keyring,
    pub allow: Vec<AllowRule>,
    pub notify: Vec<NotifyTarget>,
    /// Zone -> (allow, notify) replacing the global lists for that zone.
    pub zones: HashMap<NameKey, (Vec<AllowRule>, Vec<NotifyTarget>)>,
    pub key_file: Option<PathBuf>,
}

impl XfrSettings {
    /// The rules for a zone.
    pub fn allow_for(&self, zone: &NameKey) -> &[AllowRule] {
        self.zones.get(zone).map_or(&self.allow, |(a, _)| a)
    }

    /// Whether any zone has a NOTIFY target.
    pub fn has_notify(&self) -> bool {
        !self.notify.is_empty() || self.zones.values().any(|(_, n)| !n.is_empty())
    }

    /// The NOTIFY targets for a zone.
    pub fn notify_for(&self, zone: &NameKey) -> &[NotifyTarget] {
        self.zones.get(zone).map_or(&self.notify, |(_, n)| n)
    }

    /// Whether a transfer of `zone` to `peer`, signed with `key` (verified), is allowed.
    pub fn allows(&self, zone: &NameKey, peer: IpAddr, key: Option<&Name>) -> bool {
        self.allow_for(zone).iter().any(|rule| {
            rule.prefix.contains(peer) && rule.key.as_ref().is_none_or(|k| Some(k) == key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_addresses() {
        let cases = [
            ("192.0.2.0/24", "192.0.2.77", true),
            ("192.0.2.0/24", "192.0.3.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "192.0.2.1", false),
        ];
        for (prefix, ip, want) in cases {
            let p = Prefix::parse(prefix).unwrap();
            assert_eq!(p.contains(ip.parse().unwrap()), want, "{prefix} {ip}");
        }
        assert!(Prefix::parse("192.0.2.0/33").is_err());
    }

    #[test]
    fn rules_name_known_keys_only() {
        let mut keys = Keyring::default();
        keys.insert(tsig::Key::new("xfr.", tsig::Algorithm::HmacSha256, b"secret").unwrap());
        let rule = AllowRule::parse("127.0.0.0/8,key=xfr", &keys).unwrap();
        assert_eq!(rule.key.unwrap().to_ascii(), "xfr.");
        assert!(AllowRule::parse("127.0.0.1,key=nope", &keys).is_err());
        assert!(
            NotifyTarget::parse("127.0.0.1", &keys).is_err(),
            "a port is needed"
        );
        let target = NotifyTarget::parse("127.0.0.1:5300,key=xfr", &keys).unwrap();
        assert_eq!(target.addr.port(), 5300);
    }
}
