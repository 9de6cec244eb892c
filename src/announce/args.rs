//! `srvd announce` flags and their validation into an [`Announcement`].
//!
//! Type errors (a port of 70000, `--check-interval 2x`) are reported by clap; everything
//! semantic (labels, host, check syntax, etcd TLS/auth files) is checked here, every problem
//! at once, each message naming the argument. The value written to etcd is decoded again with
//! [`Service::from_json`], the same code `srvd serve` uses, so what is announced is servable.

use std::time::Duration;

use clap::Args;
use hickory_proto::rr::Name;

use super::check::{Check, CheckPlan};
use crate::record::{RecordError, Service};
use crate::source::etcd::connection::PASSWORD_ENV;
use crate::source::etcd::{EtcdArgs, EtcdConnection};
use crate::source::key::KeyMapper;

/// `srvd announce`: keep one service instance registered in etcd while it is healthy.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Example:\n  srvd announce --etcd http://127.0.0.1:2379 --domain skydns.local. \\\n    \
--name web --id web-1 --host 10.0.0.5 --port 8080 \\\n    \
--check http://127.0.0.1:8080/health -- ./web-server --port 8080\n\n\
Writes {\"host\":\"10.0.0.5\",\"port\":8080} at /skydns/local/skydns/web/web-1 under a lease of\n\
--ttl seconds, kept alive; SIGTERM/SIGINT delete it (and revoke the lease) before exiting."
)]
pub struct AnnounceArgs {
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// Zone the record is announced in (e.g. skydns.local.).
    #[arg(long, value_name = "ZONE")]
    pub domain: String,
    /// Service name: one DNS label (the record is <id>.<name>.<domain>).
    #[arg(long, value_name = "LABEL")]
    pub name: String,
    /// Instance id: one DNS label, unique within the service.
    #[arg(long, value_name = "LABEL")]
    pub id: String,
    /// Address of the instance: an IPv4/IPv6 address or a host name.
    #[arg(long, value_name = "IP|NAME")]
    pub host: String,
    /// Port of the instance (SRV port).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// SRV priority [default: srvd's, 10].
    #[arg(long, value_name = "N")]
    pub priority: Option<u16>,
    /// SRV weight [default: srvd's, 100].
    #[arg(long, value_name = "N")]
    pub weight: Option<u16>,
    /// Lease TTL in seconds: the record disappears this long after the announcer dies.
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))]
    pub ttl: u32,
    /// TXT data of the record.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// Health check: http://HOST:PORT/PATH (2xx/3xx passes), tcp:HOST:PORT (connect
    /// succeeds) or exec:COMMAND (`sh -c COMMAND` exits 0).
    #[arg(long, value_name = "CHECK")]
    pub check: Option<String>,
    /// Time between two checks (e.g. 2s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub check_interval: Duration,
    /// Time one check may take before it counts as failed [default: the check interval].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub check_timeout: Option<Duration>,
    /// Consecutive failed checks that withdraw the record.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub check_fall: u32,
    /// Consecutive passed checks that announce it again after a withdrawal (the very first
    /// passing check announces at once).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub check_rise: u32,
    /// Log level or tracing filter (error, warn, info, debug, trace).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// The service to run as a child (after `--`): announced once the check passes, withdrawn
    /// before SIGTERM/SIGINT are forwarded to it; srvd exits with its status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Everything `srvd announce` runs with, validated.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub etcd: EtcdConnection,
    /// `<id>.<name>.<domain>`.
    pub name: Name,
    /// `<prefix>/<reversed name>`.
    pub key: String,
    /// The SkyDNS JSON value.
    pub value: String,
    /// Requested lease TTL, seconds.
    pub ttl: i64,
    pub check: Option<CheckPlan>,
    /// Child command and arguments (empty: none).
    pub command: Vec<String>,
    pub log_level: String,
}

