//! The real-node suite: driftprobe on a real kubelet.
//!
//! Every other test plays the kubelet's part itself (an emulated volume writer,
//! `docker exec` for probes). Here a real kube-apiserver, kubelet, containerd
//! and runc do, brought up by `e2e/node/up.sh DIR`: this binary creates real
//! ConfigMaps, Secrets and Pods through the API server and asserts on what the
//! kubelet does with driftprobe as their exec probe, reading pod status,
//! events, `kubectl exec … driftprobe status`, and (as root on the same
//! machine) the kubelet's volume dirs and the containers' /proc entries.
//!
//! - `DRIFTPROBE_REALNODE=DIR` names the node (DIR/node.env, written by up.sh).
//!   Unset, `0`, or a DIR with no node: every scenario is skipped, loudly; with
//!   `DRIFTPROBE_REQUIRE_REALNODE=1` (set by .ci/run) that is a failure.
//! - Scenarios run in parallel, each in its own namespace (deleted afterwards
//!   unless `DRIFTPROBE_REALNODE_KEEP=1`); the one that restarts the kubelet
//!   runs alone, last. Arguments select scenarios by substring, like libtest
//!   filters (`cargo test --test realnode reload`); libtest's flags are ignored.
//! - Timing bounds come from the kubelet's settings (sync period from
//!   node.env; the probes' period, failureThreshold and the pod's termination
//!   grace below) plus one fixed `SLACK` for API and exec latency on a busy
//!   machine, never from sleeps tuned to one machine.
//! - A failed scenario prints its timeline (what the test did and saw, with
//!   times), the pod's status and the namespace's events.
//! - `--table` prints the scenario table (markdown) for scripts/realnode.sh.
//!
//! Only stable fragments of driftprobe's output are asserted: the line
//! prefixes (`ok:`, `drift:`, `invalid:`), the changed file's name, the
//! overdue window's `, ended `,
//! and `status` starting with `watching:`.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

#[path = "support/chart.rs"]
mod chart;

/// `periodSeconds` of every probe.
const PERIOD: Duration = Duration::from_secs(2);
/// `failureThreshold` of the liveness probes.
const FAILURE_THRESHOLD: u32 = 2;
/// `timeoutSeconds` (generous: the machine may be busy compiling).
const TIMEOUT_SECONDS: u32 = 5;
/// `--grace` of most liveness probes.
const GRACE: Duration = Duration::from_secs(10);
/// `terminationGracePeriodSeconds`: the demo server has no SIGTERM handler, so
/// as PID 1 it ignores SIGTERM and is killed after this.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// Fixed allowance for API, exec and polling latency on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(15);
/// The app's port (on the pod's loopback).
const PORT: &str = "8080";

/// The scenarios, in the order of the README table.
type Entry = (&'static str, &'static str, fn(&Scenario));
const SCENARIOS: &[Entry] = &[
    (
        "restart_after_grace",
        "ConfigMap edit, the README's readiness and liveness pair: `drift:` events with the reason, exactly one restart after the grace window, readiness failing only as the restart approaches (measured from the events), new config served, no further restart",
        restart_after_grace,
    ),
    (
        "reload_in_place",
        "`--on-drift reload`: the app's SIGHUP handler reloads, restartCount stays 0, new config served",
        reload_in_place,
    ),
    (
        "go_app_reload",
        "`--on-drift reload` on a Go entrypoint: without `signal.Notify` it is never signalled (`status` warns from the first probe; `not reloaded: … is a Go program` events) and liveness restarts it onto the new config; with `signal.Notify` and `--signal-handled` it reloads in place, restartCount 0",
        go_app_reload,
    ),
    (
        "validation_gate",
        "`--validate`: a broken edit gives `Readiness probe failed: invalid:` events without config text, no restart, no reload; the fix then restarts once",
        validation_gate,
    ),
    (
        "secret_fsgroup_nonroot",
        "Secret `defaultMode: 0400`, uid 65532, `fsGroup`, `readOnlyRootFilesystem`, `--state-dir` on an emptyDir: baseline before any change, no restart while nothing changes, one restart after a real change",
        secret_fsgroup_nonroot,
    ),
    (
        "projected_nested",
        "projected volume (ConfigMap + Secret + downwardAPI labels) with nested paths, a nested dir watched: a label change swaps the payload without drift; a ConfigMap edit restarts once",
        projected_nested,
    ),
    (
        "env_and_subpath",
        "env from `configMapKeyRef` with `--env`: the kubelet never updates the running container's variable, the probe sees the mismatch, the restart fixes it; a `subPath` mount is warned about in `status`",
        env_and_subpath,
    ),
    (
        "stagger_spreads_restarts",
        "three replicas with `--stagger`: each restarts at the grace window plus the offset its `status` reports, not all at once",
        stagger_spreads_restarts,
    ),
    (
        "composed_app_check",
        "the app's own checks composed in (`readiness --http-get`, `liveness --tcp-socket`): `Readiness probe failed: app: HTTP 503 from /healthz` events while the app warms up, without its error page; Ready after, no restart",
        composed_app_check,
    ),
    (
        "probe_binary_missing",
        "trap: the probe binary is missing (no init container): `probe errored`, never a restart",
        probe_binary_missing,
    ),
    (
        "slow_validator",
        "trap: `--validate` slower than `timeoutSeconds`: the kubelet counts timeouts and restarts once onto the new config; leftover validators do not pile up",
        slow_validator,
    ),
    (
        "log_changes_observe_only",
        "`--on-drift report --log-changes`: each verdict change is one line in `kubectl logs` (written to the entrypoint's stdout through the runtime's pipe), the drift passes with `(report only)`, no restart, no failed probe",
        log_changes_observe_only,
    ),
    (
        "pod_security_restricted",
        "the Helm chart's and the kustomize component's rendered manifests (`examples/*/rendered.yaml`) are accepted by the API server (`--dry-run=server`) in a namespace enforcing Pod Security `restricted`, as Deployments and as their pods; the same pod with `allowPrivilegeEscalation: true` is rejected (v1.25+; older API servers have no PodSecurity admission)",
        pod_security_restricted,
    ),
    (
        "helm_chart_pod_runs",
        "a pod rendered by the Helm library chart (`driftprobe.podSpec`, the real helm) runs on the kubelet as uid 65532 with `readOnlyRootFilesystem`, the chart's `Memory` state emptyDir (tmpfs) and its derived `timeoutSeconds`, under Pod Security `restricted`: the app's own `httpGet` (readiness, named port) and `tcpSocket` (liveness) probes moved into driftprobe's (`Readiness probe failed: app: HTTP 503 from /healthz` while it warms up, then Ready); a ConfigMap edit restarts it once after the grace window, `drift:` events without config text, Ready again, no further restart",
        helm_chart_pod_runs,
    ),
    (
        "kubelet_restart_mid_grace",
        "the kubelet restarted in the middle of a grace window: the window continues from the first drift, one restart, nothing lost",
        kubelet_restart_mid_grace,
    ),
];

