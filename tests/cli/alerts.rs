//! examples/alerts/driftprobe.loki-rules.yaml against lines the binary really
//! prints: each alert's patterns (`|~ "…"` line filters, `message=~"…"` label
//! matchers, which are anchored) must match the lines it is about and none
//! of the others. The mirrored log lines come from `--log-changes` into a
//! child's stdout; the Event messages are what the kubelet makes of a failed
//! probe's output: `Liveness probe failed: ` + the line, newline included.
//! YAML and regexes by python3 (PyYAML, as kubernetes-validate brings;
//! Python's `re` agrees with RE2 on these patterns).

use std::process::{Command, Stdio};

use crate::support::*;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/alerts/driftprobe.loki-rules.yaml"
);

/// Each alert of the rules file and the samples (by name) it matches.
const MATCHER: &str = r#"
import json, re, sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
samples = json.load(open(sys.argv[2]))
def go_unquote(s):
    return json.loads('"' + s + '"')
out = {}
for group in rules["groups"]:
    for rule in group["rules"]:
        expr = rule["expr"]
        filters = [re.compile(go_unquote(p)) for p in re.findall(r'\|~ "((?:[^"\\]|\\.)*)"', expr)]
        labels = [re.compile(go_unquote(p)) for p in re.findall(r'message=~"((?:[^"\\]|\\.)*)"', expr)]
        assert filters or labels, rule["alert"]
        hits = []
        for name, (kind, text) in samples.items():
            if filters and kind == "log" and all(f.search(text) for f in filters):
                hits.append(name)
            if labels and kind == "event" and all(l.fullmatch(text) for l in labels):
                hits.append(name)
        out[rule["alert"]] = sorted(hits)
print(json.dumps(out, sort_keys=True))
"#;

fn python_with_yaml() -> bool {
    Command::new("python3")
        .args(["-c", "import yaml"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn event(kind: &str, out: &Out) -> (String, String) {
    (
        "event".into(),
        format!("{kind} probe failed: {}\n", out.line()),
    )
}

#[test]
fn the_loki_alerts_match_the_lines_they_are_about() {
    if !python_with_yaml() {
        skip_e2e(
            "the_loki_alerts_match_the_lines_they_are_about",
            "python3 with PyYAML is not installed",
        );
        return;
    }
    let env = TestEnv::new();
    env.vol.write(&[("app.yaml", "port: 80\n")]);
    env.init();
    // The app whose stdout is the container's log.
    let log = env.path("app.log");
    let mut app = Command::new("sleep")
        .arg("60")
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = app.id().to_string();
    let mirrored = ["--log-changes", "--pid", &pid];
    let mut samples = serde_json::Map::new();
    let mut add = |name: &str, (kind, text): (String, String)| {
        samples.insert(name.into(), serde_json::json!([kind, text]));
    };

    // Misconfigured: a validator that cannot fit in the default 1s.
    env.on_vol(
        "liveness",
        &[
            &mirrored[..],
            &["--validate", "true", "--validate-timeout", "3s"],
        ]
        .concat(),
    )
    .ok();
    env.vol.write(&[("app.yaml", "port: 8080\n")]);
    let report = |grace: &str| {
        env.on_vol(
            "liveness",
            &[&mirrored[..], &["--on-drift", "report", "--grace", grace]].concat(),
        )
    };
    let inside = report("1h");
    inside.expect(0, "drift:").contains("left)");
    let past = report("0s");
    past.expect(0, "drift:").contains("(report only)");
    let _ = app.kill();
    let _ = app.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let find = |needle: &str| -> (String, String) {
        let l = lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no mirrored line with {needle:?}: {text}"));
        ("log".into(), l.to_string())
    };
    add("log misconfigured", find("misconfigured: "));
    add("log ok", find(": ok: "));
    add("log drift inside the window", find(" left) (report only)"));
    add("log drift past the window", find(", ended "));

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let liveness = env.on_vol("liveness", &["--grace", "0s"]);
    liveness.drift();
    add("event liveness drift", event("Liveness", &liveness));
    let app_and_drift = env.on_vol("liveness", &["--grace", "0s", "--tcp-socket", &closed]);
    app_and_drift.expect(1, "app: ").contains("; drift: ");
    add(
        "event liveness app and drift",
        event("Liveness", &app_and_drift),
    );
    let app_inside = env.on_vol("readiness", &["--grace", "1h", "--tcp-socket", &closed]);
    app_inside.expect(1, "app: ").contains(" left)");
    add(
        "event readiness app, drift inside the window",
        event("Readiness", &app_inside),
    );
    let readiness = env.on_vol("readiness", &["--grace", "0s"]);
    readiness.drift();
    add("event readiness drift", event("Readiness", &readiness));
    let invalid = env.on_vol(
        "readiness",
        &[
            "--grace",
            "1h",
            "--validate",
            "false",
            "--on-invalid",
            "fail",
        ],
    );
    invalid.expect(1, "invalid: ");
    add("event readiness invalid", event("Readiness", &invalid));

    let file = env.path("samples.json");
    std::fs::write(&file, serde_json::Value::Object(samples).to_string()).unwrap();
    let out = Command::new("python3")
        .args(["-c", MATCHER, RULES])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = serde_json::json!({
        "DriftprobeMisconfigured": ["log misconfigured"],
        "DriftprobeDriftWouldAct": ["log drift past the window"],
        "DriftprobeLivenessDrift": ["event liveness app and drift", "event liveness drift"],
        "DriftprobeReadinessDrift": ["event readiness drift", "event readiness invalid"],
    });
    assert_eq!(got, want, "alerts and the lines they match");
}
