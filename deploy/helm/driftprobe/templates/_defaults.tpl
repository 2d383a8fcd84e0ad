{{/*
The settings of one workload's driftprobe, with their defaults. A workload
passes its own block (usually .Values.driftprobe, or one per workload) to
"driftprobe.podSpec"; what it leaves out is taken from here.
*/}}
{{- define "driftprobe.defaults" -}}
# Off unless the workload opts in.
enabled: false
# The app container to probe, by name; empty: the first container.
container: ""
image:
  repository: driftprobe
  tag: "0.1.0"
  # sha256:…; when set it is used instead of the tag.
  digest: ""
  pullPolicy: IfNotPresent
# Watched mount points (whole ConfigMap/Secret volumes, not subPath); at least one.
paths: []
# Globs left out of the digest (--exclude).
excludes: []
# The state file's directory: an emptyDir of its own is mounted here, so the
# probe works with readOnlyRootFilesystem and the baseline survives restarts.
stateDir: /driftprobe-state
stateVolume:
  medium: Memory
  sizeLimit: 1Mi
# How long drift may last before the probes act, plus a per-pod offset in
# [0, stagger) (a spread, not one pod at a time: see doc/adoption.md, "Stagger").
grace: 5m
stagger: 2m
# What liveness does once drift outlasts the window: fail (the kubelet
# restarts the container), reload, adopt, or report (observe only: never
# fails, never reloads; readiness then reports too).
onDrift: fail
# --on-drift reload: a signal, or an HTTP request to the app.
reload:
  signal: ""
  # The app handles the signal (needed for Go and JVM apps, whose runtime exits on SIGHUP).
  signalHandled: false
  url: ""
  method: ""
  # 'Name: value', or 'Name: @/path' to read the value from a mounted file.
  header: ""
  timeout: 500ms
# A command that checks a new config before it is used (--validate).
validate:
  command: ""
  timeout: 2s
  # Readiness while the new config is invalid: pass (keep serving) or fail.
  onInvalid: pass
# Mirror verdict changes as one line to the container's log (--log-changes).
logChanges: false
readiness:
  enabled: true
liveness:
  enabled: true
# The app's own check (its livenessProbe/readinessProbe, moved into the
# driftprobe probe): move it (true), or fail rendering when the container has
# one (false) so nothing is dropped silently.
moveAppProbes: true
# The app check's own timeout (--app-timeout); empty: the moved probe's
# timeoutSeconds (the kubelet's default, 1s, when it has none).
appTimeout: ""
# Probe timings where the app had no probe of that kind (a moved probe keeps its own).
probe:
  periodSeconds: 10
  livenessFailureThreshold: 3
  readinessFailureThreshold: 1
  # Empty: derived from what one probe may take (the digest's 500ms, the app
  # check, the validator, the reload request, 500ms to spare), rounded up to
  # whole seconds. A value below that fails rendering.
  timeoutSeconds: ""
# The init container that copies the probe binary into a shared emptyDir.
initContainer:
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      memory: 32Mi
# The init container's securityContext (Pod Security "restricted"). No fixed
# UID: the image runs as 65532, and platforms that assign one (OpenShift) can.
# Set runAsUser/runAsGroup only where a fixed one is wanted.
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
{{- end }}
