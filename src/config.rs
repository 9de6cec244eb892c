//! Configuration: a TOML file and command-line flags (flags win), validated as a whole.
//!
//! [`FileConfig`] is the file as written (`deny_unknown_fields`, every key optional);
//! [`Config`] is the merged, validated result the app runs with. Validation reports every
//! problem at once. Nothing here binds sockets or reads zones.
//! The forwarding, RRL and zone-transfer sections are checked in [`sections`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use hickory_proto::rr::Name;

use crate::dns::TtlPolicy;
use crate::forward::ForwardSettings;
use crate::server::rrl::RrlSettings;
use crate::source::etcd::connection::PASSWORD_ENV;
use crate::source::etcd::{EtcdArgs, EtcdSettings};
use crate::xfr::XfrSettings;

mod sections;

use sections::{forward_settings, rrl_settings, xfr_settings};

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
mod tests;
