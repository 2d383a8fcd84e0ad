//! The app's own health check (`--http-get`, `--tcp-socket`, `--exec`):
//! what the container's probe did before driftprobe took its place, run
//! first and ANDed into the verdict by `probe`.
//!
//! A container has one liveness and one readiness probe; an app that
//! already had an httpGet, tcpSocket or exec probe keeps it through these
//! flags. Each check answers within `--app-timeout` and says only codes:
//! never an HTTP reason phrase, header or body, never what a command
//! printed (any of them may quote a Secret, and the line becomes an
//! Event). The request is [`http`]'s, the command runs through
//! [`validator::run_command`] (own process group, killed at the timeout).

use crate::cli::AppArgs;
use crate::http::{self, NoAnswer, Url};
use crate::time::format_duration;
use crate::validator::{self, Ending};
use std::time::Duration;

/// One configured check and its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    kind: Kind,
    timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    HttpGet(Url),
    TcpSocket(Url),
    Exec(Vec<String>),
}

impl Check {
    /// The check the flags ask for, if any; `Err` (a usage error) for a bad
    /// URL or address, or a command that is not an executable in PATH.
    pub fn from_args(args: &AppArgs) -> Result<Option<Check>, String> {
        let kind = if let Some(url) = &args.http_get {
            Kind::HttpGet(Url::parse("--http-get", url)?)
        } else if let Some(addr) = &args.tcp_socket {
            Kind::TcpSocket(Url::parse_socket("--tcp-socket", addr)?)
        } else if let Some(line) = args.exec.as_deref().filter(|l| !l.trim().is_empty()) {
            let argv = validator::split_words("--exec", line)?;
            if validator::find_program(&argv[0]).is_none() {
                return Err(format!("--exec: {} is not an executable in PATH", argv[0]));
            }
            Kind::Exec(argv)
        } else {
            return Ok(None);
        };
        Ok(Some(Check {
            kind,
            timeout: args.app_timeout,
        }))
    }

    /// The same check, given at most `most` to answer (what is left of
    /// the probe's deadline).
    #[must_use]
    pub fn within(mut self, most: Duration) -> Check {
        self.timeout = self.timeout.min(most);
        self
    }

    /// Runs the check: `Err` says why the app failed it, for the line after
    /// `app: `.
    pub fn run(&self) -> Result<(), String> {
        let within = format_duration(self.timeout);
        match &self.kind {
            Kind::HttpGet(url) => match http::exchange("GET", url, &[], self.timeout) {
                // Like the kubelet's httpGet: 2xx and 3xx pass (redirects
                // are not followed).
                Ok(code) if (200..400).contains(&code) => Ok(()),
                Ok(code) => Err(format!("HTTP {code} from {}", url.path())),
                Err(e) => Err(no_answer(&e, url, &within, || {
                    format!("GET {} on {}", url.path(), url.endpoint())
                })),
            },
            Kind::TcpSocket(addr) => http::connects(addr, self.timeout).map_err(|e| {
                no_answer(&e, addr, &within, || {
                    format!("connect to {}", addr.endpoint())
                })
            }),
            Kind::Exec(argv) => {
                let program = &argv[0];
                // What it printed is dropped unread by anyone.
                match validator::run_command(argv, self.timeout, &mut |_| {}).0 {
                    Ending::Exited(0) => Ok(()),
                    Ending::Exited(c) => Err(format!("exec {program} exited {c}")),
                    Ending::Signalled => Err(format!("exec {program} was killed by a signal")),
                    Ending::TimedOut => {
                        Err(format!("exec {program} gave no answer within {within}"))
                    }
                    Ending::CannotRun(why) | Ending::Broken(why) => {
                        Err(format!("exec {program} cannot be run: {why}"))
                    }
                }
            }
        }
    }
}

/// Why there was no HTTP answer or connection, for the line.
fn no_answer(e: &NoAnswer, url: &Url, within: &str, what: impl Fn() -> String) -> String {
    match e {
        NoAnswer::Refused => format!("connection refused on {}", url.endpoint()),
        NoAnswer::Late => format!("no answer from {} within {within}", url.endpoint()),
        NoAnswer::NoFinal(code) => {
            format!("{} answered {code} but no final status", what())
        }
        NoAnswer::Other(why) => format!("{} {why}", what()),
    }
}

