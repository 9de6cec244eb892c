//! Configuration: a TOML file and command-line flags (flags win), validated as a whole.
//!
//! [`FileConfig`] is the file as written (`deny_unknown_fields`, every key optional);
//! [`Config`] is the merged, validated result the app runs with. Validation reports every
//! problem at once. Nothing here binds sockets or reads zones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use hickory_proto::rr::Name;

use crate::dns::TtlPolicy;
use crate::forward::ForwardSettings;
use crate::forward::upstream::parse_address;
use crate::name_key::NameKey;
use crate::server::rrl::RrlSettings;
use crate::source::etcd::connection::PASSWORD_ENV;
use crate::source::etcd::{EtcdArgs, EtcdSettings};
use crate::xfr::{AllowRule, Keyring, NotifyTarget, XfrSettings};

/// Default DNS listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Default metrics/health listen address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:9153";
/// Default zone directory.
pub const DEFAULT_ZONES: &str = "zones";
/// Default size of the answer cache, MiB.
pub const DEFAULT_CACHE_MB: u64 = 64;
/// Default size of the forwarded-answer cache, MiB.
pub const DEFAULT_FORWARD_CACHE_MB: u64 = 32;
/// Default upstream queries in flight at most.
pub const DEFAULT_FORWARD_MAX_CONCURRENT: usize = 1000;
/// Default largest zone file (with its includes), MiB.
pub const DEFAULT_ZONE_MAX_MB: u64 = crate::source::zonefile::DEFAULT_MAX_BYTES >> 20;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The configuration file as written. Every key is optional.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<Vec<SocketAddr>>,
    pub zones: Option<PathBuf>,
    /// Largest zone file (its includes counted), MiB.
    pub zone_max_size: Option<u64>,
    pub http: Option<SocketAddr>,
    pub ttl: Option<u32>,
    pub min_ttl: Option<u32>,
    pub max_ttl: Option<u32>,
    pub negative_ttl: Option<u32>,
    pub log_level: Option<String>,
    /// Seconds an idle TCP connection is kept open.
    pub tcp_idle_timeout: Option<u64>,
    /// Most TCP connections open at once (default: from the open-files limit).
    pub tcp_max_connections: Option<usize>,
    /// UDP worker threads per listen address (default: one per CPU).
    pub udp_workers: Option<usize>,
    /// Rotate A, AAAA and SRV answer order per response (default: on).
    pub rotate: Option<bool>,
    /// Answer cache size in MiB.
    pub cache_size: Option<u64>,
    /// Upstream resolvers for names outside srvd's zones (`ADDR[:PORT]`).
    pub forward: Option<Vec<String>>,
    /// A resolv.conf-format file naming more upstreams (re-read when it changes).
    pub forward_resolv_conf: Option<PathBuf>,
    /// Conditional forwarding: zone -> upstreams.
    pub forward_zone: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// `sequential`, `random` or `round_robin`.
    pub forward_policy: Option<String>,
    /// Forwarded-answer cache size in MiB.
    pub forward_cache_size: Option<u64>,
    /// Upstream queries in flight at most; beyond, REFUSED.
    pub forward_max_concurrent: Option<usize>,
    /// etcd endpoints (`http://127.0.0.1:2379`); none: no etcd source.
    pub etcd: Option<Vec<String>>,
    pub etcd_prefix: Option<String>,
    /// Zones served from etcd (`skydns.local.`).
    pub domain: Option<Vec<String>>,
    pub etcd_ca: Option<PathBuf>,
    pub etcd_cert: Option<PathBuf>,
    pub etcd_key: Option<PathBuf>,
    pub etcd_user: Option<String>,
    /// File holding the etcd password (else `SRVD_ETCD_PASSWORD`).
    pub etcd_password_file: Option<PathBuf>,
    /// Response rate limit: UDP replies per second per source prefix and answer (0: off).
    pub rrl_rate: Option<u32>,
    /// Every Nth limited reply is sent truncated instead of dropped (0: never).
    pub rrl_slip: Option<u32>,
    pub rrl_ipv4_prefix: Option<u8>,
    pub rrl_ipv6_prefix: Option<u8>,
    /// TSIG keys, BIND `key` statements (`tsig-keygen` output).
    pub tsig_key_file: Option<PathBuf>,
    /// Who may transfer every zone: `PREFIX[,key=NAME]`.
    pub allow_transfer: Option<Vec<String>>,
    /// Secondaries told by NOTIFY when a zone changes: `ADDR:PORT[,key=NAME]`.
    pub notify: Option<Vec<String>>,
    /// Per-zone transfer settings (`[transfer."example.org."]`) replacing the global lists.
    pub transfer: Option<std::collections::BTreeMap<String, ZoneTransfer>>,
}