/// Scenarios that must run alone (they restart the kubelet).
const EXCLUSIVE: &[&str] = &["kubelet_restart_mid_grace"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.iter().any(|a| a == "--table") {
        print_table();
        return ExitCode::SUCCESS;
    }
    // libtest flags cargo may pass (--nocapture, --test-threads N, -q, …) are ignored.
    let mut filters = Vec::new();
    let mut skip_next = false;
    for a in &args {
        if skip_next {
            skip_next = false;
        } else if a == "--test-threads" || a == "--skip" || a == "--color" || a == "--format" {
            skip_next = true;
        } else if !a.starts_with('-') {
            filters.push(a.clone());
        }
    }
    let list_only = args.iter().any(|a| a == "--list");
    let selected: Vec<&Entry> = SCENARIOS
        .iter()
        .filter(|(name, _, _)| {
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    if list_only {
        for (name, _, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if selected.is_empty() {
        println!("\nrunning 0 tests (no real-node scenario matches the filter)\n");
        return ExitCode::SUCCESS;
    }
    let node = match Node::from_env() {
        Ok(node) => node,
        Err(reason) => return skip(&reason),
    };
    println!(
        "\nrunning {} real-node scenarios on Kubernetes {} (node {}, {})",
        selected.len(),
        node.version,
        node.name,
        node.dir.display()
    );

    let started = Instant::now();
    let (parallel, alone): (Vec<&Entry>, Vec<&Entry>) = selected
        .into_iter()
        .partition(|(name, _, _)| !EXCLUSIVE.contains(name));
    let mut results: BTreeMap<&str, (bool, Duration)> = BTreeMap::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = parallel
            .iter()
            .map(|&&(name, _, f)| {
                let node = &node;
                (name, s.spawn(move || run_scenario(node, name, f)))
            })
            .collect();
        for (name, h) in handles {
            let r = h.join().unwrap_or((false, Duration::ZERO));
            results.insert(name, r);
        }
    });
    for &(name, _, f) in alone {
        results.insert(name, run_scenario(&node, name, f));
    }

    let failed: Vec<_> = results
        .iter()
        .filter(|(_, (ok, _))| !ok)
        .map(|(n, _)| *n)
        .collect();
    println!("\nreal-node scenarios on Kubernetes {}:", node.version);
    for (name, _, _) in SCENARIOS {
        if let Some((ok, took)) = results.get(name) {
            println!(
                "  {:<28} {} ({}s)",
                name,
                if *ok { "passed" } else { "FAILED" },
                took.as_secs()
            );
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.0}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        results.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_table() {
    println!("| scenario | what the real kubelet and driftprobe do |");
    println!("| --- | --- |");
    for (name, what, _) in SCENARIOS {
        println!("| `{name}` | {what} |");
    }
}

fn skip(reason: &str) -> ExitCode {
    if env::var("DRIFTPROBE_REQUIRE_REALNODE").is_ok_and(|v| v == "1") {
        eprintln!("realnode: FAILED: the real-node suite is required (DRIFTPROBE_REQUIRE_REALNODE=1) but {reason}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "\nSKIPPED the real-node suite (tests/realnode.rs): {reason}\n  \
         bring a node up with `e2e/node/up.sh DIR` and set DRIFTPROBE_REALNODE=DIR \
         (scripts/test.sh does this as root); DRIFTPROBE_REQUIRE_REALNODE=1 makes this a failure\n"
    );
    ExitCode::SUCCESS
}

fn run_scenario(node: &Node, name: &'static str, f: fn(&Scenario)) -> (bool, Duration) {
    let started = Instant::now();
    println!("scenario {name} ... started");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sc = Scenario::new(node, name);
        f(&sc);
        sc.note("passed");
        if env::var("DRIFTPROBE_REALNODE_TIMELINE").is_ok_and(|v| v == "1") {
            sc.print_timeline();
        }
    }));
    let ok = result.is_ok();
    println!(
        "scenario {name} ... {} ({}s)",
        if ok { "ok" } else { "FAILED" },
        started.elapsed().as_secs()
    );
    (ok, started.elapsed())
}

// ---------------------------------------------------------------------------
// The node and one scenario's namespace.
// ---------------------------------------------------------------------------

struct Node {
    dir: PathBuf,
    version: String,
    name: String,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    containerd_sock: PathBuf,
    probe_image: String,
    app_image: String,
    /// The kubelet's `syncFrequency`.
    sync: Duration,
}

impl Node {
    fn from_env() -> Result<Node, String> {
        let dir = match env::var("DRIFTPROBE_REALNODE") {
            Ok(d) if !d.is_empty() && d != "0" => PathBuf::from(d),
            Ok(_) => return Err("DRIFTPROBE_REALNODE=0".into()),
            Err(_) => return Err("DRIFTPROBE_REALNODE is not set".into()),
        };
        let env_file = dir.join("node.env");
        let text = fs::read_to_string(&env_file)
            .map_err(|e| format!("cannot read {} ({e}): is the node up?", env_file.display()))?;
        let vars: BTreeMap<String, String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| format!("{} has no {k}", env_file.display()))
        };
        let sync = get("SYNC_FREQUENCY")?;
        let sync = sync
            .strip_suffix('s')
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs)
            .ok_or_else(|| format!("SYNC_FREQUENCY={sync} in node.env is not N s"))?;
        let node = Node {
            version: get("K8S_VERSION")?,
            name: get("NODE_NAME")?,
            kubectl: get("KUBECTL")?.into(),
            kubeconfig: get("KUBECONFIG")?.into(),
            containerd_sock: get("CONTAINERD_SOCK")?.into(),
            probe_image: get("PROBE_IMAGE")?,
            app_image: get("APP_IMAGE")?,
            sync,
            dir,
        };
        let out = node
            .kubectl_cmd(None)
            .args(["get", "node", &node.name, "-o", "json"])
            .output();
        let ready = match out {
            Ok(o) if o.status.success() => serde_json::from_slice::<Value>(&o.stdout)
                .ok()
                .and_then(|v| {
                    v["status"]["conditions"]
                        .as_array()?
                        .iter()
                        .find(|c| c["type"] == "Ready")
                        .map(|c| c["status"] == "True")
                })
                .unwrap_or(false),
            Ok(o) => {
                return Err(format!(
                    "kubectl get node failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => return Err(format!("cannot run {}: {e}", node.kubectl.display())),
        };
        if !ready {
            return Err(format!("node {} is not Ready", node.name));
        }
        Ok(node)
    }

    fn kubectl_cmd(&self, ns: Option<&str>) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=30s");
        if let Some(ns) = ns {
            c.args(["-n", ns]);
        }
        c.stdin(Stdio::null());
        c
    }

    /// The bound for "the kubelet has rewritten the volume after an edit":
    /// the next pod sync (syncFrequency, jittered up to 1.5x) twice over, plus SLACK.
    fn update_within(&self) -> Duration {
        self.sync * 3 + SLACK
    }

    /// The bound for a restart after drift outlasted `grace`: failureThreshold
    /// more probe periods, the kill, plus SLACK.
    fn restart_within(&self, grace: Duration, threshold: u32) -> Duration {
        self.update_within() + grace + PERIOD * (threshold + 1) + TERM_GRACE + SLACK
    }

    /// How long "nothing happens" must hold to mean it: a whole grace window,
    /// failureThreshold + 2 periods and two pod syncs.
    fn quiet_window(&self, grace: Duration) -> Duration {
        grace + PERIOD * (FAILURE_THRESHOLD + 2) + self.sync * 2
    }
}

/// Output of a command run in a container.
struct ExecOut {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Scenario<'a> {
    node: &'a Node,
    name: &'static str,
    ns: String,
    start: Instant,
    timeline: Mutex<Vec<String>>,
}

impl<'a> Scenario<'a> {
    fn new(node: &'a Node, name: &'static str) -> Scenario<'a> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let ns = format!(
            "dp-{}-{:04x}",
            name.replace('_', "-"),
            (nanos ^ std::process::id()) & 0xffff
        );
        let ns: String = ns.chars().take(63).collect();
        let sc = Scenario {
            node,
            name,
            ns,
            start: Instant::now(),
            timeline: Mutex::new(Vec::new()),
        };
        sc.apply(&json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": sc.ns, "labels": { "driftprobe-realnode": "1" } }
        }));
        sc.note(&format!(
            "namespace {} on Kubernetes {}",
            sc.ns, node.version
        ));
        sc
    }

    fn note(&self, msg: &str) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let line = format!(
            "[{:>6.1}s {:02}:{:02}:{:02}Z] {msg}",
            self.start.elapsed().as_secs_f64(),
            wall / 3600 % 24,
            wall / 60 % 60,
            wall % 60
        );
        if let Ok(mut t) = self.timeline.lock() {
            t.push(line);
        }
    }

    fn print_timeline(&self) {
        let t = self
            .timeline
            .lock()
            .map(|t| t.join("\n"))
            .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "\n===== timeline of scenario {} (namespace {}):\n{t}",
            self.name, self.ns
        );
    }

    /// Fails the scenario: prints the timeline, the pods and the events.
    fn fail(&self, msg: &str) -> ! {
        self.note(&format!("FAILED: {msg}"));
        self.print_timeline();
        let pods = self.kubectl(&["get", "pods", "-o", "wide"]);
        let events = self.kubectl(&[
            "get",
            "events",
            "--sort-by=.lastTimestamp",
            "-o",
            "custom-columns=LAST:.lastTimestamp,OBJECT:.involvedObject.name,REASON:.reason,COUNT:.count,MESSAGE:.message",
        ]);
        eprintln!(
            "----- pods:\n{}\n----- events:\n{}\n=====",
            pods.stdout,
            events.stdout.replace("\n\n", "\n")
        );
        panic!("scenario {} failed: {msg}", self.name);
    }

    fn check(&self, cond: bool, msg: &str) {
        if !cond {
            self.fail(msg);
        }
    }

    fn kubectl(&self, args: &[&str]) -> ExecOut {
        match self.node.kubectl_cmd(Some(&self.ns)).args(args).output() {
            Ok(o) => ExecOut {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => ExecOut {
                code: -1,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        if out.code != 0 {
            self.fail(&format!(
                "kubectl {} failed: {}",
                args.join(" "),
                out.stderr.trim()
            ));
        }
        out.stdout
    }

    fn apply(&self, obj: &Value) {
        let mut child = match self
            .node
            .kubectl_cmd(Some(&self.ns))
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => self.fail(&format!("cannot run kubectl: {e}")),
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(obj.to_string().as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => self.fail(&format!(
                "kubectl apply of {} {} failed: {}",
                obj["kind"],
                obj["metadata"]["name"],
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => self.fail(&format!("kubectl apply: {e}")),
        }
    }

    /// kubectl with `input` (JSON) on stdin; the caller checks the outcome.
    fn kubectl_stdin(&self, args: &[&str], input: &Value) -> ExecOut {
        let child = self
            .node
            .kubectl_cmd(Some(&self.ns))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => self.fail(&format!("cannot run kubectl: {e}")),
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.to_string().as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) => ExecOut {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => self.fail(&format!("kubectl {}: {e}", args.join(" "))),
        }
    }

    fn config_map(&self, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.apply(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name }, "data": data
        }));
    }

    fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.apply(&json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": name }, "type": "Opaque", "stringData": data
        }));
    }

    /// Changes keys of a ConfigMap or Secret (`kind` "configmap"/"secret").
    fn edit(&self, kind: &str, name: &str, data: &[(&str, &str)]) -> Instant {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let field = if kind == "secret" {
            "stringData"
        } else {
            "data"
        };
        let patch = json!({ field: data }).to_string();
        self.kubectl_ok(&["patch", kind, name, "--type", "merge", "-p", &patch]);
        self.note(&format!("edited {kind} {name}"));
        Instant::now()
    }

    fn pod_json(&self, pod: &str) -> Value {
        let out = self.kubectl(&["get", "pod", pod, "-o", "json"]);
        serde_json::from_str(&out.stdout).unwrap_or(Value::Null)
    }

    fn container_status(&self, pod: &str) -> Value {
        let v = self.pod_json(pod);
        v["status"]["containerStatuses"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == "app").cloned())
            .unwrap_or(Value::Null)
    }

    fn restarts(&self, pod: &str) -> Option<u64> {
        self.container_status(pod)["restartCount"].as_u64()
    }

    /// Polls every second until `f` returns Some, failing after `timeout`.
    fn wait_for<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                self.note(what);
                return v;
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {what} within {timeout:?}"));
            }
            sleep(Duration::from_secs(1));
        }
    }

    /// Waits for the app container to run (started) after `restarts` restarts.
    fn wait_running(&self, pod: &str, restarts: u64) {
        let timeout = Duration::from_secs(60) + SLACK;
        self.wait_for(
            &format!("{pod} running (restartCount {restarts})"),
            timeout,
            || {
                let c = self.container_status(pod);
                (c["restartCount"].as_u64() == Some(restarts)
                    && c["state"]["running"].is_object()
                    && c["started"] == true)
                    .then_some(())
            },
        );
    }

    /// Waits for the first restart of the app container, polling restartCount.
    fn wait_restart(&self, pod: &str, from: u64, timeout: Duration) -> Instant {
        self.wait_for(
            &format!("{pod} restarted (restartCount > {from})"),
            timeout,
            || {
                let n = self.restarts(pod)?;
                if n > from + 1 {
                    self.fail(&format!("{pod}: restartCount jumped from {from} to {n}"));
                }
                (n == from + 1).then(Instant::now)
            },
        )
    }

    /// Holds for `window`: restartCount stays `restarts` (and the container runs).
    fn assert_no_restart(&self, pod: &str, restarts: u64, window: Duration, why: &str) {
        self.note(&format!(
            "{pod}: watching for {window:?}: no restart ({why})"
        ));
        let until = Instant::now() + window;
        while Instant::now() < until {
            let n = self.restarts(pod);
            if n != Some(restarts) {
                self.fail(&format!(
                    "{pod}: restartCount {n:?}, expected {restarts} ({why})"
                ));
            }
            sleep(Duration::from_secs(1));
        }
    }

    fn exec(&self, pod: &str, cmd: &[&str]) -> ExecOut {
        let mut args = vec!["exec", pod, "-c", "app", "--"];
        args.extend_from_slice(cmd);
        self.kubectl(&args)
    }

    /// What the app serves now (GET / on its loopback, from inside the pod).
    fn served(&self, pod: &str) -> Option<String> {
        let out = self.exec(pod, &["/fetch", PORT]);
        (out.code == 0).then_some(out.stdout)
    }

    fn wait_served(&self, pod: &str, body: &str, timeout: Duration) {
        self.wait_for(&format!("{pod} serves {body:?}"), timeout, || {
            (self.served(pod).as_deref() == Some(body)).then_some(())
        });
    }

    /// Runs the probe command by hand, as the kubelet does; returns (exit, first line).
    fn probe(&self, pod: &str, cmd: &[&str]) -> (i32, String) {
        let out = self.exec(pod, cmd);
        let line = out.stdout.lines().next().unwrap_or("").to_string();
        self.note(&format!(
            "{pod}: by hand: {} -> exit {}: {line}",
            cmd[1..].join(" "),
            out.code
        ));
        (out.code, line)
    }

    /// The events about `pod` (all of them when `pod` is empty), as the
    /// API server gives them.
    fn event_items(&self, pod: &str) -> Vec<Value> {
        let mut args = vec!["get", "events", "-o", "json"];
        let selector = format!("involvedObject.name={pod}");
        if !pod.is_empty() {
            args.extend_from_slice(&["--field-selector", &selector]);
        }
        let out = self.kubectl(&args);
        let mut v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        match v["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        }
    }

    /// Event reasons and messages about `pod` (all of them when `pod` is
    /// empty).
    fn events(&self, pod: &str) -> Vec<(String, String)> {
        self.event_items(pod)
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").trim_end().to_string(),
                )
            })
            .collect()
    }

    /// When the events about `pod` with this reason and a message containing
    /// `fragment` first happened, in seconds since the epoch.
    fn event_times(&self, pod: &str, reason: &str, fragment: &str) -> Vec<i64> {
        self.event_items(pod)
            .iter()
            .filter(|e| e["reason"] == reason)
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(fragment)))
            .filter_map(|e| {
                let t = e["firstTimestamp"].as_str().or(e["eventTime"].as_str())?;
                epoch_seconds(t)
            })
            .collect()
    }

    fn event_matching(&self, pod: &str, fragments: &[&str]) -> Option<String> {
        self.events(pod)
            .into_iter()
            .map(|(_, m)| m)
            .find(|m| fragments.iter().all(|f| m.contains(f)))
    }

    fn wait_event(&self, pod: &str, fragments: &[&str], timeout: Duration) -> String {
        let msg = self.wait_for(
            &format!("{pod}: an event with {fragments:?}"),
            timeout,
            || self.event_matching(pod, fragments),
        );
        self.note(&format!("{pod}: event: {msg}"));
        msg
    }

    /// No event in the namespace may contain `secret` (file contents stay out of probe lines).
    fn assert_not_in_events(&self, secret: &str) {
        for (_, m) in self.events("") {
            if m.contains(secret) {
                self.fail(&format!("an event carries file content ({secret:?}): {m}"));
            }
        }
    }

    /// The kubelet's `..data` target of a pod's volume, read on the host.
    fn volume_payload(&self, pod: &str, plugin: &str, volume: &str) -> Option<String> {
        let uid = self.pod_json(pod)["metadata"]["uid"].as_str()?.to_string();
        let dir = self
            .node
            .dir
            .join("kubelet/root/pods")
            .join(uid)
            .join("volumes")
            .join(format!("kubernetes.io~{plugin}"))
            .join(volume);
        fs::read_link(dir.join("..data"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Waits until the kubelet swapped `..data` away from `old`.
    fn wait_swap(&self, pod: &str, plugin: &str, volume: &str, old: &str) -> Instant {
        let at = self.wait_for(
            &format!("{pod}: the kubelet swapped ..data of volume {volume}"),
            self.node.update_within(),
            || {
                let now = self.volume_payload(pod, plugin, volume)?;
                (now != old).then(Instant::now)
            },
        );
        if let Some(now) = self.volume_payload(pod, plugin, volume) {
            self.note(&format!("{pod}: ..data -> {now}"));
        }
        at
    }

    /// PID (on the host) of the app container's entrypoint.
    fn app_pid(&self, pod: &str) -> Option<u32> {
        let id = self.container_status(pod)["containerID"]
            .as_str()?
            .strip_prefix("containerd://")?
            .to_string();
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.node.containerd_sock)
            .args(["-n", "k8s.io", "tasks", "ls"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(&id))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    /// A common pod: the init container installs the probe into an emptyDir, the
    /// app container runs the demo server on /config/config.txt (ConfigMap
    /// `config`) with `liveness` (args after `driftprobe liveness`) as its probe.
    fn pod(&self, name: &str, liveness: &[&str]) -> Value {
        let mut cmd = vec!["/probe/driftprobe", "liveness"];
        cmd.extend_from_slice(liveness);
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name, "labels": { "app": "demo" } },
            "spec": {
                "nodeName": self.node.name,
                "automountServiceAccountToken": false,
                "dnsPolicy": "Default",
                "terminationGracePeriodSeconds": TERM_GRACE.as_secs(),
                "volumes": [
                    { "name": "probe", "emptyDir": {} },
                    { "name": "config", "configMap": { "name": "config" } }
                ],
                "initContainers": [{
                    "name": "install-driftprobe",
                    "image": self.node.probe_image,
                    "imagePullPolicy": "Never",
                    "args": ["install", "/probe/driftprobe"],
                    "volumeMounts": [{ "name": "probe", "mountPath": "/probe" }]
                }],
                "containers": [{
                    "name": "app",
                    "image": self.node.app_image,
                    "imagePullPolicy": "Never",
                    "args": ["/config/config.txt", PORT],
                    "volumeMounts": [
                        { "name": "probe", "mountPath": "/probe", "readOnly": true },
                        { "name": "config", "mountPath": "/config", "readOnly": true }
                    ],
                    "livenessProbe": {
                        "exec": { "command": cmd },
                        "periodSeconds": PERIOD.as_secs(),
                        "failureThreshold": FAILURE_THRESHOLD,
                        "timeoutSeconds": TIMEOUT_SECONDS
                    }
                }]
            }
        })
    }
}

