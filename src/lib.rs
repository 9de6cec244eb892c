//! srvd: an authoritative DNS server for service discovery.
//!
//! ```text
//!  zones/*.zone ──┐                    (static records, hot-reloaded)
//!                 ├─ source ── Update ──> index ── Arc<Snapshot> ──> dns ── Answer ──> server ──> client
//!  etcd prefix ───┘  (snapshot at rev R,   (the only writer;          (lookup: name,     (hickory Server:
//!                     then watch R+1..)     applies batches,           type -> Answer)    UDP + TCP)
//!                                           publishes snapshots)
//! ```
//!
//! - [`source`]: zone files (and etcd) -> [`source::Update`]
//! - [`index`]: folds updates into immutable [`index::Snapshot`]s
//! - [`dns`]: (snapshot, question) -> [`dns::Answer`], protocol rules, encoding
//! - [`server`]: sockets; [`http`]: metrics and health; [`app`]: wiring
//! - [`record`]: the SkyDNS/CoreDNS JSON value; [`config`]: file + flags
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
