//! The answer pipeline in process: query bytes -> `server::Responder` -> reply bytes, on an
//! index of etcd services built through the public API, and index updates.
//!
//! An index of `names` etcd services is built with one `EtcdChange::Reset` of `names` entries
//! `<i>.svc<j>.bench.test.` (K = 3 endpoints per service, so `names / 3` services; every value is
//! `{"host":"10.1.2.3","port":8080}`), then `publish`.
//!
//! Groups (each index size is built once, lazily, and shared by every group that uses it):
//!
//! - `miss/{a,srv,nxdomain,nodata}/<names>`: the whole pipeline with the answer cache off
//!   (parse, lookup, encode). Every iteration asks the next of 4096 pre-drawn random names.
//!     - `a`: A of an endpoint (`1.svc<j>.bench.test.`): 1 A.
//!     - `srv`: SRV of a service (`svc<j>.bench.test.`): 3 SRV + 3 glue A.
//!     - `nxdomain`: A of `nx<j>.bench.test.`: NXDOMAIN + SOA.
//!     - `nodata`: MX of an endpoint: NOERROR, empty, SOA.
//! - `hit/{a,srv}/<names>`: the same questions answered from the answer cache.
//! - `worst/srv/<instances>`: an uncached SRV over UDP (EDNS 1232) and TCP for one service
//!   with 10, 1k, 10k and 100k instances; `worst/wildcard/1000000`: `*.bench.test.` SRV over
//!   a million keys. The cost must stay within a small multiple of a normal answer (issue #12).
//! - `update/put_publish/1000000`: one `Put` replacing an existing name, then `publish`.
//! - `update/reset/1000000`: a full reset of 1M names, then `publish`.
//!
//! `cargo bench --bench lookup`; one group: `cargo bench --bench lookup -- miss/srv`. Quick
//! smoke run: `cargo bench --bench lookup -- --test`. Sizes: `SRVD_BENCH_SIZES=1000,100000`.

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use srvd::dns::TtlPolicy;
use srvd::index::{IndexHandle, Indexer, Snapshot};
use srvd::metrics::Metrics;
use srvd::name_key::NameKey;
use srvd::record::Service;
use srvd::server::respond::{Outcome, Scratch};
use srvd::server::{Responder, Settings, Transport};
use srvd::source::{EtcdChange, Part, ServiceEntry, SourceId, Update};
use srvd::xfr::XfrSettings;

/// Endpoints per service.
const K: usize = 3;
const ZONE: &str = "bench.test.";
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// The size the update benchmarks run at.
const UPDATE_SIZE: usize = 1_000_000;
/// Query names drawn per benchmark, cycled through.
const QUERY_NAMES: usize = 4096;

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("valid bench name")
}

fn service() -> Service {
    Service::from_json(br#"{"host":"10.1.2.3","port":8080}"#).expect("valid bench value")
}

fn services_for(names: usize) -> usize {
    names.div_ceil(K)
}

fn entry(owner: &str, service: &Service) -> ServiceEntry {
    ServiceEntry {
        key: NameKey::new(&name(owner)),
        spelling: None,
        service: service.clone(),
    }
}

/// `names` entries: endpoints `0..K` of services `0..names/K`.
fn entries(names: usize) -> Vec<ServiceEntry> {
    let value = service();
    let mut out = Vec::with_capacity(names);
    'outer: for j in 0..services_for(names) {
        for i in 0..K {
            if out.len() == names {
                break 'outer;
            }
            out.push(entry(&format!("{i}.svc{j}.{ZONE}"), &value));
        }
    }
    out
}

fn reset(entries: Vec<ServiceEntry>) -> Update {
    Update::Etcd(EtcdChange::Reset {
        revision: 1,
        part: Part::Whole,
        entries,
        domains: vec![(name(ZONE), 1)],
    })
}

/// A published index of `names` entries.
struct Index {
    handle: IndexHandle,
}

fn build(names: usize) -> Index {
    let started = Instant::now();
    let handle = IndexHandle::new(Snapshot::default());
    let mut indexer = Indexer::new(handle.clone());
    indexer.apply(reset(entries(names)));
    indexer.publish();
    assert_eq!(handle.load().names_from(SourceId::Etcd), names);
    eprintln!(
        "built an index of {names} names in {:.2?}",
        started.elapsed()
    );
    Index { handle }
}

fn sizes() -> Vec<usize> {
    match std::env::var("SRVD_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("SRVD_BENCH_SIZES: comma-separated numbers")
            })
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