/// The probe's line when the app failed its check (`why`), given what the
/// files said (`files`: the line the probe prints without an app check).
/// App first; the files' line follows unless it is a plain `ok:`.
pub fn line(why: &str, files: &str) -> String {
    if files.is_empty() || files.starts_with("ok:") {
        format!("app: {why}")
    } else {
        format!("app: {why}; {files}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(http: Option<&str>, tcp: Option<&str>, exec: Option<&str>) -> AppArgs {
        AppArgs {
            http_get: http.map(Into::into),
            tcp_socket: tcp.map(Into::into),
            exec: exec.map(Into::into),
            app_timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn flags_become_checks_or_usage_errors() {
        assert_eq!(Check::from_args(&args(None, None, None)), Ok(None));
        assert_eq!(Check::from_args(&args(None, None, Some("  "))), Ok(None));
        let c = Check::from_args(&args(Some("http://127.0.0.1:8080/health?t=1"), None, None))
            .unwrap()
            .unwrap();
        let Kind::HttpGet(u) = &c.kind else {
            panic!("{c:?}")
        };
        assert_eq!(
            (u.path(), u.endpoint()),
            ("/health", "127.0.0.1:8080".into())
        );
        for (text, endpoint) in [
            ("8080", "127.0.0.1:8080"),
            ("localhost:9", "localhost:9"),
            ("[::1]:443", "[::1]:443"),
            ("10.0.0.7:5432", "10.0.0.7:5432"),
        ] {
            let c = Check::from_args(&args(None, Some(text), None))
                .unwrap()
                .unwrap();
            let Kind::TcpSocket(u) = &c.kind else {
                panic!("{c:?}")
            };
            assert_eq!(u.endpoint(), endpoint, "{text}");
        }
        for (http, tcp, exec, why) in [
            (
                Some("https://127.0.0.1/"),
                None,
                None,
                "https is not supported",
            ),
            (
                Some("http://app:8080/"),
                None,
                None,
                "resolves no host names",
            ),
            (None, Some("localhost"), None, "port is required"),
            (None, Some("[::1]"), None, "port is required"),
            (None, Some(""), None, "port is required"),
            (None, Some("db:5432"), None, "resolves no host names"),
            (None, Some("127.0.0.1:8080/x"), None, "expected [HOST:]PORT"),
            (None, Some("70000"), None, "bad port"),
            (
                None,
                None,
                Some("no-such-check-driftprobe"),
                "not an executable",
            ),
            (
                None,
                None,
                Some("'true"),
                "--exec \"'true\": unclosed single quote",
            ),
        ] {
            let err = Check::from_args(&args(http, tcp, exec)).unwrap_err();
            assert!(err.contains(why), "{http:?} {tcp:?} {exec:?}: {err}");
        }
    }

    #[test]
    fn the_line_names_the_app_first() {
        assert_eq!(line("HTTP 503 from /h", ""), "app: HTTP 503 from /h");
        assert_eq!(
            line("HTTP 503 from /h", "ok: config matches the baseline (x)"),
            "app: HTTP 503 from /h"
        );
        assert_eq!(
            line("exec c exited 1", "drift: 1 changed (a) since 10:00:00Z"),
            "app: exec c exited 1; drift: 1 changed (a) since 10:00:00Z"
        );
    }

    #[test]
    fn exec_checks_say_codes_only() {
        let check = |line: &str, ms| Check {
            kind: Kind::Exec(validator::split_command(line).unwrap()),
            timeout: Duration::from_millis(ms),
        };
        assert_eq!(check("true", 2000).run(), Ok(()));
        assert_eq!(
            check("sh -c 'echo s3cr3t; exit 4'", 2000).run(),
            Err("exec sh exited 4".into())
        );
        assert_eq!(
            check("sleep 5", 100).run(),
            Err("exec sleep gave no answer within 100ms".into())
        );
    }
}
