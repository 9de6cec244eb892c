//! The wire form of the record types read here (not TXT): a small token reader/writer and
//! one function per type (LOC, URI, ZONEMD, DS, DNSKEY, APL, WKS, RRSIG, NSEC, NSEC3, ...),
//! each following its RFC's presentation format. Pure functions of the tokens and origin.

use hickory_proto::rr::{Name, RecordType};

use super::{Token, record_type};

struct Writer<'a> {
    out: Vec<u8>,
    tokens: std::slice::Iter<'a, Token>,
    origin: &'a Name,
}

impl<'a> Writer<'a> {
    fn next(&mut self, what: &str) -> Result<&'a Token, String> {
        self.tokens
            .next()
            .ok_or_else(|| format!("{what} is missing"))
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, String> {
        let t = self.next(what)?;
        t.raw.parse().map_err(|_| format!("bad {what} {:?}", t.raw))
    }

    fn u8(&mut self, what: &str) -> Result<(), String> {
        let v: u8 = self.number(what)?;
        self.out.push(v);
        Ok(())
    }

    fn u16(&mut self, what: &str) -> Result<(), String> {
        let v: u16 = self.number(what)?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<(), String> {
        let v: u32 = self.number(what)?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn name(&mut self, what: &str) -> Result<(), String> {
        let t = self.next(what)?;
        let name = if t.raw == "@" {
            self.origin.clone()
        } else {
            Name::parse(&t.raw, Some(self.origin)).map_err(|e| format!("bad {what}: {e}"))?
        };
        for label in name.iter() {
            self.out.push(label.len() as u8);
            self.out.extend_from_slice(label);
        }
        self.out.push(0);
        Ok(())
    }

    /// The remaining tokens joined, decoded by `decode`.
    fn rest(&mut self, decode: fn(&str) -> Result<Vec<u8>, String>) -> Result<(), String> {
        let text: String = self.tokens.by_ref().map(|t| t.raw.as_str()).collect();
        self.out.extend(decode(&text)?);
        Ok(())
    }

    fn types(&mut self) -> Result<(), String> {
        let types = self
            .tokens
            .by_ref()
            .map(|t| record_type(&t.raw).ok_or_else(|| format!("unknown type {:?}", t.raw)))
            .collect::<Result<Vec<_>, _>>()?;
        self.out.extend(type_bitmap(&types));
        Ok(())
    }
}

pub(super) fn hex(text: &str) -> Result<Vec<u8>, String> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|e| format!("bad hex: {e}"))
}

pub(super) fn hex_bytes(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let text: String = tokens.iter().map(|t| t.raw.as_str()).collect();
    hex(&text)
}

fn base64(text: &str) -> Result<Vec<u8>, String> {
    data_encoding::BASE64
        .decode(text.as_bytes())
        .map_err(|e| format!("bad base64: {e}"))
}

/// The NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2).
fn type_bitmap(types: &[RecordType]) -> Vec<u8> {
    let mut codes: Vec<u16> = types.iter().map(|t| u16::from(*t)).collect();
    codes.sort_unstable();
    codes.dedup();
    let mut out = Vec::new();
    let mut window: Option<(u8, [u8; 32])> = None;
    let flush = |out: &mut Vec<u8>, (w, bits): (u8, [u8; 32])| {
        let len = bits.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        out.push(w);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    };
    for code in codes {
        let (w, bit) = ((code >> 8) as u8, (code & 0xff) as usize);
        match &mut window {
            Some((current, bits)) if *current == w => bits[bit / 8] |= 0x80 >> (bit % 8),
            _ => {
                if let Some(done) = window.take() {
                    flush(&mut out, done);
                }
                let mut bits = [0u8; 32];
                bits[bit / 8] |= 0x80 >> (bit % 8);
                window = Some((w, bits));
            }
        }
    }
    if let Some(done) = window {
        flush(&mut out, done);
    }
    out
}

