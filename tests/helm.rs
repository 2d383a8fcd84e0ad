//! The Helm library chart (deploy/helm/driftprobe) rendered by the real helm.
//!
//! Each test writes a one-template workload chart into a temp dir (its
//! charts/driftprobe a link to the library chart), passes a pod spec and a
//! `driftprobe:` block as values, runs `helm template`, and asserts on the pod
//! spec that "driftprobe.podSpec" returns: the app's own probe moved into
//! driftprobe's flags with its timings, the derived timeoutSeconds, the init
//! container's securityContext, and a clear refusal for every probe that
//! cannot be moved.
//!
//! helm is `DRIFTPROBE_HELM`, else what `e2e/tools/build.sh` prints
//! (tests/support/chart.rs, shared with the real-node suite).

use std::fs;

use serde_json::{json, Value};

#[path = "support/chart.rs"]
mod chart;
use chart::render;

fn rendered(pod: Value, values: Value) -> Value {
    render(pod, values).unwrap_or_else(|e| panic!("helm template failed:\n{e}"))
}

fn refused(pod: Value, values: Value) -> String {
    match render(pod, values) {
        Ok(spec) => panic!("helm template rendered, expected a refusal:\n{spec:#}"),
        Err(e) => e,
    }
}

/// A Spring-like app container with the given probes.
fn app_pod(liveness: Value, readiness: Value) -> Value {
    let mut c = json!({
        "name": "app",
        "image": "registry.example.com/orders:2.4.1",
        "ports": [{ "name": "http", "containerPort": 8080 }],
        "volumeMounts": [{ "name": "config", "mountPath": "/etc/config", "readOnly": true }],
    });
    if !liveness.is_null() {
        c["livenessProbe"] = liveness;
    }
    if !readiness.is_null() {
        c["readinessProbe"] = readiness;
    }
    json!({
        "containers": [{ "name": "sidecar", "image": "sidecar:1" }, c],
        "volumes": [{ "name": "config", "configMap": { "name": "app-config" } }],
    })
}