/// Each size is built at most once per run, on first use.
fn index(names: usize) -> &'static Index {
    static INDEXES: OnceLock<std::sync::Mutex<Vec<(usize, &'static Index)>>> = OnceLock::new();
    let slots = INDEXES.get_or_init(Default::default);
    let mut slots = slots.lock().unwrap();
    if let Some((_, idx)) = slots.iter().find(|(n, _)| *n == names) {
        return idx;
    }
    let idx: &'static Index = Box::leak(Box::new(build(names)));
    slots.push((names, idx));
    idx
}

/// A tiny deterministic PRNG (xorshift64*), so runs ask the same names.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

#[derive(Clone, Copy)]
enum Kind {
    A,
    Srv,
    NxDomain,
    NoData,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::A, Kind::Srv, Kind::NxDomain, Kind::NoData];

    fn label(self) -> &'static str {
        match self {
            Kind::A => "a",
            Kind::Srv => "srv",
            Kind::NxDomain => "nxdomain",
            Kind::NoData => "nodata",
        }
    }

    /// Random questions of this kind for an index of `names` entries.
    fn questions(self, names: usize) -> Vec<(Name, RecordType)> {
        let services = names / K; // only complete services
        let mut rng = Rng(0x5eed_0000 ^ names as u64 ^ (self as u64) << 32);
        (0..QUERY_NAMES)
            .map(|_| {
                let j = rng.below(services);
                match self {
                    Kind::A => (name(&format!("1.svc{j}.{ZONE}")), RecordType::A),
                    Kind::Srv => (name(&format!("svc{j}.{ZONE}")), RecordType::SRV),
                    Kind::NxDomain => (name(&format!("nx{j}.{ZONE}")), RecordType::A),
                    Kind::NoData => (name(&format!("1.svc{j}.{ZONE}")), RecordType::MX),
                }
            })
            .collect()
    }

    /// Fail loudly if the pipeline does not answer the way this benchmark claims.
    fn check(self, reply: &[u8]) {
        let (rcode, answers, authorities, additionals) = match self {
            Kind::A => (ResponseCode::NoError, 1, 0, 0),
            Kind::Srv => (ResponseCode::NoError, K, 0, K),
            Kind::NxDomain => (ResponseCode::NXDomain, 0, 1, 0),
            Kind::NoData => (ResponseCode::NoError, 0, 1, 0),
        };
        let m = Message::from_vec(reply).expect("reply decodes");
        let got = (
            m.metadata.response_code,
            m.answers.len(),
            m.authorities.len(),
            m.additionals.len(),
        );
        assert_eq!(
            got,
            (rcode, answers, authorities, additionals),
            "{}: unexpected answer {m:?}",
            self.label()
        );
    }
}

