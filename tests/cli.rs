//! Black-box tests of the real `driftprobe` binary, driven by a kubelet-faithful
//! ConfigMap volume emulation (tests/support). One test binary; the modules
//! under tests/cli/ group the tests by topic.

mod support;

mod cli {
    mod adoption_guide;
    mod alerts;
    mod bad_input;
    mod basics;
    mod output;
    mod probes;
    mod proof;
    mod restart;
    mod state;
    mod torn;
    mod values;
    mod version;
}