fn on() -> Value {
    json!({ "enabled": true, "container": "app", "paths": ["/etc/config", "/etc/secret"] })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn container<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {spec:#}"))
}

fn command(probe: &Value) -> Vec<String> {
    probe["exec"]["command"]
        .as_array()
        .unwrap_or_else(|| panic!("not an exec probe: {probe:#}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The value after `flag` in `cmd`, if the flag is there.
fn flag<'a>(cmd: &'a [String], flag: &str) -> Option<&'a str> {
    cmd.iter()
        .position(|a| a == flag)
        .map(|i| cmd[i + 1].as_str())
}

#[test]
fn http_get_probe_is_moved_with_its_timings() {
    let liveness = json!({
        "httpGet": { "path": "/actuator/health/liveness", "port": "http" },
        "initialDelaySeconds": 30, "periodSeconds": 7, "timeoutSeconds": 3, "failureThreshold": 4,
    });
    let spec = rendered(app_pod(liveness, Value::Null), on());
    let app = container(&spec, "app");
    let probe = &app["livenessProbe"];
    assert!(
        probe.get("httpGet").is_none(),
        "the httpGet handler stays: {probe:#}"
    );
    let cmd = command(probe);
    assert_eq!(&cmd[..2], ["/probe/driftprobe", "liveness"]);
    assert_eq!(
        flag(&cmd, "--http-get"),
        Some("http://127.0.0.1:8080/actuator/health/liveness"),
        "{cmd:?}"
    );
    assert_eq!(flag(&cmd, "--app-timeout"), Some("3s"));
    // 500ms digest + 500ms spare + the app's 3s.
    assert_eq!(probe["timeoutSeconds"], 4);
    assert_eq!(flag(&cmd, "--probe-timeout"), Some("4s"));
    assert_eq!(probe["initialDelaySeconds"], 30);
    assert_eq!(probe["periodSeconds"], 7);
    assert_eq!(probe["failureThreshold"], 4);
    assert_eq!(&cmd[cmd.len() - 2..], ["/etc/config", "/etc/secret"]);
    assert_eq!(flag(&cmd, "--state-dir"), Some("/driftprobe-state"));

    // Readiness had no probe of its own: driftprobe's alone, the defaults.
    let ready = &app["readinessProbe"];
    let rcmd = command(ready);
    assert_eq!(flag(&rcmd, "--http-get"), None, "{rcmd:?}");
    assert_eq!(ready["timeoutSeconds"], 1);
    assert_eq!(ready["failureThreshold"], 1);
    assert_eq!(ready["periodSeconds"], 10);

    // Mounts on the app container only; the other container is untouched.
    let mounts: Vec<&str> = app["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/etc/config", "/probe", "/driftprobe-state"]);
    assert_eq!(
        container(&spec, "sidecar"),
        &json!({ "name": "sidecar", "image": "sidecar:1" })
    );
}

#[test]
fn tcp_socket_and_exec_probes_are_moved() {
    let liveness = json!({ "tcpSocket": { "port": 5432 } });
    let check = ["sh", "-c", "test -f /tmp/ready && echo it's \"ok\""];
    let readiness = json!({ "exec": { "command": check }, "timeoutSeconds": 2 });
    let spec = rendered(app_pod(liveness, readiness), on());
    let app = container(&spec, "app");
    let live = command(&app["livenessProbe"]);
    assert_eq!(flag(&live, "--tcp-socket"), Some("5432"), "{live:?}");
    assert_eq!(flag(&live, "--app-timeout"), Some("1s"));
    assert!(app["livenessProbe"].get("tcpSocket").is_none());

    let ready = command(&app["readinessProbe"]);
    let exec = flag(&ready, "--exec").expect("--exec");
    // driftprobe splits --exec like --validate: the words come back exactly.
    assert_eq!(
        driftprobe::validator::split_command(exec).expect("splits"),
        check,
        "--exec {exec}"
    );
    assert_eq!(app["readinessProbe"]["timeoutSeconds"], 3);
}

#[test]
fn probes_that_cannot_be_moved_fail_rendering_with_the_reason() {
    let cases = [
        (
            json!({ "grpc": { "port": 9090 } }),
            "is a grpc probe, which driftprobe cannot run",
        ),
        (
            json!({ "httpGet": { "path": "/h", "port": 8443, "scheme": "HTTPS" } }),
            "uses scheme HTTPS",
        ),
        (
            json!({ "httpGet": { "path": "/h", "port": 8080, "httpHeaders": [{ "name": "X-Probe", "value": "1" }] } }),
            "sends httpHeaders",
        ),
        (
            json!({ "httpGet": { "path": "/h", "port": "admin" } }),
            "uses port \"admin\", which container \"app\" does not declare",
        ),
        (
            json!({ "tcpSocket": { "port": 8080, "host": "db.example.com" } }),
            "driftprobe resolves no names",
        ),
    ];
    for (probe, reason) in cases {
        let err = refused(app_pod(probe.clone(), Value::Null), on());
        assert!(
            err.contains("container \"app\"'s livenessProbe") && err.contains(reason),
            "probe {probe}: expected {reason:?} in:\n{err}"
        );
    }
    // The same probe is kept, and rendering passes, with liveness left alone.
    let grpc = json!({ "grpc": { "port": 9090 } });
    let spec = rendered(
        app_pod(grpc.clone(), Value::Null),
        with(on(), json!({ "liveness": { "enabled": false } })),
    );
    assert_eq!(container(&spec, "app")["livenessProbe"], grpc);
    assert!(container(&spec, "app")["readinessProbe"]["exec"].is_object());
}

#[test]
fn settings_that_cannot_work_fail_rendering() {
    let pod = app_pod(Value::Null, Value::Null);
    let err = refused(pod.clone(), json!({ "enabled": true }));
    assert!(err.contains("enabled but no paths"), "{err}");
    let err = refused(pod.clone(), with(on(), json!({ "container": "api" })));
    assert!(err.contains("no container named \"api\""), "{err}");
    let err = refused(
        pod.clone(),
        with(
            on(),
            json!({ "validate": { "command": "nginx -t" }, "probe": { "timeoutSeconds": 2 } }),
        ),
    );
    assert!(
        err.contains("probe.timeoutSeconds 2 is below what one liveness probe may take (3000ms"),
        "{err}"
    );
    let err = refused(pod.clone(), with(on(), json!({ "grace": "5 minutes" })));
    assert!(err.contains("not a duration"), "{err}");
    let err = refused(
        app_pod(json!({ "tcpSocket": { "port": 80 } }), Value::Null),
        with(on(), json!({ "moveAppProbes": false })),
    );
    assert!(err.contains("already has a livenessProbe"), "{err}");
}

#[test]
fn timeout_is_derived_from_validate_reload_and_app_timeouts() {
    let values = with(
        on(),
        json!({
            "onDrift": "reload",
            "reload": { "url": "http://127.0.0.1:8080/actuator/refresh", "header": "Authorization: @/etc/refresh/token", "timeout": "1500ms" },
            "validate": { "command": "/app/check --config /etc/config/app.yaml", "timeout": "3s", "onInvalid": "fail" },
        }),
    );
    let liveness = json!({ "httpGet": { "path": "/h", "port": 8080 }, "timeoutSeconds": 2 });
    let spec = rendered(app_pod(liveness, Value::Null), values);
    let app = container(&spec, "app");
    let live = command(&app["livenessProbe"]);
    // 1s + reload 1.5s + validate 3s + app 2s = 7.5s -> 8.
    assert_eq!(app["livenessProbe"]["timeoutSeconds"], 8, "{live:?}");
    assert_eq!(flag(&live, "--probe-timeout"), Some("8s"));
    assert_eq!(flag(&live, "--on-drift"), Some("reload"));
    assert_eq!(
        flag(&live, "--reload-url"),
        Some("http://127.0.0.1:8080/actuator/refresh")
    );
    assert_eq!(
        flag(&live, "--reload-header"),
        Some("Authorization: @/etc/refresh/token")
    );
    assert_eq!(
        flag(&live, "--validate"),
        Some("/app/check --config /etc/config/app.yaml")
    );
    assert_eq!(flag(&live, "--validate-timeout"), Some("3s"));
    assert_eq!(
        flag(&live, "--on-invalid"),
        None,
        "--on-invalid does nothing on liveness"
    );
    // Readiness never reloads (liveness does), and gates on the validator.
    let ready = command(&app["readinessProbe"]);
    assert_eq!(flag(&ready, "--reload-url"), None, "{ready:?}");
    assert_eq!(flag(&ready, "--on-drift"), None);
    assert_eq!(flag(&ready, "--on-invalid"), Some("fail"));
    assert_eq!(app["readinessProbe"]["timeoutSeconds"], 4);

    // A signal reload the user vouches for.
    let spec = rendered(
        app_pod(Value::Null, Value::Null),
        with(
            on(),
            json!({ "onDrift": "reload", "reload": { "signal": "HUP", "signalHandled": true } }),
        ),
    );
    let live = command(&container(&spec, "app")["livenessProbe"]);
    assert_eq!(flag(&live, "--signal"), Some("HUP"));
    assert!(live.iter().any(|a| a == "--signal-handled"), "{live:?}");
}

#[test]
fn init_container_image_and_security_context() {
    let spec = rendered(app_pod(Value::Null, Value::Null), on());
    let init = &spec["initContainers"][0];
    assert_eq!(init["name"], "install-driftprobe");
    assert_eq!(init["image"], "driftprobe:0.1.0");
    assert_eq!(init["args"], json!(["install", "/probe/driftprobe"]));
    let sc = &init["securityContext"];
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(
        sc.get("runAsUser").is_none(),
        "no fixed UID unless set: {sc:#}"
    );
    let volumes = spec["volumes"].as_array().unwrap();
    assert!(volumes
        .iter()
        .any(|v| v["name"] == "driftprobe-state" && v["emptyDir"]["medium"] == "Memory"));

    let spec = rendered(
        app_pod(Value::Null, Value::Null),
        with(
            on(),
            json!({
                "image": { "repository": "registry.example.com/driftprobe", "digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "pullPolicy": "Always" },
                "securityContext": { "runAsUser": 1000710000 },
                "initContainer": { "resources": { "limits": { "memory": "8Mi" } } },
            }),
        ),
    );
    let init = &spec["initContainers"][0];
    assert_eq!(init["image"], "registry.example.com/driftprobe@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_eq!(init["imagePullPolicy"], "Always");
    assert_eq!(init["securityContext"]["runAsUser"], 1000710000);
    // Merged into the defaults, not replacing them.
    assert_eq!(
        init["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(init["resources"]["limits"]["memory"], "8Mi");
    assert_eq!(init["resources"]["requests"]["cpu"], "10m");
}

#[test]
fn disabled_or_readiness_off_leaves_the_pod_alone() {
    let readiness = json!({ "httpGet": { "path": "/ready", "port": 8080 } });
    let pod = app_pod(Value::Null, readiness.clone());
    let spec = rendered(
        pod.clone(),
        json!({ "enabled": false, "paths": ["/etc/config"] }),
    );
    assert_eq!(spec, pod);
    // false overrides a true default (a plain mergeOverwrite would keep true).
    let spec = rendered(
        pod.clone(),
        with(on(), json!({ "readiness": { "enabled": false } })),
    );
    let app = container(&spec, "app");
    assert_eq!(app["readinessProbe"], readiness);
    assert!(app["livenessProbe"]["exec"].is_object());
}

#[test]
fn observe_only_reports_on_both_probes() {
    let spec = rendered(
        app_pod(Value::Null, Value::Null),
        with(
            on(),
            json!({ "onDrift": "report", "logChanges": true, "excludes": ["*.bak", "..tmp*"] }),
        ),
    );
    let app = container(&spec, "app");
    for kind in ["livenessProbe", "readinessProbe"] {
        let cmd = command(&app[kind]);
        assert_eq!(flag(&cmd, "--on-drift"), Some("report"), "{kind}: {cmd:?}");
        assert!(cmd.iter().any(|a| a == "--log-changes"), "{kind}: {cmd:?}");
        let excludes: Vec<&str> = cmd
            .windows(2)
            .filter(|w| w[0] == "--exclude")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(excludes, ["*.bak", "..tmp*"]);
    }
}

/// The contract with the binary: every probe command the chart renders is
/// one `driftprobe` parses (no usage error, exit 2). Run for real against a
/// temp dir: the app checks point at a closed local port or `true`; the
/// reloads wait an hour of grace, so nothing is signalled or called.
/// (Needs the flags of issue 17's other parts: --http-get, --tcp-socket,
/// --exec, --app-timeout, --signal-handled, --reload-header, --on-drift
/// report, --log-changes, --probe-timeout.)
#[test]
fn rendered_probe_commands_parse_with_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("app.yaml"), "greeting: hello\n").unwrap();
    let token = dir.path().join("token");
    fs::write(&token, "secret\n").unwrap();
    let paths = json!([config.to_string_lossy()]);
    let port = {
        // A local port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let http = json!({ "httpGet": { "path": "/health", "port": port }, "timeoutSeconds": 1 });
    let tcp = json!({ "tcpSocket": { "port": port } });
    let exec = json!({ "exec": { "command": ["true", "it's ok"] } });
    let setups = [
        (
            http.clone(),
            exec.clone(),
            json!({ "validate": { "command": "true", "timeout": "1s", "onInvalid": "fail" }, "logChanges": true, "excludes": ["*.bak"] }),
        ),
        (
            tcp.clone(),
            http.clone(),
            json!({ "onDrift": "reload", "grace": "1h", "reload": { "url": format!("http://127.0.0.1:{port}/reload"), "method": "POST", "header": format!("X-Token: @{}", token.display()), "timeout": "300ms" } }),
        ),
        (
            exec.clone(),
            tcp.clone(),
            // A long grace: the fresh files are drift, and no signal may go out here.
            json!({ "onDrift": "reload", "grace": "1h", "reload": { "signal": "HUP", "signalHandled": true } }),
        ),
        (
            http.clone(),
            http.clone(),
            json!({ "onDrift": "report", "logChanges": true }),
        ),
        (
            Value::Null,
            Value::Null,
            json!({ "onDrift": "adopt", "grace": "0s", "stagger": "0s" }),
        ),
    ];
    for (n, (liveness, readiness, extra)) in setups.into_iter().enumerate() {
        let state = dir.path().join(format!("state-{n}"));
        let mut values = with(on(), extra);
        values["paths"] = paths.clone();
        values["stateDir"] = json!(state.to_string_lossy());
        let spec = rendered(app_pod(liveness, readiness), values);
        let app = container(&spec, "app");
        for kind in ["livenessProbe", "readinessProbe"] {
            let cmd = command(&app[kind]);
            let out = assert_cmd::Command::cargo_bin("driftprobe")
                .unwrap()
                .args(&cmd[1..])
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .timeout(std::time::Duration::from_secs(20))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(
                out.status.code(),
                Some(2),
                "setup {n}, {kind}: driftprobe refused the rendered command {cmd:?}:\n{stderr}"
            );
        }
    }
}