/// A query packet (RD, EDNS with a 1232-byte payload when `edns`).
fn packet(id: u16, qname: &Name, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(qname.clone(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().expect("query encodes")
}

/// A pipeline over `handle`, its answer cache `cache_bytes` large (0: off).
fn responder(handle: &IndexHandle, cache_bytes: u64) -> Responder {
    let settings = Settings {
        ttl: TtlPolicy::default(),
        rotate: true,
        recursion_available: false,
        cache_bytes,
    };
    Responder::new(
        handle.clone(),
        settings,
        None,
        Arc::new(XfrSettings::default()),
        Arc::new(Metrics::new()),
    )
}

fn answer(r: &Responder, packet: &[u8], transport: Transport, out: &mut Vec<u8>, s: &mut Scratch) {
    match r.respond(packet, transport, None, out, s) {
        Outcome::Reply => {}
        other => panic!("no reply: {other:?}"),
    }
}

fn bench_pipeline(c: &mut Criterion) {
    for (group_name, cache_bytes) in [("miss", 0u64), ("hit", 64 << 20)] {
        for kind in Kind::ALL {
            if group_name == "hit" && matches!(kind, Kind::NoData | Kind::NxDomain) {
                continue;
            }
            let mut group = c.benchmark_group(format!("{group_name}/{}", kind.label()));
            group
                .sample_size(50)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            for names in sizes() {
                let idx = index(names);
                let pipeline = responder(&idx.handle, cache_bytes);
                let packets: Vec<Vec<u8>> = kind
                    .questions(names)
                    .iter()
                    .enumerate()
                    .map(|(i, (q, t))| packet(i as u16, q, *t, false))
                    .collect();
                let (mut out, mut scratch) = (Vec::new(), Scratch::default());
                for p in &packets {
                    answer(&pipeline, p, Transport::Udp, &mut out, &mut scratch);
                    kind.check(&out);
                }
                group.bench_with_input(BenchmarkId::from_parameter(names), &packets, |b, ps| {
                    let mut n = 0usize;
                    b.iter(|| {
                        let p = &ps[n % ps.len()];
                        n += 1;
                        answer(&pipeline, p, Transport::Udp, &mut out, &mut scratch);
                        black_box(out.len())
                    });
                });
            }
            group.finish();
        }
    }
}

/// One service with `instances` instances (`<i>.big.bench.test.`), as its own index.
fn service_index(instances: usize) -> IndexHandle {
    let value = service();
    let entries = (0..instances)
        .map(|i| entry(&format!("{i}.big.{ZONE}"), &value))
        .collect();
    let handle = IndexHandle::new(Snapshot::default());
    let mut indexer = Indexer::new(handle.clone());
    indexer.apply(reset(entries));
    indexer.publish();
    handle
}

/// The worst questions: uncached SRV of huge services, over UDP and TCP.
fn bench_worst(c: &mut Criterion) {
    let mut group = c.benchmark_group("worst");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    let mut cases: Vec<(String, IndexHandle, Name)> = [10usize, 1_000, 10_000, 100_000]
        .into_iter()
        .map(|n| {
            (
                format!("srv/{n}"),
                service_index(n),
                name(&format!("big.{ZONE}")),
            )
        })
        .collect();
    if sizes().contains(&1_000_000) {
        let idx = index(1_000_000);
        cases.push((
            "wildcard/1000000".into(),
            idx.handle.clone(),
            name(&format!("*.{ZONE}")),
        ));
    }
    for (label, handle, qname) in cases {
        let pipeline = responder(&handle, 0);
        let (mut out, mut scratch) = (Vec::new(), Scratch::default());
        for (transport, edns, tag) in [
            (Transport::Udp, true, "udp"),
            (Transport::Tcp, false, "tcp"),
        ] {
            let p = packet(1, &qname, RecordType::SRV, edns);
            answer(&pipeline, &p, transport, &mut out, &mut scratch);
            let m = Message::from_vec(&out).expect("reply decodes");
            assert!(
                !m.answers.is_empty() || m.metadata.truncation,
                "{label}: no answer"
            );
            group.bench_function(BenchmarkId::new(format!("{label}/{tag}"), ""), |b| {
                b.iter(|| {
                    answer(&pipeline, &p, transport, &mut out, &mut scratch);
                    black_box(out.len())
                });
            });
        }
    }
    group.finish();
}

fn bench_updates(c: &mut Criterion) {
    let names = UPDATE_SIZE;
    if !sizes().contains(&names) {
        return;
    }
    let idx = index(names);
    let mut group = c.benchmark_group("update");

    // One Put replacing an existing name, then publish. The indexer writes to its own handle
    // (sharing the 1M-name maps copy-on-write) so the lookup index stays as it is.
    {
        let own = IndexHandle::new((*idx.handle.load()).clone());
        let mut indexer = Indexer::new(own.clone());
        let mut rng = Rng(0xfeed);
        let services = names / K;
        let value = service();
        let mut revision = 2i64;
        group
            .sample_size(50)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        group.bench_function(BenchmarkId::new("put_publish", names), |b| {
            b.iter_batched(
                || {
                    revision += 1;
                    let (i, j) = (rng.below(K), rng.below(services));
                    Update::Etcd(EtcdChange::Put {
                        revision,
                        entry: entry(&format!("{i}.svc{j}.{ZONE}"), &value),
                    })
                },
                |update| {
                    indexer.apply(update);
                    indexer.publish();
                },
                BatchSize::SmallInput,
            );
        });
        assert_eq!(own.load().names_from(SourceId::Etcd), names);
    }

    // A full reset of every name, then publish.
    {
        let template = entries(names);
        let handle = IndexHandle::new(Snapshot::default());
        let mut indexer = Indexer::new(handle.clone());
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_secs(20));
        group.bench_function(BenchmarkId::new("reset", names), |b| {
            b.iter_batched(
                || reset(template.clone()),
                |update| {
                    indexer.apply(update);
                    indexer.publish();
                },
                BatchSize::PerIteration,
            );
        });
        // Unless a filter skipped the reset, it left every name in place.
        let snap = handle.load();
        if snap.generation > 0 {
            assert_eq!(snap.names_from(SourceId::Etcd), names);
        }
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline, bench_worst, bench_updates);
criterion_main!(benches);
