//! TSIG keys: the HMAC algorithms, one key (name, algorithm, secret), and the keyring read
//! from files in the format `tsig-keygen` prints. Signing and checking are in the parent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::Name;
use thiserror::Error;

/// An HMAC algorithm TSIG names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    pub(super) fn from_name(name: &str) -> Option<Algorithm> {
        match name.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Algorithm::HmacSha256),
            "hmac-sha384" => Some(Algorithm::HmacSha384),
            "hmac-sha512" => Some(Algorithm::HmacSha512),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256.",
            Algorithm::HmacSha384 => "hmac-sha384.",
            Algorithm::HmacSha512 => "hmac-sha512.",
        }
    }

    pub(super) fn ring(self) -> ring::hmac::Algorithm {
        match self {
            Algorithm::HmacSha256 => ring::hmac::HMAC_SHA256,
            Algorithm::HmacSha384 => ring::hmac::HMAC_SHA384,
            Algorithm::HmacSha512 => ring::hmac::HMAC_SHA512,
        }
    }

    pub(super) fn mac_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }
}

/// One TSIG key.
pub struct Key {
    /// Lower case, absolute.
    pub name: Name,
    pub algorithm: Algorithm,
    pub(super) hmac: ring::hmac::Key,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} {:?})", self.name, self.algorithm)
    }
}

impl Key {
    pub fn new(name: &str, algorithm: Algorithm, secret: &[u8]) -> Result<Key, KeyError> {
        let mut name = Name::from_ascii(name).map_err(|_| KeyError::Name(name.to_string()))?;
        name.set_fqdn(true);
        Ok(Key {
            name: name.to_lowercase(),
            algorithm,
            hmac: ring::hmac::Key::new(algorithm.ring(), secret),
        })
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("key name {0:?} is not a domain name")]
    Name(String),
}

/// The keys srvd knows, by name.
#[derive(Debug, Default, Clone)]
pub struct Keyring(HashMap<Name, Arc<Key>>);

impl Keyring {
    pub fn get(&self, name: &Name) -> Option<Arc<Key>> {
        self.0.get(&name.to_lowercase()).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert(&mut self, key: Key) {
        self.0.insert(key.name.clone(), Arc::new(key));
    }

    /// Read every `key "NAME" { algorithm ...; secret "..."; };` of a file.
    pub fn load(path: &Path) -> Result<Keyring, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut ring = Keyring::default();
        for key in parse_keys(&text).map_err(|message| KeyError::Syntax {
            path: path.display().to_string(),
            message,
        })? {
            ring.insert(key);
        }
        Ok(ring)
    }
}

/// Tokens of BIND's configuration syntax: words, quoted strings, `{`, `}`, `;` (comments
/// `#`, `//` and `/* */` dropped).
fn conf_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => out.push(chars.by_ref().take_while(|&c| c != '"').collect()),
            '{' | '}' | ';' => out.push(c.to_string()),
            c if c.is_whitespace() => {}
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};\"".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push(word);
            }
        }
    }
    out
}

pub(super) fn parse_keys(text: &str) -> Result<Vec<Key>, String> {
    let tokens = conf_tokens(text);
    let mut keys = Vec::new();
    let mut it = tokens.iter().map(String::as_str);
    while let Some(word) = it.next() {
        if word != "key" {
            return Err(format!("expected `key`, found {word:?}"));
        }
        let name = it.next().ok_or("a key needs a name")?;
        if it.next() != Some("{") {
            return Err(format!("key {name}: expected '{{'"));
        }
        let (mut algorithm, mut secret) = (None, None);
        loop {
            match it.next() {
                Some("}") => break,
                Some("algorithm") => algorithm = it.next(),
                Some("secret") => secret = it.next(),
                Some(";") => continue,
                other => return Err(format!("key {name}: unexpected {other:?}")),
            }
            if it.next() != Some(";") {
                return Err(format!("key {name}: expected ';'"));
            }
        }
        let _ = it.next(); // the closing `;`
        let algorithm = algorithm.ok_or(format!("key {name}: no algorithm"))?;
        let algorithm = Algorithm::from_name(algorithm).ok_or(format!(
            "key {name}: algorithm {algorithm} (hmac-sha256, hmac-sha384 or hmac-sha512)"
        ))?;
        let secret = secret.ok_or(format!("key {name}: no secret"))?;
        let secret = data_encoding::BASE64
            .decode(secret.as_bytes())
            .map_err(|e| format!("key {name}: secret is not base64: {e}"))?;
        keys.push(Key::new(name, algorithm, &secret).map_err(|e| e.to_string())?);
    }
    Ok(keys)
}