/// One zone's `[transfer."ZONE"]` table: lists that replace the global ones for it.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneTransfer {
    pub allow_transfer: Option<Vec<String>>,
    pub notify: Option<Vec<String>>,
}

impl FileConfig {
    /// Read and parse a TOML file. Errors name the file (and line, for syntax errors).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = e.message().to_string();
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: match line {
                    Some(line) => format!("line {line}: {message}"),
                    None => message,
                },
            }
        })
    }

    /// Overlay: every key set in `flags` replaces the one here.
    pub fn overlay(mut self, flags: FileConfig) -> Self {
        macro_rules! take {
            ($($f:ident),*) => { $( if flags.$f.is_some() { self.$f = flags.$f; } )* };
        }
        take!(
            listen,
            zones,
            zone_max_size,
            http,
            ttl,
            min_ttl,
            max_ttl,
            negative_ttl,
            log_level,
            tcp_idle_timeout,
            tcp_max_connections,
            udp_workers,
            rotate,
            cache_size,
            forward,
            forward_resolv_conf,
            forward_zone,
            forward_policy,
            forward_cache_size,
            forward_max_concurrent,
            domain,
            rrl_rate,
            rrl_slip,
            rrl_ipv4_prefix,
            rrl_ipv6_prefix,
            tsig_key_file,
            allow_transfer,
            notify,
            transfer
        );
        self
    }

    /// How large a zone file may be.
    pub fn zone_limits(&self) -> crate::source::zonefile::Limits {
        let mb = self.zone_max_size.unwrap_or(DEFAULT_ZONE_MAX_MB);
        crate::source::zonefile::Limits {
            max_bytes: mb.saturating_mul(1 << 20),
        }
    }

    /// The etcd connection keys of the file, as the flags that share their names.
    pub fn etcd_args(&self) -> EtcdArgs {
        EtcdArgs {
            endpoints: self.etcd.clone().unwrap_or_default(),
            prefix: self.etcd_prefix.clone(),
            ca: self.etcd_ca.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
            user: self.etcd_user.clone(),
            password_file: self.etcd_password_file.clone(),
        }
    }
}

/// The validated configuration srvd runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub zones: PathBuf,
    /// The zone directory was named explicitly (so it must exist).
    pub zones_explicit: bool,
    pub zone_limits: crate::source::zonefile::Limits,
    pub http: SocketAddr,
    pub ttl: TtlPolicy,
    pub log_level: String,
    pub tcp_idle_timeout: Duration,
    /// `None`: derived from the open-files limit at start.
    pub tcp_max_connections: Option<usize>,
    pub udp_workers: usize,
    pub rotate: bool,
    /// Answer cache size, bytes.
    pub cache_bytes: u64,
    /// The etcd source, when configured.
    pub etcd: Option<EtcdSettings>,
    /// Forwarding (disabled when it names no upstream).
    pub forward: ForwardSettings,
    /// Zone transfers, NOTIFY and TSIG (nobody may transfer unless allowed).
    pub xfr: XfrSettings,
    /// Response rate limiting of UDP replies (off unless a rate is set).
    pub rrl: RrlSettings,
}

fn default_addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Config {
    /// Merge defaults, the file and the etcd flags, validating everything; returns every
    /// problem found. The etcd password comes from `SRVD_ETCD_PASSWORD` unless a file is
    /// named.
    pub fn from_file_config(file: FileConfig, etcd: EtcdArgs) -> Result<Self, Vec<ConfigError>> {
        let mut problems = Vec::new();
        let etcd = etcd_settings(&file, &etcd, &mut problems);
        let forward = forward_settings(&file, &mut problems);
        let xfr = xfr_settings(&file, &mut problems);
        let rrl = rrl_settings(&file, &mut problems);
        let zone_limits = file.zone_limits();
        let ttl = ttl_policy(&file, &mut problems);
        let tcp_idle = file.tcp_idle_timeout.unwrap_or(10);
        let udp_workers = file.udp_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let cache_mb = file.cache_size.unwrap_or(DEFAULT_CACHE_MB);
        check_limits(&file, tcp_idle, udp_workers, cache_mb, &mut problems);
        let listen = file
            .listen
            .unwrap_or_else(|| vec![default_addr(DEFAULT_LISTEN)]);
        if listen.is_empty() {
            problems.push(ConfigError::Invalid(
                "listen: at least one address is needed".into(),
            ));
        }
        let log_level = log_level(file.log_level.clone(), &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            forward,
            xfr,
            rrl,
            zone_limits,
            udp_workers,
            tcp_max_connections: file.tcp_max_connections,
            rotate: file.rotate.unwrap_or(true),
            cache_bytes: cache_mb << 20,
            etcd,
            listen,
            zones_explicit: file.zones.is_some(),
            zones: file.zones.unwrap_or_else(|| PathBuf::from(DEFAULT_ZONES)),
            http: file.http.unwrap_or_else(|| default_addr(DEFAULT_HTTP)),
            ttl,
            log_level,
            tcp_idle_timeout: Duration::from_secs(tcp_idle),
        })
    }
}

