//! Watch sets that can never work as intended, recognised from the mount
//! table up front: a subPath mount (a single-file bind mount the kubelet
//! never updates) and the projected service-account token directory (it
//! rotates by design). Each yields a warning the probe prints once per
//! container instance and `status` keeps showing.

use std::fs;
use std::path::{Path, PathBuf};

/// Warnings for these watched roots, read from `mountinfo`
/// (normally `/proc/self/mountinfo`).
pub fn warnings(roots: &[PathBuf], mountinfo: &Path) -> Vec<String> {
    let points = mounts(mountinfo);
    let mut out = Vec::new();
    for r in roots {
        let shown = r.display().to_string();
        for (root, point) in &points {
            let point = Path::new(point);
            // A single file mounted at the watched path itself, or a file
            // under a watched directory mounted from a kubelet payload
            // (`…/..2026_11_25_…/key`): a subPath mount. Other single-file
            // mounts under a directory (/etc/hosts, /etc/resolv.conf) are
            // the runtime's, and not config.
            let under = point != r && point.starts_with(r);
            if !(point == r || (under && is_kubelet_payload(root))) {
                continue;
            }
            if !fs::metadata(point).map(|m| m.is_file()).unwrap_or(false) {
                continue;
            }
            out.push(format!(
                "{} is a subPath mount (a single file bind-mounted into the container): the kubelet never updates it, so \
                 this container will never see a change there; mount the whole volume as a directory (without subPath) and \
                 point the app at the file inside it",
                point.display()
            ));
        }
        if is_service_account_dir(r) {
            out.push(format!(
                "{shown} looks like the service-account token volume: the kubelet rotates its token about every 48 minutes by \
                 design, which is not config drift; do not watch it (or --exclude token)"
            ));
        }
    }
    out.dedup();
    out
}

/// (mount root, mount point) of every mount in `mountinfo`; none when it
/// cannot be read.
fn mounts(mountinfo: &Path) -> Vec<(String, String)> {
    let text =
        crate::smallfile::read_to_string(mountinfo, crate::smallfile::LARGE).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let root = f.nth(3)?;
            let point = f.next()?;
            Some((unescape(root), unescape(point)))
        })
        .collect()
}

/// The watched roots that are kubelet subPath mounts: a single file
/// bind-mounted from a payload directory (`…/..<timestamp>/key`) at the
/// watched path itself. Whether the mount is read-only is left to the
/// caller.
pub fn subpath_mounts(roots: &[PathBuf], mountinfo: &Path) -> Vec<PathBuf> {
    let points = mounts(mountinfo);
    roots
        .iter()
        .filter(|r| {
            points
                .iter()
                .any(|(root, point)| Path::new(point) == r.as_path() && is_kubelet_payload(root))
                && fs::metadata(r).is_ok_and(|m| m.is_file())
        })
        .cloned()
        .collect()
}

/// Does a mount's source path run through a kubelet payload directory
/// (`..<timestamp>`, the dir `..data` points at)?
fn is_kubelet_payload(mount_root: &str) -> bool {
    mount_root.split('/').any(|c| {
        c.strip_prefix("..")
            .and_then(|rest| rest.bytes().next())
            .is_some_and(|b| b.is_ascii_digit())
    })
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
        // Watching the directory: the kubelet-payload file mount under it
        // is found too.
        let w = warnings(&[d.path().to_path_buf()], &info);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(&file.display().to_string()), "{w:?}");
    }

    #[test]
    fn subpath_mounts_are_found_by_mount_point_and_payload_root() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("app.yaml");
        let hosts = d.path().join("hosts");
        fs::write(&file, "x").unwrap();
        fs::write(&hosts, "x").unwrap();
        let info = d.path().join("mountinfo");
        fs::write(
            &info,
            format!(
                "900 880 8:1 /var/lib/kubelet/pods/x/volumes/cm/..2026_11_25_16_20_03.1/app.yaml {} ro - ext4 /dev/sda1 rw\n\
                 901 880 8:1 /var/lib/docker/containers/abc/hosts {} rw - ext4 /dev/sda1 rw\n",
                file.display(),
                hosts.display()
            ),
        )
        .unwrap();
        let roots = [file.clone(), hosts, d.path().to_path_buf()];
        assert_eq!(subpath_mounts(&roots, &info), [file]);
        assert!(subpath_mounts(&roots, Path::new("/nonexistent")).is_empty());
    }

    #[test]
    fn runtime_file_mounts_under_a_watched_dir_are_not_subpath() {
        let d = tempfile::tempdir().unwrap();
        let hosts = d.path().join("hosts");
        fs::write(&hosts, "127.0.0.1 localhost").unwrap();
        let info = d.path().join("mountinfo");
        fs::write(
            &info,
            format!(
                "901 880 8:1 /var/lib/docker/containers/abc/hosts {} rw - ext4 /dev/sda1 rw\n",
                hosts.display()
            ),
        )
        .unwrap();
        assert!(warnings(&[d.path().to_path_buf()], &info).is_empty());
        // Watched directly, it is frozen all the same: warn.
        assert_eq!(warnings(std::slice::from_ref(&hosts), &info).len(), 1);
        assert!(is_kubelet_payload("/..2026_11_25_16_20_03.12/app.yaml"));
        assert!(is_kubelet_payload(
            "/x/..2026_11_25_16_20_03.12/app.yaml//deleted"
        ));
        assert!(!is_kubelet_payload("/x/..data/app.yaml"));
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
