//! TSIG (RFC 8945): shared-secret signatures on queries, transfers and NOTIFYs.
//!
//! Written here rather than with hickory's `TSigner`, which (measured) checks no time, cannot
//! build BADTIME answers, drops the header's Z bit when it re-encodes (so valid requests fail)
//! and has no signer for multi-message responses; the HMACs are `ring`'s. Keys come from
//! files in the format `tsig-keygen` prints (`key "NAME" { algorithm hmac-sha256; secret
//! "BASE64"; };`, one or more), never from the command line.
//!
//! - A request's MAC covers the message without its TSIG record (ARCOUNT one less, the
//!   original ID) and the TSIG variables (§4.3.3).
//! - A response's MAC covers the request's MAC, then the same (§4.3.3).
//! - Every message of a multi-message response (a zone transfer) is signed; the MAC of each
//!   after the first covers the previous MAC, the message and the timers only (§5.3.1).
//! - Errors (§5.2): unknown key or algorithm: NOTAUTH + BADKEY, unsigned; bad MAC: NOTAUTH +
//!   BADSIG, unsigned; time outside the fudge: NOTAUTH + BADTIME, signed, the server's time in
//!   Other Data.
//!
//! Keys, algorithms and key files are in [`keys`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;

/// TSIG RR type and the class it uses.
pub const TYPE_TSIG: u16 = 250;
const CLASS_ANY: u16 = 255;
/// Fudge we sign with (seconds; RFC 8945 §10 recommends 300).
const FUDGE: u16 = 300;

/// TSIG error codes (RFC 8945 §3).
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;

mod keys;

pub use keys::{Algorithm, Key, KeyError, Keyring};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Wire form of a name, lower-cased, uncompressed (canonical, RFC 8945 §4.3.3).
fn canonical(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

fn u48(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A TSIG record read from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tsig {
    pub key_name: Name,
    pub algorithm: Name,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
    /// Where the TSIG record starts in the message.
    pub at: usize,
}

fn read_name(msg: &[u8], at: usize) -> Option<(Name, usize)> {
    let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(msg);
    decoder.read_slice(at).ok()?;
    let name = <Name as hickory_proto::serialize::binary::BinDecodable>::read(&mut decoder).ok()?;
    Some((name, decoder.index()))
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// Skip a possibly compressed name; the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len & 0xC0 {
            0xC0 => return Some(at + 2),
            0 if len == 0 => return Some(at + 1),
            0 => at += 1 + usize::from(len),
            _ => return None,
        }
    }
}

/// The TSIG record of a message, if its last record is one.
pub fn find(msg: &[u8]) -> Option<Tsig> {
    let count = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *msg.get(at)?,
            *msg.get(at + 1)?,
        ])))
    };
    let (qd, records) = (count(4)?, count(6)? + count(8)? + count(10)?);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at)? + 4;
    }
    let mut last = None;
    for _ in 0..records {
        last = Some(at);
        let end = skip_name(msg, at)?;
        let rdlen = usize::from(u16::from_be_bytes([*msg.get(end + 8)?, *msg.get(end + 9)?]));
        at = end + 10 + rdlen;
    }
    Tsig::read(msg, last?)
}

impl Tsig {
    /// Read the TSIG record starting at `at` (the message's last record).
    pub fn read(msg: &[u8], at: usize) -> Option<Tsig> {
        let (key_name, i) = read_name(msg, at)?;
        let fixed = msg.get(i..i + 10)?;
        if be(&fixed[0..2]) as u16 != TYPE_TSIG {
            return None;
        }
        let rdata_end = i + 10 + be(&fixed[8..10]) as usize;
        let (algorithm, mut j) = read_name(msg, i + 10)?;
        let field = |from: usize, len: usize| {
            msg.get(from..from + len)
                .filter(|_| from + len <= rdata_end)
        };
        let time_signed = be(field(j, 6)?);
        let fudge = be(field(j + 6, 2)?) as u16;
        let mac_len = be(field(j + 8, 2)?) as usize;
        let mac = field(j + 10, mac_len)?.to_vec();
        j += 10 + mac_len;
        let original_id = be(field(j, 2)?) as u16;
        let error = be(field(j + 2, 2)?) as u16;
        let other_len = be(field(j + 4, 2)?) as usize;
        let other = field(j + 6, other_len)?.to_vec();
        Some(Tsig {
            key_name,
            algorithm,
            time_signed,
            fudge,
            mac,
            original_id,
            error,
            other,
            at,
        })
    }
}

