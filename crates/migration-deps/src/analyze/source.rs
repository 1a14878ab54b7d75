//! Positions: from byte offsets in a piece of SQL to lines of the migration file.

/// The byte offset where each line of a file starts, for lines in O(log n).
#[derive(Debug)]
pub(crate) struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(file: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr_newlines(file.as_bytes()).map(|i| i + 1));
        Lines { starts }
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: usize) -> u32 {
        match self.starts.binary_search(&offset) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }
}

fn memchr_newlines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

/// A piece of SQL text (a whole file, a function body, a statement inside PL/pgSQL) and where
/// it sits in the migration file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) text: &'a str,
    /// Byte offset of `text` in the file, when it appears there verbatim.
    pub(crate) base: Option<usize>,
    /// The line to report when a position is unknown.
    pub(crate) fallback_line: u32,
    pub(crate) lines: &'a Lines,
}

impl<'a> Source<'a> {
    /// The line of a parse-tree location (a byte offset in `text`; negative: unknown).
    pub(crate) fn line(&self, loc: i32) -> u32 {
        match (self.base, usize::try_from(loc)) {
            (Some(base), Ok(loc)) => self.lines.line(base + loc),
            _ => self.fallback_line,
        }
    }

    /// The line of the first token at or after `from` (skipping blanks and comments).
    pub(crate) fn stmt_line(&self, from: usize) -> u32 {
        let start = skip_blank(self.text, from);
        self.line(start as i32)
    }

    /// The line where identifier `name` first appears in `[from, to)`, else the statement's.
    pub(crate) fn ident_line(&self, from: usize, to: usize, name: &str) -> u32 {
        match find_ident(self.text, from, to.min(self.text.len()), name) {
            Some(at) => self.line(at as i32),
            None => self.stmt_line(from),
        }
    }
}

/// The first offset at or after `from` that is not blank space or a comment.
pub(crate) fn skip_blank(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            _ => break,
        }
    }
    i.min(b.len())
}

/// Where identifier `name` is written in `text[from..to]`: unquoted (case-insensitively) or
/// quoted, as a whole word, outside comments and string literals.
fn find_ident(text: &str, from: usize, to: usize, name: &str) -> Option<usize> {
    if name.is_empty() || from >= to {
        return None;
    }
    let b = text.as_bytes();
    let mut i = from;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < to {
        let c = b[i];
        if (c == b'-' && b.get(i + 1) == Some(&b'-')) || (c == b'/' && b.get(i + 1) == Some(&b'*'))
        {
            i = skip_blank(text, i);
            continue;
        }
        if c == b'\'' {
            i += 1;
            while i < to && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            let start = i;
            let mut j = i + 1;
            let mut ident = String::new();
            while j < to {
                if b[j] == b'"' {
                    if b.get(j + 1) == Some(&b'"') {
                        ident.push('"');
                        j += 2;
                        continue;
                    }
                    break;
                }
                let ch = text[j..].chars().next().unwrap_or(' ');
                ident.push(ch);
                j += ch.len_utf8();
            }
            if ident == name {
                return Some(start);
            }
            i = j + 1;
            continue;
        }
        if word(c) && (i == 0 || !word(b[i - 1])) {
            let start = i;
            while i < to && word(b[i]) {
                i += 1;
            }
            if text[start..i].eq_ignore_ascii_case(name) {
                return Some(start);
            }
            continue;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_identifiers() {
        let text = "-- c\nCREATE TABLE t (\n  \"Id\" int, -- id here\n  id int\n);";
        let lines = Lines::new(text);
        let src = Source {
            text,
            base: Some(0),
            fallback_line: 1,
            lines: &lines,
        };
        assert_eq!(src.stmt_line(0), 2);
        assert_eq!(src.ident_line(0, text.len(), "Id"), 3);
        assert_eq!(
            src.ident_line(0, text.len(), "id"),
            4,
            "not the quoted one, not the comment"
        );
        assert_eq!(src.ident_line(0, text.len(), "nope"), 2);
        assert_eq!(lines.line(0), 1);
        assert_eq!(lines.line(4), 1);
        assert_eq!(lines.line(5), 2);
    }
}
