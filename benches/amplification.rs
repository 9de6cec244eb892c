//! Amplification: how many bytes srvd sends for every byte of query a spoofed-source flood
//! sends it, with response rate limiting off (the default) and on.
//!
//! An in-process srvd on `127.0.0.1:0` serves one zone with two TXT RRsets sized to just
//! fit a UDP reply: `big.amp.test.` (1171 bytes, under srvd's 1232-byte EDNS payload) and
//! `mid.amp.test.` (482 bytes, under the 512 bytes of a query without EDNS) — the worst case
//! an attacker can pick for each (an RRset that does not fit is answered empty with TC). One socket (one "victim" source address) sends `QUERIES` (default 10000) identical
//! questions paced at `QPS` (default 2000) per second, and counts the bytes of queries sent
//! and of replies received. The ratio is the amplification factor. Runs: RRL off, and RRL
//! `--rrl-rate RATE` (default 5) with `--rrl-slip 2`, each with and without EDNS.
//!
//! `cargo bench --bench amplification` (`QUERIES=20000 QPS=5000 RATE=10 ...`). Everything on
//! 127.0.0.1, bounded in count and time. Output: a Markdown table.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use srvd::config::{Config, FileConfig};
use srvd::source::zonefile;

/// How long the last replies may take to arrive after the last query.
const DRAIN: Duration = Duration::from_millis(500);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// A zone whose TXT answers at `big` and `mid` just fit 1232 and 512 bytes.
fn zone() -> String {
    let mut z = String::from(
        "$ORIGIN amp.test.\n$TTL 60\n@ SOA ns hostmaster 1 7200 1800 86400 5\n@ NS ns\n\
         ns A 192.0.2.53\n",
    );
    for i in 0..10 {
        z.push_str(&format!("big TXT \"{i:02}{}\"\n", "x".repeat(98)));
    }
    for i in 0..4 {
        z.push_str(&format!("mid TXT \"{i:02}{}\"\n", "x".repeat(98)));
    }
    z
}

fn question(edns: bool) -> Vec<u8> {
    let mut m = Message::new(1, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let name = if edns {
        "big.amp.test."
    } else {
        "mid.amp.test."
    };
    m.add_query(Query::query(
        Name::from_ascii(name).unwrap(),
        RecordType::TXT,
    ));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// Bytes sent and received for one paced run against `server`.
fn flood(server: SocketAddr, edns: bool, queries: u64, qps: u64) -> (u64, u64, u64) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let q = question(edns);
    let (mut sent, mut received, mut replies) = (0u64, 0u64, 0u64);
    let mut buf = vec![0u8; 65535];
    let mut drain = |received: &mut u64, replies: &mut u64| {
        while let Ok(n) = socket.recv(&mut buf) {
            *received += n as u64;
            *replies += 1;
        }
    };
    let start = Instant::now();
    for i in 0..queries {
        let due = start + Duration::from_secs_f64(i as f64 / qps as f64);
        while Instant::now() < due {
            drain(&mut received, &mut replies);
            std::hint::spin_loop();
        }
        if socket.send_to(&q, server).is_ok() {
            sent += q.len() as u64;
        }
    }
    let end = Instant::now() + DRAIN;
    while Instant::now() < end {
        drain(&mut received, &mut replies);
        std::thread::sleep(Duration::from_millis(1));
    }
    (sent, received, replies)
}

fn start(
    rate: u32,
    runtime: &tokio::runtime::Runtime,
) -> (srvd::app::RunningApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("amp.test.zone"), zone()).unwrap();
    let file = FileConfig {
        listen: Some(vec!["127.0.0.1:0".parse().unwrap()]),
        http: Some("127.0.0.1:0".parse().unwrap()),
        zones: Some(dir.path().to_path_buf()),
        rrl_rate: Some(rate),
        rrl_slip: Some(2),
        ..FileConfig::default()
    };
    let etcd = file.etcd_args();
    let config = Config::from_file_config(file, etcd).expect("valid config");
    let zones = zonefile::load_dir(dir.path(), Default::default()).expect("zone loads");
    let app = runtime
        .block_on(srvd::app::start(&config, Some(zones)))
        .expect("srvd starts");
    (app, dir)
}

fn main() {
    let queries = env_u64("QUERIES", 10_000);
    let qps = env_u64("QPS", 2_000).max(1);
    let rate = u32::try_from(env_u64("RATE", 5)).expect("RATE fits u32");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| RRL | EDNS | queries | replies | query bytes | reply bytes | amplification |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for rrl in [0, rate] {
        let (app, _dir) = start(rrl, &runtime);
        let server = app.dns_addrs()[0];
        for edns in [true, false] {
            let (sent, received, replies) = flood(server, edns, queries, qps);
            let label = if rrl == 0 {
                "off".to_string()
            } else {
                format!("rate {rrl}, slip 2")
            };
            println!(
                "| {label} | {} | {queries} | {replies} | {sent} | {received} | {:.2}x |",
                if edns {
                    "4096 asked (big)"
                } else {
                    "none (mid)"
                },
                received as f64 / sent.max(1) as f64
            );
        }
        runtime.block_on(app.shutdown()).expect("srvd stops");
    }
    println!("\n{queries} queries at {qps}/s from one source per row.");
}
