//! The forwarding, response-rate-limiting and zone-transfer parts of the configuration:
//! file and flag values checked and turned into each stage's settings, every problem
//! collected (none stops at the first).

use hickory_proto::rr::Name;

use super::{ConfigError, DEFAULT_FORWARD_CACHE_MB, DEFAULT_FORWARD_MAX_CONCURRENT, FileConfig};
use crate::forward::ForwardSettings;
use crate::forward::upstream::parse_address;
use crate::name_key::NameKey;
use crate::server::rrl::RrlSettings;
use crate::xfr::{AllowRule, Keyring, NotifyTarget, XfrSettings};

/// `ADDR[:PORT]` lists (entries may be comma-separated), each bad one reported.
pub(super) fn upstream_addresses(
    flag: &str,
    list: &[String],
    problems: &mut Vec<ConfigError>,
) -> Vec<std::net::SocketAddr> {
    list.iter()
        .flat_map(|a| a.split(','))
        .filter(|a| !a.trim().is_empty())
        .filter_map(|a| match parse_address(a) {
            Ok(addr) => Some(addr),
            Err(e) => {
                problems.push(ConfigError::Invalid(format!("{flag}: {e}")));
                None
            }
        })
        .collect()
}

pub(super) fn forward_settings(
    file: &FileConfig,
    problems: &mut Vec<ConfigError>,
) -> ForwardSettings {
    let upstreams = upstream_addresses(
        "--forward",
        file.forward.as_deref().unwrap_or(&[]),
        problems,
    );
    let mut zones = Vec::new();
    for (zone, list) in file.forward_zone.iter().flatten() {
        let addrs = upstream_addresses("--forward-zone", list, problems);
        match Name::from_ascii(zone) {
            Ok(mut name) if !addrs.is_empty() => {
                name.set_fqdn(true);
                zones.push((name.to_lowercase(), addrs));
            }
            Ok(_) => problems.push(ConfigError::Invalid(format!(
                "--forward-zone {zone}: names no upstream"
            ))),
            Err(_) => problems.push(ConfigError::Invalid(format!(
                "--forward-zone {zone:?}: not a domain name"
            ))),
        }
    }
    let mut invalid = |m: String| problems.push(ConfigError::Invalid(m));
    let policy = match file.forward_policy.as_deref().map(str::parse) {
        None => Default::default(),
        Some(Ok(policy)) => policy,
        Some(Err(e)) => {
            invalid(format!("--forward-policy: {e}"));
            Default::default()
        }
    };
    if let Some(path) = file.forward_resolv_conf.as_ref().filter(|p| !p.is_file()) {
        invalid(format!(
            "--forward-resolv-conf {}: no such file",
            path.display()
        ));
    }
    let max_concurrent = file
        .forward_max_concurrent
        .unwrap_or(DEFAULT_FORWARD_MAX_CONCURRENT);
    if max_concurrent == 0 {
        invalid("--forward-max-concurrent must be at least 1".into());
    }
    ForwardSettings {
        upstreams,
        resolv_conf: file.forward_resolv_conf.clone(),
        zones,
        policy,
        cache_bytes: file.forward_cache_size.unwrap_or(DEFAULT_FORWARD_CACHE_MB) << 20,
        max_concurrent,
    }
}

pub(super) fn rrl_settings(file: &FileConfig, problems: &mut Vec<ConfigError>) -> RrlSettings {
    let default = RrlSettings::default();
    let rrl = RrlSettings {
        rate: file.rrl_rate.unwrap_or(default.rate),
        slip: file.rrl_slip.unwrap_or(default.slip),
        ipv4_prefix: file.rrl_ipv4_prefix.unwrap_or(default.ipv4_prefix),
        ipv6_prefix: file.rrl_ipv6_prefix.unwrap_or(default.ipv6_prefix),
    };
    if rrl.ipv4_prefix > 32 || rrl.ipv6_prefix > 128 {
        problems.push(ConfigError::Invalid(format!(
            "rrl prefixes (/{} for IPv4, /{} for IPv6) exceed the address length",
            rrl.ipv4_prefix, rrl.ipv6_prefix
        )));
    }
    if rrl.slip > 10 {
        problems.push(ConfigError::Invalid(format!(
            "rrl_slip ({}) must be 0..=10 (0: never, 2: every second limited reply)",
            rrl.slip
        )));
    }
    rrl
}

/// Keys, transfer rules and NOTIFY targets, every rule checked against the key file.
pub(super) fn xfr_settings(file: &FileConfig, problems: &mut Vec<ConfigError>) -> XfrSettings {
    let keys = match &file.tsig_key_file {
        None => Keyring::default(),
        Some(path) => Keyring::load(path).unwrap_or_else(|e| {
            problems.push(ConfigError::Invalid(format!("--tsig-key-file {e}")));
            Keyring::default()
        }),
    };
    let (allow, notify) = xfr_lists(&file.allow_transfer, &file.notify, &keys, problems);
    let mut zones = std::collections::HashMap::new();
    for (zone, table) in file.transfer.iter().flatten() {
        let Ok(name) = Name::from_ascii(zone) else {
            problems.push(ConfigError::Invalid(format!(
                "[transfer.{zone:?}]: not a domain name"
            )));
            continue;
        };
        let lists = xfr_lists(&table.allow_transfer, &table.notify, &keys, problems);
        zones.insert(NameKey::new(&name), lists);
    }
    XfrSettings {
        keys,
        allow,
        notify,
        zones,
        key_file: file.tsig_key_file.clone(),
    }
}

/// One pair of `allow_transfer` and `notify` lists, parsed; each bad entry reported.
pub(super) fn xfr_lists(
    allow: &Option<Vec<String>>,
    notify: &Option<Vec<String>>,
    keys: &Keyring,
    problems: &mut Vec<ConfigError>,
) -> (Vec<AllowRule>, Vec<NotifyTarget>) {
    let mut report = |e: crate::xfr::XfrConfigError| {
        problems.push(ConfigError::Invalid(e.to_string()));
    };
    let entries = |list: &Option<Vec<String>>| {
        let list: Vec<String> = list.iter().flatten().cloned().collect();
        list.into_iter().filter(|a| !a.trim().is_empty())
    };
    let allow = entries(allow)
        .filter_map(|a| AllowRule::parse(&a, keys).map_err(&mut report).ok())
        .collect();
    let notify = entries(notify)
        .filter_map(|n| NotifyTarget::parse(&n, keys).map_err(&mut report).ok())
        .collect();
    (allow, notify)
}
