//! `--exclude` patterns: a small glob matcher, so the binary does not carry
//! a regex engine for a handful of `*.bak` patterns.
//!
//! Syntax: `*` matches within one path component, `**` across components,
//! `?` one character, `[abc]`, `[a-z]` and `[!a-z]` a character class.
//! A pattern without `/` is matched against the file or directory name at
//! any depth (`*.swp`); a pattern with `/` against the path relative to the
//! watched directory (`certs/*.pem`). An excluded directory is not walked.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
    anchored: bool,
    text: String,
}

impl Glob {
    pub fn new(text: &str) -> Result<Glob, String> {
        let trimmed = text.trim_start_matches("./").trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(format!("--exclude {text:?}: empty pattern"));
        }
        let pattern: Vec<char> = trimmed.chars().collect();
        // Reject unterminated classes now rather than matching oddly later.
        let mut i = 0;
        while i < pattern.len() {
            if pattern[i] == '[' {
                match class_end(&pattern, i) {
                    Some(end) => i = end,
                    None => return Err(format!("--exclude {text:?}: unclosed '['")),
                }
            }
            i += 1;
        }
        Ok(Glob {
            anchored: trimmed.contains('/'),
            pattern,
            text: text.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does this pattern exclude `rel`, a `/`-separated path relative to the
    /// watched directory?
    pub fn is_match(&self, rel: &str) -> bool {
        let subject = if self.anchored {
            rel
        } else {
            rel.rsplit('/').next().unwrap_or(rel)
        };
        let subject: Vec<char> = subject.chars().collect();
        matches(&self.pattern, &subject)
    }
}

/// Index of the `]` closing the class opened at `start`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && (p[i] == '!' || p[i] == '^') {
        i += 1;
    }
    if i < p.len() && p[i] == ']' {
        i += 1; // a leading ']' is literal
    }
    while i < p.len() {
        if p[i] == ']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn class_matches(p: &[char], start: usize, end: usize, c: char) -> bool {
    let mut i = start + 1;
    let negated = i < end && (p[i] == '!' || p[i] == '^');
    if negated {
        i += 1;
    }
    let mut found = false;
    while i < end {
        if i + 2 < end && p[i + 1] == '-' {
            if p[i] <= c && c <= p[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    found != negated && c != '/'
}

/// Backtracking matcher; patterns are short, so this stays cheap.
fn matches(p: &[char], s: &[char]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        '*' if p.len() > 1 && p[1] == '*' => {
            // `**/` also matches zero directories.
            let rest = &p[2..];
            let rest_no_slash = rest.strip_prefix(&['/']).unwrap_or(rest);
            if matches(rest_no_slash, s) {
                return true;
            }
            (0..s.len()).any(|i| matches(rest, &s[i + 1..]) || matches(rest_no_slash, &s[i + 1..]))
        }
        '*' => {
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if matches(rest, &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        '?' => !s.is_empty() && s[0] != '/' && matches(&p[1..], &s[1..]),
        '[' => match class_end(p, 0) {
            Some(end) => {
                !s.is_empty() && class_matches(p, 0, end, s[0]) && matches(&p[end + 1..], &s[1..])
            }
            None => !s.is_empty() && s[0] == '[' && matches(&p[1..], &s[1..]),
        },
        c => !s.is_empty() && s[0] == c && matches(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, rel: &str) -> bool {
        Glob::new(pattern).unwrap().is_match(rel)
    }

    #[test]
    fn unanchored_patterns_match_names_at_any_depth() {
        assert!(m("*.bak", "a.bak"));
        assert!(m("*.bak", "deep/dir/a.bak"));
        assert!(!m("*.bak", "a.bak.txt"));
        assert!(m("README", "docs/README"));
        assert!(m("file?.txt", "sub/file1.txt"));
    }

    #[test]
    fn anchored_patterns_match_relative_paths() {
        assert!(m("certs/*.pem", "certs/a.pem"));
        assert!(!m("certs/*.pem", "other/certs/a.pem"));
        assert!(!m("certs/*.pem", "certs/sub/a.pem"));
        assert!(m("certs/**/*.pem", "certs/sub/deeper/a.pem"));
        assert!(m("certs/**/*.pem", "certs/a.pem"));
        assert!(m("**/tmp", "a/b/tmp"));
        assert!(m("./logs/", "logs"));
    }

    #[test]
    fn classes() {
        assert!(m("[ab].yaml", "a.yaml"));
        assert!(!m("[ab].yaml", "c.yaml"));
        assert!(m("[!ab].yaml", "c.yaml"));
        assert!(m("v[0-9]", "v7"));
        assert!(!m("v[0-9]", "vx"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Glob::new("").is_err());
        assert!(Glob::new("[abc").is_err());
    }
}