impl Drop for Scenario<'_> {
    fn drop(&mut self) {
        if env::var("DRIFTPROBE_REALNODE_KEEP").is_ok_and(|v| v == "1") {
            return;
        }
        let _ = self
            .node
            .kubectl_cmd(None)
            .args(["delete", "namespace", &self.ns, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // No controller-manager deletes the pods of a deleted namespace.
        let _ = self
            .node
            .kubectl_cmd(Some(&self.ns))
            .args([
                "delete",
                "pods",
                "--all",
                "--grace-period=0",
                "--force",
                "--wait=false",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `2026-12-06T18:20:11Z` (or with fractional seconds) as seconds since the
/// epoch (civil-from-days, proleptic Gregorian).
fn epoch_seconds(t: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn marker(sc: &Scenario, what: &str) -> String {
    format!("{what}-{}", &sc.ns[sc.ns.len() - 4..])
}

// ---------------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------------

/// Scenario 1: The README's example: an edit, drift events after the grace window, then
/// exactly one restart onto the new config, then quiet.
fn restart_after_grace(sc: &Scenario) {
    let grace = secs(GRACE);
    let v1 = format!("greeting: {}\n", marker(sc, "first"));
    let v2 = format!("greeting: {}\n", marker(sc, "second"));
    sc.config_map("config", &[("config.txt", &v1)]);
    // The README's pair: readiness with the same window as liveness.
    let mut pod = sc.pod("web", &["--grace", &grace, "/config"]);
    pod["spec"]["containers"][0]["readinessProbe"] = json!({
        "exec": { "command": ["/probe/driftprobe", "readiness", "--grace", &grace, "/config"] },
        "periodSeconds": PERIOD.as_secs(),
        "failureThreshold": 1,
        "timeoutSeconds": TIMEOUT_SECONDS
    });
    sc.apply(&pod);
    sc.wait_running("web", 0);
    sc.wait_served("web", &v1, SLACK);
    // Before the kubelet's first probe there is no baseline yet (`status`
    // says so, exit 1); the first probe (within one period) records it.
    let status = sc.wait_for(
        "`driftprobe status` exit 0, first line `watching:` (the first probe recorded the baseline)",
        PERIOD + SLACK,
        || {
            let status = sc.exec("web", &["/probe/driftprobe", "status", "/config"]);
            sc.note(&format!(
                "status -> exit {}: {}",
                status.code,
                status.stdout.trim_end().replace('\n', " | ")
            ));
            (status.code == 0 && status.stdout.starts_with("watching:")).then_some(status)
        },
    );
    sc.check(
        status.stdout.contains("recorded "),
        "`driftprobe status` before the edit shows a baseline",
    );
    let (code, line) = sc.probe(
        "web",
        &[
            "/probe/driftprobe",
            "liveness",
            "--grace",
            &grace,
            "/config",
        ],
    );
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "the probe passes with ok: before the edit",
    );
    edit_config_until_one_restart(sc, &v2, GRACE);
    unready_only_as_the_restart_approaches(sc);
    sc.wait_running("web", 1);
    sc.wait_served("web", &v2, SLACK);
    sc.assert_no_restart(
        "web",
        1,
        sc.node.quiet_window(GRACE),
        "the new container started with the new config",
    );
    let (code, line) = sc.probe(
        "web",
        &[
            "/probe/driftprobe",
            "liveness",
            "--grace",
            &grace,
            "/config",
        ],
    );
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "the probe passes with ok: after the restart",
    );
    sc.check(
        sc.served("web").as_deref() == Some(v2.as_str()),
        "still serving the new config",
    );
    sc.assert_not_in_events(v2.trim_start_matches("greeting: ").trim());
    sc.assert_not_in_events(v1.trim_start_matches("greeting: ").trim());
}

/// Edits `config.txt` of ConfigMap `config` to `new` and waits for the
/// kubelet to swap it into pod `web`, then for its first restart: not before
/// `grace` has passed, with a `Liveness probe failed: drift:` event naming
/// the file and the end of the window.
fn edit_config_until_one_restart(sc: &Scenario, new: &str, grace: Duration) {
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    let edited = sc.edit("configmap", "config", &[("config.txt", new)]);
    sc.wait_swap("web", "configmap", "config", &payload);
    let restarted = sc.wait_restart("web", 0, sc.node.restart_within(grace, FAILURE_THRESHOLD));
    let after = restarted - edited;
    sc.note(&format!(
        "restarted {after:?} after the edit (grace {grace:?})"
    ));
    sc.check(
        after >= grace,
        "no restart before the grace window has passed",
    );
    let event = sc.event_matching(
        "web",
        &[
            "Liveness probe failed: drift:",
            "1 changed (config.txt)",
            ", ended ",
        ],
    );
    sc.check(
        event.is_some(),
        "an event `Liveness probe failed: drift: 1 changed (config.txt) … (grace …, ended …)`",
    );
    sc.note(&format!("event: {}", event.unwrap_or_default()));
}

/// The README: "With the same `--grace` and `--stagger`, each pod turns
/// unready only as its own restart approaches". Measured from the events'
/// timestamps (whole seconds): the first `Readiness probe failed: drift:`
/// and the kubelet's `Killing` for the failed liveness probe are at most
/// failureThreshold + 1 periods apart, readiness first or with it.
fn unready_only_as_the_restart_approaches(sc: &Scenario) {
    let first =
        |reason: &str, fragment: &str| sc.event_times("web", reason, fragment).into_iter().min();
    let unready = first("Unhealthy", "Readiness probe failed: drift:");
    let killed = first("Killing", "failed liveness probe");
    let (Some(unready), Some(killed)) = (unready, killed) else {
        sc.fail(&format!(
            "events for the readiness failure ({unready:?}) and the liveness kill ({killed:?})"
        ));
    };
    let apart = killed - unready;
    sc.note(&format!(
        "out of the Service {apart}s before the restart (periodSeconds {}, liveness failureThreshold {FAILURE_THRESHOLD})",
        PERIOD.as_secs()
    ));
    let most = (PERIOD * (FAILURE_THRESHOLD + 1)).as_secs() as i64 + 1;
    sc.check(
        (-1..=most).contains(&apart),
        &format!("readiness fails at most {most}s before the liveness restart, not long before it (nor after)"),
    );
}

/// Observe only: `--on-drift report --log-changes` on a real runtime. The
/// lines reach `kubectl logs` (the entrypoint's stdout is containerd's
/// pipe), once per change; the pod is never restarted.
fn log_changes_observe_only(sc: &Scenario) {
    sc.config_map("config", &[("config.txt", "greeting: before\n")]);
    let pod = sc.pod(
        "web",
        &[
            "--grace",
            "4s",
            "--on-drift",
            "report",
            "--log-changes",
            "/config",
        ],
    );
    sc.apply(&pod);
    sc.wait_running("web", 0);
    let lines = |prefix: &str| -> usize {
        sc.kubectl(&["logs", "web", "-c", "app"])
            .stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    sc.wait_for("the first verdict in kubectl logs", SLACK, || {
        (lines("driftprobe liveness: ok: config matches the baseline") == 1).then_some(())
    });
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    sc.edit(
        "configmap",
        "config",
        &[("config.txt", "greeting: after\n")],
    );
    sc.wait_swap("web", "configmap", "config", &payload);
    sc.wait_for(
        "drift inside the window, then past it, in kubectl logs",
        Duration::from_secs(4) + PERIOD * 3 + SLACK,
        || {
            let logs = sc.kubectl(&["logs", "web", "-c", "app"]).stdout;
            (logs.contains("driftprobe liveness: drift: 1 changed (config.txt)")
                && logs.contains("left) (report only)")
                && logs.lines().any(|l| {
                    l.starts_with("driftprobe liveness: drift: ")
                        && l.contains("ended ")
                        && l.ends_with("(report only)")
                }))
            .then_some(())
        },
    );
    // More periods: no more lines, no restart, no failed probe.
    sleep(PERIOD * 3);
    sc.check(
        lines("driftprobe liveness: ") == 3,
        "one line per verdict change",
    );
    sc.check(sc.restarts("web") == Some(0), "report only: restartCount 0");
    sc.check(
        sc.event_matching("web", &["Liveness probe failed"])
            .is_none(),
        "report only: no failed liveness probe",
    );
    sc.check(
        !sc.kubectl(&["logs", "web", "-c", "app"])
            .stdout
            .contains("greeting: after"),
        "no file content in the log lines",
    );
}

/// Scenario 2: `--on-drift reload`: SIGHUP to the demo server, no restart.
fn reload_in_place(sc: &Scenario) {
    let grace = "4s";
    sc.config_map("config", &[("config.txt", "greeting: before\n")]);
    let mut pod = sc.pod(
        "web",
        &["--grace", grace, "--on-drift", "reload", "/config"],
    );
    pod["spec"]["containers"][0]["args"] = json!(["--reload-on-hup", "/config/config.txt", PORT]);
    sc.apply(&pod);
    sc.wait_running("web", 0);
    sc.wait_served("web", "greeting: before\n", SLACK);
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    sc.edit(
        "configmap",
        "config",
        &[("config.txt", "greeting: after\n")],
    );
    sc.wait_swap("web", "configmap", "config", &payload);
    sc.wait_served(
        "web",
        "greeting: after\n",
        Duration::from_secs(4) + PERIOD * 2 + SLACK,
    );
    sc.check(
        sc.restarts("web") == Some(0),
        "reloaded in place: restartCount 0",
    );
    let logs = sc.kubectl_ok(&["logs", "web", "-c", "app"]);
    sc.check(
        logs.contains("SIGHUP"),
        "the app's log shows the SIGHUP reload",
    );
    sc.assert_no_restart(
        "web",
        0,
        sc.node.quiet_window(Duration::from_secs(4)),
        "reloaded, not restarted",
    );
    sc.check(
        sc.served("web").as_deref() == Some("greeting: after\n"),
        "still serving the reloaded config",
    );
    sc.check(
        sc.event_matching("web", &["Liveness probe failed"])
            .is_none(),
        "no failed liveness probe",
    );
}

/// `--on-drift reload` on Go entrypoints (e2e/node/goapp): the Go runtime
/// catches SIGHUP (SigCgt) but exits on it unless the program called
/// signal.Notify, so driftprobe refuses to send it without
/// `--signal-handled`, and the fallback is the restart.
fn go_app_reload(sc: &Scenario) {
    let grace = Duration::from_secs(4);
    let g = secs(grace);
    sc.config_map("config", &[("config.txt", "greeting: before\n")]);
    let go_pod = |name: &str, args: &[&str], extra: &[&str]| {
        let mut liveness = vec!["--grace", g.as_str(), "--on-drift", "reload"];
        liveness.extend_from_slice(extra);
        liveness.push("/config");
        let mut pod = sc.pod(name, &liveness);
        pod["spec"]["containers"][0]["command"] = json!(["/goapp"]);
        pod["spec"]["containers"][0]["args"] = json!(args);
        pod
    };
    sc.apply(&go_pod("plain", &[], &[]));
    sc.apply(&go_pod("notify", &["--notify"], &["--signal-handled"]));
    sc.wait_running("plain", 0);
    sc.wait_running("notify", 0);
    let warning =
        "--on-drift reload will not signal: pid 1 (goapp) is a Go program, which exits on SIGHUP";
    sc.wait_for(
        "plain: `status` warns, from the first probe on, that SIGHUP would end the Go app",
        PERIOD + SLACK,
        || {
            let s = sc.exec("plain", &["/probe/driftprobe", "status", "/config"]);
            s.stdout.contains(warning).then_some(())
        },
    );
    let s = sc.exec("notify", &["/probe/driftprobe", "status", "/config"]);
    sc.check(
        !s.stdout.contains("Go program"),
        "no warning where --signal-handled is given",
    );
    let payloads = ["plain", "notify"].map(|p| {
        sc.volume_payload(p, "configmap", "config")
            .unwrap_or_default()
    });
    sc.edit(
        "configmap",
        "config",
        &[("config.txt", "greeting: after\n")],
    );
    for (pod, payload) in ["plain", "notify"].iter().zip(&payloads) {
        sc.wait_swap(pod, "configmap", "config", payload);
    }
    // With signal.Notify and --signal-handled: reloaded in place.
    sc.wait_for(
        "notify: the Go app logged its SIGHUP",
        grace + PERIOD * 2 + SLACK,
        || {
            let logs = sc.kubectl(&["logs", "notify", "-c", "app"]).stdout;
            logs.contains("goapp: got SIGHUP, reloading").then_some(())
        },
    );
    // Without: refused with the reason, then restarted by liveness.
    let within = sc.node.restart_within(grace, FAILURE_THRESHOLD);
    sc.wait_event(
        "plain",
        &[
            "Liveness probe failed: drift:",
            "1 changed (config.txt)",
            "; not reloaded: pid 1 (goapp) is a Go program, which exits on SIGHUP unless it calls signal.Notify",
        ],
        within,
    );
    sc.wait_restart("plain", 0, within);
    sc.wait_running("plain", 1);
    let previous = sc
        .kubectl(&["logs", "plain", "-c", "app", "--previous"])
        .stdout;
    sc.check(
        previous.contains("goapp: running, without a SIGHUP handler"),
        "the restarted container's log is the plain Go app's",
    );
    sc.assert_no_restart(
        "notify",
        0,
        sc.node.quiet_window(grace),
        "the Go app with signal.Notify reloaded in place",
    );
    sc.check(
        sc.event_matching("notify", &["Liveness probe failed"])
            .is_none(),
        "no failed liveness probe for the Go app that reloads",
    );
    let (code, line) = sc.probe(
        "plain",
        &[
            "/probe/driftprobe",
            "liveness",
            "--grace",
            &g,
            "--on-drift",
            "reload",
            "/config",
        ],
    );
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "the restarted plain Go app runs the new config: ok:",
    );
}

/// Scenario 3: `--validate`: a broken edit is never acted on; the fix is.
fn validation_gate(sc: &Scenario) {
    let grace = secs(GRACE);
    let validate = "/demo_server --check /config/config.txt";
    sc.config_map("config", &[("config.txt", "greeting: v1\n")]);
    let mut pod = sc.pod(
        "web",
        &["--grace", &grace, "--validate", validate, "/config"],
    );
    pod["spec"]["containers"][0]["readinessProbe"] = json!({
        "exec": { "command": ["/probe/driftprobe", "readiness", "--grace", grace, "--validate", validate,
                               "--on-invalid", "fail", "/config"] },
        "periodSeconds": PERIOD.as_secs(),
        "failureThreshold": 1,
        "timeoutSeconds": TIMEOUT_SECONDS
    });
    sc.apply(&pod);
    sc.wait_running("web", 0);
    sc.wait_served("web", "greeting: v1\n", SLACK);
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();

    let broken_text = marker(sc, "broken-line-without-colon");
    sc.edit(
        "configmap",
        "config",
        &[("config.txt", &format!("{broken_text}\n"))],
    );
    let swapped = sc.wait_swap("web", "configmap", "config", &payload);
    sc.wait_event(
        "web",
        &["Readiness probe failed: invalid:"],
        PERIOD * 3 + SLACK,
    );
    let left = sc
        .node
        .quiet_window(GRACE)
        .saturating_sub(swapped.elapsed());
    sc.assert_no_restart("web", 0, left, "an invalid config is never restarted into");
    sc.check(
        sc.served("web").as_deref() == Some("greeting: v1\n"),
        "the running config keeps serving",
    );
    sc.check(
        sc.event_matching("web", &["Liveness probe failed"])
            .is_none(),
        "liveness never failed on the invalid config",
    );
    sc.assert_not_in_events(&broken_text);

    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    let fixed = sc.edit(
        "configmap",
        "config",
        &[("config.txt", "greeting: fixed\n")],
    );
    sc.wait_swap("web", "configmap", "config", &payload);
    let restarted = sc.wait_restart("web", 0, sc.node.restart_within(GRACE, FAILURE_THRESHOLD));
    sc.check(
        restarted - fixed >= GRACE,
        "the fix, too, waits for its grace window",
    );
    sc.wait_running("web", 1);
    sc.wait_served("web", "greeting: fixed\n", SLACK);
    sc.assert_no_restart(
        "web",
        1,
        sc.node.quiet_window(GRACE),
        "restarted once onto the fixed config",
    );
}

/// Scenario 4 (and issue 18): A Secret read by a non-root app through fsGroup: the
/// kubelet's ownership handling must not defeat the lazy baseline.
fn secret_fsgroup_nonroot(sc: &Scenario) {
    let grace = secs(GRACE);
    let first = marker(sc, "s3cret-one");
    let second = marker(sc, "s3cret-two");
    sc.secret("creds", &[("token", &first)]);
    let mut pod = sc.pod(
        "web",
        &["--grace", &grace, "--state-dir", "/state", "/creds"],
    );
    pod["spec"]["securityContext"] = json!({
        "runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": true, "fsGroup": 65532
    });
    pod["spec"]["volumes"] = json!([
        { "name": "probe", "emptyDir": {} },
        { "name": "state", "emptyDir": {} },
        { "name": "creds", "secret": { "secretName": "creds", "defaultMode": 0o400 } }
    ]);
    let hardened = json!({
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] }
    });
    pod["spec"]["initContainers"][0]["securityContext"] = hardened.clone();
    let app = &mut pod["spec"]["containers"][0];
    app["securityContext"] = hardened;
    app["args"] = json!(["/creds/token", PORT]);
    app["volumeMounts"] = json!([
        { "name": "probe", "mountPath": "/probe", "readOnly": true },
        { "name": "state", "mountPath": "/state" },
        { "name": "creds", "mountPath": "/creds", "readOnly": true }
    ]);
    sc.apply(&pod);
    sc.wait_running("web", 0);
    sc.wait_served("web", &first, SLACK);

    // The baseline exists before anything changed: the probe says ok:.
    let probe = [
        "/probe/driftprobe",
        "liveness",
        "--grace",
        &grace,
        "--state-dir",
        "/state",
        "/creds",
    ];
    let (code, line) = sc.probe("web", &probe);
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "a baseline was recorded before any change (the probe says ok:)",
    );
    let status = sc.exec(
        "web",
        &[
            "/probe/driftprobe",
            "status",
            "--state-dir",
            "/state",
            "/creds",
        ],
    );
    sc.check(
        status.code == 0 && status.stdout.starts_with("watching:"),
        "`status` exits 0 (no drift) and starts with watching:",
    );
    // Nothing changes: no drift, no restart, over several pod syncs (the
    // v1.20 kubelet re-runs its ownership pass at each).
    sc.assert_no_restart("web", 0, sc.node.quiet_window(GRACE), "nothing changed");
    sc.check(
        sc.event_matching("web", &["Liveness probe failed"])
            .is_none(),
        "no failed liveness probe while nothing changed",
    );
    let (code, line) = sc.probe("web", &probe);
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "still ok: after the quiet window",
    );

    let payload = sc
        .volume_payload("web", "secret", "creds")
        .unwrap_or_default();
    let edited = sc.edit("secret", "creds", &[("token", &second)]);
    sc.wait_swap("web", "secret", "creds", &payload);
    let restarted = sc.wait_restart("web", 0, sc.node.restart_within(GRACE, FAILURE_THRESHOLD));
    sc.check(
        restarted - edited >= GRACE,
        "no restart before the grace window",
    );
    sc.check(
        sc.event_matching(
            "web",
            &["Liveness probe failed: drift:", "1 changed (token)"],
        )
        .is_some(),
        "the event names the changed key",
    );
    sc.wait_running("web", 1);
    sc.wait_served("web", &second, SLACK);
    sc.assert_no_restart(
        "web",
        1,
        sc.node.quiet_window(GRACE),
        "exactly one restart after the change",
    );
    sc.assert_not_in_events(&first);
    sc.assert_not_in_events(&second);
}

