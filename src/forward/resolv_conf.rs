//! Upstreams from a resolv.conf-format file: its `nameserver` lines, re-read when it changes.
//!
//! Addresses srvd itself listens on are dropped with a warning: reading the very resolv.conf
//! that points at srvd is the classic forwarding loop.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The `nameserver` addresses of resolv.conf text (port 53; IPv6 zone suffixes dropped).
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next()?.trim();
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let addr = words.next()?;
            let addr = addr.split('%').next()?;
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Whether a server listening on `listen` would receive what is sent to `upstream`.
pub fn is_own(upstream: SocketAddr, listen: &[SocketAddr]) -> bool {
    listen.iter().any(|l| {
        l.port() == upstream.port()
            && (l.ip() == upstream.ip()
                || (l.ip().is_unspecified()
                    && (upstream.ip().is_loopback() || local_address(upstream.ip()))))
    })
}

/// Whether `ip` is one of this host's addresses (a UDP socket can be bound to it).
fn local_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Read the upstreams from `path`, without srvd's own addresses (each dropped one is
/// returned too, to be warned about).
pub fn read(
    path: &Path,
    listen: &[SocketAddr],
) -> std::io::Result<(Vec<SocketAddr>, Vec<SocketAddr>)> {
    let text = std::fs::read_to_string(path)?;
    let (own, others): (Vec<_>, Vec<_>) = nameservers(&text)
        .into_iter()
        .partition(|a| is_own(*a, listen));
    Ok((others, own))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameserver_lines() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver  2001:db8::1 ; x\n\
                    nameserver fe80::1%eth0\noptions ndots:2\nnameserver bogus\n";
        let got: Vec<String> = nameservers(text).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec!["192.0.2.1:53", "[2001:db8::1]:53", "[fe80::1]:53"]
        );
    }

    #[test]
    fn own_listen_addresses_are_recognized() {
        let listen: Vec<SocketAddr> = vec!["127.0.0.1:53".parse().unwrap()];
        assert!(is_own("127.0.0.1:53".parse().unwrap(), &listen));
        assert!(!is_own("127.0.0.53:53".parse().unwrap(), &listen));
        assert!(!is_own("127.0.0.1:5353".parse().unwrap(), &listen));
        let any: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap()];
        assert!(is_own("127.0.0.1:53".parse().unwrap(), &any));
        assert!(!is_own("192.0.2.1:53".parse().unwrap(), &any));
    }
}
