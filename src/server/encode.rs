//! Encoding an [`Answer`] into a response message within a size limit.
//!
//! Written by hand, not with hickory's `emit_message_parts`, because a measurement showed that
//! one cannot do what this must: hickory truncates record by record and leaves the bytes of a
//! half-written record (and drops the OPT record) when the message is full, which `kdig`
//! reports as a malformed reply, and its compression table is case-sensitive and capped at 64
//! names, so large answers grow. Here:
//!
//! - whole RRsets only over UDP: an answer or authority RRset that does not fit is left out
//!   and TC set; an additional RRset that does not fit ends the additional section (RFC 2181
//!   §9). Over TCP a too-large RRset is cut at the last record that fits (a message is at most
//!   64 KiB); QTYPE ANY answers leave out RRsets that do not fit instead (RFC 8482 §4.1);
//! - room for the OPT record (and a TSIG record) is reserved up front: OPT is present whenever
//!   the query had one (RFC 6891 §6.1.1);
//! - names are compressed (case-insensitively, any number of them) against everything written
//!   before, except inside RRsets whose order the answer cache rotates: their names are not
//!   offered for compression, so records can be reordered in the encoded bytes without
//!   breaking a pointer. SRV targets are never compressed (RFC 2782);
//! - the offsets a cached copy must patch are reported in [`Layout`]: each SOA serial, each
//!   TTL, and the records of each rotatable RRset.
//!
//! The cost is linear in what is written; nothing is written after the message is full.
//! Name compression is in [`compress`], the header and OPT record in [`fixed`].

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::dns::Answer;

mod compress;
mod fixed;

pub use compress::Compressor;
use compress::{mix, name_at_is, rotatable};
use fixed::{write_header, write_opt};

/// Header flag bits (RFC 1035 §4.1.1), as in the 16-bit flags word.
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
}

/// Largest DNS message (a TCP message's length is 16 bits).
pub const MAX_MESSAGE: usize = 65_535;
/// Size of a compression pointer's reach (RFC 1035 §4.1.4).
const POINTER_REACH: usize = 0x3FFF;
/// Size of an OPT record without options.
pub const OPT_SIZE: usize = 11;

/// The header fields of a response.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub id: u16,
    /// The query's opcode (0 = QUERY), copied.
    pub opcode: u8,
    pub authoritative: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub authentic_data: bool,
    pub checking_disabled: bool,
    pub rcode: ResponseCode,
}

/// The OPT record of a response (RFC 6891): present when the query had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseEdns {
    /// The UDP payload size we advertise.
    pub payload: u16,
    /// Echo of the query's DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// An Extended DNS Error info code (RFC 8914), e.g. 20 "Not Authoritative".
    pub ede: Option<u16>,
}

/// Bytes of an EDE option without text.
const EDE_SIZE: usize = 6;

/// How big the message may get and how to cut it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_size: usize,
    /// Datagram transport: whole RRsets only.
    pub udp: bool,
    /// Bytes kept free at the end (a TSIG record to be appended).
    pub reserve: usize,
    /// Do not offer the names of A, AAAA and SRV answer RRsets for compression, so their
    /// records can be rotated in the encoded bytes.
    pub rotatable: bool,
    /// How TTLs are written.
    pub ttl: TtlAdjust,
}

/// How the TTLs of records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlAdjust {
    /// As they are.
    Keep,
    /// Counted down by this many seconds (a cached forwarded answer's age), at least 0.
    Subtract(u32),
    /// All the same (a stale answer, RFC 8767 §4).
    Fixed(u32),
}

impl TtlAdjust {
    fn apply(self, ttl: u32) -> u32 {
        match self {
            TtlAdjust::Keep => ttl,
            TtlAdjust::Subtract(age) => ttl.saturating_sub(age),
            TtlAdjust::Fixed(t) => t,
        }
    }
}

/// The record sections of a response, and whether RRsets may be left out to fit.
#[derive(Debug, Clone, Copy)]
pub struct Sections<'a> {
    pub answers: &'a [Record],
    pub authorities: &'a [Record],
    pub additionals: &'a [Record],
    /// Whole RRsets may be left out to fit (QTYPE ANY, RFC 8482 §4.1).
    pub partial: bool,
}

impl<'a> Sections<'a> {
    pub fn of(answer: &'a Answer) -> Self {
        Sections {
            answers: &answer.answers,
            authorities: &answer.authorities,
            additionals: &answer.additionals,
            partial: answer.partial,
        }
    }
}

/// The records of one rotatable RRset in an encoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: u16,
    /// Length of each record, in order.
    pub lengths: Box<[u16]>,
}

/// Where a cached copy of the message must be patched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub truncated: bool,
    /// `(offset of the serial, index of the SOA record in the answer's SOA order)`.
    pub serials: Vec<(u16, u16)>,
    /// `(offset, ttl)` of every record's TTL (answer, authority, additional).
    pub ttls: Vec<(u16, u32)>,
    pub rotations: Vec<Span>,
}