/// Scenario 5: A projected volume with nested paths; the app's nested dir is watched.
fn projected_nested(sc: &Scenario) {
    let grace = secs(GRACE);
    sc.config_map("config", &[("config.txt", "greeting: v1\n")]);
    sc.secret("creds", &[("token", &marker(sc, "tok"))]);
    let mut pod = sc.pod("web", &["--grace", &grace, "/config/app"]);
    pod["spec"]["volumes"][1] = json!({
        "name": "config",
        "projected": { "sources": [
            { "configMap": { "name": "config", "items": [{ "key": "config.txt", "path": "app/conf/config.txt" }] } },
            { "secret": { "name": "creds", "items": [{ "key": "token", "path": "app/secret/token" }] } },
            { "downwardAPI": { "items": [{ "path": "meta/labels", "fieldRef": { "fieldPath": "metadata.labels" } }] } }
        ] }
    });
    pod["spec"]["containers"][0]["args"] = json!(["/config/app/conf/config.txt", PORT]);
    sc.apply(&pod);
    sc.wait_running("web", 0);
    sc.wait_served("web", "greeting: v1\n", SLACK);
    let probe = [
        "/probe/driftprobe",
        "liveness",
        "--grace",
        &grace,
        "/config/app",
    ];
    let (code, line) = sc.probe("web", &probe);
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "ok: before any change",
    );

    // A label change: the kubelet rewrites the whole payload (new ..<ts> dir,
    // new inodes for every file), but nothing under app/ changed.
    let payload = sc
        .volume_payload("web", "projected", "config")
        .unwrap_or_default();
    sc.kubectl_ok(&["label", "pod", "web", "tier=relabelled"]);
    sc.note("labelled the pod tier=relabelled");
    let swapped = sc.wait_swap("web", "projected", "config", &payload);
    let left = sc
        .node
        .quiet_window(GRACE)
        .saturating_sub(swapped.elapsed());
    sc.assert_no_restart(
        "web",
        0,
        left,
        "a label change leaves the watched nested dir unchanged",
    );
    let (code, line) = sc.probe("web", &probe);
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "ok: after the payload swap of the label change",
    );

    let payload = sc
        .volume_payload("web", "projected", "config")
        .unwrap_or_default();
    let edited = sc.edit("configmap", "config", &[("config.txt", "greeting: v2\n")]);
    sc.wait_swap("web", "projected", "config", &payload);
    let restarted = sc.wait_restart("web", 0, sc.node.restart_within(GRACE, FAILURE_THRESHOLD));
    sc.check(
        restarted - edited >= GRACE,
        "no restart before the grace window",
    );
    sc.check(
        sc.event_matching("web", &["Liveness probe failed: drift:", "config.txt"])
            .is_some(),
        "the event names the nested file",
    );
    sc.wait_running("web", 1);
    sc.wait_served("web", "greeting: v2\n", SLACK);
    sc.assert_no_restart("web", 1, sc.node.quiet_window(GRACE), "one restart");
}

