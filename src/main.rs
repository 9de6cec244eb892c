//! The `srvd` command: parse flags, load and validate configuration and zones *before*
//! binding anything (exit 2 on any problem, listing all of them), then run until SIGINT or
//! SIGTERM and exit 0 after draining.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use srvd::config::{Config, ConfigError, FileConfig};
use srvd::source::ZoneSet;
use srvd::source::etcd::EtcdArgs;
use srvd::source::zonefile;

/// How long a graceful shutdown may take before srvd exits anyway.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the runtime waits for blocking tasks at exit.
const RUNTIME_EXIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Authoritative DNS for service discovery: answers A/AAAA, SRV, TXT, MX, PTR, NS and SOA from
/// etcd (the CoreDNS etcd plugin's key layout) and zone files, with short TTLs; forwards every
/// other name to upstream resolvers (--forward); feeds stock secondaries by NOTIFY and
/// AXFR/IXFR (--allow-transfer, --notify).
#[derive(Parser)]
#[command(name = "srvd", version, args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Without a subcommand srvd serves (same as `srvd serve`).\n\
Flags override the configuration file; see README.md for the file format."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS (the default).
    Serve(ServeArgs),
    /// Validate the configuration and every zone file, print every problem, exit 2 if any.
    Check(ServeArgs),
    /// Register a service instance in etcd (under a lease) while it is healthy.
    Announce(srvd::announce::AnnounceArgs),
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// TOML configuration file (flags override its values).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// DNS listen address, UDP and TCP; repeat for more [default: 127.0.0.1:5353].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Directory of `*.zone` files (RFC 1035), watched and reloaded on change and on SIGHUP
    /// [default: zones].
    #[arg(long, value_name = "DIR")]
    zones: Option<PathBuf>,
    /// Largest zone file, its $INCLUDEs counted, in MiB [default: 256].
    #[arg(long, value_name = "MiB")]
    zone_max_size: Option<u64>,
    /// HTTP address for /metrics, /healthz and /readyz [default: 127.0.0.1:9153].
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<SocketAddr>,
    /// TTL for etcd values that set none, in seconds [default: 5].
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u32>,
    /// Lowest TTL ever served [default: 0].
    #[arg(long, value_name = "SECONDS")]
    min_ttl: Option<u32>,
    /// Highest TTL ever served [default: 604800, one week].
    #[arg(long, value_name = "SECONDS")]
    max_ttl: Option<u32>,
    /// TTL of negative answers: the synthesized SOA minimum [default: 5].
    #[arg(long, value_name = "SECONDS")]
    negative_ttl: Option<u32>,
    /// Log level or tracing filter (error, warn, info, debug, trace) [default: info].
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Seconds an idle TCP connection stays open [default: 10].
    #[arg(long, value_name = "SECONDS")]
    tcp_idle_timeout: Option<u64>,
    /// Most TCP connections open at once; when full, the idlest is closed [default: 3/4 of
    /// the open-files limit, at most 4096].
    #[arg(long, value_name = "N")]
    tcp_max_connections: Option<usize>,
    /// UDP worker threads per listen address [default: one per CPU].
    #[arg(long, value_name = "N")]
    udp_workers: Option<usize>,
    /// Rotate the order of A, AAAA and SRV records per response (on|off) [default: on].
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new())]
    rotate: Option<bool>,
    /// Size of the answer cache, MiB [default: 64].
    #[arg(long, value_name = "MiB")]
    cache_size: Option<u64>,
    /// Upstream resolver for names outside srvd's zones, ADDR[:PORT] (port 53 by default;
    /// IPv6 as [ADDR]:PORT); repeat or comma-separate for more. Without any --forward* option,
    /// such names are REFUSED.
    #[arg(long, value_name = "ADDR[:PORT]")]
    forward: Vec<String>,
    /// Take upstreams from a resolv.conf-format file (its nameserver lines), re-read when it
    /// changes; srvd's own addresses in it are dropped (a loop).
    #[arg(long, value_name = "FILE")]
    forward_resolv_conf: Option<PathBuf>,
    /// Conditional forwarding: names at or below ZONE go to these upstreams (the longest zone
    /// wins over --forward); repeatable.
    #[arg(long, value_name = "ZONE=ADDR[:PORT][,ADDR...]")]
    forward_zone: Vec<String>,
    /// Order upstreams are tried in: sequential, random or round_robin [default: sequential].
    #[arg(long, value_name = "POLICY")]
    forward_policy: Option<String>,
    /// Size of the forwarded-answer cache, MiB [default: 32].
    #[arg(long, value_name = "MiB")]
    forward_cache_size: Option<u64>,
    /// Upstream queries in flight at most; more are REFUSED [default: 1000].
    #[arg(long, value_name = "N")]
    forward_max_concurrent: Option<usize>,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// Zone served from etcd; repeat for more (e.g. skydns.local.).
    #[arg(long, value_name = "ZONE")]
    domain: Vec<String>,
    /// Response rate limiting: UDP replies per second to one source prefix for one answer
    /// (as Knot and NSD's RRL); 0 turns it off [default: 0, off].
    #[arg(long, value_name = "N", help_heading = "Response rate limiting")]
    rrl_rate: Option<u32>,
    /// Every Nth reply over the rate goes out truncated (TC=1) instead of being dropped, so
    /// real clients retry over TCP; 0: drop all [default: 2].
    #[arg(long, value_name = "N", help_heading = "Response rate limiting")]
    rrl_slip: Option<u32>,
    /// IPv4 source prefix length that shares one limit [default: 24].
    #[arg(long, value_name = "BITS", help_heading = "Response rate limiting")]
    rrl_ipv4_prefix: Option<u8>,
    /// IPv6 source prefix length that shares one limit [default: 56].
    #[arg(long, value_name = "BITS", help_heading = "Response rate limiting")]
    rrl_ipv6_prefix: Option<u8>,
    /// TSIG keys in BIND's format (what `tsig-keygen NAME` prints); hmac-sha256, hmac-sha384,
    /// hmac-sha512.
    #[arg(long, value_name = "FILE", help_heading = "Zone transfers")]
    tsig_key_file: Option<PathBuf>,
    /// Allow AXFR/IXFR from this address or prefix, with `,key=NAME` only when signed with
    /// that TSIG key; repeatable. Without any, every transfer is REFUSED.
    #[arg(
        long,
        value_name = "PREFIX[,key=NAME]",
        help_heading = "Zone transfers"
    )]
    allow_transfer: Vec<String>,
    /// Send NOTIFY to this secondary when a zone's serial changes (signed with `,key=NAME`);
    /// repeatable. Per-zone lists: the config file's [transfer."ZONE"] tables.
    #[arg(
        long,
        value_name = "ADDR:PORT[,key=NAME]",
        help_heading = "Zone transfers"
    )]
    notify: Vec<String>,
}