/// Per-call scratch space, reused (no allocation per message in the steady state).
#[derive(Default)]
pub struct Scratch {
    pub compressor: Compressor,
    labels: Vec<(usize, usize)>,
    hashes: Vec<u64>,
    rdata: Vec<u8>,
}

/// Writes one message.
struct Writer<'a> {
    buf: &'a mut Vec<u8>,
    scratch: &'a mut Scratch,
    /// Offer written names for compression.
    register: bool,
    ttl: TtlAdjust,
}

impl Writer<'_> {
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Write a name, compressed against earlier names when `compress`.
    fn name(&mut self, name: &Name, compress: bool) {
        let labels: Vec<&[u8]> = name.iter().collect();
        let n = labels.len();
        let hashes = &mut self.scratch.hashes;
        hashes.clear();
        hashes.resize(n + 1, 0);
        for i in (0..n).rev() {
            hashes[i] = mix(hashes[i + 1], labels[i]);
        }
        let mut literal = n;
        let mut pointer = None;
        if compress {
            for i in 0..n {
                if let Some(at) = self.scratch.compressor.get(self.scratch.hashes[i])
                    && name_at_is(self.buf, usize::from(at), &labels[i..])
                {
                    literal = i;
                    pointer = Some(at);
                    break;
                }
            }
        }
        for (i, label) in labels.iter().take(literal).enumerate() {
            let at = self.buf.len();
            if self.register && at <= POINTER_REACH {
                let hash = self.scratch.hashes[i];
                self.scratch.compressor.insert(hash, at as u16);
            }
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
        match pointer {
            Some(at) => self.u16(0xC000 | at),
            None => self.buf.push(0),
        }
    }

    /// Offer the name written at `offset` (the question's) for compression.
    fn register_at(&mut self, offset: usize) {
        let labels = &mut self.scratch.labels;
        labels.clear();
        let mut at = offset;
        while let Some(&len) = self.buf.get(at) {
            if len == 0 || len & 0xC0 != 0 {
                break;
            }
            labels.push((at, usize::from(len)));
            at += 1 + usize::from(len);
        }
        let mut hash = 0;
        for &(pos, len) in labels.iter().rev() {
            hash = mix(hash, &self.buf[pos + 1..pos + 1 + len]);
            if pos <= POINTER_REACH {
                self.scratch.compressor.insert(hash, pos as u16);
            }
        }
    }

    /// Write one record; returns the offsets of its TTL and, for an SOA, of its serial.
    fn record(&mut self, record: &Record) -> (usize, Option<usize>) {
        let ttl = self.ttl.apply(record.ttl);
        self.name(&record.name, true);
        self.u16(u16::from(record.record_type()));
        let class = match record.dns_class {
            DNSClass::ANY => DNSClass::IN,
            class => class,
        };
        self.u16(u16::from(class));
        let ttl_at = self.buf.len();
        self.u32(ttl);
        let len_at = self.buf.len();
        self.u16(0);
        let serial = self.rdata(&record.data);
        let len = self.buf.len() - len_at - 2;
        let len = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
        self.buf[len_at..len_at + 2].copy_from_slice(&len);
        (ttl_at, serial)
    }

    /// Write RDATA; returns the offset of the serial for an SOA.
    fn rdata(&mut self, data: &RData) -> Option<usize> {
        match data {
            RData::A(a) => self.buf.extend_from_slice(&a.0.octets()),
            RData::AAAA(aaaa) => self.buf.extend_from_slice(&aaaa.0.octets()),
            RData::CNAME(n) => self.name(&n.0, true),
            RData::NS(n) => self.name(&n.0, true),
            RData::PTR(n) => self.name(&n.0, true),
            RData::MX(mx) => {
                self.u16(mx.preference);
                self.name(&mx.exchange, true);
            }
            RData::SRV(srv) => {
                self.u16(srv.priority);
                self.u16(srv.weight);
                self.u16(srv.port);
                self.name(&srv.target, false);
            }
            RData::SOA(soa) => {
                self.name(&soa.mname, true);
                self.name(&soa.rname, true);
                let serial = self.buf.len();
                self.u32(soa.serial);
                for v in [soa.refresh, soa.retry, soa.expire] {
                    self.u32(v as u32);
                }
                self.u32(soa.minimum);
                return Some(serial);
            }
            RData::TXT(txt) => {
                for s in &txt.txt_data {
                    let s = &s[..s.len().min(255)];
                    self.buf.push(s.len() as u8);
                    self.buf.extend_from_slice(s);
                }
            }
            other => {
                // Any other type as hickory encodes it, names uncompressed (RFC 3597 §4).
                let mut bytes = std::mem::take(&mut self.scratch.rdata);
                bytes.clear();
                let mut encoder = BinEncoder::new(&mut bytes);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                if other.emit(&mut encoder).is_ok() {
                    self.buf.extend_from_slice(&bytes);
                }
                self.scratch.rdata = bytes;
            }
        }
        None
    }
}

