//! `digest`: the tree digest of PATHs, as the probes compute it, for CI to
//! put into a pod-template annotation; keyed (HMAC-SHA-256) with
//! `--key-file` for Secrets, and as a per-file manifest with `--json`.
//! Reads only: no state, no container.

use crate::cli::FilesArgs;
use crate::digest::{Entry, Skipped, Walker};
use crate::exit::Code;
use crate::key::Key;
use crate::state::json_pretty;
use crate::Report;
use serde::Serialize;

/// Printed (stderr) with an unkeyed `digest --json`.
pub const UNKEYED_WARNING: &str = "driftprobe: warning: unkeyed SHA-256 digests: for a Secret, anyone who sees them can \
     test guessed values offline (a short PIN or password falls in seconds); use --key-file (README, \"What a digest \
     reveals\")";

/// `digest PATH...`: prints the tree digest, or the manifest with `json`.
pub fn digest(files: &FilesArgs, json: bool, key_file: Option<&std::path::Path>) -> Report {
    let key = match key_file.map(Key::load).transpose() {
        Ok(k) => k,
        Err(e) => return Report::usage(e),
    };
    let (roots, excludes) = match files.resolve() {
        Ok(r) => r,
        Err(e) => return Report::usage(e),
    };
    let snap = match (Walker {
        roots: &roots,
        excludes: &excludes,
        cache: &[],
        full: true,
        budgets: files.budgets.resolve(),
    })
    .snapshot()
    {
        Ok(s) => s,
        Err(e) => return Report::new(Code::Unknown, format!("cannot determine: {e}")),
    };
    if let Some(m) = snap.missing.first() {
        return Report::new(
            Code::Unknown,
            format!("cannot determine: {m} does not exist"),
        );
    }
    let tree = match &key {
        Some(k) => k.tree(&snap.files),
        None => snap.digest.clone(),
    };
    if json {
        // Keyed: each file's keyed value, and no size (a size alone
        // narrows a guess: a 4-byte PIN).
        let files = match &key {
            Some(k) => Files::Keyed(
                snap.files
                    .iter()
                    .map(|e| Keyed {
                        path: &e.path,
                        hmac_sha256: k.file(e),
                    })
                    .collect(),
            ),
            None => Files::Plain(&snap.files),
        };
        let doc = DigestJson {
            digest: &tree,
            files,
            skipped: &snap.skipped,
        };
        let text = match json_pretty(&doc) {
            Ok(t) => t,
            Err(e) => return Report::new(Code::Unknown, format!("cannot determine: {e}")),
        };
        let r = Report::document(Code::Healthy, text);
        return match key {
            Some(_) => r,
            None => r.warn(UNKEYED_WARNING),
        };
    }
    let mut r = Report::new(Code::Healthy, tree);
    for k in &snap.skipped {
        r = r.warn(format!("driftprobe: skipped {} ({})", k.path, k.reason));
    }
    r
}

/// `digest --json`.
#[derive(Serialize)]
struct DigestJson<'a> {
    digest: &'a str,
    files: Files<'a>,
    skipped: &'a [Skipped],
}

/// Each file with its SHA-256 and size, or with its keyed digest alone.
#[derive(Serialize)]
#[serde(untagged)]
enum Files<'a> {
    Plain(&'a [Entry]),
    Keyed(Vec<Keyed<'a>>),
}

#[derive(Serialize)]
struct Keyed<'a> {
    path: &'a str,
    hmac_sha256: String,
}
