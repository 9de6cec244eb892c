//! Zone transfer metrics: transfers by kind and result, NOTIFYs sent and acknowledged, and
//! per zone its serial and journal depth. Counters and gauges only.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Metrics;

/// Zone transfer and NOTIFY metrics.
pub(super) struct XfrMetrics {
    transfers: Family<TransferLabels, Counter>,
    notifies_sent: Counter,
    notifies_acked: Counter,
    journal: Family<ZoneLabels, Gauge>,
    serial: Family<ZoneLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransferLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneLabels {
    zone: String,
}

impl XfrMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let transfers = Family::<TransferLabels, Counter>::default();
        registry.register(
            "transfers",
            "Zone transfers by kind (axfr, ixfr) and result (full, incremental, current, refused, notauth, error)",
            transfers.clone(),
        );
        let notifies_sent = Counter::default();
        registry.register(
            "notify_sent",
            "NOTIFY messages sent to secondaries",
            notifies_sent.clone(),
        );
        let notifies_acked = Counter::default();
        registry.register(
            "notify_acknowledged",
            "NOTIFY messages a secondary answered",
            notifies_acked.clone(),
        );
        let journal = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "journal_versions",
            "Zone versions held for incremental transfers, per zone",
            journal.clone(),
        );
        let serial = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "zone_serial",
            "Current SOA serial, per zone",
            serial.clone(),
        );
        XfrMetrics {
            transfers,
            notifies_sent,
            notifies_acked,
            journal,
            serial,
        }
    }
}

impl Metrics {
    /// A transfer request of `kind` (axfr, ixfr) ended with `result`.
    pub fn transfer(&self, kind: &str, result: &str) {
        self.xfr
            .transfers
            .get_or_create(&TransferLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn notify_sent(&self) {
        self.xfr.notifies_sent.inc();
    }

    pub fn notify_acked(&self) {
        self.xfr.notifies_acked.inc();
    }

    /// Per zone: its serial and the versions its journal holds.
    pub fn set_zones(&self, zones: &[(String, u32, usize)]) {
        for (zone, serial, depth) in zones {
            let labels = ZoneLabels { zone: zone.clone() };
            self.xfr
                .serial
                .get_or_create(&labels)
                .set(i64::from(*serial));
            self.xfr
                .journal
                .get_or_create(&labels)
                .set(i64::try_from(*depth).unwrap_or(i64::MAX));
        }
    }
}