fn environ_value(pid: u32, name: &str) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    env.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_string))
}

/// Scenario 6: An env var from a ConfigMap key, compared with `--env`; a subPath mount.
fn env_and_subpath(sc: &Scenario) {
    let grace = secs(GRACE);
    sc.config_map(
        "config",
        &[("config.txt", "greeting: v1\n"), ("log_level", "info")],
    );
    // Only config.txt is watched: the restart can come from the env var alone.
    let mut pod = sc.pod(
        "web",
        &[
            "--grace",
            &grace,
            "--env",
            "LOG_LEVEL=/config/log_level",
            "/config/config.txt",
        ],
    );
    let app = &mut pod["spec"]["containers"][0];
    app["env"] = json!([{ "name": "LOG_LEVEL",
        "valueFrom": { "configMapKeyRef": { "name": "config", "key": "log_level" } } }]);
    if let Some(mounts) = app["volumeMounts"].as_array_mut() {
        mounts.push(json!({ "name": "config", "mountPath": "/etc/app.txt", "subPath": "config.txt", "readOnly": true }));
    }
    sc.apply(&pod);
    sc.wait_running("web", 0);

    let status = sc.exec("web", &["/probe/driftprobe", "status", "/etc/app.txt"]);
    let all = format!("{}{}", status.stdout, status.stderr);
    sc.note(&format!("status /etc/app.txt -> exit {}", status.code));
    sc.check(
        status.stdout.starts_with("watching:") && all.contains("subPath"),
        "`status` of a subPath-mounted file warns about subPath",
    );
    let pid = sc.app_pid("web");
    sc.check(
        pid.and_then(|p| environ_value(p, "LOG_LEVEL")).as_deref() == Some("info"),
        "the app started with LOG_LEVEL=info",
    );

    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    let edited = sc.edit("configmap", "config", &[("log_level", "debug")]);
    sc.wait_swap("web", "configmap", "config", &payload);
    let env_now = pid.and_then(|p| environ_value(p, "LOG_LEVEL"));
    sc.note(&format!(
        "after the swap, the running app's LOG_LEVEL is {env_now:?}"
    ));
    if sc.restarts("web") == Some(0) {
        sc.check(
            env_now.as_deref() == Some("info"),
            "the kubelet never updates a running container's env var",
        );
    }
    let restarted = sc.wait_restart("web", 0, sc.node.restart_within(GRACE, FAILURE_THRESHOLD));
    sc.check(
        restarted - edited >= GRACE,
        "no restart before the grace window",
    );
    sc.check(
        sc.event_matching("web", &["Liveness probe failed: drift:"])
            .is_some(),
        "the env mismatch is reported as drift",
    );
    sc.wait_running("web", 1);
    let pid = sc.app_pid("web");
    sc.check(
        pid.and_then(|p| environ_value(p, "LOG_LEVEL")).as_deref() == Some("debug"),
        "the restarted app has LOG_LEVEL=debug",
    );
    sc.assert_no_restart(
        "web",
        1,
        sc.node.quiet_window(GRACE),
        "the restart fixed the env var",
    );
    let status = sc.exec("web", &["/probe/driftprobe", "status", "/etc/app.txt"]);
    sc.check(
        format!("{}{}", status.stdout, status.stderr).contains("subPath"),
        "`status` keeps warning about the subPath mount",
    );
}

