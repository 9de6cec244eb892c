//! Reading one zone file, its `$INCLUDE`s confined to the zone directory, parsed in pieces.
//!
//! hickory's master-file parser does the record syntax, but on its own it parses a whole file
//! into one map (a 50 MB file peaked at several GB), reports errors without a line, opens any
//! path an `$INCLUDE` names (`/dev/zero`, a FIFO), and only with a path of its own. So the
//! walk is ours: the text is split into entries ([`entries`]), `$ORIGIN`, `$TTL` and
//! `$INCLUDE` are followed here, and the records go to hickory in chunks of
//! [`CHUNK_ENTRIES`] entries, each with the context it needs (origin, default TTL, the TTL
//! and owner carried over). A chunk that fails is re-parsed entry by entry to name the line,
//! so an error costs one extra pass over at most one chunk.
//!
//! Files are read only when they are regular files (a symlink is followed; a loop is an
//! error), no larger than the configured limit (counting includes), and an `$INCLUDE` must
//! resolve inside the zone directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, Name, Record};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

use super::entries::{self, Entry};
use super::rdata;

/// Entries handed to hickory's parser at once.
const CHUNK_ENTRIES: usize = 1000;
/// Deepest `$INCLUDE` nesting.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A problem at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// What reading may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one zone file may have, its includes counted.
    pub max_bytes: u64,
}

