# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_driftprobe_global_optspecs
    string join \n h/help V/version
end

function __fish_driftprobe_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_driftprobe_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_driftprobe_using_subcommand
    set -l cmd (__fish_driftprobe_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c driftprobe -n "__fish_driftprobe_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -s V -l version -d 'Print version'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "init" -d 'Record the baseline for this container instance (postStart hook)'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "run" -d 'Record the baseline, then exec CMD (same PID, signals pass through)'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "liveness" -d 'Liveness probe: exit 1 once drift outlasts the grace window'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "readiness" -d 'Readiness probe: exit 1 once drift outlasts the grace window'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "status" -d 'Show the baseline, the current digest, drift and per-file changes'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "digest" -d 'Print the tree digest of PATHs (for a pod-template annotation)'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "install" -d 'Copy this executable to DEST (init container: no shell or cp needed)'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh or fish)'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "man" -d 'Print the man page of driftprobe, or of one COMMAND (roff)'
complete -c driftprobe -n "__fish_driftprobe_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l exclude -d 'Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable; DRIFTPROBE_EXCLUDE is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l max-entries -d 'Entries walked, of every kind: files, directories, symlinks' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l max-depth -d 'Directory levels below a watched path (at most 255)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l max-bytes -d 'Bytes hashed per probe (files served from the stat cache are free): 256MiB, 1GiB, 65536' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l max-name-bytes -d 'Total bytes of all names walked (their paths below the watched path)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l deadline -d 'Wall time for walking and hashing, retries included; keep it under the probe\'s timeoutSeconds' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l state-dir -d 'Directory for the state file (use an emptyDir with readOnlyRootFilesystem)' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l full -d 'Hash every file, bypassing the stat cache'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -l force -d 'Record the current files even if this container already has a baseline, or they cannot be proven unchanged since it started'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l exclude -d 'Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable; DRIFTPROBE_EXCLUDE is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l max-entries -d 'Entries walked, of every kind: files, directories, symlinks' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l max-depth -d 'Directory levels below a watched path (at most 255)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l max-bytes -d 'Bytes hashed per probe (files served from the stat cache are free): 256MiB, 1GiB, 65536' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l max-name-bytes -d 'Total bytes of all names walked (their paths below the watched path)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l deadline -d 'Wall time for walking and hashing, retries included; keep it under the probe\'s timeoutSeconds' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l state-dir -d 'Directory for the state file (use an emptyDir with readOnlyRootFilesystem)' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -l full -d 'Hash every file, bypassing the stat cache'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l grace -d 'How long drift may last before the probe fails (e.g. 5m)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l exclude -d 'Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable; DRIFTPROBE_EXCLUDE is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l max-entries -d 'Entries walked, of every kind: files, directories, symlinks' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l max-depth -d 'Directory levels below a watched path (at most 255)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l max-bytes -d 'Bytes hashed per probe (files served from the stat cache are free): 256MiB, 1GiB, 65536' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l max-name-bytes -d 'Total bytes of all names walked (their paths below the watched path)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l deadline -d 'Wall time for walking and hashing, retries included; keep it under the probe\'s timeoutSeconds' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l state-dir -d 'Directory for the state file (use an emptyDir with readOnlyRootFilesystem)' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l http-get -d 'Also check the app like a kubelet httpGet probe: GET URL (http://IP[:PORT]/PATH, IP a literal or localhost; no https, no DNS); 200-399 passes, redirects are not followed' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l tcp-socket -d 'Also check the app like a kubelet tcpSocket probe: a TCP connect to [HOST:]PORT (HOST an IP literal or localhost) [default host: 127.0.0.1]' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l exec -d 'Also check the app like a kubelet exec probe: run CMD (split like --validate, no shell); exit 0 passes. Its output is never shown' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l app-timeout -d 'The app check fails if it has no answer within this long (counted inside the probe\'s timeoutSeconds, before the files are looked at)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l on-error -d 'What "cannot determine" exits with [default: pass for liveness, so a broken probe never restarts healthy pods; fail for readiness]' -r -f -a "pass\t'Exit 0 (the reason is still printed)'
fail\t'Exit 3 (the kubelet counts it as a failure)'"
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l lock-timeout -d 'How long to wait for a concurrent probe holding the state lock' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l stagger -d 'Spread restarts/reloads of replicas: add a per-pod offset in [0, DURATION) to the grace window, derived from the hostname' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l on-drift -d 'What to do once drift outlasts the grace window' -r -f -a "fail\t'Fail the probe (liveness: the kubelet restarts the container)'
reload\t'Signal the app to reload (or call --reload-url), adopt the new config as baseline, pass'
adopt\t'Adopt the new config as baseline and pass (apps that reload by themselves; with --validate, readiness still guards bad configs)'
report\t'Observe only: print the verdict with `(report only)` and pass; never fail for drift or an invalid config, never reload or adopt (a gradual rollout, with --log-changes). "Cannot determine" still follows --on-error'"
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l signal -d 'Signal sent by --on-drift reload (HUP, SIGUSR1, 10, ...) [default: HUP]' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l reload-url -d '--on-drift reload by an HTTP request instead of a signal: http://IP[:PORT]/PATH, IP a literal or localhost (no https, no DNS)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l reload-header -d 'Header sent with the --reload-url request, `Name: value` (repeatable). A value `@PATH` is read from that file (e.g. a mounted Secret) at each request, surrounding whitespace trimmed; values are never shown. DRIFTPROBE_RELOAD_HEADER holds one header per line' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l reload-method -d 'HTTP method of the --reload-url request' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l reload-timeout -d 'No 2xx answer within this long: not reloaded (keep the probe\'s timeoutSeconds above it)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l pid -d 'Process to signal and read --env from [default: the container\'s entrypoint: PID 1, or with shareProcessNamespace the first process of this container]' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l pidfile -d 'Read the process to signal from this pidfile' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l process -d 'Signal the oldest process with this name (from /proc/*/comm)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l validate -d 'Command that checks a new config before it is restarted or reloaded into (split on whitespace, quotes respected, no shell); run once per new digest' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l validate-timeout -d 'Kill the validator after this long (no answer: held, asked again after a minute) [default: what is left of --probe-timeout less 200ms since the probe started: 800ms for the kubelet\'s default timeoutSeconds: 1]. Keep the probe\'s timeoutSeconds above it' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l env -d 'Environment variable NAME the app started with must equal the content of PATH (the same ConfigMap key mounted as a file); repeatable; DRIFTPROBE_ENV is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l probe-timeout -d 'The probe\'s timeoutSeconds: the time the kubelet gives it. The default --validate-timeout is taken from it, and the probe warns when the --app-timeout, --validate-timeout and --reload-timeout it uses cannot fit inside it together, less 200ms' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l full -d 'Hash every file, bypassing the stat cache'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l signal-handled -d 'The app reloads on --signal although its runtime\'s default is to exit or do nothing (a Go program that calls signal.Notify, a JVM app with sun.misc.Signal.handle): signal it anyway. Without it a Go or JVM target is not signalled. Either way the probe checks that the target is still running after the signal'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -l log-changes -d 'Mirror each change of this probe\'s verdict (ok, drift, invalid, ...) as one line to the container\'s log: the stdout of the entrypoint (or of --pid/--pidfile/--process), so `kubectl logs` shows it'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand liveness" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l grace -d 'How long drift may last before the probe fails' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l exclude -d 'Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable; DRIFTPROBE_EXCLUDE is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l max-entries -d 'Entries walked, of every kind: files, directories, symlinks' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l max-depth -d 'Directory levels below a watched path (at most 255)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l max-bytes -d 'Bytes hashed per probe (files served from the stat cache are free): 256MiB, 1GiB, 65536' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l max-name-bytes -d 'Total bytes of all names walked (their paths below the watched path)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l deadline -d 'Wall time for walking and hashing, retries included; keep it under the probe\'s timeoutSeconds' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l state-dir -d 'Directory for the state file (use an emptyDir with readOnlyRootFilesystem)' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l http-get -d 'Also check the app like a kubelet httpGet probe: GET URL (http://IP[:PORT]/PATH, IP a literal or localhost; no https, no DNS); 200-399 passes, redirects are not followed' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l tcp-socket -d 'Also check the app like a kubelet tcpSocket probe: a TCP connect to [HOST:]PORT (HOST an IP literal or localhost) [default host: 127.0.0.1]' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l exec -d 'Also check the app like a kubelet exec probe: run CMD (split like --validate, no shell); exit 0 passes. Its output is never shown' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l app-timeout -d 'The app check fails if it has no answer within this long (counted inside the probe\'s timeoutSeconds, before the files are looked at)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l on-error -d 'What "cannot determine" exits with [default: pass for liveness, so a broken probe never restarts healthy pods; fail for readiness]' -r -f -a "pass\t'Exit 0 (the reason is still printed)'
fail\t'Exit 3 (the kubelet counts it as a failure)'"
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l lock-timeout -d 'How long to wait for a concurrent probe holding the state lock' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l stagger -d 'Spread restarts/reloads of replicas: add a per-pod offset in [0, DURATION) to the grace window, derived from the hostname' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l on-drift -d 'What to do once drift outlasts the grace window' -r -f -a "fail\t'Fail the probe (liveness: the kubelet restarts the container)'
reload\t'Signal the app to reload (or call --reload-url), adopt the new config as baseline, pass'
adopt\t'Adopt the new config as baseline and pass (apps that reload by themselves; with --validate, readiness still guards bad configs)'
report\t'Observe only: print the verdict with `(report only)` and pass; never fail for drift or an invalid config, never reload or adopt (a gradual rollout, with --log-changes). "Cannot determine" still follows --on-error'"
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l signal -d 'Signal sent by --on-drift reload (HUP, SIGUSR1, 10, ...) [default: HUP]' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l reload-url -d '--on-drift reload by an HTTP request instead of a signal: http://IP[:PORT]/PATH, IP a literal or localhost (no https, no DNS)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l reload-header -d 'Header sent with the --reload-url request, `Name: value` (repeatable). A value `@PATH` is read from that file (e.g. a mounted Secret) at each request, surrounding whitespace trimmed; values are never shown. DRIFTPROBE_RELOAD_HEADER holds one header per line' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l reload-method -d 'HTTP method of the --reload-url request' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l reload-timeout -d 'No 2xx answer within this long: not reloaded (keep the probe\'s timeoutSeconds above it)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l pid -d 'Process to signal and read --env from [default: the container\'s entrypoint: PID 1, or with shareProcessNamespace the first process of this container]' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l pidfile -d 'Read the process to signal from this pidfile' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l process -d 'Signal the oldest process with this name (from /proc/*/comm)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l validate -d 'Command that checks a new config before it is restarted or reloaded into (split on whitespace, quotes respected, no shell); run once per new digest' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l validate-timeout -d 'Kill the validator after this long (no answer: held, asked again after a minute) [default: what is left of --probe-timeout less 200ms since the probe started: 800ms for the kubelet\'s default timeoutSeconds: 1]. Keep the probe\'s timeoutSeconds above it' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l on-invalid -d 'Readiness while the new config is invalid; liveness always holds (and warns when given it on its command line). `pass` keeps serving the old config; `fail` takes the pod out of its Services (a bad edit reaches every replica: all of them)' -r -f -a "pass\t'Exit 0: keep serving on the running config (the reason is printed)'
fail\t'Exit 1: the pod leaves its Services until the config is fixed'"
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l env -d 'Environment variable NAME the app started with must equal the content of PATH (the same ConfigMap key mounted as a file); repeatable; DRIFTPROBE_ENV is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l probe-timeout -d 'The probe\'s timeoutSeconds: the time the kubelet gives it. The default --validate-timeout is taken from it, and the probe warns when the --app-timeout, --validate-timeout and --reload-timeout it uses cannot fit inside it together, less 200ms' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l full -d 'Hash every file, bypassing the stat cache'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l signal-handled -d 'The app reloads on --signal although its runtime\'s default is to exit or do nothing (a Go program that calls signal.Notify, a JVM app with sun.misc.Signal.handle): signal it anyway. Without it a Go or JVM target is not signalled. Either way the probe checks that the target is still running after the signal'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -l log-changes -d 'Mirror each change of this probe\'s verdict (ok, drift, invalid, ...) as one line to the container\'s log: the stdout of the entrypoint (or of --pid/--pidfile/--process), so `kubectl logs` shows it'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand readiness" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l exclude -d 'Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable; DRIFTPROBE_EXCLUDE is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l max-entries -d 'Entries walked, of every kind: files, directories, symlinks' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l max-depth -d 'Directory levels below a watched path (at most 255)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l max-bytes -d 'Bytes hashed per probe (files served from the stat cache are free): 256MiB, 1GiB, 65536' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l max-name-bytes -d 'Total bytes of all names walked (their paths below the watched path)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l deadline -d 'Wall time for walking and hashing, retries included; keep it under the probe\'s timeoutSeconds' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l state-dir -d 'Directory for the state file (use an emptyDir with readOnlyRootFilesystem)' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l stagger -d 'Show this pod\'s offset for the probes\' --stagger window' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l full -d 'Hash every file, bypassing the stat cache'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -l json -d 'Machine-readable output (schema in the README)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l exclude -d 'Ignore files matching GLOB (`*.bak`, `certs/*.pem`); repeatable; DRIFTPROBE_EXCLUDE is a `,`-separated list' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l max-entries -d 'Entries walked, of every kind: files, directories, symlinks' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l max-depth -d 'Directory levels below a watched path (at most 255)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l max-bytes -d 'Bytes hashed per probe (files served from the stat cache are free): 256MiB, 1GiB, 65536' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l max-name-bytes -d 'Total bytes of all names walked (their paths below the watched path)' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l deadline -d 'Wall time for walking and hashing, retries included; keep it under the probe\'s timeoutSeconds' -r
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l key-file -d 'Key the digest with HMAC-SHA-256 (for Secrets; the same key file in CI and the pod)' -r -F
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -l json -d 'Print the per-file manifest as JSON'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand digest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "init" -d 'Record the baseline for this container instance (postStart hook)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "run" -d 'Record the baseline, then exec CMD (same PID, signals pass through)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "liveness" -d 'Liveness probe: exit 1 once drift outlasts the grace window'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "readiness" -d 'Readiness probe: exit 1 once drift outlasts the grace window'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "status" -d 'Show the baseline, the current digest, drift and per-file changes'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "digest" -d 'Print the tree digest of PATHs (for a pod-template annotation)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "install" -d 'Copy this executable to DEST (init container: no shell or cp needed)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh or fish)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "man" -d 'Print the man page of driftprobe, or of one COMMAND (roff)'
complete -c driftprobe -n "__fish_driftprobe_using_subcommand help; and not __fish_seen_subcommand_from init run liveness readiness status digest install completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
