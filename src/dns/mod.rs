//! DNS: turning (snapshot, question) into an [`Answer`], and serving it through hickory.
//!
//! `lookup` is pure: it reads one snapshot and builds records; `select` chooses which etcd
//! services a name covers (subtree, wildcards, groups, RFC 2782 names); `synth` turns services
//! into records; `handler` is the hickory `RequestHandler` that decodes questions, applies the
//! protocol rules (EDNS, opcodes, FORMERR) and encodes. Nothing here writes to the index or
//! awaits a source.

mod answer;
mod handler;
mod lookup;
mod respond;
mod select;
mod synth;
mod wire;

pub use answer::Answer;
pub use handler::DnsHandler;
pub use lookup::lookup;
pub use respond::{Scratch, UdpResponder};