/// Scenario 7: Three replicas with `--stagger`: restarts spread by their offsets.
fn stagger_spreads_restarts(sc: &Scenario) {
    let grace = Duration::from_secs(5);
    let stagger = "40s";
    // Pod names (= hostnames) whose offsets are far apart: 4s, 30s, 15s.
    let pods = ["web-0", "web-1", "web-2"];
    sc.config_map("config", &[("config.txt", "greeting: v1\n")]);
    for p in pods {
        sc.apply(&sc.pod(
            p,
            &["--grace", &secs(grace), "--stagger", stagger, "/config"],
        ));
    }
    let mut offsets = Vec::new();
    let mut payloads = Vec::new();
    for p in pods {
        sc.wait_running(p, 0);
        let out = sc.exec(
            p,
            &[
                "/probe/driftprobe",
                "status",
                "--json",
                "--stagger",
                stagger,
                "/config",
            ],
        );
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        let Some(ms) = v["stagger_offset_ms"].as_u64() else {
            sc.fail(&format!(
                "{p}: `status --json --stagger` gave no stagger_offset_ms: {}",
                out.stdout
            ));
        };
        sc.note(&format!("{p}: stagger offset {ms}ms"));
        offsets.push(Duration::from_millis(ms));
        payloads.push(
            sc.volume_payload(p, "configmap", "config")
                .unwrap_or_default(),
        );
    }
    let edited = sc.edit("configmap", "config", &[("config.txt", "greeting: v2\n")]);
    let max_offset = offsets.iter().max().copied().unwrap_or_default();
    let deadline = Instant::now()
        + sc.node
            .restart_within(grace + max_offset, FAILURE_THRESHOLD);
    let mut restarted: Vec<Option<Duration>> = vec![None; pods.len()];
    while restarted.iter().any(Option::is_none) {
        if Instant::now() > deadline {
            sc.fail(&format!(
                "not every replica restarted in time: {restarted:?}"
            ));
        }
        for (i, p) in pods.iter().enumerate() {
            if restarted[i].is_none() && sc.restarts(p).unwrap_or(0) > 0 {
                let after = edited.elapsed();
                sc.note(&format!(
                    "{p} restarted {after:?} after the edit (offset {:?})",
                    offsets[i]
                ));
                restarted[i] = Some(after);
            }
        }
        sleep(Duration::from_secs(1));
    }
    let restarted: Vec<Duration> = restarted.into_iter().flatten().collect();
    // The kubelet updates each pod's volume at its own sync: up to update_within apart.
    let jitter = sc.node.update_within() + PERIOD * (FAILURE_THRESHOLD + 1) + TERM_GRACE;
    for (i, p) in pods.iter().enumerate() {
        sc.check(
            restarted[i] >= grace + offsets[i],
            &format!(
                "{p} must not restart before grace + its offset ({:?})",
                grace + offsets[i]
            ),
        );
    }
    for i in 0..pods.len() {
        for j in 0..pods.len() {
            if offsets[j] > offsets[i] + jitter {
                sc.check(
                    restarted[j] > restarted[i],
                    &format!(
                        "{} (offset {:?}) must restart after {} (offset {:?})",
                        pods[j], offsets[j], pods[i], offsets[i]
                    ),
                );
            }
        }
    }
    let first = restarted.iter().min().copied().unwrap_or_default();
    let last = restarted.iter().max().copied().unwrap_or_default();
    let spread = offsets.iter().max().copied().unwrap_or_default()
        - offsets.iter().min().copied().unwrap_or_default();
    sc.note(&format!(
        "restarts spread over {:?} (offsets spread {spread:?})",
        last - first
    ));
    sc.check(
        last - first + jitter >= spread,
        "the restarts are spread by the offsets, not simultaneous",
    );
    for p in pods {
        sc.wait_running(p, 1);
    }
    for p in pods {
        sc.check(
            sc.restarts(p) == Some(1),
            &format!("{p} restarted exactly once"),
        );
    }
}

/// Scenario 8a: The trap: no probe binary (the init container did not run).
fn probe_binary_missing(sc: &Scenario) {
    sc.config_map("config", &[("config.txt", "greeting: v1\n")]);
    let mut pod = sc.pod("web", &["--grace", "1s", "/config"]);
    pod["spec"]
        .as_object_mut()
        .map(|s| s.remove("initContainers"));
    sc.apply(&pod);
    sc.wait_running("web", 0);
    let msg = sc.wait_event("web", &["Liveness probe errored"], PERIOD * 3 + SLACK);
    sc.check(
        msg.contains("/probe/driftprobe"),
        "the errored event names the missing binary",
    );
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    sc.edit("configmap", "config", &[("config.txt", "greeting: v2\n")]);
    sc.wait_swap("web", "configmap", "config", &payload);
    sc.assert_no_restart(
        "web",
        0,
        sc.node.quiet_window(Duration::from_secs(1)) + PERIOD * FAILURE_THRESHOLD,
        "an errored probe never counts towards failureThreshold",
    );
    sc.check(
        sc.event_matching("web", &["Liveness probe failed"])
            .is_none(),
        "errored, never failed",
    );
}

