//! Reading a query off the wire: one strict, allocation-free pass over the message.
//!
//! The same rules hold for UDP and TCP: a response (QR=1) or a message shorter than a header
//! is dropped; an unparseable message whose header is readable gets FORMERR. Within the
//! message: exactly one question (else FORMERR), no compression pointer in it, answer and
//! authority records skipped (IXFR keeps its authority SOA), at most one OPT record whose
//! options exactly fill its data (else FORMERR, RFC 6891 §6.1.1), a TSIG record only last
//! (RFC 8945 §5.1), and no bytes after the last record.

/// Header flag bits of the query (in the 16-bit flags word).
pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_CD: u16 = 0x0010;

/// Record types and classes the parser needs to know.
pub const TYPE_SOA: u16 = 6;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_TSIG: u16 = 250;
pub const TYPE_IXFR: u16 = 251;

/// Why a message is not a query we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not worth an answer (a response, or shorter than a header).
    Drop,
    /// Malformed: answer FORMERR with this header (and the question, when it was readable).
    FormErr {
        id: u16,
        flags: u16,
        question: Option<(usize, usize)>,
    },
}

/// The EDNS facts of a query's OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsQuery {
    /// The requestor's UDP payload size (raw, not yet clamped).
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// A query, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    pub id: u16,
    /// The flags word of the query.
    pub flags: u16,
    pub opcode: u8,
    /// The question section, exactly as sent (name, type, class); `None` for a message
    /// without a question (only valid for some opcodes).
    pub question: Option<&'a [u8]>,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<EdnsQuery>,
    /// The SOA in the authority section of an IXFR query: its RDATA.
    pub ixfr_soa: Option<&'a [u8]>,
    /// Offset of the TSIG record (the last record), if the query is signed.
    pub tsig_at: Option<usize>,
    /// The whole message.
    pub raw: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Skip a name (pointers allowed); returns the offset after it.
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    let mut total = 0usize;
    loop {
        let len = *b.get(at)?;
        match len & 0xC0 {
            0xC0 => return Some(at + 2).filter(|&end| end <= b.len()),
            0x00 => {
                at += 1;
                if len == 0 {
                    return Some(at);
                }
                total += usize::from(len) + 1;
                if total > 255 {
                    return None;
                }
                at += usize::from(len);
            }
            _ => return None,
        }
    }
}

/// The question's name: labels only, no pointer, at most 255 bytes; offset after it.
fn question_name_end(b: &[u8], mut at: usize) -> Option<usize> {
    let mut total = 1usize;
    loop {
        let len = usize::from(*b.get(at)?);
        at += 1;
        if len == 0 {
            return Some(at);
        }
        if len > 63 {
            return None;
        }
        total += len + 1;
        if total > 255 {
            return None;
        }
        at += len;
    }
}

/// One resource record's framing: (type, class, ttl, rdata range), offset after it.
struct RecordFrame {
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: (usize, usize),
}

fn read_record(b: &[u8], at: usize) -> Option<(RecordFrame, usize)> {
    let at = skip_name(b, at)?;
    let rtype = u16_at(b, at)?;
    let class = u16_at(b, at + 2)?;
    let ttl = u32::from_be_bytes(b.get(at + 4..at + 8)?.try_into().ok()?);
    let len = usize::from(u16_at(b, at + 8)?);
    let start = at + 10;
    let end = start + len;
    if end > b.len() {
        return None;
    }
    Some((
        RecordFrame {
            rtype,
            class,
            ttl,
            rdata: (start, end),
        },
        end,
    ))
}

/// Whether OPT RDATA is a well-formed sequence of options.
fn options_are_framed(rdata: &[u8]) -> bool {
    let mut at = 0;
    while at < rdata.len() {
        let Some(len) = u16_at(rdata, at + 2) else {
            return false;
        };
        at += 4 + usize::from(len);
    }
    at == rdata.len()
}

impl<'a> Query<'a> {
    /// Read a query (see the module docs).
    pub fn parse(raw: &'a [u8]) -> Result<Query<'a>, Reject> {
        let (Some(id), Some(flags)) = (u16_at(raw, 0), u16_at(raw, 2)) else {
            return Err(Reject::Drop);
        };
        if raw.len() < 12 || flags & FLAG_QR != 0 {
            return Err(Reject::Drop);
        }
        let mut formerr = Reject::FormErr {
            id,
            flags,
            question: None,
        };
        let counts = [4, 6, 8, 10].map(|at| u16_at(raw, at).unwrap_or(0));
        let mut query = Query {
            id,
            flags,
            opcode: ((flags >> 11) & 0x0F) as u8,
            question: None,
            qtype: 0,
            qclass: 0,
            edns: None,
            ixfr_soa: None,
            tsig_at: None,
            raw,
        };
        let mut at = 12;
        if counts[0] > 1 {
            return Err(formerr);
        }
        if counts[0] == 1 {
            let end = query.read_question(at).ok_or(formerr)?;
            formerr = Reject::FormErr {
                id,
                flags,
                question: Some((at, end)),
            };
            at = end;
        }
        let answers = usize::from(counts[1]);
        let authorities = usize::from(counts[2]);
        let total = answers + authorities + usize::from(counts[3]);
        for index in 0..total {
            let in_authority = index >= answers && index < answers + authorities;
            let in_additional = index >= answers + authorities;
            at = query
                .scan_record(at, in_authority, in_additional)
                .ok_or(formerr)?;
        }
        if at != raw.len() {
            return Err(formerr);
        }
        Ok(query)
    }

    /// Read the question at `at` (name, type, class); the offset after it.
    #[inline]
    fn read_question(&mut self, at: usize) -> Option<usize> {
        let raw = self.raw;
        let name_end = question_name_end(raw, at)?;
        self.qtype = u16_at(raw, name_end)?;
        self.qclass = u16_at(raw, name_end + 2)?;
        self.question = Some(&raw[at..name_end + 4]);
        Some(name_end + 4)
    }

    /// Read the record at `record_at` (noting IXFR SOA, OPT, TSIG); the offset after it.
    #[inline]
    fn scan_record(
        &mut self,
        record_at: usize,
        in_authority: bool,
        in_additional: bool,
    ) -> Option<usize> {
        let raw = self.raw;
        let (frame, next) = read_record(raw, record_at)?;
        let rdata = &raw[frame.rdata.0..frame.rdata.1];
        if self.tsig_at.is_some() {
            return None; // TSIG must be the last record
        }
        if in_authority && frame.rtype == TYPE_SOA && self.qtype == TYPE_IXFR {
            self.ixfr_soa = Some(rdata);
        }
        if in_additional && frame.rtype == TYPE_OPT {
            if self.edns.is_some() || raw.get(record_at) != Some(&0) {
                return None;
            }
            if !options_are_framed(rdata) {
                return None;
            }
            self.edns = Some(EdnsQuery {
                payload: frame.class,
                version: (frame.ttl >> 16) as u8,
                dnssec_ok: frame.ttl & 0x8000 != 0,
            });
        }
        if frame.rtype == TYPE_TSIG {
            if !in_additional {
                return None;
            }
            self.tsig_at = Some(record_at);
        }
        Some(next)
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags & FLAG_RD != 0
    }

    pub fn checking_disabled(&self) -> bool {
        self.flags & FLAG_CD != 0
    }
}

#[cfg(test)]
mod tests;