impl ServeArgs {
    /// The flags that are not etcd connection flags, as file keys.
    fn as_file_config(&self) -> FileConfig {
        FileConfig {
            listen: (!self.listen.is_empty()).then(|| self.listen.clone()),
            zones: self.zones.clone(),
            zone_max_size: self.zone_max_size,
            http: self.http,
            ttl: self.ttl,
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            negative_ttl: self.negative_ttl,
            log_level: self.log_level.clone(),
            tcp_idle_timeout: self.tcp_idle_timeout,
            tcp_max_connections: self.tcp_max_connections,
            udp_workers: self.udp_workers,
            rotate: self.rotate,
            cache_size: self.cache_size,
            forward: (!self.forward.is_empty()).then(|| self.forward.clone()),
            forward_resolv_conf: self.forward_resolv_conf.clone(),
            forward_zone: (!self.forward_zone.is_empty())
                .then(|| forward_zones(&self.forward_zone)),
            forward_policy: self.forward_policy.clone(),
            forward_cache_size: self.forward_cache_size,
            forward_max_concurrent: self.forward_max_concurrent,
            domain: (!self.domain.is_empty()).then(|| self.domain.clone()),
            rrl_rate: self.rrl_rate,
            rrl_slip: self.rrl_slip,
            rrl_ipv4_prefix: self.rrl_ipv4_prefix,
            rrl_ipv6_prefix: self.rrl_ipv6_prefix,
            tsig_key_file: self.tsig_key_file.clone(),
            allow_transfer: (!self.allow_transfer.is_empty()).then(|| self.allow_transfer.clone()),
            notify: (!self.notify.is_empty()).then(|| self.notify.clone()),
            ..FileConfig::default()
        }
    }
}

/// `ZONE=ADDR[,ADDR...]` flags as the config file's table (a flag without `=` names no
/// upstream, which validation reports).
fn forward_zones(flags: &[String]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut zones = std::collections::BTreeMap::new();
    for flag in flags {
        let (zone, addrs) = flag.split_once('=').unwrap_or((flag, ""));
        zones
            .entry(zone.trim().to_string())
            .or_insert_with(Vec::new)
            .extend(addrs.split(',').map(|a| a.trim().to_string()));
    }
    zones
}

