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

use crate::index::TtlPolicy;
use crate::source::etcd::EtcdSettings;

/// Default DNS listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Default metrics/health listen address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:9153";
/// Default zone directory.
pub const DEFAULT_ZONES: &str = "zones";
/// Default etcd key prefix (SkyDNS's).
pub const DEFAULT_ETCD_PREFIX: &str = "/skydns";

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
    pub http: Option<SocketAddr>,
    pub ttl: Option<u32>,
    pub min_ttl: Option<u32>,
    pub max_ttl: Option<u32>,
    pub negative_ttl: Option<u32>,
    pub log_level: Option<String>,
    /// Seconds an idle TCP connection is kept open.
    pub tcp_idle_timeout: Option<u64>,
    /// UDP worker threads per listen address (default: one per CPU).
    pub udp_workers: Option<usize>,
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
    /// From the environment (`SRVD_ETCD_PASSWORD`), never from the file.
    #[serde(skip)]
    pub etcd_password: Option<String>,
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
            http,
            ttl,
            min_ttl,
            max_ttl,
            negative_ttl,
            log_level,
            tcp_idle_timeout,
            udp_workers,
            etcd,
            etcd_prefix,
            domain,
            etcd_ca,
            etcd_cert,
            etcd_key,
            etcd_user,
            etcd_password_file,
            etcd_password
        );
        self
    }
}

/// The validated configuration srvd runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub zones: PathBuf,
    /// The zone directory was named explicitly (so it must exist).
    pub zones_explicit: bool,
    pub http: SocketAddr,
    pub ttl: TtlPolicy,
    pub log_level: String,
    pub tcp_idle_timeout: Duration,
    pub udp_workers: usize,
    /// The etcd source, when configured.
    pub etcd: Option<EtcdSettings>,
}

fn default_addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Config {
    /// Merge defaults and a file config, validating everything; returns every problem found.
    pub fn from_file_config(file: FileConfig) -> Result<Self, Vec<ConfigError>> {
        let mut problems = Vec::new();
        let etcd = etcd_settings(&file, &mut problems);
        let ttl = TtlPolicy {
            default: file.ttl.unwrap_or(5),
            min: file.min_ttl.unwrap_or(0),
            max: file.max_ttl.unwrap_or(3600),
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
        let listen = file
            .listen
            .unwrap_or_else(|| vec![default_addr(DEFAULT_LISTEN)]);
        if listen.is_empty() {
            problems.push(ConfigError::Invalid(
                "listen: at least one address is needed".into(),
            ));
        }
        let log_level = file.log_level.unwrap_or_else(|| "info".into());
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        let is_level = LEVELS.contains(&log_level.to_ascii_lowercase().as_str());
        let is_filter = log_level.contains('=') || log_level.contains(',');
        if !(is_level || is_filter) || tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            problems.push(ConfigError::Invalid(format!(
                "log_level {log_level:?} is not a level (error, warn, info, debug, trace) or filter"
            )));
        }
        let tcp_idle = file.tcp_idle_timeout.unwrap_or(10);
        if tcp_idle == 0 {
            problems.push(ConfigError::Invalid(
                "tcp_idle_timeout must be at least 1 second".into(),
            ));
        }
        let udp_workers = file.udp_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        if udp_workers == 0 || udp_workers > 256 {
            problems.push(ConfigError::Invalid(format!(
                "udp_workers ({udp_workers}) must be between 1 and 256"
            )));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            udp_workers,
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

fn etcd_settings(file: &FileConfig, problems: &mut Vec<ConfigError>) -> Option<EtcdSettings> {
    let mut invalid = |m: String| problems.push(ConfigError::Invalid(m));
    let endpoints = file.etcd.clone().unwrap_or_default();
    let endpoints: Vec<String> = endpoints
        .iter()
        .flat_map(|e| e.split(','))
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
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
    if endpoints.is_empty() {
        if !domains.is_empty() {
            invalid("--domain needs --etcd (the domains are served from etcd)".into());
        }
        return None;
    }
    if domains.is_empty() && file.domain.is_none() {
        invalid("--etcd needs at least one --domain to serve (e.g. --domain skydns.local.)".into());
    }
    for e in &endpoints {
        let scheme_ok = e.starts_with("http://") || e.starts_with("https://") || !e.contains("://");
        if !scheme_ok {
            invalid(format!("etcd endpoint {e:?} must be http:// or https://"));
        }
    }
    let prefix = file
        .etcd_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_ETCD_PREFIX.to_string());
    if !prefix.starts_with('/') || prefix.trim_end_matches('/').is_empty() {
        invalid(format!(
            "etcd_prefix {prefix:?} must start with '/' and not be '/' alone"
        ));
    }
    if file.etcd_cert.is_some() != file.etcd_key.is_some() {
        invalid("--etcd-cert and --etcd-key go together".into());
    }
    for path in [&file.etcd_ca, &file.etcd_cert, &file.etcd_key]
        .into_iter()
        .flatten()
    {
        if !path.is_file() {
            invalid(format!("{}: no such file", path.display()));
        }
    }
    let password = match (&file.etcd_password_file, &file.etcd_password) {
        (Some(path), _) => match std::fs::read_to_string(path) {
            Ok(p) => Some(p.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                invalid(format!(
                    "{}: cannot read password file: {e}",
                    path.display()
                ));
                None
            }
        },
        (None, password) => password.clone(),
    };
    if file.etcd_user.is_some() && password.is_none() {
        invalid("--etcd-user needs a password: SRVD_ETCD_PASSWORD or --etcd-password-file".into());
    }
    Some(EtcdSettings {
        endpoints,
        prefix,
        domains,
        ca: file.etcd_ca.clone(),
        cert: file.etcd_cert.clone(),
        key: file.etcd_key.clone(),
        user: file.etcd_user.clone(),
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_file_config(FileConfig::default()).unwrap();
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
        let c = Config::from_file_config(file.overlay(flags)).unwrap();
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
        let problems = Config::from_file_config(file).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn etcd_settings_are_validated() {
        let file = FileConfig {
            etcd: Some(vec!["http://127.0.0.1:2379,http://127.0.0.2:2379".into()]),
            domain: Some(vec!["SkyDNS.local".into()]),
            ..FileConfig::default()
        };
        let etcd = Config::from_file_config(file).unwrap().etcd.unwrap();
        assert_eq!(etcd.endpoints.len(), 2);
        assert_eq!(etcd.domains[0].to_ascii(), "skydns.local.");
        assert_eq!(etcd.prefix, "/skydns");

        let file = FileConfig {
            etcd: Some(vec!["ftp://x".into()]),
            etcd_prefix: Some("skydns".into()),
            etcd_cert: Some("/nonexistent.pem".into()),
            etcd_user: Some("srvd".into()),
            ..FileConfig::default()
        };
        let problems = Config::from_file_config(file).unwrap_err();
        // no domain, bad scheme, bad prefix, cert without key, missing file, no password
        assert_eq!(problems.len(), 6, "{problems:?}");

        let file = FileConfig {
            domain: Some(vec!["skydns.local.".into()]),
            ..FileConfig::default()
        };
        assert_eq!(Config::from_file_config(file).unwrap_err().len(), 1);
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
