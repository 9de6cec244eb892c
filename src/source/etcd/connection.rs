//! How to reach etcd: the flags (declared once, shared by `srvd serve` and `srvd announce`,
//! with config-file keys of the same names), their validation into an [`EtcdConnection`], and
//! the client options (keep-alive, TLS, auth) built from it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use super::EtcdError;

/// Default etcd key prefix (SkyDNS's).
pub const DEFAULT_ETCD_PREFIX: &str = "/skydns";
/// Environment variable holding the etcd password.
pub const PASSWORD_ENV: &str = "SRVD_ETCD_PASSWORD";

/// HTTP/2 keep-alive: a silent peer is declared dead after interval + timeout.
const KEEPALIVE: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The etcd connection flags.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated or repeated.
    #[arg(
        long = "etcd",
        value_name = "URL[,URL...]",
        env = "SRVD_ETCD",
        value_delimiter = ','
    )]
    pub endpoints: Vec<String>,
    /// Key prefix whose subtree holds the records [default: /skydns].
    #[arg(long = "etcd-prefix", value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// CA certificate (PEM) to verify etcd's server certificate (use https:// endpoints).
    #[arg(long = "etcd-ca", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for etcd; with --etcd-key.
    #[arg(long = "etcd-cert", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for etcd; with --etcd-cert.
    #[arg(long = "etcd-key", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// etcd user; the password comes from SRVD_ETCD_PASSWORD or --etcd-password-file.
    #[arg(long = "etcd-user", value_name = "USER")]
    pub user: Option<String>,
    /// File holding the etcd password (a trailing newline is ignored).
    #[arg(long = "etcd-password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl EtcdArgs {
    /// Every value set in `flags` replaces this one's.
    pub fn overlay(mut self, flags: EtcdArgs) -> EtcdArgs {
        if !flags.endpoints.is_empty() {
            self.endpoints = flags.endpoints;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if flags.$f.is_some() { self.$f = flags.$f; } )* };
        }
        take!(prefix, ca, cert, key, user, password_file);
        self
    }

    /// The endpoints, split on commas and trimmed.
    pub fn endpoint_list(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect()
    }

    /// Validate into a connection (`Ok(None)`: no endpoint, etcd not used). `password` is the
    /// environment's, used when no password file is given. Every problem is reported, each
    /// naming its flag.
    pub fn validate(
        &self,
        password: Option<String>,
    ) -> Result<Option<EtcdConnection>, Vec<String>> {
        let endpoints = self.endpoint_list();
        if endpoints.is_empty() {
            return Ok(None);
        }
        let mut problems = Vec::new();
        check_schemes(&endpoints, &mut problems);
        let prefix = self.checked_prefix(&mut problems);
        self.check_tls_files(&mut problems);
        let password = self.checked_password(password, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Some(EtcdConnection {
            endpoints,
            prefix,
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            user: self.user.clone(),
            password,
        }))
    }

    /// The key prefix (the default when unset); a problem noted if it is not a usable one.
    fn checked_prefix(&self, problems: &mut Vec<String>) -> String {
        let prefix = self
            .prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_ETCD_PREFIX.to_string());
        if !prefix.starts_with('/') || prefix.trim_end_matches('/').is_empty() {
            problems.push(format!(
                "--etcd-prefix {prefix:?}: must start with '/' and not be '/' alone"
            ));
        }
        prefix
    }

    /// Note a problem for a certificate without its key (or the reverse) and each missing file.
    fn check_tls_files(&self, problems: &mut Vec<String>) {
        if self.cert.is_some() != self.key.is_some() {
            problems.push("--etcd-cert and --etcd-key go together".into());
        }
        for (flag, path) in [
            ("--etcd-ca", &self.ca),
            ("--etcd-cert", &self.cert),
            ("--etcd-key", &self.key),
        ] {
            if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
                problems.push(format!("{flag} {}: no such file", path.display()));
            }
        }
    }

    /// The password file's password, else `password`; a problem noted if it is missing.
    fn checked_password(
        &self,
        password: Option<String>,
        problems: &mut Vec<String>,
    ) -> Option<String> {
        let password = match &self.password_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(p) => Some(p.trim_end_matches(['\n', '\r']).to_string()),
                Err(e) => {
                    problems.push(format!(
                        "--etcd-password-file {}: cannot read: {e}",
                        path.display()
                    ));
                    None
                }
            },
            None => password,
        };
        if self.user.is_some() && password.is_none() {
            problems.push(format!(
                "--etcd-user needs a password: {PASSWORD_ENV} or --etcd-password-file"
            ));
        }
        password
    }
}

/// Note a problem for each endpoint whose scheme is not http:// or https://.
fn check_schemes(endpoints: &[String], problems: &mut Vec<String>) {
    for e in endpoints {
        let scheme_ok = e.starts_with("http://") || e.starts_with("https://") || !e.contains("://");
        if !scheme_ok {
            problems.push(format!("--etcd {e:?}: must be http:// or https://"));
        }
    }
}

/// A validated etcd connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConnection {
    pub endpoints: Vec<String>,
    /// Key prefix (leading `/`).
    pub prefix: String,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Build the client options: keep-alive, TLS and auth.
pub fn connect_options(connection: &EtcdConnection) -> Result<ConnectOptions, EtcdError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| EtcdError::ReadFile {
            path: path.clone(),
            source,
        })
    };
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(KEEPALIVE, KEEPALIVE)
        .with_keep_alive_while_idle(true);
    if let (Some(user), Some(password)) = (&connection.user, &connection.password) {
        options = options.with_user(user.clone(), password.clone());
    }
    if connection.ca.is_some() || connection.cert.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &connection.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&connection.cert, &connection.key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_every_problem() {
        let args = EtcdArgs {
            endpoints: vec!["ftp://x".into()],
            prefix: Some("skydns".into()),
            cert: Some("/nonexistent.pem".into()),
            user: Some("srvd".into()),
            ..EtcdArgs::default()
        };
        let problems = args.validate(None).unwrap_err();
        // bad scheme, bad prefix, cert without key, missing file, no password
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(EtcdArgs::default().validate(None).unwrap().is_none());
        let ok = EtcdArgs {
            endpoints: vec!["http://127.0.0.1:2379,http://127.0.0.2:2379".into()],
            ..EtcdArgs::default()
        };
        let conn = ok.validate(None).unwrap().unwrap();
        assert_eq!(conn.endpoints.len(), 2);
        assert_eq!(conn.prefix, "/skydns");
    }

    #[test]
    fn flags_override_the_file() {
        let file = EtcdArgs {
            endpoints: vec!["http://a:2379".into()],
            prefix: Some("/x".into()),
            ..EtcdArgs::default()
        };
        let flags = EtcdArgs {
            prefix: Some("/y".into()),
            ..EtcdArgs::default()
        };
        let merged = file.overlay(flags);
        assert_eq!(merged.endpoints, vec!["http://a:2379".to_string()]);
        assert_eq!(merged.prefix.as_deref(), Some("/y"));
    }
}
