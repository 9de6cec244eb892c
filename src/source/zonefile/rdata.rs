//! Record data hickory's master-file parser cannot read, or reads wrongly, read here.
//!
//! hickory 0.26 refuses the RFC 3597 generic form (`TYPE65534 \# 2 abcd`, and `\#` for known
//! types), many standard types (SPF, DNAME, RP, AFSDB, MINFO, URI, EUI48/64, LOC, ZONEMD, and
//! the DNSSEC types DS, DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, which any signed zone holds),
//! and decodes `\DDD` escapes in TXT strings as characters instead of bytes. Knot, NSD and
//! BIND read all of them, so srvd must too. Each is turned into its wire form here and kept
//! as opaque data of its type (served as it is, RFC 3597); TXT keeps hickory's type. The wire
//! form of each type is written in [`wire`].

use hickory_proto::rr::rdata::{NULL, TXT};
use hickory_proto::rr::{Name, RData, RecordType};

mod wire;

use wire::{hex_bytes, wire_data};

/// One token of an entry's record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// As written (escapes kept): for names.
    pub raw: String,
    /// With escapes decoded (`\DDD` is one byte, `\X` is X): for strings.
    pub bytes: Vec<u8>,
    pub quoted: bool,
}

/// Split an entry's text into tokens: quoted strings (which may hold spaces) and words.
pub fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let quoted = c == '"';
        if quoted {
            chars.next();
        }
        let (mut raw, mut bytes) = (String::new(), Vec::new());
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err("unterminated quoted string".into());
                }
                break;
            };
            match c {
                '"' if quoted => break,
                c if !quoted && c.is_whitespace() => break,
                '\\' => {
                    raw.push('\\');
                    escape(&mut chars, &mut raw, &mut bytes)?;
                }
                c => {
                    raw.push(c);
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        tokens.push(Token { raw, bytes, quoted });
    }
    Ok(tokens)
}

/// After a backslash: `\DDD` (a byte, decimal) or `\X` (X itself).
fn escape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    raw: &mut String,
    bytes: &mut Vec<u8>,
) -> Result<(), String> {
    let Some(c) = chars.next() else {
        return Err("backslash at the end".into());
    };
    raw.push(c);
    if !c.is_ascii_digit() {
        let mut buf = [0u8; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        return Ok(());
    }
    let mut digits = String::from(c);
    for _ in 0..2 {
        match chars.next() {
            Some(d) if d.is_ascii_digit() => {
                raw.push(d);
                digits.push(d);
            }
            _ => return Err(format!("bad escape \\{digits}: \\DDD needs three digits")),
        }
    }
    let value: u16 = digits.parse().map_err(|_| "bad escape".to_string())?;
    bytes.push(u8::try_from(value).map_err(|_| format!("escape \\{digits} is above 255"))?);
    Ok(())
}

/// The record type a master file names: a mnemonic or `TYPEnnn` (RFC 3597 §5).
pub fn record_type(word: &str) -> Option<RecordType> {
    let upper = word.to_ascii_uppercase();
    if let Some(code) = upper.strip_prefix("TYPE") {
        return code.parse::<u16>().ok().map(RecordType::from);
    }
    if let Ok(t) = upper.parse::<RecordType>()
        && !matches!(t, RecordType::Unknown(_))
    {
        return Some(t);
    }
    // Mnemonics hickory does not know.
    let code = match upper.as_str() {
        "WKS" => 11,
        "MINFO" => 14,
        "RP" => 17,
        "AFSDB" => 18,
        "LOC" => 29,
        "DNAME" => 39,
        "DS" => 43,
        "RRSIG" => 46,
        "NSEC" => 47,
        "DNSKEY" => 48,
        "NSEC3" => 50,
        "NSEC3PARAM" => 51,
        "APL" => 42,
        "CDS" => 59,
        "CDNSKEY" => 60,
        "ZONEMD" => 63,
        "SPF" => 99,
        "EUI48" => 108,
        "EUI64" => 109,
        "URI" => 256,
        _ => return None,
    };
    Some(RecordType::from(code))
}

/// Types read here whatever their form (the rest only in the generic `\#` form).
fn read_here(t: RecordType) -> bool {
    matches!(
        u16::from(t),
        16 | 99 // TXT, SPF
            | 39 // DNAME
            | 17 | 18 | 14 // RP, AFSDB, MINFO
            | 256 | 108 | 109 // URI, EUI48, EUI64
            | 29 // LOC
            | 63 // ZONEMD
            | 43 | 59 | 48 | 60 // DS, CDS, DNSKEY, CDNSKEY
            | 46 | 47 | 50 | 51 // RRSIG, NSEC, NSEC3, NSEC3PARAM
            | 10 // NULL
            | 42 | 11 // APL, WKS
    ) || matches!(t, RecordType::Unknown(_))
}

/// The record data of `rtype` from `tokens`, when this module reads it (`Ok(None)`: leave it
/// to hickory).
pub fn parse(rtype: RecordType, tokens: &[Token], origin: &Name) -> Result<Option<RData>, String> {
    let generic = tokens.first().is_some_and(|t| !t.quoted && t.raw == "\\#");
    if !generic && !read_here(rtype) {
        return Ok(None);
    }
    let wire = if generic {
        generic_data(&tokens[1..])?
    } else {
        match u16::from(rtype) {
            16 => return txt(tokens).map(|t| Some(RData::TXT(t))),
            code => wire_data(code, tokens, origin)?,
        }
    };
    if generic && !read_here(rtype) {
        // A type hickory knows, in generic form: its own data, so it is served as such.
        let len = u16::try_from(wire.len()).map_err(|_| "data over 65535 bytes".to_string())?;
        let read = RData::read(
            &mut hickory_proto::serialize::binary::BinDecoder::new(&wire),
            rtype,
            hickory_proto::serialize::binary::Restrict::new(len),
        );
        return read.map(Some).map_err(|e| format!("bad {rtype} data: {e}"));
    }
    Ok(Some(RData::Unknown {
        code: rtype,
        rdata: NULL::with(wire),
    }))
}

/// `\# <length> <hex>...` (RFC 3597 §5).
fn generic_data(tokens: &[Token]) -> Result<Vec<u8>, String> {
    let (len, hex) = tokens.split_first().ok_or("\\# needs a length")?;
    let len: usize = len
        .raw
        .parse()
        .map_err(|_| format!("bad \\# length {:?}", len.raw))?;
    let data = hex_bytes(hex)?;
    if data.len() != len {
        return Err(format!("\\# says {len} bytes, the data has {}", data.len()));
    }
    Ok(data)
}

fn txt(tokens: &[Token]) -> Result<TXT, String> {
    let strings: Vec<&[u8]> = tokens.iter().map(|t| &t.bytes[..]).collect();
    if let Some(long) = strings.iter().find(|s| s.len() > 255) {
        return Err(format!(
            "a TXT string of {} bytes (at most 255)",
            long.len()
        ));
    }
    Ok(TXT::from_bytes(strings))
}

#[cfg(test)]
mod tests;