/// Issue 17 §1: the app's own health checks ride along in driftprobe's probes.
/// The demo server's `/healthz` answers 503 (its page quoting the config) for
/// its first `READY_AFTER`: readiness must fail on the app, not pass because the
/// files match, and say so in the event without the page; then the pod becomes
/// Ready. Liveness's `--tcp-socket` passes all along: no restart.
fn composed_app_check(sc: &Scenario) {
    const READY_AFTER: Duration = Duration::from_secs(20);
    let quoted = marker(sc, "greeting-quoted-by-the-error-page");
    sc.config_map(
        "config",
        &[("config.txt", &format!("greeting: {quoted}\n"))],
    );
    let url = format!("http://127.0.0.1:{PORT}/healthz");
    let mut pod = sc.pod(
        "web",
        &["--grace", &secs(GRACE), "--tcp-socket", PORT, "/config"],
    );
    let app = &mut pod["spec"]["containers"][0];
    app["env"] =
        json!([{ "name": "DEMO_READY_AFTER", "value": READY_AFTER.as_secs().to_string() }]);
    app["readinessProbe"] = json!({
        "exec": { "command": ["/probe/driftprobe", "readiness", "--http-get", url, "/config"] },
        "periodSeconds": PERIOD.as_secs(),
        "failureThreshold": 1,
        "timeoutSeconds": TIMEOUT_SECONDS
    });
    sc.apply(&pod);
    sc.wait_running("web", 0);
    let running = Instant::now();
    let ready = || sc.container_status("web")["ready"].as_bool();
    sc.wait_event(
        "web",
        &["Readiness probe failed: app: HTTP 503 from /healthz"],
        PERIOD * 3 + SLACK,
    );
    if running.elapsed() + PERIOD < READY_AFTER {
        sc.check(
            ready() == Some(false),
            "not Ready while the app answers 503, though the files match",
        );
    }
    sc.wait_for("web Ready", READY_AFTER + PERIOD * 2 + SLACK, || {
        (ready() == Some(true)).then_some(())
    });
    let (code, line) = sc.probe(
        "web",
        &[
            "/probe/driftprobe",
            "readiness",
            "--http-get",
            &url,
            "/config",
        ],
    );
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "by hand, the composed probe passes once the app is up",
    );
    sc.assert_not_in_events(&quoted);
    sc.assert_no_restart(
        "web",
        0,
        PERIOD * FAILURE_THRESHOLD,
        "liveness's --tcp-socket passes",
    );
}