/// Parse `500ms`, `2s`, `1.5s`, `1m` or a bare number of seconds; must be above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration (e.g. 500ms, 2s, 1m)");
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        return Err(format!("{text:?} must be above 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// One DNS label as srvd keys use them: 1–63 of letters, digits, `-` and `_`, not starting or
/// ending with `-`.
pub fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl AnnounceArgs {
    /// Validate everything; every problem is returned, each naming its argument.
    pub fn validate(&self) -> Result<Announcement, Vec<String>> {
        let mut problems = Vec::new();
        let domain = self.domain_name(&mut problems);
        let name = self.record_name(domain.as_ref(), &mut problems);
        let value = self.value_json();
        self.check_value(&value, &mut problems);
        let check = self.check_plan(&mut problems);
        if self.command.first().is_some_and(|c| c.is_empty()) {
            problems.push("COMMAND (after --): the command is empty".to_string());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            problems.push(format!(
                "--log-level {:?}: not a level (error, warn, info, debug, trace) or filter",
                self.log_level
            ));
        }
        let etcd = self.etcd_connection(&mut problems);
        match (problems.is_empty(), etcd, name, domain) {
            (true, Some(etcd), Some(name), Some(domain)) => {
                let key = KeyMapper::new(&etcd.prefix, &[domain]).key_of(&name);
                Ok(Announcement {
                    etcd,
                    name,
                    key,
                    value,
                    ttl: i64::from(self.ttl),
                    check,
                    command: self.command.clone(),
                    log_level: self.log_level.clone(),
                })
            }
            _ => {
                if problems.is_empty() {
                    problems.push("invalid arguments".to_string());
                }
                Err(problems)
            }
        }
    }

    /// The zone of `--domain`, fully qualified and lowercased; `None` (a problem noted) if bad.
    fn domain_name(&self, problems: &mut Vec<String>) -> Option<Name> {
        match Name::from_ascii(self.domain.trim()) {
            Ok(mut name) if !name.is_root() && !self.domain.contains(['/', ' ']) => {
                name.set_fqdn(true);
                Some(name.to_lowercase())
            }
            _ => {
                problems.push(format!(
                    "--domain {:?}: not a valid domain name (e.g. skydns.local.)",
                    self.domain
                ));
                None
            }
        }
    }

    /// The record's name, `<id>.<name>.<domain>`, lowercased; `None` (problems noted) if bad.
    fn record_name(&self, domain: Option<&Name>, problems: &mut Vec<String>) -> Option<Name> {
        for (flag, label) in [("--name", &self.name), ("--id", &self.id)] {
            if !is_label(label) {
                problems.push(format!(
                    "{flag} {label:?}: not a valid DNS label (1-63 letters, digits, '-' or '_', \
                     not starting or ending with '-')"
                ));
            }
        }
        let domain = domain?;
        if !is_label(&self.name) || !is_label(&self.id) {
            return None;
        }
        let full = format!("{}.{}.{}", self.id, self.name, domain.to_ascii());
        match Name::from_ascii(&full) {
            Ok(name) => Some(name.to_lowercase()),
            Err(_) => {
                problems.push(format!(
                    "--id/--name/--domain: {full:?} is not a valid domain name (too long?)"
                ));
                None
            }
        }
    }

    /// Note a problem, naming the argument at fault, when `value` is not a servable record.
    fn check_value(&self, value: &str, problems: &mut Vec<String>) {
        match Service::from_json(value.as_bytes()) {
            Ok(_) => {}
            Err(RecordError::BadHost(_)) | Err(RecordError::Empty) => {
                let what = if looks_like_ip(&self.host) {
                    "not a valid IP address"
                } else {
                    "neither an IP address nor a valid host name"
                };
                problems.push(format!("--host {:?}: {what}", self.host));
            }
            Err(RecordError::TextTooLong) => {
                problems.push("--text: longer than 65535 bytes".to_string());
            }
            Err(e) => problems.push(format!("the record value would be invalid: {e}")),
        }
    }

    /// The health check plan, if `--check` is given; `None` (a problem noted) if it is bad.
    fn check_plan(&self, problems: &mut Vec<String>) -> Option<CheckPlan> {
        let text = self.check.as_ref()?;
        match Check::parse(text) {
            Ok(check) => Some(CheckPlan {
                check,
                interval: self.check_interval,
                timeout: self.check_timeout.unwrap_or(self.check_interval),
                fall: self.check_fall,
                rise: self.check_rise,
            }),
            Err(e) => {
                problems.push(format!("--check {text:?}: {e}"));
                None
            }
        }
    }

    /// The SkyDNS JSON value: host and port, plus priority, weight and text when given.
    pub fn value_json(&self) -> String {
        let mut value = serde_json::Map::new();
        value.insert("host".into(), self.host.trim().into());
        value.insert("port".into(), self.port.into());
        if let Some(priority) = self.priority {
            value.insert("priority".into(), priority.into());
        }
        if let Some(weight) = self.weight {
            value.insert("weight".into(), weight.into());
        }
        if let Some(text) = &self.text {
            value.insert("text".into(), text.clone().into());
        }
        serde_json::Value::Object(value).to_string()
    }

    /// The etcd connection, validated by the same code as `srvd serve`'s.
    fn etcd_connection(&self, problems: &mut Vec<String>) -> Option<EtcdConnection> {
        match self.etcd.validate(std::env::var(PASSWORD_ENV).ok()) {
            Ok(Some(connection)) => Some(connection),
            Ok(None) => {
                problems.push("--etcd: at least one endpoint is needed (or SRVD_ETCD)".into());
                None
            }
            Err(errors) => {
                problems.extend(errors);
                None
            }
        }
    }
}

/// A host meant as an address (a ':' or only digits and dots): "not a valid IP" is the better
/// message for it.
fn looks_like_ip(host: &str) -> bool {
    let host = host.trim();
    !host.is_empty() && (host.contains(':') || host.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(args_override_self = true)]
    struct Cli {
        #[command(flatten)]
        args: AnnounceArgs,
    }

    fn parse(extra: &[&str]) -> Result<AnnounceArgs, clap::Error> {
        let mut argv = vec![
            "announce",
            "--etcd",
            "http://127.0.0.1:2379",
            "--domain",
            "skydns.local.",
            "--name",
            "web",
            "--id",
            "web-1",
            "--host",
            "10.0.0.5",
            "--port",
            "8080",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "0s", "2x", "s", "-1s", "1e9s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        for good in ["web", "web-1", "_http", "a", &"a".repeat(63), "Web1"] {
            assert!(is_label(good), "{good}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "we b",
            "a.b",
            "web/1",
            &"a".repeat(64),
            "wéb",
        ] {
            assert!(!is_label(bad), "{bad}");
        }
    }

    #[test]
    fn builds_key_and_value() {
        let a = parse(&["--priority", "20", "--text", "hi", "--ttl", "7"])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(a.key, "/skydns/local/skydns/web/web-1");
        assert_eq!(a.name.to_ascii(), "web-1.web.skydns.local.");
        assert_eq!(a.ttl, 7);
        let v: serde_json::Value = serde_json::from_str(&a.value).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"host":"10.0.0.5","port":8080,"priority":20,"text":"hi"})
        );
        assert!(a.check.is_none());
        let a = parse(&["--etcd-prefix", "/other/", "--check", "tcp:127.0.0.1:1"])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(a.key, "/other/local/skydns/web/web-1");
        let plan = a.check.unwrap();
        assert_eq!(plan.interval, Duration::from_secs(2));
        assert_eq!(plan.timeout, Duration::from_secs(2));
        assert_eq!((plan.fall, plan.rise), (3, 2));
    }

    #[test]
    fn host_may_be_a_name() {
        let a = parse(&["--host", "web1.example.com"])
            .unwrap()
            .validate()
            .unwrap();
        assert!(a.value.contains("web1.example.com"));
        parse(&["--host", "2001:db8::5"])
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn every_problem_names_its_argument() {
        let problems = parse(&[
            "--host",
            "10.0.0.300",
            "--name",
            "we b",
            "--id=-x",
            "--domain",
            "a..b",
            "--check",
            "ftp://x",
        ])
        .unwrap()
        .validate()
        .unwrap_err();
        let all = problems.join("\n");
        for flag in ["--host", "--name", "--id", "--domain", "--check"] {
            assert!(all.contains(flag), "{flag} not named in:\n{all}");
        }
        assert!(all.contains("not a valid IP address"), "{all}");
        for (args, flag) in [
            (&["--port", "70000"][..], "--port"),
            (&["--port", "0"][..], "--port"),
            (&["--ttl", "0"][..], "--ttl"),
            (&["--check-interval", "2x"][..], "--check-interval"),
            (&["--check-fall", "0"][..], "--check-fall"),
        ] {
            let e = parse(args).err().unwrap().to_string();
            assert!(e.contains(flag), "{args:?}: {e}");
        }
        let e = parse(&["--etcd-cert", "/nonexistent.pem"])
            .unwrap()
            .validate()
            .unwrap_err()
            .join("\n");
        assert!(e.contains("--etcd-cert and --etcd-key"), "{e}");
    }

    #[test]
    fn trailing_command() {
        let a = parse(&["--", "sleep", "10"]).unwrap();
        assert_eq!(a.command, vec!["sleep", "10"]);
    }
}