/// An RRSIG time: `YYYYMMDDHHmmSS` (UTC) or seconds since the epoch.
pub(super) fn sig_time(text: &str) -> Result<u32, String> {
    if text.len() != 14 {
        return text.parse().map_err(|_| format!("bad time {text:?}"));
    }
    let n = |a: usize, b: usize| {
        text[a..b]
            .parse::<i64>()
            .map_err(|_| format!("bad time {text:?}"))
    };
    let (y, mo, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (h, mi, s) = (n(8, 10)?, n(10, 12)?, n(12, 14)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    Ok(secs as u32)
}

/// RFC 1876 §3 LOC: `d [m [s]] {N|S} d [m [s]] {E|W} alt[m] [size[m] [hp[m] [vp[m]]]]`.
fn loc(w: &mut Writer<'_>) -> Result<(), String> {
    let words: Vec<String> = w
        .tokens
        .by_ref()
        .map(|t| t.raw.to_ascii_uppercase())
        .collect();
    let mut it = words.iter().map(String::as_str).peekable();
    let mut coordinate = |pos: &str, neg: &str| -> Result<u32, String> {
        let mut parts = Vec::new();
        while let Some(&p) = it.peek() {
            if p == pos || p == neg {
                break;
            }
            parts.push(
                p.parse::<f64>()
                    .map_err(|_| format!("bad LOC part {p:?}"))?,
            );
            it.next();
        }
        let sign = if it.next() == Some(neg) { -1.0 } else { 1.0 };
        let (d, m, s) = (
            parts.first().copied().unwrap_or(0.0),
            parts.get(1).copied().unwrap_or(0.0),
            parts.get(2).copied().unwrap_or(0.0),
        );
        let ms = ((d * 3600.0 + m * 60.0 + s) * 1000.0).round() * sign;
        Ok((2_147_483_648.0 + ms) as u32)
    };
    let lat = coordinate("N", "S")?;
    let lon = coordinate("E", "W")?;
    let meters = |w: Option<&str>, default: f64| -> Result<f64, String> {
        w.map_or(Ok(default), |w| {
            w.trim_end_matches('M')
                .parse()
                .map_err(|_| format!("bad LOC size {w:?}"))
        })
    };
    let alt = meters(it.next(), 0.0)?;
    let precision = |cm: f64| -> u8 {
        let mut exp = 0u8;
        let mut value = cm.max(0.0);
        while value >= 10.0 && exp < 9 {
            value /= 10.0;
            exp += 1;
        }
        ((value as u8).min(9) << 4) | exp
    };
    let size = precision(meters(it.next(), 1.0)? * 100.0);
    let hp = precision(meters(it.next(), 10_000.0)? * 100.0);
    let vp = precision(meters(it.next(), 10.0)? * 100.0);
    w.out.extend_from_slice(&[0, size, hp, vp]);
    w.out.extend_from_slice(&lat.to_be_bytes());
    w.out.extend_from_slice(&lon.to_be_bytes());
    w.out
        .extend_from_slice(&((alt * 100.0 + 10_000_000.0) as u32).to_be_bytes());
    Ok(())
}

/// The wire form of a type read here (not in generic form).
pub(super) fn wire_data(code: u16, tokens: &[Token], origin: &Name) -> Result<Vec<u8>, String> {
    let mut w = Writer {
        out: Vec::new(),
        tokens: tokens.iter(),
        origin,
    };
    match code {
        99 => {
            w.out = txt_wire(tokens)?;
            w.tokens = [].iter();
        }
        42 => apl(&mut w)?,
        11 => wks(&mut w)?,
        39 => w.name("DNAME target")?,
        17 | 14 => {
            w.name("first name")?;
            w.name("second name")?;
        }
        18 => {
            w.u16("AFSDB subtype")?;
            w.name("AFSDB host")?;
        }
        256 => uri(&mut w)?,
        108 | 109 => w.rest(|t| hex(&t.replace('-', "")))?,
        29 => loc(&mut w)?,
        63 => zonemd(&mut w)?,
        43 | 59 => ds(&mut w)?,
        48 | 60 => dnskey(&mut w)?,
        46 => rrsig(&mut w)?,
        47 => {
            w.name("next name")?;
            w.types()?;
        }
        50 | 51 => nsec3(&mut w, code == 50)?,
        _ => return Err("this type is read only in the RFC 3597 generic form (\\# ...)".into()),
    }
    if w.tokens.next().is_some() {
        return Err("unexpected data after the record".into());
    }
    Ok(w.out)
}

/// RFC 7553 URI: priority, weight, target (a string).
fn uri(w: &mut Writer<'_>) -> Result<(), String> {
    w.u16("URI priority")?;
    w.u16("URI weight")?;
    let target = w.next("URI target")?;
    w.out.extend_from_slice(&target.bytes);
    Ok(())
}

/// RFC 8976 ZONEMD: serial, scheme, hash algorithm, digest (hex).
fn zonemd(w: &mut Writer<'_>) -> Result<(), String> {
    w.u32("ZONEMD serial")?;
    w.u8("ZONEMD scheme")?;
    w.u8("ZONEMD hash algorithm")?;
    w.rest(hex)
}

/// RFC 4034 §5 DS (and CDS, RFC 7344): key tag, algorithm, digest type, digest (hex).
fn ds(w: &mut Writer<'_>) -> Result<(), String> {
    w.u16("key tag")?;
    w.u8("algorithm")?;
    w.u8("digest type")?;
    w.rest(hex)
}

/// RFC 4034 §2 DNSKEY (and CDNSKEY, RFC 7344): flags, protocol, algorithm, key (base64).
fn dnskey(w: &mut Writer<'_>) -> Result<(), String> {
    w.u16("flags")?;
    w.u8("protocol")?;
    w.u8("algorithm")?;
    w.rest(base64)
}

/// RFC 3123 APL: `[!]afi:address/prefix` items.
fn apl(w: &mut Writer<'_>) -> Result<(), String> {
    for t in w.tokens.by_ref() {
        let (negate, item) = match t.raw.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, t.raw.as_str()),
        };
        let bad = || format!("bad APL item {:?}", t.raw);
        let (afi, rest) = item.split_once(':').ok_or_else(bad)?;
        let (addr, prefix) = rest.split_once('/').ok_or_else(bad)?;
        let afi: u16 = afi.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let mut bytes = match afi {
            1 => addr
                .parse::<std::net::Ipv4Addr>()
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            2 => addr
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            _ => return Err(bad()),
        };
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        w.out.extend_from_slice(&afi.to_be_bytes());
        w.out.push(prefix);
        w.out.push((u8::from(negate) << 7) | bytes.len() as u8);
        w.out.extend(bytes);
    }
    Ok(())
}

