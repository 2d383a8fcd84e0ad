//! Watch sets that can never work as intended, recognised up front:
//! a subPath mount (a single-file bind mount the kubelet never updates,
//! `shared/kubernetes.md` §3) and the projected service-account token
//! directory (it rotates by design, §10). Each yields a warning the probe
//! prints once per container instance and `status` keeps showing.

use std::fs;
use std::path::{Path, PathBuf};

/// Warnings for these watched roots, read from `mountinfo`
/// (normally `/proc/self/mountinfo`).
pub fn warnings(roots: &[PathBuf], mountinfo: &Path) -> Vec<String> {
    let mounts = fs::read_to_string(mountinfo).unwrap_or_default();
    let points: Vec<(String, String)> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let root = f.nth(3)?;
            let point = f.next()?;
            Some((unescape(root), unescape(point)))
        })
        .collect();
    let mut out = Vec::new();
    for r in roots {
        let shown = r.display().to_string();
        let is_file = fs::metadata(r).map(|m| m.is_file()).unwrap_or(false);
        if is_file && points.iter().any(|(_, p)| Path::new(p) == r) {
            out.push(format!(
                "{shown} is a subPath mount (a single file bind-mounted into the container): the kubelet never updates it, so \
                 this container will never see a change; mount the whole volume as a directory (without subPath) and point \
                 the app at the file inside it"
            ));
        }
        if is_service_account_dir(r) {
            out.push(format!(
                "{shown} looks like the service-account token volume: the kubelet rotates its token about every 48 minutes by \
                 design, which is not config drift; do not watch it (or --exclude token)"
            ));
        }
    }
    out
}

fn is_service_account_dir(p: &Path) -> bool {
    let s = p.to_string_lossy();
    if s.contains("secrets/kubernetes.io/serviceaccount") {
        return true;
    }
    ["token", "ca.crt", "namespace"]
        .iter()
        .all(|n| p.join(n).exists())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_file_mount_point_is_a_subpath_mount() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("app conf.yaml");
        fs::write(&file, "x").unwrap();
        let info = d.path().join("mountinfo");
        let escaped = file.display().to_string().replace(' ', "\\040");
        fs::write(
            &info,
            format!(
                "22 1 0:21 / /proc rw - proc proc rw\n\
                 900 880 8:1 /var/lib/kubelet/pods/x/volumes/cm/..2026_11_25_16_20_03.1/app.yaml {escaped} ro - ext4 /dev/sda1 rw\n"
            ),
        )
        .unwrap();
        let w = warnings(std::slice::from_ref(&file), &info);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("subPath"), "{w:?}");
        // The directory itself is not a subPath mount.
        assert!(warnings(&[d.path().to_path_buf()], &info).is_empty());
    }

    #[test]
    fn the_service_account_dir_is_recognised() {
        let d = tempfile::tempdir().unwrap();
        for n in ["token", "ca.crt", "namespace"] {
            fs::write(d.path().join(n), "x").unwrap();
        }
        let w = warnings(&[d.path().to_path_buf()], Path::new("/nonexistent"));
        assert!(w[0].contains("service-account"), "{w:?}");
        assert!(is_service_account_dir(Path::new(
            "/var/run/secrets/kubernetes.io/serviceaccount"
        )));
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
    }
}
