//! The Helm library chart (deploy/helm/driftprobe) rendered by the real helm,
//! shared by tests/helm.rs (asserts on the rendered pod spec) and
//! tests/realnode.rs (runs it on a real kubelet). Std, serde_json and
//! tempfile only; included with `#[path = "support/chart.rs"] mod chart;`.
//!
//! helm is `DRIFTPROBE_HELM`, else what `e2e/tools/build.sh` prints (it builds
//! helm v4 from the Go module proxy the first time, into
//! /var/cache/driftprobe-tools; .ci/run builds it before the tests).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The helm binary (built on first use by e2e/tools/build.sh).
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(h) = std::env::var_os("DRIFTPROBE_HELM") {
            return PathBuf::from(h);
        }
        let out = Command::new(root().join("e2e/tools/build.sh"))
            .output()
            .expect("run e2e/tools/build.sh");
        assert!(
            out.status.success(),
            "e2e/tools/build.sh (builds helm) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// Renders `driftprobe.podSpec` for `pod` with the settings `values`:
/// Ok(the pod spec) or Err(helm's stderr).
///
/// Writes a one-template workload chart into a temp dir (its
/// charts/driftprobe a link to the library chart), passes the pod spec and
/// the `driftprobe:` block as values and runs `helm template`.
pub fn render(pod: Value, values: Value) -> Result<Value, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = dir.path().join("t");
    fs::create_dir_all(chart.join("templates")).unwrap();
    fs::create_dir_all(chart.join("charts")).unwrap();
    std::os::unix::fs::symlink(
        root().join("deploy/helm/driftprobe"),
        chart.join("charts/driftprobe"),
    )
    .unwrap();
    fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: t\nversion: 0.1.0\ndependencies:\n  - name: driftprobe\n    version: 0.1.0\n    repository: file://../driftprobe\n",
    )
    .unwrap();
    // JSON out, so the test needs no YAML parser.
    fs::write(
        chart.join("templates/pod.yaml"),
        "{{ dict \"apiVersion\" \"v1\" \"kind\" \"Pod\" \"metadata\" (dict \"name\" \"t\") \"spec\" (include \"driftprobe.podSpec\" (dict \"pod\" .Values.pod \"values\" .Values.driftprobe) | fromYaml) | toJson }}\n",
    )
    .unwrap();
    let values_file = dir.path().join("values.json");
    fs::write(
        &values_file,
        json!({ "pod": pod, "driftprobe": values }).to_string(),
    )
    .unwrap();
    let out = Command::new(helm())
        .args(["template", "t"])
        .arg(&chart)
        .arg("-f")
        .arg(&values_file)
        .output()
        .expect("run helm");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let json_line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in helm's output:\n{text}"));
    let doc: Value = serde_json::from_str(json_line).expect("helm's output is JSON");
    Ok(doc["spec"].clone())
}