/// The log level or tracing filter (default `info`).
fn log_level(level: Option<String>, problems: &mut Vec<ConfigError>) -> String {
    let level = level.unwrap_or_else(|| "info".into());
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = LEVELS.contains(&level.to_ascii_lowercase().as_str());
    let is_filter = level.contains('=') || level.contains(',');
    if !(is_level || is_filter) || tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        problems.push(ConfigError::Invalid(format!(
            "log_level {level:?} is not a level (error, warn, info, debug, trace) or filter"
        )));
    }
    level
}

/// The TTL settings, each checked against RFC 2181's 2^31-1.
fn ttl_policy(file: &FileConfig, problems: &mut Vec<ConfigError>) -> TtlPolicy {
    let ttl = TtlPolicy {
        default: file.ttl.unwrap_or(5),
        min: file.min_ttl.unwrap_or(0),
        max: file.max_ttl.unwrap_or(TtlPolicy::default().max),
        negative: file.negative_ttl.unwrap_or(5),
    };
    if ttl.min > ttl.max {
        problems.push(ConfigError::Invalid(format!(
            "min_ttl ({}) is greater than max_ttl ({})",
            ttl.min, ttl.max
        )));
    }
    for (name, value) in [
        ("ttl", ttl.default),
        ("max_ttl", ttl.max),
        ("negative_ttl", ttl.negative),
    ] {
        if value > i32::MAX as u32 {
            problems.push(ConfigError::Invalid(format!(
                "{name} ({value}) exceeds 2147483647"
            )));
        }
    }
    ttl
}

/// Connection, worker and cache limits that must be in range.
fn check_limits(
    file: &FileConfig,
    tcp_idle: u64,
    udp_workers: usize,
    cache_mb: u64,
    problems: &mut Vec<ConfigError>,
) {
    let mut invalid = |m: String| problems.push(ConfigError::Invalid(m));
    if tcp_idle == 0 {
        invalid("tcp_idle_timeout must be at least 1 second".into());
    }
    if udp_workers == 0 || udp_workers > 256 {
        invalid(format!(
            "udp_workers ({udp_workers}) must be between 1 and 256"
        ));
    }
    if file.tcp_max_connections == Some(0) {
        invalid("tcp_max_connections must be at least 1".into());
    }
    if cache_mb > 1 << 20 {
        invalid(format!("cache_size ({cache_mb} MiB) is more than 1 TiB"));
    }
}

