//! NOTIFY (RFC 1996): telling secondaries a zone changed, so they transfer it at once.
//!
//! A task follows the index: when a zone's serial moves it notifies each of the zone's
//! targets at once, then at most once every [`COALESCE`] (a burst of etcd changes becomes one
//! NOTIFY with the newest serial), TSIG-signed when the target names a key, and retries with
//! backoff ([`RETRY`], doubling) until the secondary answers — or a newer serial supersedes
//! it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Name, Record};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::XfrSettings;
use super::tsig::{self, Key};
use crate::dns::TtlPolicy;
use crate::index::IndexHandle;
use crate::metrics::Metrics;
use crate::name_key::NameKey;
use crate::source::SourceId;

/// Least time between two NOTIFYs of one zone.
pub const COALESCE: Duration = Duration::from_millis(250);
/// First retry delay; it doubles up to [`RETRY_MAX`].
const RETRY: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Tries per NOTIFY.
const ATTEMPTS: u32 = 8;

/// A NOTIFY message for `zone` carrying its current SOA.
fn message(zone: &Name, soa: &Record) -> (u16, Vec<u8>) {
    let id: u16 = rand::random();
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&0x2400u16.to_be_bytes()); // opcode NOTIFY, AA
    for count in [1u16, 1, 0, 0] {
        m.extend_from_slice(&count.to_be_bytes());
    }
    let name_at = m.len();
    for label in zone.iter() {
        m.push(label.len() as u8);
        m.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    m.push(0);
    m.extend_from_slice(&6u16.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(0xC000u16 | name_at as u16).to_be_bytes());
    m.extend_from_slice(&6u16.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&soa.ttl.to_be_bytes());
    use hickory_proto::serialize::binary::BinEncodable;
    let rdata = {
        let mut buf = Vec::new();
        let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut buf);
        encoder.set_name_encoding(hickory_proto::serialize::binary::NameEncoding::Uncompressed);
        let _ = soa.data.emit(&mut encoder);
        buf
    };
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend(rdata);
    (id, m)
}

/// Send one NOTIFY and wait for its answer.
async fn send_once(
    local: SocketAddr,
    target: SocketAddr,
    zone: &Name,
    soa: &Record,
    key: Option<&Arc<Key>>,
) -> std::io::Result<bool> {
    let (id, mut msg) = message(zone, soa);
    let request_mac = key.map(|k| tsig::sign_request(k, &mut msg));
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    socket.send(&msg).await?;
    let mut buf = [0u8; 4096];
    let wait = tokio::time::timeout(RETRY, async {
        loop {
            let n = socket.recv(&mut buf).await?;
            let reply = &buf[..n];
            if n >= 12 && reply[..2] == id.to_be_bytes() && reply[2] & 0x80 != 0 {
                return Ok::<_, std::io::Error>(reply.to_vec());
            }
        }
    })
    .await;
    let Ok(Ok(reply)) = wait else {
        return Ok(false);
    };
    let rcode = reply[3] & 0x0F;
    if let (Some(key), Some(mac)) = (key, request_mac) {
        let signed =
            tsig::find(&reply).is_some_and(|t| tsig::check_response(key, &mac, &reply, &t));
        if !signed {
            warn!(%target, zone = %zone, "NOTIFY answer not signed with our key; ignored");
            return Ok(false);
        }
    }
    Ok(rcode == 0)
}

/// The address NOTIFYs to `target` are sent from: the first listen address of its family
/// (secondaries accept NOTIFY from their primary's address only), else the system's choice.
fn source_for(target: SocketAddr, listen: &[IpAddr]) -> SocketAddr {
    let ip = listen
        .iter()
        .copied()
        .find(|ip| ip.is_ipv4() == target.is_ipv4() && !ip.is_unspecified())
        .unwrap_or(if target.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
    SocketAddr::new(ip, 0)
}

/// Notify `target` about `zone` at `soa`, retrying with backoff.
async fn notify(
    local: SocketAddr,
    target: SocketAddr,
    zone: Name,
    soa: Record,
    key: Option<Arc<Key>>,
    metrics: Arc<Metrics>,
) {
    let mut wait = RETRY;
    for attempt in 1..=ATTEMPTS {
        metrics.notify_sent();
        match send_once(local, target, &zone, &soa, key.as_ref()).await {
            Ok(true) => {
                metrics.notify_acked();
                debug!(%target, zone = %zone, attempt, "NOTIFY acknowledged");
                return;
            }
            Ok(false) => {}
            Err(e) => debug!(%target, zone = %zone, "NOTIFY failed: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
    warn!(%target, zone = %zone, "NOTIFY not acknowledged after {ATTEMPTS} tries; the secondary's refresh timer will catch up");
}

/// What [`run`] needs besides the index.
pub struct Notifier {
    pub settings: Arc<XfrSettings>,
    /// Sources the index must have loaded before the first NOTIFY.
    pub required: Vec<SourceId>,
    /// srvd's DNS listen addresses (NOTIFY goes out from one of them).
    pub listen: Vec<IpAddr>,
    pub ttl: TtlPolicy,
    pub metrics: Arc<Metrics>,
}

/// Follow the index and notify each zone's targets: once every source is loaded (a
/// secondary may have missed changes while srvd was down), then whenever a serial moves.
pub async fn run(index: IndexHandle, notifier: Notifier, stop: CancellationToken) {
    let Notifier {
        settings,
        required,
        listen,
        ttl,
        metrics,
    } = notifier;
    let mut changes = index.subscribe();
    let mut notified: HashMap<NameKey, u32> = HashMap::new();
    let mut sending: HashMap<(NameKey, SocketAddr), tokio::task::JoinHandle<()>> = HashMap::new();
    changes.mark_changed();
    let mut last_round: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
        // The first change after a quiet spell goes out at once; changes in a burst wait for
        // the rest of COALESCE since the last round and go out together.
        if let Some(last) = last_round {
            tokio::time::sleep_until(last + COALESCE).await;
        }
        last_round = Some(tokio::time::Instant::now());
        let snap = index.load();
        if !snap.is_loaded(&required) {
            continue;
        }
        for (i, zone) in snap.zones().iter().enumerate() {
            if notified.get(&zone.key) == Some(&zone.serial) {
                continue;
            }
            notified.insert(zone.key.clone(), zone.serial);
            let Some(soa) = super::view::View::new(&snap, i, &ttl).soa() else {
                continue;
            };
            for target in settings.notify_for(&zone.key) {
                let key = target.key.as_ref().and_then(|k| settings.keys.get(k));
                // A newer serial supersedes a NOTIFY still retrying for this target.
                if let Some(old) = sending.remove(&(zone.key.clone(), target.addr)) {
                    old.abort();
                }
                let task = tokio::spawn(notify(
                    source_for(target.addr, &listen),
                    target.addr,
                    zone.origin.clone(),
                    soa.clone(),
                    key,
                    metrics.clone(),
                ));
                sending.insert((zone.key.clone(), target.addr), task);
            }
        }
        sending.retain(|_, task| !task.is_finished());
    }
}