/// The RRsets of a section: runs of records with the same owner, type and class.
fn rrsets(records: &[Record]) -> impl Iterator<Item = &[Record]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let len = rest
            .iter()
            .take_while(|r| {
                r.record_type() == first.record_type()
                    && r.dns_class == first.dns_class
                    && r.name == first.name
            })
            .count();
        let (set, tail) = rest.split_at(len);
        rest = tail;
        Some(set)
    })
}

/// Encode a response to the question `question` (the question section's bytes exactly as the
/// query sent them: name, type, class) into `out`.
pub fn encode(
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
    header: Header,
    question: Option<&[u8]>,
    sections: Sections<'_>,
    edns: Option<ResponseEdns>,
    limits: Limits,
) -> Layout {
    out.clear();
    scratch.compressor.reset();
    let mut layout = Layout::default();
    out.extend_from_slice(&[0; 12]);
    let opt_size = match edns {
        Some(e) if e.ede.is_some() => OPT_SIZE + EDE_SIZE,
        Some(_) => OPT_SIZE,
        None => 0,
    };
    let reserve = limits.reserve + opt_size;
    let room = limits.max_size.min(MAX_MESSAGE).saturating_sub(reserve);
    let mut writer = Writer {
        buf: out,
        scratch,
        register: true,
        ttl: limits.ttl,
    };
    let mut counts = [0u16; 4];
    if let Some(question) = question {
        writer.buf.extend_from_slice(question);
        writer.register_at(12);
        counts[0] = 1;
    }
    writer.sections(sections, limits, room, &mut layout, &mut counts);
    if let Some(edns) = edns {
        write_opt(writer.buf, edns, header.rcode);
        counts[3] += 1;
    }
    write_header(out, header, layout.truncated, counts);
    layout
}

/// The records of one RRset that fit, and the offsets in them a cached copy patches.
struct WrittenSet {
    /// Where the RRset starts.
    mark: usize,
    /// How many of its records fit.
    fitted: usize,
    lengths: Vec<u16>,
    ttls: Vec<(u16, u32)>,
    serials: Vec<(u16, u16)>,
}

impl WrittenSet {
    /// Count the records in `section`, and note their offsets (and rotation) in `layout`.
    #[inline]
    fn commit(self, layout: &mut Layout, counts: &mut [u16; 4], section: usize, rotate: bool) {
        counts[section + 1] += self.fitted as u16;
        layout.ttls.extend(self.ttls);
        layout.serials.extend(self.serials);
        if rotate {
            layout.rotations.push(Span {
                start: self.mark as u16,
                lengths: self.lengths.into(),
            });
        }
    }
}

impl Writer<'_> {
    /// Write the three record sections RRset by RRset within `room`, noting truncation.
    #[inline]
    fn sections(
        &mut self,
        sections: Sections<'_>,
        limits: Limits,
        room: usize,
        layout: &mut Layout,
        counts: &mut [u16; 4],
    ) {
        let partial = sections.partial;
        let sections = [sections.answers, sections.authorities, sections.additionals];
        let mut soa_index = 0u16;
        for (section, records) in sections.iter().enumerate() {
            let mut written_sets = 0;
            for set in rrsets(records) {
                let rotate = limits.rotatable && section == 0 && rotatable(set);
                self.register = !rotate;
                let written = self.rrset(set, room, soa_index);
                let soas_in_set = set
                    .iter()
                    .filter(|r| r.record_type() == RecordType::SOA)
                    .count() as u16;
                if written.fitted < set.len() {
                    let keep_part = !limits.udp && section < 2 && !partial;
                    if !keep_part || written.fitted == 0 {
                        self.truncate(written.mark);
                        if section == 0 && partial && written_sets > 0 {
                            soa_index += soas_in_set;
                            continue;
                        }
                        layout.truncated = section < 2;
                        return;
                    }
                    layout.truncated = true;
                    written.commit(layout, counts, section, false);
                    return;
                }
                soa_index += soas_in_set;
                written_sets += 1;
                written.commit(layout, counts, section, rotate);
            }
        }
    }

    /// Write the records of `set` that fit within `room`; its first SOA is number `soa_index`.
    #[inline]
    fn rrset(&mut self, set: &[Record], room: usize, soa_index: u16) -> WrittenSet {
        let mut written = WrittenSet {
            mark: self.buf.len(),
            fitted: 0,
            lengths: Vec::new(),
            ttls: Vec::new(),
            serials: Vec::new(),
        };
        for record in set {
            let start = self.buf.len();
            let (ttl_at, serial) = self.record(record);
            if self.buf.len() > room {
                self.truncate(start);
                break;
            }
            written.fitted += 1;
            written.lengths.push((self.buf.len() - start) as u16);
            written
                .ttls
                .push((ttl_at as u16, self.ttl.apply(record.ttl)));
            if let Some(at) = serial {
                let index = soa_index + written.serials.len() as u16;
                written.serials.push((at as u16, index));
            }
        }
        written
    }

    /// Cut the message back to `len` bytes, forgetting the names written after it.
    #[inline]
    fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
        self.scratch.compressor.rollback(len);
    }
}

#[cfg(test)]
mod tests;
