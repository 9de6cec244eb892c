//! srvd: an authoritative DNS server for service discovery.
//!
//! ```text
//!  zones/*.zone ──┐ (parsed, hot-reloaded)
//!                 ├─ source ── Update ──> index ── Arc<Snapshot> ──> dns ── Answer ──> server ──> client
//!  etcd prefix ───┘ (snapshot at rev R,   (index thread: the only   (lookup:         (own UDP workers with
//!                    then watch R+1..)     writer; publishes         name, type ->    recvmmsg/sendmmsg, own
//!                                          immutable snapshots,      Answer)          TCP runtime, encoder,
//!                                          keeps a journal of                         answer cache, RRL)
//!                                          zone versions)                 │
//!                                                │                        └─ not ours ─> forward (upstreams,
//!                                                └─> xfr (transfer view, AXFR/IXFR,      cache, coalescing)
//!                                                     NOTIFY, TSIG) <── server (TCP)
//! ```
//!
//! - [`source`]: zone files and etcd -> [`source::Update`]
//! - [`index`]: folds updates into immutable [`index::Snapshot`]s; the journal of versions
//! - [`dns`]: (snapshot, question) -> [`dns::Answer`]: lookup, selection, synthesis, TTLs
//! - [`server`]: transports, the one answer pipeline ([`server::respond`]), encoding, the
//!   answer cache, response rate limiting; [`forward`]: names outside our zones;
//!   [`xfr`]: what zone transfers carry, NOTIFY and TSIG
//! - [`http`]: metrics and health; [`app`]: wiring; [`config`]: file + flags
//! - [`record`]: the SkyDNS/CoreDNS JSON value; [`name_key`]: the index's name keys
//! - [`announce`]: `srvd announce`, registering one instance in etcd under a lease
//! - [`fuzz`]: entry points for the fuzz targets in `fuzz/` (and their smoke test)

pub mod announce;
pub mod app;
pub mod config;
pub mod dns;
pub mod forward;
/// Fuzzing entry points (raw DNS queries through the answer pipeline, etcd keys and values
/// through the decoder and the pipeline) that panic only on a bug. They exist for the
/// cargo-fuzz targets in `fuzz/` and for the smoke test that replays and mutates their corpus
/// in every test run.
pub mod fuzz;
pub mod http;
pub mod index;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod name_key;
pub mod ratelimit;
pub mod record;
pub mod server;
pub mod source;
pub mod xfr;
