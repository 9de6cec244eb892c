//! TTL rules (seconds), applied to every record `dns` builds.
//!
//! Every served TTL is clamped to `[min, max]`, synthesized SOA/NS and negative answers
//! included. One exception is deliberate: a key attached to an etcd lease is never served
//! longer than the lease was granted for, even when that is below `min` (a record must not be
//! cached past the moment etcd deletes it).

use crate::record::Service;

/// TTL configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// TTL of etcd values that set none.
    pub default: u32,
    pub min: u32,
    pub max: u32,
    /// SOA minimum of synthesized SOAs: how long NXDOMAIN/NODATA are cached (RFC 2308), and
    /// the TTL of the SOA record itself (as CoreDNS serves it).
    pub negative: u32,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        TtlPolicy {
            default: 5,
            min: 0,
            max: 604_800,
            negative: 5,
        }
    }
}

impl TtlPolicy {
    /// Clamp a TTL into `[min, max]`.
    pub fn clamp(&self, ttl: u32) -> u32 {
        ttl.clamp(self.min, self.max.max(self.min))
    }

    /// The TTL to serve for an etcd service: its own TTL or the default, clamped, then capped
    /// by its lease's granted TTL (the lease wins over `min`).
    pub fn for_service(&self, service: &Service) -> u32 {
        let ttl = self.clamp(service.ttl.unwrap_or(self.default));
        match service.lease_ttl {
            Some(lease) => ttl.min(lease),
            None => ttl,
        }
    }

    /// TTL of the SOA in negative answers (RFC 2308 §3: the smaller of the SOA's TTL and its
    /// minimum), clamped.
    pub fn negative_soa(&self, soa_ttl: u32, minimum: u32) -> u32 {
        self.clamp(soa_ttl.min(minimum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: &str) -> Service {
        Service::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn clamps_and_lease_caps() {
        let policy = TtlPolicy {
            default: 5,
            min: 10,
            max: 60,
            negative: 5,
        };
        // (case, value, lease, expected)
        let cases = [
            ("default raised to min", r#"{"host":"10.0.0.1"}"#, None, 10),
            (
                "own ttl capped at max",
                r#"{"host":"10.0.0.1","ttl":600}"#,
                None,
                60,
            ),
            (
                "own ttl inside",
                r#"{"host":"10.0.0.1","ttl":30}"#,
                None,
                30,
            ),
            (
                "lease below min wins",
                r#"{"host":"10.0.0.1","ttl":30}"#,
                Some(3),
                3,
            ),
            (
                "lease above ttl",
                r#"{"host":"10.0.0.1","ttl":30}"#,
                Some(100),
                30,
            ),
        ];
        for (case, json, lease, want) in cases {
            let mut s = service(json);
            s.lease_ttl = lease;
            assert_eq!(policy.for_service(&s), want, "{case}");
        }
        assert_eq!(policy.negative_soa(3600, 5), 10, "negative raised to min");
    }
}
