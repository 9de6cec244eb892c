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
    let mut entries = Vec::new();
    let mut current = String::new();
    let mut start_line = 1;
    let mut line = 1;
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut at_line_start = true;
    let mut blank_owner = false;
    while let Some(c) = chars.next() {
        if current.is_empty() && at_line_start {
            start_line = line;
            blank_owner = c == ' ' || c == '\t';
        }
        at_line_start = false;
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    if next == '\n' {
                        line += 1;
                    }
                    current.push(next);
                }
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '(' if !quoted => {
                depth += 1;
                current.push(' ');
            }
            ')' if !quoted => {
                depth = depth.checked_sub(1).ok_or(SplitError {
                    line,
                    message: "')' without '('",
                })?;
                current.push(' ');
            }
            '\n' => {
                line += 1;
                if quoted || depth > 0 {
                    current.push(if quoted { '\n' } else { ' ' });
                    continue;
                }
                at_line_start = true;
                push_entry(&mut entries, &mut current, start_line, blank_owner);
            }
            '\r' if !quoted => {}
            c => current.push(c),
        }
    }
    if quoted {
        return Err(SplitError {
            line: start_line,
            message: "unterminated quoted string",
        });
    }
    if depth > 0 {
        return Err(SplitError {
            line: start_line,
            message: "'(' without ')'",
        });
    }
    push_entry(&mut entries, &mut current, start_line, blank_owner);
    Ok(entries)
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
