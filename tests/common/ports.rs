//! Loopback ports for the real daemons the tests start (etcd, Knot, NSD, BIND, dnsmasq).

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Mutex;

/// Ports handed out by this process, never handed out twice.
static USED_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port free right now for both TCP and UDP on `ip`. It is drawn at random from below the
/// kernel's ephemeral range when possible, so outgoing connections (whose source ports come
/// from that range) cannot take it before the daemon binds it, or between restarts.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    let mut used = USED_PORTS.lock().unwrap();
    let free =
        |port: u16| TcpListener::bind((ip, port)).is_ok() && UdpSocket::bind((ip, port)).is_ok();
    if let Some((lo, hi)) = non_ephemeral_range() {
        for _ in 0..1000 {
            let port = rand::random_range(lo..hi);
            if !used.contains(&port) && free(port) {
                used.insert(port);
                return port;
            }
        }
    }
    loop {
        let port = UdpSocket::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !used.contains(&port) && free(port) {
            used.insert(port);
            return port;
        }
    }
}

fn non_ephemeral_range() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = text.split_whitespace().map(|s| s.parse::<u16>().ok());
    let (lo, hi) = (parts.next()??, parts.next()??);
    if lo >= 12_000 {
        Some((10_000, lo))
    } else if hi <= 55_000 {
        Some((hi + 1, 65_000))
    } else {
        None
    }
}