/// `ADDR[:PORT]` lists (entries may be comma-separated), each bad one reported.
fn upstream_addresses(
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

fn forward_settings(file: &FileConfig, problems: &mut Vec<ConfigError>) -> ForwardSettings {
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

fn rrl_settings(file: &FileConfig, problems: &mut Vec<ConfigError>) -> RrlSettings {
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
fn xfr_settings(file: &FileConfig, problems: &mut Vec<ConfigError>) -> XfrSettings {
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
fn xfr_lists(
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

fn etcd_settings(
    file: &FileConfig,
    etcd: &EtcdArgs,
    problems: &mut Vec<ConfigError>,
) -> Option<EtcdSettings> {
    let mut invalid = |m: String| problems.push(ConfigError::Invalid(m));
    let mut domains = Vec::new();
    for d in file.domain.iter().flatten() {
        match Name::from_ascii(d) {
            Ok(mut name) if !name.is_root() => {
                name.set_fqdn(true);
                domains.push(name.to_lowercase());
            }
            _ => invalid(format!("domain {d:?} is not a valid domain name")),
        }
    }
    let connection = match etcd.validate(std::env::var(PASSWORD_ENV).ok()) {
        Ok(connection) => connection,
        Err(errors) => {
            errors.into_iter().for_each(&mut invalid);
            return None;
        }
    };
    let Some(connection) = connection else {
        if !domains.is_empty() {
            invalid("--domain needs --etcd (the domains are served from etcd)".into());
        }
        return None;
    };
    if domains.is_empty() && file.domain.is_none() {
        invalid("--etcd needs at least one --domain to serve (e.g. --domain skydns.local.)".into());
    }
    Some(EtcdSettings {
        connection,
        domains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_file_config(FileConfig::default(), EtcdArgs::default()).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(c.http, "127.0.0.1:9153".parse().unwrap());
        assert_eq!(c.ttl, TtlPolicy::default());
        assert_eq!(c.zones, PathBuf::from("zones"));
    }

    #[test]
    fn flags_win_over_file() {
        let file: FileConfig = toml::from_str("ttl = 30\nmax_ttl = 60\n").unwrap();
        let flags = FileConfig {
            ttl: Some(7),
            ..FileConfig::default()
        };
        let c = Config::from_file_config(file.overlay(flags), EtcdArgs::default()).unwrap();
        assert_eq!(c.ttl.default, 7);
        assert_eq!(c.ttl.max, 60);
    }

    #[test]
    fn reports_every_problem() {
        let file = FileConfig {
            min_ttl: Some(10),
            max_ttl: Some(5),
            log_level: Some("loud!!".into()),
            listen: Some(vec![]),
            ..FileConfig::default()
        };
        let problems = Config::from_file_config(file, EtcdArgs::default()).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn etcd_settings_are_validated() {
        let file = FileConfig {
            etcd: Some(vec!["http://127.0.0.1:2379,http://127.0.0.2:2379".into()]),
            domain: Some(vec!["SkyDNS.local".into()]),
            ..FileConfig::default()
        };
        let etcd = Config::from_file_config(file.clone(), file.etcd_args())
            .unwrap()
            .etcd
            .unwrap();
        assert_eq!(etcd.connection.endpoints.len(), 2);
        assert_eq!(etcd.domains[0].to_ascii(), "skydns.local.");
        assert_eq!(etcd.connection.prefix, "/skydns");

        let file = FileConfig {
            etcd: Some(vec!["http://127.0.0.1:2379".into()]),
            ..FileConfig::default()
        };
        let problems = Config::from_file_config(file.clone(), file.etcd_args()).unwrap_err();
        assert_eq!(problems.len(), 1, "no domain: {problems:?}");

        let file = FileConfig {
            domain: Some(vec!["skydns.local.".into()]),
            ..FileConfig::default()
        };
        let problems = Config::from_file_config(file, EtcdArgs::default()).unwrap_err();
        assert_eq!(problems.len(), 1, "domain without etcd: {problems:?}");
    }

    #[test]
    fn transfer_rules_name_keys_from_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.conf");
        std::fs::write(
            &keys,
            "key \"xfr\" {\n algorithm hmac-sha256;\n secret \"c2VjcmV0c2VjcmV0\";\n};\n",
        )
        .unwrap();
        let file: FileConfig = toml::from_str(&format!(
            "tsig_key_file = {keys:?}\nallow_transfer = [\"127.0.0.0/8,key=xfr\"]\n\
             notify = [\"127.0.0.1:5300,key=xfr\"]\n\
             [transfer.\"example.org.\"]\nallow_transfer = [\"192.0.2.1\"]\n"
        ))
        .unwrap();
        let c = Config::from_file_config(file, EtcdArgs::default()).unwrap();
        assert_eq!(c.xfr.allow.len(), 1);
        assert_eq!(c.xfr.notify[0].addr.port(), 5300);
        assert_eq!(c.xfr.zones.len(), 1);

        let file = FileConfig {
            allow_transfer: Some(vec!["127.0.0.1,key=missing".into(), "nonsense".into()]),
            notify: Some(vec!["127.0.0.1".into()]),
            tsig_key_file: Some(dir.path().join("absent.conf")),
            ..FileConfig::default()
        };
        let problems = Config::from_file_config(file, EtcdArgs::default()).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("srvd.toml");
        std::fs::write(&p, "ttl = 5\nbogus = 1\n").unwrap();
        let e = FileConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
    }
}