/// Host PIDs of processes whose command line is exactly `argv`.
fn processes_with_cmdline(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Scenario 8b: The trap: a validator slower than timeoutSeconds. What the
/// real kubelet does: it kills the probe after timeoutSeconds ("command timed
/// out") and counts one failure, but the validator runs in its own process
/// group and survives; while it runs, the next probes answer `validating:`
/// and pass, so failures never reach failureThreshold: the new config is held
/// (no restart, no reload), the old one keeps serving. After
/// `--validate-timeout` the next probe kills the leftover and asks again
/// (another timed-out probe): validators never pile up.
fn slow_validator(sc: &Scenario) {
    let tag = marker(sc, "never-answers");
    let validate = format!("/pause {tag}");
    let validate_timeout = Duration::from_secs(15);
    sc.config_map("config", &[("config.txt", "greeting: v1\n")]);
    let mut pod = sc.pod(
        "web",
        &[
            "--grace",
            "2s",
            "--validate",
            &validate,
            "--validate-timeout",
            &secs(validate_timeout),
            "/config",
        ],
    );
    pod["spec"]["containers"][0]["livenessProbe"]["timeoutSeconds"] = json!(2);
    sc.apply(&pod);
    sc.wait_running("web", 0);
    sc.wait_served("web", "greeting: v1\n", SLACK);
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    sc.edit("configmap", "config", &[("config.txt", "greeting: v2\n")]);
    let swapped = sc.wait_swap("web", "configmap", "config", &payload);

    // Two validation rounds and then some: restartCount stays 0 throughout.
    let window = validate_timeout * 2 + PERIOD * (FAILURE_THRESHOLD + 2) + SLACK;
    sc.note(&format!(
        "web: watching for {window:?}: timed-out probes, no restart"
    ));
    let until = swapped + window;
    let mut most = 0;
    let mut seen_alive = false;
    while Instant::now() < until {
        if sc.restarts("web") != Some(0) {
            sc.fail("a validator slower than timeoutSeconds restarted the container");
        }
        let n = processes_with_cmdline(&["/pause", &tag]).len();
        seen_alive |= n > 0;
        if n > most {
            sc.note(&format!("{n} validator process(es) alive at once"));
            most = n;
        }
        sleep(Duration::from_millis(500));
    }
    sc.check(
        seen_alive,
        "the validator ran (and outlived the probe that started it)",
    );
    // v1.20 reports a timed-out exec probe as a failure with empty output;
    // later kubelets say "command timed out".
    let fragments: &[&str] = if sc.node.version.starts_with("v1.20.") {
        &["Liveness probe failed"]
    } else {
        &["Liveness probe failed", "timed out"]
    };
    let timed_out = sc.event_matching("web", fragments);
    sc.check(
        timed_out.is_some(),
        "the kubelet counts the timed-out probe as failed",
    );
    sc.note(&format!("event: {}", timed_out.unwrap_or_default()));
    sc.check(
        most <= 2,
        &format!(
            "leftover validators are killed by the next probe, not piled up (saw {most} at once)"
        ),
    );
    sc.check(
        sc.served("web").as_deref() == Some("greeting: v1\n"),
        "the config is held: the app still serves the old one",
    );
}

/// Scenario 9: The kubelet restarted in the middle of the grace window.
fn kubelet_restart_mid_grace(sc: &Scenario) {
    let grace = Duration::from_secs(40);
    let downtime = Duration::from_secs(20);
    sc.config_map("config", &[("config.txt", "greeting: v1\n")]);
    sc.apply(&sc.pod("web", &["--grace", &secs(grace), "/config"]));
    sc.wait_running("web", 0);
    sc.wait_served("web", "greeting: v1\n", SLACK);
    let payload = sc
        .volume_payload("web", "configmap", "config")
        .unwrap_or_default();
    sc.edit("configmap", "config", &[("config.txt", "greeting: v2\n")]);
    let swapped = sc.wait_swap("web", "configmap", "config", &payload);
    // A probe of the kubelet has recorded the drift (its first-seen time is
    // in the state: `status --json` shows it; `status` alone compares by itself).
    sc.wait_for(
        "a probe recorded the drift (status --json: drift)",
        PERIOD * 3 + SLACK,
        || {
            let out = sc.exec("web", &["/probe/driftprobe", "status", "--json", "/config"]);
            let v: Value = serde_json::from_str(&out.stdout).ok()?;
            v["drift"].is_object().then_some(())
        },
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/node/restart-kubelet.sh");
    sc.note(&format!("restarting the kubelet ({downtime:?} down)"));
    let out = Command::new("bash")
        .arg(&script)
        .arg(&sc.node.dir)
        .arg(downtime.as_secs().to_string())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => sc.fail(&format!(
            "restart-kubelet.sh failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => sc.fail(&format!("cannot run {}: {e}", script.display())),
    }
    let back = swapped.elapsed();
    sc.note(&format!("the kubelet is back, {back:?} after the swap"));
    sc.check(
        back < grace,
        "the kubelet came back inside the grace window",
    );
    sc.check(
        sc.restarts("web") == Some(0),
        "restarting the kubelet does not restart the container",
    );
    let restarted = sc.wait_restart(
        "web",
        0,
        grace + PERIOD * (FAILURE_THRESHOLD + 1) + TERM_GRACE + SLACK,
    );
    let after = restarted - swapped;
    sc.note(&format!("restarted {after:?} after the swap"));
    sc.check(after >= grace, "no restart before the grace window");
    // A window started afresh by the kubelet restart would end grace after it came back.
    sc.check(
        after < back + grace,
        "the window continued across the kubelet restart (it did not start again)",
    );
    sc.wait_running("web", 1);
    sc.wait_served("web", "greeting: v2\n", SLACK);
    sc.assert_no_restart("web", 1, sc.node.quiet_window(GRACE), "one restart");
}

/// Scenario: the rendered Helm and kustomize examples under Pod Security
/// "restricted", checked by the real API server's admission (dry run: the
/// example images do not exist on the node).
fn pod_security_restricted(sc: &Scenario) {
    let minor: u32 = sc
        .node
        .version
        .strip_prefix("v1.")
        .and_then(|r| r.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let enforced = minor >= 25;
    sc.kubectl_ok(&[
        "label",
        "namespace",
        &sc.ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/warn-version=latest",
        "--overwrite",
    ]);
    if !enforced {
        sc.note(&format!(
            "Kubernetes {} has no PodSecurity admission: only checking that the manifests are accepted",
            sc.node.version
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pods = Vec::new();
    for example in [
        "examples/helm/rendered.yaml",
        "examples/kustomize/rendered.yaml",
    ] {
        let file = root.join(example);
        let file = file.to_string_lossy();
        // As they are: the Deployments (a violating pod template gets a
        // "would violate PodSecurity" warning, not a rejection).
        let out = sc.kubectl(&["apply", "--dry-run=server", "-f", &file]);
        sc.check(
            out.code == 0,
            &format!("{example} is accepted: {}", out.stderr.trim()),
        );
        sc.check(
            !out.stderr.contains("violate"),
            &format!(
                "{example} draws no PodSecurity warning: {}",
                out.stderr.trim()
            ),
        );
        sc.note(&format!(
            "{example}: {}",
            out.stdout.trim().replace('\n', "; ")
        ));
        // As pods: enforce rejects a violating pod outright.
        // One JSON object per document (or a List, depending on kubectl).
        let json_out = sc.kubectl_ok(&["create", "--dry-run=client", "-o", "json", "-f", &file]);
        let mut items = Vec::new();
        for doc in serde_json::Deserializer::from_str(&json_out).into_iter::<Value>() {
            match doc {
                Ok(d) if d["kind"] == "List" => {
                    items.extend(d["items"].as_array().cloned().unwrap_or_default())
                }
                Ok(d) => items.push(d),
                Err(e) => sc.fail(&format!("kubectl's JSON for {example}: {e}")),
            }
        }
        for d in items.iter().filter(|d| d["kind"] == "Deployment") {
            let name = format!(
                "{}-{}",
                d["metadata"]["name"].as_str().unwrap_or("x"),
                example.split('/').nth(1).unwrap_or("x")
            );
            pods.push((
                example,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": { "name": name, "labels": d["spec"]["template"]["metadata"]["labels"] },
                    "spec": d["spec"]["template"]["spec"],
                }),
            ));
        }
    }
    sc.check(pods.len() == 2, "one Deployment in each example");
    for (example, pod) in &pods {
        let out = sc.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], pod);
        sc.check(
            out.code == 0,
            &format!(
                "the pod of {example} is admitted under restricted: {}",
                out.stderr.trim()
            ),
        );
        sc.note(&format!("{example}: pod admitted"));
    }
    if enforced {
        // The control: admission does enforce here.
        let mut bad = pods[0].1.clone();
        bad["metadata"]["name"] = json!("escalating");
        bad["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] =
            json!(true);
        let out = sc.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], &bad);
        sc.check(
            out.code != 0 && out.stderr.contains("violates PodSecurity"),
            &format!(
                "allowPrivilegeEscalation: true is rejected under restricted (exit {}): {}",
                out.code,
                out.stderr.trim()
            ),
        );
        sc.note(&format!("control rejected: {}", out.stderr.trim()));
    }
}

/// Scenario: the Helm library chart's pod on the real kubelet. The pod spec
/// is rendered by the real helm (`driftprobe.podSpec`, tests/support/chart.rs)
/// from a plain app pod with its own probes and run as a bare Pod (no
/// controller-manager here), in a namespace enforcing Pod Security
/// "restricted": non-root, `readOnlyRootFilesystem`, the chart's `Memory`
/// emptyDir for the state and its derived `timeoutSeconds` must all work.
/// The app's probes must have been moved: the demo server listens on
/// 127.0.0.1 only, so the kubelet's own `httpGet` (to the pod IP) could never
/// pass; driftprobe's `--http-get` asks the pod's loopback.
fn helm_chart_pod_runs(sc: &Scenario) {
    const CHART_GRACE: Duration = Duration::from_secs(4);
    const READY_AFTER: Duration = Duration::from_secs(10);
    let v1 = format!("greeting: {}\n", marker(sc, "chart-first"));
    let v2 = format!("greeting: {}\n", marker(sc, "chart-second"));
    sc.config_map("config", &[("config.txt", &v1)]);
    sc.kubectl_ok(&[
        "label",
        "namespace",
        &sc.ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "--overwrite",
    ]);
    // The app's own probes, as a chart user would have them: 3s timeouts,
    // so the derived timeoutSeconds is 4 (500ms digest + 500ms spare + 3s).
    let app_timeout = 3;
    let port: u16 = PORT.parse().unwrap_or(8080);
    let app_pod = json!({
        "nodeName": sc.node.name,
        "automountServiceAccountToken": false,
        "dnsPolicy": "Default",
        "terminationGracePeriodSeconds": TERM_GRACE.as_secs(),
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
            "seccompProfile": { "type": "RuntimeDefault" }
        },
        "volumes": [{ "name": "config", "configMap": { "name": "config" } }],
        "containers": [{
            "name": "app",
            "image": sc.node.app_image,
            "imagePullPolicy": "Never",
            "args": ["/config/config.txt", PORT],
            "env": [{ "name": "DEMO_READY_AFTER", "value": READY_AFTER.as_secs().to_string() }],
            "ports": [{ "name": "http", "containerPort": port }],
            "securityContext": {
                "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": { "drop": ["ALL"] }
            },
            "volumeMounts": [{ "name": "config", "mountPath": "/config", "readOnly": true }],
            "livenessProbe": {
                "tcpSocket": { "port": port },
                "periodSeconds": PERIOD.as_secs(),
                "failureThreshold": FAILURE_THRESHOLD,
                "timeoutSeconds": app_timeout
            },
            "readinessProbe": {
                "httpGet": { "path": "/healthz", "port": "http" },
                "periodSeconds": PERIOD.as_secs(),
                "failureThreshold": 1,
                "timeoutSeconds": app_timeout
            }
        }]
    });
    let Some((repository, tag)) = sc.node.probe_image.rsplit_once(':') else {
        sc.fail(&format!("PROBE_IMAGE {} has no tag", sc.node.probe_image));
    };
    let values = json!({
        "enabled": true,
        "container": "app",
        "paths": ["/config"],
        "image": { "repository": repository, "tag": tag, "pullPolicy": "Never" },
        "grace": secs(CHART_GRACE),
        "stagger": "0s",
    });
    let spec = match chart::render(app_pod, values) {
        Ok(spec) => spec,
        Err(e) => sc.fail(&format!("helm template failed: {e}")),
    };
    sc.note(&format!("rendered by {}", chart::helm().display()));
    let app = spec["containers"][0].clone();
    let command = |kind: &str| -> Vec<String> {
        app[kind]["exec"]["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    };
    let (live, ready) = (command("livenessProbe"), command("readinessProbe"));
    sc.note(&format!("liveness: {}", live.join(" ")));
    sc.note(&format!("readiness: {}", ready.join(" ")));
    let has = |cmd: &[String], pair: [&str; 2]| cmd.windows(2).any(|w| w == pair);
    sc.check(
        has(&live, ["--tcp-socket", PORT]) && app["livenessProbe"].get("tcpSocket").is_none(),
        "the chart moved the app's tcpSocket probe into driftprobe liveness",
    );
    let url = format!("http://127.0.0.1:{PORT}/healthz");
    sc.check(
        has(&ready, ["--http-get", &url]) && app["readinessProbe"].get("httpGet").is_none(),
        "the chart moved the app's httpGet probe (named port) into driftprobe readiness",
    );
    for kind in ["livenessProbe", "readinessProbe"] {
        sc.check(
            app[kind]["timeoutSeconds"] == app_timeout + 1,
            &format!("{kind}: timeoutSeconds derived as {}", app_timeout + 1),
        );
    }

    sc.apply(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "web", "labels": { "app": "demo" } },
        "spec": spec,
    }));
    sc.wait_running("web", 0);
    let is_ready = || sc.container_status("web")["ready"].as_bool();
    sc.wait_event(
        "web",
        &["Readiness probe failed: app: HTTP 503 from /healthz"],
        PERIOD * 3 + SLACK,
    );
    sc.wait_for(
        "web Ready (the moved app check passes)",
        READY_AFTER + PERIOD * 2 + SLACK,
        || (is_ready() == Some(true)).then_some(()),
    );
    sc.wait_served("web", &v1, SLACK);
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    let (code, line) = sc.probe("web", &live);
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "the rendered liveness command passes with ok: by hand",
    );
    let status = sc.exec(
        "web",
        &[
            "/probe/driftprobe",
            "status",
            "--state-dir",
            "/driftprobe-state",
            "/config",
        ],
    );
    sc.note(&format!(
        "status -> exit {}: {}",
        status.code,
        status.stdout.lines().next().unwrap_or("")
    ));
    sc.check(
        status.code == 0 && status.stdout.starts_with("watching:"),
        "`status` on the chart's state dir exits 0 with watching:",
    );
    // The state is on the chart's Memory emptyDir: a tmpfs the kubelet mounted.
    let uid = sc.pod_json("web")["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let state_mount = format!("/{uid}/volumes/kubernetes.io~empty-dir/driftprobe-state");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let tmpfs = mountinfo.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| m.ends_with(&state_mount))
            && l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("tmpfs "))
    });
    sc.check(
        !uid.is_empty() && tmpfs,
        "the state emptyDir (medium Memory) is a tmpfs mount",
    );
    sc.note(&format!("...{state_mount} is a tmpfs"));

    edit_config_until_one_restart(sc, &v2, CHART_GRACE);
    sc.wait_running("web", 1);
    sc.wait_for(
        "web Ready again after the restart",
        READY_AFTER + PERIOD * 2 + SLACK,
        || {
            let c = sc.container_status("web");
            (c["restartCount"] == 1 && c["ready"] == true).then_some(())
        },
    );
    sc.wait_served("web", &v2, SLACK);
    let (code, line) = sc.probe("web", &live);
    sc.check(
        code == 0 && line.starts_with("ok:"),
        "the rendered liveness command passes with ok: after the restart",
    );
    sc.assert_no_restart(
        "web",
        1,
        sc.node.quiet_window(CHART_GRACE),
        "the new container started with the new config",
    );
    sc.assert_not_in_events(v1.trim_start_matches("greeting: ").trim());
    sc.assert_not_in_events(v2.trim_start_matches("greeting: ").trim());
}
