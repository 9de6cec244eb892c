//! The hot path in-process: `dns::lookup` plus wire encoding, and index updates.
//!
//! An index of `names` etcd services is built through the public API only: one
//! `Change::Reset` of `names` entries `<i>.svc<j>.bench.test.` (K = 3 endpoints per service,
//! so `names / 3` services; every value is `{"host":"10.1.2.3","port":8080}`), then `publish`.
//!
//! Groups (each index size is built once, lazily, and shared by every group that uses it):
//!
//! - `query/{a,srv,nxdomain,nodata}/<names>`: `lookup` + encoding the answer into a response
//!   `Message` (`to_vec`). Every iteration asks the next of 4096 pre-drawn random names, so a
//!   large index is not read through one hot path only.
//!     - `a`: A of an endpoint (`1.svc<j>.bench.test.`): 1 A.
//!     - `srv`: SRV of a service (`svc<j>.bench.test.`): 3 SRV + 3 glue A.
//!     - `nxdomain`: A of `nx<j>.bench.test.`: NXDOMAIN + SOA.
//!     - `nodata`: MX of an endpoint: NOERROR, empty, SOA.
//! - `split/*/100000`: lookup alone and encoding alone, to see which half costs what.
//! - `update/put_publish/1000000`: one `Put` replacing an existing name, then `publish`.
//! - `update/reset/1000000`: a full `Reset` of 1M names, then `publish` (building the entry
//!   vector is setup, not timed).
//!
//! `cargo bench --bench lookup` (about 70 s of measuring on 2 cores, after the build); one group:
//! `cargo bench --bench lookup -- query/srv`. Quick smoke run: `cargo bench --bench lookup --
//! --test` (each benchmark once). Sizes can be narrowed with `SRVD_BENCH_SIZES=1000,100000`.

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use srvd::dns::{Answer, lookup};
use srvd::index::{IndexHandle, Indexer, Snapshot, TtlPolicy};
use srvd::record::Service;
use srvd::source::{Change, Entry, Part, SourceId, Update};

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

/// `names` entries: endpoints `0..K` of services `0..names/K`.
fn entries(names: usize) -> Vec<Entry> {
    let value = service();
    let mut out = Vec::with_capacity(names);
    'outer: for j in 0..services_for(names) {
        for i in 0..K {
            if out.len() == names {
                break 'outer;
            }
            out.push(Entry::Service {
                name: name(&format!("{i}.svc{j}.{ZONE}")),
                service: value.clone(),
            });
        }
    }
    out
}

fn reset(entries: Vec<Entry>) -> Update {
    Update {
        source: SourceId::Etcd,
        change: Change::Reset {
            revision: 1,
            zones: vec![name(ZONE)],
            entries,
            part: Part::Whole,
        },
    }
}

/// A published index of `names` entries.
struct Index {
    handle: IndexHandle,
    snapshot: Arc<Snapshot>,
}

fn build(names: usize) -> Index {
    let started = Instant::now();
    let handle = IndexHandle::new(Snapshot::empty(TtlPolicy::default()));
    let mut indexer = Indexer::new(handle.clone());
    indexer.apply(reset(entries(names)));
    indexer.publish();
    let snapshot = handle.load();
    assert_eq!(snapshot.names_from(SourceId::Etcd), names);
    eprintln!(
        "built an index of {names} names in {:.2?}",
        started.elapsed()
    );
    Index { handle, snapshot }
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

    /// Fail loudly if the index does not answer the way this benchmark claims.
    fn check(self, answer: &Answer) {
        let (rcode, answers, authorities, additionals) = match self {
            Kind::A => (ResponseCode::NoError, 1, 0, 0),
            Kind::Srv => (ResponseCode::NoError, K, 0, K),
            Kind::NxDomain => (ResponseCode::NXDomain, 0, 1, 0),
            Kind::NoData => (ResponseCode::NoError, 0, 1, 0),
        };
        let got = (
            answer.rcode,
            answer.answers.len(),
            answer.authorities.len(),
            answer.additionals.len(),
        );
        assert_eq!(
            got,
            (rcode, answers, authorities, additionals),
            "{}: unexpected answer {answer:?}",
            self.label()
        );
    }
}

/// The response to `(qname, qtype)` as the server would send it (no EDNS), in wire bytes.
fn encode(id: u16, qname: &Name, qtype: RecordType, answer: Answer) -> Vec<u8> {
    let mut msg = Message::response(id, OpCode::Query);
    msg.metadata.authoritative = answer.authoritative;
    msg.metadata.response_code = answer.rcode;
    msg.add_query(Query::query(qname.clone(), qtype));
    msg.insert_answers(answer.answers);
    msg.insert_authorities(answer.authorities);
    msg.insert_additionals(answer.additionals);
    msg.to_vec().expect("encodable answer")
}

fn bench_queries(c: &mut Criterion) {
    for kind in Kind::ALL {
        let mut group = c.benchmark_group(format!("query/{}", kind.label()));
        group
            .sample_size(50)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for names in sizes() {
            let idx = index(names);
            let questions = kind.questions(names);
            for (qname, qtype) in &questions[..16] {
                kind.check(&lookup(&idx.snapshot, qname, *qtype));
            }
            group.bench_with_input(BenchmarkId::from_parameter(names), &questions, |b, qs| {
                let mut n = 0usize;
                b.iter(|| {
                    let (qname, qtype) = &qs[n % qs.len()];
                    n += 1;
                    let answer = lookup(&idx.snapshot, qname, *qtype);
                    black_box(encode(n as u16, qname, *qtype, answer))
                });
            });
        }
        group.finish();
    }
}

/// Lookup alone vs encoding alone, at 100k names.
fn bench_split(c: &mut Criterion) {
    let names = 100_000;
    if !sizes().contains(&names) {
        return;
    }
    let idx = index(names);
    let mut group = c.benchmark_group("split");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for kind in [Kind::A, Kind::Srv] {
        let questions = kind.questions(names);
        group.bench_function(
            BenchmarkId::new(format!("lookup_{}", kind.label()), names),
            |b| {
                let mut n = 0usize;
                b.iter(|| {
                    let (qname, qtype) = &questions[n % questions.len()];
                    n += 1;
                    black_box(lookup(&idx.snapshot, qname, *qtype))
                });
            },
        );
        let answers: Vec<Answer> = questions
            .iter()
            .map(|(q, t)| lookup(&idx.snapshot, q, *t))
            .collect();
        group.bench_function(
            BenchmarkId::new(format!("encode_{}", kind.label()), names),
            |b| {
                let mut n = 0usize;
                b.iter_batched(
                    || {
                        n += 1;
                        let i = n % questions.len();
                        (i, answers[i].clone())
                    },
                    |(i, answer)| {
                        let (qname, qtype) = &questions[i];
                        black_box(encode(i as u16, qname, *qtype, answer))
                    },
                    BatchSize::SmallInput,
                );
            },
        );
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
                    Update {
                        source: SourceId::Etcd,
                        change: Change::Put {
                            revision,
                            entry: Entry::Service {
                                name: name(&format!("{i}.svc{j}.{ZONE}")),
                                service: value.clone(),
                            },
                        },
                    }
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
        let handle = IndexHandle::new(Snapshot::empty(TtlPolicy::default()));
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
        assert_eq!(handle.load().names_from(SourceId::Etcd), names);
    }
    group.finish();
}

criterion_group!(benches, bench_queries, bench_split, bench_updates);
criterion_main!(benches);
