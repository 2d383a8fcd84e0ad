// The commit `driftprobe --version` names, resolved by build.rs (which
// `include!`s this file; tests/cli/version.rs tests it through `#[path]`).
// Kept free of I/O so each source can be tested alone.

/// The first source that knows, in this order: DRIFTPROBE_COMMIT (CI, the
/// Dockerfile's build argument: a build without `.git`), the `sha1` of
/// `.cargo_vcs_info.json` (a crate built from `cargo package` or a registry),
/// `git rev-parse` of the checkout being built, else `unknown`.
pub fn pick_commit(
    env: Option<&str>,
    vcs_info: Option<&str>,
    git: impl FnOnce() -> Option<String>,
) -> String {
    if let Some(c) = env.and_then(clean_commit) {
        return c;
    }
    if let Some(c) = vcs_info
        .and_then(vcs_info_sha1)
        .and_then(|s| clean_commit(&s))
    {
        return c;
    }
    git()
        .and_then(|s| clean_commit(&s))
        .unwrap_or_else(|| "unknown".to_string())
}

/// A commit id as printed: its first 12 hex digits, lowercase (of 7 to 64
/// given); anything else is not a commit.
pub fn clean_commit(s: &str) -> Option<String> {
    let hex = s.trim();
    if !(7..=64).contains(&hex.len()) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(hex[..hex.len().min(12)].to_ascii_lowercase())
}

/// The `"sha1": "…"` value of cargo's `.cargo_vcs_info.json`.
pub fn vcs_info_sha1(json: &str) -> Option<String> {
    let rest = &json[json.find("\"sha1\"")? + "\"sha1\"".len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// The text after `driftprobe ` in `driftprobe --version`.
pub fn version_line(version: &str, commit: &str, target: &str) -> String {
    format!("{version} (commit {commit}, target {target})")
}