/// The merged file + flags (when the file could be read) and the validated configuration.
fn load_config(args: &ServeArgs) -> (Option<FileConfig>, Result<Config, Vec<ConfigError>>) {
    let file = match &args.config {
        Some(path) => match FileConfig::load(path) {
            Ok(file) => file,
            Err(e) => return (None, Err(vec![e])),
        },
        None => FileConfig::default(),
    };
    let etcd = file.etcd_args().overlay(args.etcd.clone());
    let merged = file.overlay(args.as_file_config());
    (Some(merged.clone()), Config::from_file_config(merged, etcd))
}

/// The validated configuration and the zone directory's first load, or every problem found
/// in either (zones are checked even when the configuration is invalid).
fn validate(args: &ServeArgs) -> Result<(Config, Option<ZoneSet>), Vec<String>> {
    let mut problems: Vec<String> = Vec::new();
    let (merged, config) = load_config(args);
    let config = match config {
        Ok(config) => Some(config),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            None
        }
    };
    let zones = match merged.map(|m| (m.zones.clone(), m.zone_limits())) {
        Some((dir, limits)) => {
            let explicit = dir.is_some();
            let dir = dir.unwrap_or_else(|| PathBuf::from(srvd::config::DEFAULT_ZONES));
            load_zones(&dir, explicit, limits).unwrap_or_else(|errors| {
                problems.extend(errors);
                None
            })
        }
        None => None,
    };
    match config {
        Some(config) if problems.is_empty() => Ok((config, zones)),
        _ => Err(problems),
    }
}

/// The zone directory's first load; `Ok(None)` when the default directory is absent.
fn load_zones(
    dir: &Path,
    explicit: bool,
    limits: zonefile::Limits,
) -> Result<Option<ZoneSet>, Vec<String>> {
    if !dir.is_dir() {
        if explicit {
            return Err(vec![format!(
                "{}: zone directory does not exist",
                dir.display()
            )]);
        }
        return Ok(None);
    }
    zonefile::load_dir(dir, limits)
        .map(Some)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// Serve until SIGINT or SIGTERM (then drain and stop). SIGHUP re-reads the zone directory
/// (the configuration is not re-read: restart for that); SIGUSR1 and SIGUSR2 are ignored.
async fn serve(config: Config, zones: Option<ZoneSet>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers first: a signal that arrives while starting must not kill the process.
    let handle = |kind: SignalKind, name: &str| {
        signal(kind).with_context(|| format!("cannot handle {name}"))
    };
    let mut term = handle(SignalKind::terminate(), "SIGTERM")?;
    let mut int = handle(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = handle(SignalKind::hangup(), "SIGHUP")?;
    let mut usr1 = handle(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut usr2 = handle(SignalKind::user_defined2(), "SIGUSR2")?;
    let app = srvd::app::start(&config, zones)
        .await
        .context("cannot start srvd")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if app.reload_zones() {
                    tracing::info!("SIGHUP: re-reading the zone directory");
                } else {
                    tracing::warn!("SIGHUP: no zone directory to re-read");
                }
            }
            _ = usr1.recv() => tracing::debug!("SIGUSR1 ignored"),
            _ = usr2.recv() => tracing::debug!("SIGUSR2 ignored"),
        }
    }
    // Shutdown drains for at most 5 s; should anything hang past SHUTDOWN_LIMIT, or a second
    // SIGTERM/SIGINT arrive, exit anyway: a stop request is never ignored.
    tokio::select! {
        done = tokio::time::timeout(SHUTDOWN_LIMIT, app.shutdown()) => match done {
            Ok(result) => result?,
            Err(_) => tracing::warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway"),
        },
        _ = term.recv() => tracing::warn!("second SIGTERM: exiting without draining"),
        _ = int.recv() => tracing::warn!("second SIGINT: exiting without draining"),
    }
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (check, args) = match cli.command {
        Some(Command::Check(args)) => (true, args),
        Some(Command::Serve(args)) => (false, args),
        Some(Command::Announce(args)) => return srvd::announce::main(args),
        None => (false, cli.args),
    };
    let (config, zones) = match validate(&args) {
        Ok(valid) => valid,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "srvd: {} problem(s) found; nothing was started",
                problems.len()
            );
            return ExitCode::from(2);
        }
    };
    if check {
        let (n_zones, n_records) = zones
            .as_ref()
            .map_or((0, 0), |z| (z.zones.len(), z.record_count));
        println!("ok: configuration valid; {n_zones} zone(s), {n_records} record(s)");
        return ExitCode::SUCCESS;
    }
    srvd::logging::init(&config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(config, zones));
    // Blocking tasks still running (a zone load, a stuck etcd call) must not hold up the exit.
    runtime.shutdown_timeout(RUNTIME_EXIT_LIMIT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