/// Default largest zone file (with its includes).
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Read a file as a zone file may be read (see the module docs). `inside`: the directory an
/// `$INCLUDE` must stay in (canonical), `None` for a top-level zone file.
pub fn read_file(path: &Path, inside: Option<&Path>, budget: &mut u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => "symbolic link loop".to_string(),
        _ => e.to_string(),
    })?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if let Some(root) = inside {
        let real = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
        if !real.starts_with(root) {
            return Err(format!(
                "{} is outside the zone directory {}",
                real.display(),
                root.display()
            ));
        }
    }
    if meta.len() > *budget {
        return Err(format!(
            "larger than the zone size limit ({} bytes left of the limit)",
            budget
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(|e| e.to_string())?
        .take(*budget + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > *budget {
        return Err("grew past the zone size limit while being read".into());
    }
    *budget -= text.len() as u64;
    Ok(text)
}

/// Where a record entry came from and the context it was read in.
#[derive(Clone)]
struct Origin {
    path: PathBuf,
    line: usize,
}

/// An entry queued for the parser, with what it needs to be parsed on its own.
struct Queued {
    text: String,
    at: Origin,
    context: Context,
}

/// What the parser must be told before an entry.
#[derive(Clone)]
struct Context {
    origin: Name,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
}

/// One zone file being read.
struct Walk {
    root: PathBuf,
    budget: u64,
    context: Context,
    /// The zone's apex: the first `$ORIGIN` before any record, else the file name.
    apex: Name,
    records_seen: bool,
    queue: Vec<Queued>,
    records: Vec<Record>,
    includes: Vec<PathBuf>,
}

fn err(at: &Origin, message: impl Into<String>) -> ParseError {
    ParseError {
        path: at.path.clone(),
        line: Some(at.line),
        message: message.into(),
    }
}

/// A name as written in a master file, relative to `origin` (`@` is the origin).
fn resolve(word: &str, origin: &Name) -> Result<Name, String> {
    if word == "@" {
        return Ok(origin.clone());
    }
    Name::parse(word, Some(origin)).map_err(|e| format!("bad name {word:?}: {e}"))
}

/// The TTL and class fields after the owner (either order, both optional), and how many
/// tokens they take.
fn ttl_and_class(rest: &[rdata::Token]) -> (Option<u32>, Option<DNSClass>, usize) {
    let (mut ttl, mut class, mut used) = (None, None, 0);
    for t in rest.iter().take(2) {
        if class.is_none() && is_class(&t.raw) {
            class = t.raw.to_ascii_uppercase().parse().ok();
        } else if ttl.is_none()
            && !t.quoted
            && let Ok(v) = parse_ttl(&t.raw)
        {
            ttl = Some(v);
        } else {
            break;
        }
        used += 1;
    }
    (ttl, class, used)
}

fn is_class(word: &str) -> bool {
    matches!(
        word.to_ascii_uppercase().as_str(),
        "IN" | "CH" | "CS" | "HS" | "NONE" | "ANY"
    )
}

impl Walk {
    fn file(&mut self, path: &Path, text: &str) -> Result<(), ParseError> {
        let split = entries::split(text).map_err(|e| ParseError {
            path: path.to_path_buf(),
            line: Some(e.line),
            message: e.message.into(),
        })?;
        for entry in split {
            let at = Origin {
                path: path.to_path_buf(),
                line: entry.line,
            };
            match entry.directive() {
                Some(d) => self.directive(&d, &entry, &at)?,
                None => self.record(entry, at)?,
            }
        }
        Ok(())
    }

    fn directive(&mut self, directive: &str, entry: &Entry, at: &Origin) -> Result<(), ParseError> {
        let args: Vec<&str> = entry.words().skip(1).collect();
        // The queued entries were read in the old context: parse them before it changes.
        self.flush()?;
        match (directive, args.as_slice()) {
            ("$ORIGIN", [name]) => {
                let origin = resolve(name, &self.context.origin).map_err(|m| err(at, m))?;
                if !self.records_seen {
                    self.apex = origin.clone();
                }
                self.context.origin = origin;
            }
            ("$TTL", [ttl]) => {
                let ttl = parse_ttl(ttl).map_err(|e| err(at, e.to_string()))?;
                self.context.default_ttl = Some(ttl);
            }
            ("$INCLUDE", [file, rest @ ..]) if rest.len() <= 1 => {
                let origin = match rest.first() {
                    Some(name) => resolve(name, &self.context.origin).map_err(|m| err(at, m))?,
                    None => self.context.origin.clone(),
                };
                self.include(file, origin, at)?;
            }
            _ => {
                return Err(err(
                    at,
                    format!("unsupported or malformed directive {directive}"),
                ));
            }
        }
        Ok(())
    }

    fn include(&mut self, file: &str, origin: Name, at: &Origin) -> Result<(), ParseError> {
        if self.includes.len() >= MAX_INCLUDE_DEPTH {
            return Err(err(at, "$INCLUDE nested too deeply"));
        }
        let path = self.root.join(file);
        let text = read_file(&path, Some(&self.root), &mut self.budget)
            .map_err(|m| err(at, format!("$INCLUDE {file}: {m}")))?;
        let real = std::fs::canonicalize(&path).unwrap_or(path.clone());
        if self.includes.contains(&real) {
            return Err(err(at, format!("$INCLUDE {file} includes itself")));
        }
        let saved = std::mem::replace(&mut self.context.origin, origin);
        self.includes.push(real);
        let result = self.file(&path, &text);
        self.includes.pop();
        self.flush()?;
        // RFC 1035 §5.1: an $INCLUDE never changes the including file's origin.
        self.context.origin = saved;
        result
    }

    fn record(&mut self, entry: Entry, at: Origin) -> Result<(), ParseError> {
        let tokens = rdata::tokenize(&entry.text).map_err(|m| err(&at, m))?;
        let (owner, rest) = match (entry.blank_owner, tokens.split_first()) {
            (false, Some((first, rest))) => {
                let owner = resolve(&first.raw, &self.context.origin).map_err(|m| err(&at, m))?;
                (Some(owner), rest)
            }
            _ => (None, &tokens[..]),
        };
        let (ttl, class, fields) = ttl_and_class(rest);
        if let Some(record) = self.read_here(owner.as_ref(), ttl, class, &rest[fields..], &at)? {
            self.records.push(record);
        } else {
            if self.queue.len() >= CHUNK_ENTRIES && owner.is_some() {
                self.flush()?;
            }
            self.queue.push(Queued {
                text: entry.text,
                at,
                context: self.context.clone(),
            });
        }
        self.records_seen = true;
        if let Some(owner) = owner {
            self.context.last_owner = Some(owner);
        }
        if ttl.is_some() {
            self.context.last_ttl = ttl;
        }
        Ok(())
    }

    /// A record of a type (or in a form) hickory cannot read, read here; `None` for the rest.
    fn read_here(
        &self,
        owner: Option<&Name>,
        ttl: Option<u32>,
        class: Option<DNSClass>,
        fields: &[rdata::Token],
        at: &Origin,
    ) -> Result<Option<Record>, ParseError> {
        let Some((rtype, data)) = fields.split_first() else {
            return Ok(None);
        };
        let Some(rtype) = rdata::record_type(&rtype.raw) else {
            return Ok(None);
        };
        let Some(data) = rdata::parse(rtype, data, &self.context.origin).map_err(|m| err(at, m))?
        else {
            return Ok(None);
        };
        let owner = owner
            .or(self.context.last_owner.as_ref())
            .ok_or_else(|| err(at, "record name not specified"))?;
        let ttl = ttl
            .or(self.context.default_ttl)
            .or(self.context.last_ttl)
            .ok_or_else(|| err(at, "record ttl not specified"))?;
        let mut record = Record::from_rdata(owner.clone(), ttl, data);
        record.dns_class = class.unwrap_or(DNSClass::IN);
        Ok(Some(record))
    }

    /// Parse what is queued.
    fn flush(&mut self) -> Result<(), ParseError> {
        let queued = std::mem::take(&mut self.queue);
        let Some(first) = queued.first() else {
            return Ok(());
        };
        let text = chunk_text(&queued);
        match parse(&text, &first.context.origin) {
            Ok(records) => {
                self.records.extend(records);
                Ok(())
            }
            Err(message) => Err(locate(&queued).unwrap_or_else(|| err(&first.at, message))),
        }
    }
}

/// The text of queued entries for one parse, the first entry given the context it needs.
fn chunk_text(queued: &[Queued]) -> String {
    let mut text =
        String::with_capacity(queued.iter().map(|q| q.text.len() + 1).sum::<usize>() + 64);
    if let Some(first) = queued.first() {
        text.push_str(&preamble(first));
    }
    for (i, q) in queued.iter().enumerate() {
        if i > 0 {
            text.push_str(&q.text);
        }
        text.push('\n');
    }
    text
}

/// The first entry of a parse, written so it needs nothing from entries before it: its owner
/// spelled out when it has none of its own, `$TTL` and its TTL when they came from before.
fn preamble(q: &Queued) -> String {
    let mut out = String::new();
    if let Some(ttl) = q.context.default_ttl {
        out.push_str(&format!("$TTL {ttl}\n"));
    }
    let blank = q.text.starts_with([' ', '\t']);
    let owner = match (&q.context.last_owner, blank) {
        (Some(owner), true) => owner.to_ascii(),
        _ => String::new(),
    };
    let has_ttl = q
        .text
        .split_whitespace()
        .skip(usize::from(!blank))
        .take(2)
        .filter(|w| !is_class(w))
        .any(|w| parse_ttl(w).is_ok());
    let carried = match (q.context.default_ttl, q.context.last_ttl, has_ttl) {
        (None, Some(ttl), false) => Some(ttl),
        _ => None,
    };
    match carried {
        Some(ttl) if blank => out.push_str(&format!("{owner} {ttl} {}", q.text.trim_start())),
        Some(ttl) => {
            let (head, tail) = q
                .text
                .split_once(char::is_whitespace)
                .unwrap_or((&q.text, ""));
            out.push_str(&format!("{head} {ttl} {tail}"));
        }
        None if blank => out.push_str(&format!("{owner} {}", q.text.trim_start())),
        None => out.push_str(&q.text),
    }
    out
}

fn parse(text: &str, origin: &Name) -> Result<Vec<Record>, String> {
    let (_, sets) = Parser::new(text, None, Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    Ok(sets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect())
}

/// The first entry of a failed chunk that fails on its own.
fn locate(queued: &[Queued]) -> Option<ParseError> {
    queued.iter().find_map(|q| {
        let text = preamble(q) + "\n";
        parse(&text, &q.context.origin)
            .err()
            .map(|message| err(&q.at, message))
    })
}

/// Read and parse a zone file (with its includes). Returns the zone's apex and its records.
pub fn parse_file(
    path: &Path,
    root: &Path,
    default_origin: Name,
    limits: Limits,
) -> Result<(Name, Vec<Record>), ParseError> {
    let whole = |message: String| ParseError {
        path: path.to_path_buf(),
        line: None,
        message,
    };
    let mut budget = limits.max_bytes;
    let text = read_file(path, None, &mut budget).map_err(whole)?;
    let root = std::fs::canonicalize(root).map_err(|e| whole(e.to_string()))?;
    let mut walk = Walk {
        root,
        budget,
        context: Context {
            origin: default_origin.clone(),
            default_ttl: None,
            last_ttl: None,
            last_owner: None,
        },
        apex: default_origin,
        records_seen: false,
        queue: Vec::new(),
        records: Vec::new(),
        includes: Vec::new(),
    };
    walk.file(path, &text)?;
    drop(text);
    walk.flush()?;
    Ok((walk.apex, walk.records))
}

#[cfg(test)]
mod tests;
