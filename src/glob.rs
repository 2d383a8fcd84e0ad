//! `--exclude` patterns: a small glob matcher, so the binary does not carry
//! a regex engine for a handful of `*.bak` patterns.
//!
//! Syntax: `*` matches within one path component, `**` across components,
//! `?` one character, `[abc]`, `[a-z]` and `[!a-z]` a character class.
//! A pattern without `/` is matched against the file or directory name at
//! any depth (`*.swp`); a pattern with `/` against the path relative to the
//! watched directory (`certs/*.pem`). An excluded directory is not walked.
//!
//! Why hand-written although globset exists: globset compiles every
//! pattern into a regex (regex-automata, aho-corasick, bstr), a whole
//! regex engine in a probe binary held under 2 MiB, for a handful of
//! `*.bak` patterns matched against short names. This matcher is one
//! dynamic-programming pass, O(pattern × name) with no backtracking, so a
//! hostile file name cannot make a probe slow (the regex crate gives the
//! same guarantee; its size is the cost). Its dialect is small and pinned
//! by the tests below (`*` never crosses `/`, a pattern without `/` matches
//! the name at any depth), where globset's defaults differ (`*` crosses
//! `/` unless `literal_separator` is set).

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

/// One pattern element. Classes keep their `[`..`]` span in the pattern.
#[derive(Clone, Copy)]
enum Tok {
    Lit(char),
    Any,
    Class(usize, usize),
    /// `*`: any run of characters except `/`.
    Star,
    /// `**` not followed by `/`: any run of characters, `/` included.
    AnyPath,
    /// `**/`: zero or more whole directories, i.e. empty or any run ending in `/`.
    Dirs,
}

fn tokens(p: &[char]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let tok = match p[i] {
            '*' if p.get(i + 1) == Some(&'*') => {
                i += 1;
                if p.get(i + 1) == Some(&'/') {
                    i += 1;
                    Tok::Dirs
                } else {
                    Tok::AnyPath
                }
            }
            '*' => Tok::Star,
            '?' => Tok::Any,
            '[' => match class_end(p, i) {
                Some(end) => {
                    let start = i;
                    i = end;
                    Tok::Class(start, end)
                }
                None => Tok::Lit('['),
            },
            c => Tok::Lit(c),
        };
        out.push(tok);
        i += 1;
    }
    out
}

/// Dynamic programming over (token, subject position), O(pattern × subject):
/// `next[j]` says whether the tokens after the current one match `s[j..]`,
/// and `row[j]` the same from the current token on. Rows are built from the
/// last token backwards, each from the subject's end backwards.
fn matches(p: &[char], s: &[char]) -> bool {
    let n = s.len();
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    for tok in tokens(p).into_iter().rev() {
        let mut row = vec![false; n + 1];
        // For `**/`: some `/` at or after j is followed by a match of `next`.
        let mut slash_then_rest = false;
        for j in (0..=n).rev() {
            let c = s.get(j).copied();
            row[j] = match tok {
                Tok::Star => next[j] || (c.is_some_and(|c| c != '/') && row[j + 1]),
                Tok::AnyPath => next[j] || (c.is_some() && row[j + 1]),
                Tok::Dirs => {
                    slash_then_rest =
                        c.is_some() && (slash_then_rest || (c == Some('/') && next[j + 1]));
                    next[j] || slash_then_rest
                }
                Tok::Any => c.is_some_and(|c| c != '/') && next[j + 1],
                Tok::Class(start, end) => {
                    c.is_some_and(|c| class_matches(p, start, end, c)) && next[j + 1]
                }
                Tok::Lit(l) => c == Some(l) && next[j + 1],
            };
        }
        next = row;
    }
    next[0]
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
        assert!(Glob::new("a/[!b").is_err());
    }

    #[test]
    fn single_component_wildcards_stop_at_slash() {
        assert!(!m("a/*", "a/b/c"));
        assert!(!m("a?b", "a/b"));
        assert!(!m("a[!x]b", "a/b"));
        assert!(m("*", "anything"));
        assert!(m("a*", "a"));
    }

    #[test]
    fn double_star_crosses_components() {
        assert!(m("x/a**b", "x/a/y/z/b"));
        assert!(m("logs/**", "logs/a/b.txt"));
        assert!(!m("logs/**", "logs"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(m("**/**/x", "x"));
        // `**/` matches whole directories only, not part of a name.
        assert!(!m("a/**/b", "a/xb"));
        assert!(!m("**/tmp", "xtmp"));
    }

    #[test]
    fn class_forms() {
        assert!(m("[]x]", "]"));
        assert!(m("[]x]", "x"));
        assert!(!m("[!]x]", "]"));
        assert!(m("[^a-z]", "A"));
        assert!(!m("[^a-z]", "q"));
        assert!(m("[a-]", "-"));
    }

    #[test]
    fn pathological_patterns_stay_polynomial() {
        let a60 = "a".repeat(60);
        assert!(!m("*a*a*a*a*a*a*a*b", &a60));
        assert!(m("*a*a*a*a*a*a*a*a", &a60));
        let deep = "d/".repeat(60);
        assert!(!m("**/**/**/**/**/**/x", &format!("{deep}y")));
        assert!(m("**/**/**/**/**/**/x", &format!("{deep}x")));
        assert!(!m("**a**a**a**a**a**a**b", &"a/".repeat(60)));
    }
}