/// The message `msg` (ending in its TSIG record at `tsig.at`) as it was before signing.
fn unsigned(msg: &[u8], tsig: &Tsig) -> Vec<u8> {
    let mut body = msg[..tsig.at].to_vec();
    body[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([body[10], body[11]]).saturating_sub(1);
    body[10..12].copy_from_slice(&arcount.to_be_bytes());
    body
}

/// The TSIG variables (§4.3.3): key name, class, TTL, algorithm, times, error, other.
fn variables(key: &Key, time: u64, fudge: u16, error: u16, other: &[u8], out: &mut Vec<u8>) {
    canonical(&key.name, out);
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    canonical(
        &Name::from_ascii(key.algorithm.name()).unwrap_or_default(),
        out,
    );
    out.extend_from_slice(&u48(time));
    out.extend_from_slice(&fudge.to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

/// The outcome of checking a signed request.
#[derive(Debug)]
pub enum Checked {
    /// Good: the key, and the request's MAC (which the response's MAC covers).
    Valid {
        key: Arc<Key>,
        mac: Vec<u8>,
        time: u64,
    },
    /// Refuse with NOTAUTH and this TSIG error; `key`/`mac` are set for BADTIME (signed).
    Invalid {
        error: u16,
        key_name: Name,
        algorithm: Name,
        time: u64,
        signing: Option<(Arc<Key>, Vec<u8>)>,
    },
}

/// Check a request signed with `tsig` against the keyring.
pub fn check(keys: &Keyring, msg: &[u8], tsig: &Tsig) -> Checked {
    let invalid = |error, signing| Checked::Invalid {
        error,
        key_name: tsig.key_name.clone(),
        algorithm: tsig.algorithm.clone(),
        time: tsig.time_signed,
        signing,
    };
    let key = match keys.get(&tsig.key_name) {
        Some(key) if Algorithm::from_name(&tsig.algorithm.to_ascii()) == Some(key.algorithm) => key,
        _ => return invalid(BADKEY, None),
    };
    let mut data = unsigned(msg, tsig);
    variables(
        &key,
        tsig.time_signed,
        tsig.fudge,
        tsig.error,
        &tsig.other,
        &mut data,
    );
    if tsig.mac.len() != key.algorithm.mac_len()
        || ring::hmac::verify(&key.hmac, &data, &tsig.mac).is_err()
    {
        return invalid(BADSIG, None);
    }
    if now().abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return invalid(BADTIME, Some((key, tsig.mac.clone())));
    }
    Checked::Valid {
        key,
        mac: tsig.mac.clone(),
        time: tsig.time_signed,
    }
}

/// Size of the TSIG record a key signs with (to keep room for it).
pub fn record_size(key: &Key) -> usize {
    let name = key.name.len() + 1;
    let alg = key.algorithm.name().len() + 1;
    name + 10 + alg + 6 + 2 + 2 + key.algorithm.mac_len() + 2 + 2 + 2 + 6
}

/// Append a TSIG record to `msg` (ARCOUNT one more).
#[allow(clippy::too_many_arguments)]
fn append(
    msg: &mut Vec<u8>,
    key_name: &Name,
    algorithm: &Name,
    time: u64,
    mac: &[u8],
    error: u16,
    other: &[u8],
) {
    let original_id = [msg[0], msg[1]];
    canonical(key_name, msg);
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let len_at = msg.len();
    msg.extend_from_slice(&0u16.to_be_bytes());
    canonical(algorithm, msg);
    msg.extend_from_slice(&u48(time));
    msg.extend_from_slice(&FUDGE.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&original_id);
    msg.extend_from_slice(&error.to_be_bytes());
    msg.extend_from_slice(&(other.len() as u16).to_be_bytes());
    msg.extend_from_slice(other);
    let rdlen = (msg.len() - len_at - 2) as u16;
    msg[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    let arcount = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&arcount.to_be_bytes());
}

/// Signs the messages of one response (one, or a stream of them).
#[derive(Clone)]
pub struct Signer {
    key: Arc<Key>,
    /// The MAC the next message's MAC covers (the request's, then each message's own).
    previous: Vec<u8>,
    first: bool,
    time: u64,
}

impl Signer {
    /// A signer for the response to a request whose MAC was `request_mac` (empty for an
    /// unsolicited message such as a NOTIFY).
    pub fn new(key: Arc<Key>, request_mac: Vec<u8>) -> Signer {
        Signer {
            key,
            previous: request_mac,
            first: true,
            time: now(),
        }
    }

    /// The key's name.
    pub fn key_name(&self) -> &Name {
        &self.key.name
    }

    /// Bytes the TSIG record adds to a message.
    pub fn record_size(&self) -> usize {
        record_size(&self.key)
    }

    /// Sign `msg` (complete, without TSIG) and append its TSIG record.
    pub fn sign(&mut self, msg: &mut Vec<u8>) {
        self.sign_with(msg, 0, &[]);
    }

    fn sign_with(&mut self, msg: &mut Vec<u8>, error: u16, other: &[u8]) {
        let mut data = Vec::with_capacity(msg.len() + 128);
        if !self.previous.is_empty() {
            data.extend_from_slice(&(self.previous.len() as u16).to_be_bytes());
            data.extend_from_slice(&self.previous);
        }
        data.extend_from_slice(msg);
        if self.first {
            variables(&self.key, self.time, FUDGE, error, other, &mut data);
        } else {
            data.extend_from_slice(&u48(self.time));
            data.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let mac = ring::hmac::sign(&self.key.hmac, &data).as_ref().to_vec();
        let algorithm = Name::from_ascii(self.key.algorithm.name()).unwrap_or_default();
        append(
            msg,
            &self.key.name,
            &algorithm,
            self.time,
            &mac,
            error,
            other,
        );
        self.previous = mac;
        self.first = false;
    }
}

/// Turn `msg` (a NOTAUTH response without TSIG) into the TSIG error response of `checked`.
pub fn append_error(msg: &mut Vec<u8>, checked: &Checked) {
    let Checked::Invalid {
        error,
        key_name,
        algorithm,
        time,
        signing,
    } = checked
    else {
        return;
    };
    match signing {
        Some((key, request_mac)) => {
            let mut signer = Signer::new(key.clone(), request_mac.clone());
            signer.time = *time;
            signer.sign_with(msg, *error, &u48(now()));
        }
        None => append(msg, key_name, algorithm, *time, &[], *error, &[]),
    }
}

/// Check a signed response to a request we signed (a NOTIFY's answer).
pub fn check_response(key: &Key, request_mac: &[u8], msg: &[u8], tsig: &Tsig) -> bool {
    let mut data = Vec::new();
    data.extend_from_slice(&(request_mac.len() as u16).to_be_bytes());
    data.extend_from_slice(request_mac);
    data.extend(unsigned(msg, tsig));
    variables(
        key,
        tsig.time_signed,
        tsig.fudge,
        tsig.error,
        &tsig.other,
        &mut data,
    );
    ring::hmac::verify(&key.hmac, &data, &tsig.mac).is_ok()
}

/// Sign a request (a NOTIFY we send); returns its MAC.
pub fn sign_request(key: &Arc<Key>, msg: &mut Vec<u8>) -> Vec<u8> {
    let mut signer = Signer::new(key.clone(), Vec::new());
    signer.sign(msg);
    signer.previous
}

#[cfg(test)]
mod tests;
