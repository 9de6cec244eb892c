//! Splitting master-file text (RFC 1035 §5.1) into entries: one directive or one record each,
//! possibly spanning lines inside parentheses, with comments stripped. One pass, no
//! allocation per character; the parser then sees small pieces of text, never the whole file
//! at once.

/// One entry of a master file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's text (comments removed, lines inside parentheses kept).
    pub text: String,
    /// 1-based line where it starts.
    pub line: usize,
    /// The entry starts with blank space: it has no owner of its own (the previous one's).
    pub blank_owner: bool,
}

impl Entry {
    /// The entry's whitespace-separated tokens (quotes and parentheses not interpreted);
    /// enough to recognize directives, owners, TTLs and classes.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|w| !w.is_empty())
    }

    /// The directive (`$ORIGIN`, `$TTL`, `$INCLUDE`, ...) this entry is, if any.
    pub fn directive(&self) -> Option<String> {
        if self.blank_owner {
            return None;
        }
        let first = self.words().next()?;
        first.starts_with('$').then(|| first.to_ascii_uppercase())
    }
}

/// Why text could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub line: usize,
    pub message: &'static str,
}

/// Split `text` into entries.
pub fn split(text: &str) -> Result<Vec<Entry>, SplitError> {
    let mut splitter = Splitter::default();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        splitter.take(c, &mut chars)?;
    }
    splitter.finish()
}

/// Where a pass over master-file text stands: the entries so far and the one being read.
struct Splitter {
    entries: Vec<Entry>,
    current: String,
    start_line: usize,
    line: usize,
    depth: usize,
    quoted: bool,
    at_line_start: bool,
    blank_owner: bool,
}

impl Default for Splitter {
    /// At the start of the text: line 1, nothing read yet.
    fn default() -> Self {
        Splitter {
            entries: Vec::new(),
            current: String::new(),
            start_line: 1,
            line: 1,
            depth: 0,
            quoted: false,
            at_line_start: true,
            blank_owner: false,
        }
    }
}

impl Splitter {
    /// Take the character `c`, reading further from `chars` for an escape or a comment.
    #[inline]
    fn take(
        &mut self,
        c: char,
        chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    ) -> Result<(), SplitError> {
        if self.current.is_empty() && self.at_line_start {
            self.start_line = self.line;
            self.blank_owner = c == ' ' || c == '\t';
        }
        self.at_line_start = false;
        match c {
            '\\' => {
                self.current.push(c);
                if let Some(next) = chars.next() {
                    if next == '\n' {
                        self.line += 1;
                    }
                    self.current.push(next);
                }
            }
            '"' => {
                self.quoted = !self.quoted;
                self.current.push(c);
            }
            ';' if !self.quoted => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '(' if !self.quoted => {
                self.depth += 1;
                self.current.push(' ');
            }
            ')' if !self.quoted => {
                self.depth = self.depth.checked_sub(1).ok_or(SplitError {
                    line: self.line,
                    message: "')' without '('",
                })?;
                self.current.push(' ');
            }
            '\n' => self.end_line(),
            '\r' if !self.quoted => {}
            c => self.current.push(c),
        }
        Ok(())
    }

    /// At a line end: the entry goes on inside quotes or parentheses, else it is complete.
    fn end_line(&mut self) {
        self.line += 1;
        if self.quoted || self.depth > 0 {
            self.current.push(if self.quoted { '\n' } else { ' ' });
            return;
        }
        self.at_line_start = true;
        push_entry(
            &mut self.entries,
            &mut self.current,
            self.start_line,
            self.blank_owner,
        );
    }

    /// The entries, once the text has ended: an error for an open quote or parenthesis.
    fn finish(mut self) -> Result<Vec<Entry>, SplitError> {
        if self.quoted {
            return Err(SplitError {
                line: self.start_line,
                message: "unterminated quoted string",
            });
        }
        if self.depth > 0 {
            return Err(SplitError {
                line: self.start_line,
                message: "'(' without ')'",
            });
        }
        push_entry(
            &mut self.entries,
            &mut self.current,
            self.start_line,
            self.blank_owner,
        );
        Ok(self.entries)
    }
}

fn push_entry(entries: &mut Vec<Entry>, current: &mut String, line: usize, blank_owner: bool) {
    if !current.trim().is_empty() {
        entries.push(Entry {
            text: std::mem::take(current),
            line,
            blank_owner,
        });
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_records_directives_and_multi_line_entries() {
        let text = "$ORIGIN example.\n\
                    @ IN SOA ns host ( 1 ; serial\n  7200 1800\n 86400 5 )\n\
                    ; a comment line\n\
                    \n\
                    www 60 A 192.0.2.1 ; trailing\n\
                    \tA 192.0.2.2\n\
                    txt TXT \"a ; not a comment\" \"b\\\"c\"\n";
        let entries = split(text).unwrap();
        let lines: Vec<usize> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 7, 8, 9]);
        assert_eq!(entries[0].directive().as_deref(), Some("$ORIGIN"));
        assert!(entries[1].text.contains("86400"));
        assert!(!entries[2].blank_owner && entries[3].blank_owner);
        assert!(entries[4].text.contains("a ; not a comment"));
    }

    #[test]
    fn unbalanced_parentheses_and_quotes_name_the_line() {
        assert_eq!(split("a A 1\nb TXT \"x\n").unwrap_err().line, 2);
        assert_eq!(split("a A 1\n\nb SOA ( 1 2\n").unwrap_err().line, 3);
        assert_eq!(split("a ) A\n").unwrap_err().line, 1);
    }
}
