//! End-to-end tests of what a probe does beyond "restart on change"
//! (issue 5): reload in place by signal (a real nginx, PID-namespace PID 1,
//! missing/dead/forbidden targets), reload by HTTP request (a real
//! Prometheus, and fake servers that fail in every way; issue 9), the
//! `--validate` gate, `--env` drift, subPath detection, `--stagger`, the
//! app's own health check composed in (compose.rs), and what a probe makes
//! visible (`--log-changes`, `--on-drift report`, misconfigurations; issue
//! 17). All drive the real binary; the
//! ConfigMap volumes are written by the kubelet-faithful emulation in
//! tests/support. Most tests need root (namespaces, bind mounts, setpriv).

mod support;

mod reload {
    mod common;
    mod compose;
    mod env;
    mod headers;
    mod http;
    mod nginx;
    mod pair;
    mod prometheus;
    mod runtimes;
    mod signals;
    mod stagger;
    mod subpath;
    mod told;
    mod validate;
    mod visible;
}