/// RFC 1035 §3.4.2 WKS: address, protocol, services (port numbers or common names).
fn wks(w: &mut Writer<'_>) -> Result<(), String> {
    let addr = w.next("WKS address")?;
    let addr: std::net::Ipv4Addr = addr
        .raw
        .parse()
        .map_err(|_| "bad WKS address".to_string())?;
    w.out.extend_from_slice(&addr.octets());
    let proto = w.next("WKS protocol")?;
    let proto: u8 = match proto.raw.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        other => other
            .parse()
            .map_err(|_| format!("bad WKS protocol {other:?}"))?,
    };
    w.out.push(proto);
    let mut bitmap: Vec<u8> = Vec::new();
    for t in w.tokens.by_ref() {
        let port: u16 = match t.raw.to_ascii_lowercase().as_str() {
            "ftp" => 21,
            "ssh" => 22,
            "telnet" => 23,
            "smtp" => 25,
            "domain" => 53,
            "http" | "www" => 80,
            "pop3" => 110,
            "ntp" => 123,
            "imap" => 143,
            "https" => 443,
            other => other
                .parse()
                .map_err(|_| format!("unknown WKS service {other:?}"))?,
        };
        let byte = usize::from(port / 8);
        if bitmap.len() <= byte {
            bitmap.resize(byte + 1, 0);
        }
        bitmap[byte] |= 0x80 >> (port % 8);
    }
    w.out.extend(bitmap);
    Ok(())
}

fn txt_wire(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for t in tokens {
        let len = u8::try_from(t.bytes.len()).map_err(|_| "a string over 255 bytes".to_string())?;
        out.push(len);
        out.extend_from_slice(&t.bytes);
    }
    Ok(out)
}

fn rrsig(w: &mut Writer<'_>) -> Result<(), String> {
    let covered = w.next("type covered")?;
    let covered = record_type(&covered.raw).ok_or("unknown type covered")?;
    w.out.extend_from_slice(&u16::from(covered).to_be_bytes());
    w.u8("algorithm")?;
    w.u8("labels")?;
    w.u32("original TTL")?;
    for what in ["expiration", "inception"] {
        let t = w.next(what)?;
        w.out.extend_from_slice(&sig_time(&t.raw)?.to_be_bytes());
    }
    w.u16("key tag")?;
    w.name("signer")?;
    w.rest(base64)
}

fn nsec3(w: &mut Writer<'_>, full: bool) -> Result<(), String> {
    w.u8("hash algorithm")?;
    w.u8("flags")?;
    w.u16("iterations")?;
    let salt = w.next("salt")?;
    let salt = if salt.raw == "-" {
        Vec::new()
    } else {
        hex(&salt.raw)?
    };
    w.out.push(salt.len() as u8);
    w.out.extend(salt);
    if full {
        let next = w.next("next hashed owner")?;
        let hash = data_encoding::BASE32HEX_NOPAD
            .decode(next.raw.to_ascii_uppercase().as_bytes())
            .map_err(|e| format!("bad next hashed owner: {e}"))?;
        w.out.push(hash.len() as u8);
        w.out.extend(hash);
        w.types()?;
    }
    Ok(())
}
