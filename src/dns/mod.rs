//! DNS semantics: turning (snapshot, question) into an [`Answer`].
//!
//! `lookup` is pure: it reads one snapshot and builds records; `select` chooses which etcd
//! services a name covers (subtree, wildcards, groups, the apex, RFC 2782 names); `synth`
//! turns services into records; `ttl` holds the TTL rules. Nothing here knows wire formats,
//! sockets, caches or upstreams, writes to the index or awaits anything: `server` owns all of
//! that.

mod answer;
mod lookup;
mod select;
mod synth;
mod ttl;

pub use answer::{Answer, Forward};
pub use lookup::{MAX_CHAIN, lookup};
pub use ttl::TtlPolicy;
