{{/*
driftprobe.podSpec: a workload's pod spec with driftprobe added.

  spec:
    template:
      spec:
        {{- include "driftprobe.podSpec" (dict "pod" (fromYaml (include "myapp.podSpec" .)) "values" .Values.driftprobe) | nindent 8 }}

"pod" is the pod spec as a dict, "values" the workload's driftprobe settings
(templates/_defaults.tpl). With enabled: false the pod spec comes back
unchanged. Otherwise it gets the init container that copies the probe into an
emptyDir, that emptyDir and the state emptyDir, their mounts in the app
container, and the liveness and readiness probes. The app container's own
livenessProbe/readinessProbe is MOVED into the probe of the same kind
(httpGet -> --http-get, tcpSocket -> --tcp-socket, exec -> --exec, its
timeoutSeconds -> --app-timeout), keeping its timings; what cannot be moved
(https, httpHeaders, grpc, a host name, a named port the container does not
declare) fails rendering with the reason.
*/}}
{{- define "driftprobe.podSpec" -}}
{{- $pod := deepCopy (.pod | default dict) -}}
{{- $v := fromYaml (include "driftprobe.defaults" .) -}}
{{- include "driftprobe.merge" (dict "dst" $v "src" (deepCopy (.values | default dict))) -}}
{{- if $v.enabled -}}
{{- if not $v.paths -}}
{{- fail "driftprobe: enabled but no paths: set driftprobe.paths to the app container's ConfigMap/Secret mount points" -}}
{{- end -}}
{{- range $d := list $v.grace $v.stagger -}}{{- $_ := include "driftprobe.ms" $d -}}{{- end -}}
{{- $containers := $pod.containers | default list -}}
{{- if not $containers -}}
{{- fail "driftprobe: the pod spec has no containers" -}}
{{- end -}}
{{- $app := dict -}}
{{- if $v.container -}}
{{- range $containers -}}
{{- if eq .name $v.container -}}{{- $app = . -}}{{- end -}}
{{- end -}}
{{- if not $app -}}
{{- fail (printf "driftprobe: no container named %q in the pod spec (driftprobe.container)" $v.container) -}}
{{- end -}}
{{- else -}}
{{- $app = first $containers -}}
{{- end -}}
{{- $image := printf "%s:%s" $v.image.repository (toString $v.image.tag) -}}
{{- if $v.image.digest -}}
{{- $image = printf "%s@%s" $v.image.repository $v.image.digest -}}
{{- end -}}
{{- $init := dict "name" "install-driftprobe" "image" $image "imagePullPolicy" $v.image.pullPolicy "args" (list "install" "/probe/driftprobe") "volumeMounts" (list (dict "name" "driftprobe" "mountPath" "/probe")) "resources" $v.initContainer.resources "securityContext" $v.securityContext -}}
{{- $_ := set $pod "initContainers" (append ($pod.initContainers | default list) $init) -}}
{{- $_ = set $pod "volumes" (concat ($pod.volumes | default list) (list (dict "name" "driftprobe" "emptyDir" dict) (dict "name" "driftprobe-state" "emptyDir" $v.stateVolume))) -}}
{{- $_ = set $app "volumeMounts" (concat ($app.volumeMounts | default list) (list (dict "name" "driftprobe" "mountPath" "/probe" "readOnly" true) (dict "name" "driftprobe-state" "mountPath" $v.stateDir))) -}}
{{- range $kind := list "liveness" "readiness" -}}
{{- $key := printf "%sProbe" $kind -}}
{{- if (get $v $kind).enabled -}}
{{- $old := get $app $key -}}
{{- if and $old (not $v.moveAppProbes) -}}
{{- fail (printf "driftprobe: container %q already has a %s and driftprobe.moveAppProbes is false: remove it, or let driftprobe move it" $app.name $key) -}}
{{- end -}}
{{- $probe := fromYaml (include "driftprobe.probe" (dict "kind" $kind "v" $v "old" $old "container" $app)) -}}
{{- $_ = set $app $key $probe -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $pod -}}
{{- end -}}

{{/* One probe (liveness or readiness) as YAML: .kind, .v (settings), .old (the app's own probe of that kind, or nil), .container. */}}
{{- define "driftprobe.probe" -}}
{{- $v := .v -}}
{{- $old := .old | default dict -}}
{{- $live := eq .kind "liveness" -}}
{{- $args := list "/probe/driftprobe" .kind "--state-dir" $v.stateDir "--grace" (toString $v.grace) "--stagger" (toString $v.stagger) -}}
{{- $ms := 1000 -}}{{/* the digest's deadline (500ms) and 500ms to spare */}}
{{- if eq $v.onDrift "report" -}}
{{- $args = concat $args (list "--on-drift" "report") -}}
{{- else if $live -}}
{{- $args = concat $args (list "--on-drift" $v.onDrift) -}}
{{- if eq $v.onDrift "reload" -}}
{{- if $v.reload.url -}}
{{- $args = concat $args (list "--reload-url" $v.reload.url "--reload-timeout" (toString $v.reload.timeout)) -}}
{{- if $v.reload.method -}}{{- $args = concat $args (list "--reload-method" $v.reload.method) -}}{{- end -}}
{{- if $v.reload.header -}}{{- $args = concat $args (list "--reload-header" $v.reload.header) -}}{{- end -}}
{{- $ms = add $ms (include "driftprobe.ms" $v.reload.timeout) -}}
{{- else if $v.reload.signal -}}
{{- $args = concat $args (list "--signal" $v.reload.signal) -}}
{{- end -}}
{{- if $v.reload.signalHandled -}}{{- $args = concat $args (list "--signal-handled") -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- if $v.validate.command -}}
{{- $args = concat $args (list "--validate" $v.validate.command "--validate-timeout" (toString $v.validate.timeout)) -}}
{{- if not $live -}}{{- $args = concat $args (list "--on-invalid" $v.validate.onInvalid) -}}{{- end -}}
{{- $ms = add $ms (include "driftprobe.ms" $v.validate.timeout) -}}
{{- end -}}
{{- range $v.excludes -}}
{{- $args = concat $args (list "--exclude" .) -}}
{{- end -}}
{{- if $v.logChanges -}}{{- $args = concat $args (list "--log-changes") -}}{{- end -}}
{{- if $old -}}
{{- $app := fromYaml (include "driftprobe.appCheck" (dict "probe" $old "container" .container "key" (printf "%sProbe" .kind))) -}}
{{- $timeout := $v.appTimeout | default (printf "%ds" (int ($old.timeoutSeconds | default 1))) -}}
{{- $args = concat $args $app.args (list "--app-timeout" (toString $timeout)) -}}
{{- $ms = add $ms (include "driftprobe.ms" $timeout) -}}
{{- end -}}
{{- $seconds := div (add $ms 999) 1000 -}}
{{- if $v.probe.timeoutSeconds -}}
{{- if lt (int $v.probe.timeoutSeconds) (int $seconds) -}}
{{- fail (printf "driftprobe: probe.timeoutSeconds %v is below what one %s probe may take (%dms: digest, app check, validator, reload): raise it or leave it empty" $v.probe.timeoutSeconds .kind $ms) -}}
{{- end -}}
{{- $seconds = int $v.probe.timeoutSeconds -}}
{{- end -}}
{{- $args = concat $args (list "--probe-timeout" (printf "%ds" $seconds)) $v.paths -}}
exec:
  command: {{- toYaml $args | nindent 4 }}
{{- range $k := list "initialDelaySeconds" "successThreshold" "terminationGracePeriodSeconds" }}
{{- if hasKey $old $k }}
{{ $k }}: {{ get $old $k }}
{{- end }}
{{- end }}
periodSeconds: {{ $old.periodSeconds | default $v.probe.periodSeconds }}
timeoutSeconds: {{ $seconds }}
failureThreshold: {{ $old.failureThreshold | default (ternary $v.probe.livenessFailureThreshold $v.probe.readinessFailureThreshold $live) }}
{{- end -}}

{{/* The app's own probe as driftprobe flags ({args: [...]}), or fail with the reason. .probe, .container, .key */}}
{{- define "driftprobe.appCheck" -}}
{{- $p := .probe -}}
{{- $where := printf "container %q's %s" .container.name .key -}}
{{- $args := list -}}
{{- if $p.grpc -}}
{{- fail (printf "driftprobe: %s is a grpc probe, which driftprobe cannot run (it has --http-get, --tcp-socket, --exec): keep it by setting driftprobe.%s.enabled=false" $where (trimSuffix "Probe" .key)) -}}
{{- else if $p.httpGet -}}
{{- $h := $p.httpGet -}}
{{- if and $h.scheme (ne (upper $h.scheme) "HTTP") -}}
{{- fail (printf "driftprobe: %s uses scheme %s; driftprobe's --http-get speaks plain HTTP only: keep it by setting driftprobe.%s.enabled=false" $where $h.scheme (trimSuffix "Probe" .key)) -}}
{{- end -}}
{{- if $h.httpHeaders -}}
{{- fail (printf "driftprobe: %s sends httpHeaders; driftprobe's --http-get sends none: keep it by setting driftprobe.%s.enabled=false" $where (trimSuffix "Probe" .key)) -}}
{{- end -}}
{{- $host := include "driftprobe.host" (dict "host" $h.host "where" $where) -}}
{{- $port := include "driftprobe.port" (dict "port" $h.port "container" .container "where" $where) -}}
{{- $path := $h.path | default "/" -}}
{{- if not (hasPrefix "/" $path) -}}{{- $path = printf "/%s" $path -}}{{- end -}}
{{- $args = list "--http-get" (printf "http://%s:%s%s" $host $port $path) -}}
{{- else if $p.tcpSocket -}}
{{- $port := include "driftprobe.port" (dict "port" $p.tcpSocket.port "container" .container "where" $where) -}}
{{- if $p.tcpSocket.host -}}
{{- $args = list "--tcp-socket" (printf "%s:%s" (include "driftprobe.host" (dict "host" $p.tcpSocket.host "where" $where)) $port) -}}
{{- else -}}
{{- $args = list "--tcp-socket" $port -}}
{{- end -}}
{{- else if $p.exec -}}
{{- $words := list -}}
{{- range $p.exec.command -}}
{{- $w := toString . -}}
{{- if regexMatch "^[A-Za-z0-9_./:=@%+,-]+$" $w -}}
{{- $words = append $words $w -}}
{{- else -}}
{{- $words = append $words (printf "'%s'" (replace "'" "'\\''" $w)) -}}
{{- end -}}
{{- end -}}
{{- if not $words -}}
{{- fail (printf "driftprobe: %s has an exec probe without a command" $where) -}}
{{- end -}}
{{- $args = list "--exec" (join " " $words) -}}
{{- else -}}
{{- fail (printf "driftprobe: %s has no httpGet, tcpSocket, exec or grpc handler to move" $where) -}}
{{- end -}}
args: {{- toYaml $args | nindent 2 }}
{{- end -}}

{{/* A probe's host for driftprobe: empty -> 127.0.0.1 (the pod's loopback; the kubelet uses the pod IP, so the app must listen on all addresses); an IPv4 literal as is; a name fails (driftprobe does no DNS). */}}
{{- define "driftprobe.host" -}}
{{- $h := toString (.host | default "") -}}
{{- if not $h -}}
127.0.0.1
{{- else if regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" $h -}}
{{- $h -}}
{{- else -}}
{{- fail (printf "driftprobe: %s has host %q; driftprobe resolves no names (an IP literal or no host)" .where $h) -}}
{{- end -}}
{{- end -}}

{{/* A probe's port as a number: a number as is, a name resolved through the container's ports, or fail. */}}
{{- define "driftprobe.port" -}}
{{- $p := toString .port -}}
{{- if regexMatch "^[0-9]+$" $p -}}
{{- $p -}}
{{- else -}}
{{- $found := "" -}}
{{- range (.container.ports | default list) -}}
{{- if eq (toString .name) $p -}}{{- $found = toString .containerPort -}}{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "driftprobe: %s uses port %q, which container %q does not declare in its ports: use the number or declare the port" .where $p .container.name) -}}
{{- end -}}
{{- $found -}}
{{- end -}}
{{- end -}}

{{/* A duration (500ms, 2s, 1m30s, 1h) in milliseconds, or fail. */}}
{{- define "driftprobe.ms" -}}
{{- $d := toString . -}}
{{- $parts := regexFindAll "[0-9]+(ms|h|m|s)" $d -1 -}}
{{- if or (not $parts) (ne (join "" $parts) $d) -}}
{{- fail (printf "driftprobe: %q is not a duration (500ms, 2s, 1m30s)" $d) -}}
{{- end -}}
{{- $ms := 0 -}}
{{- range $parts -}}
{{- $n := int (regexFind "^[0-9]+" .) -}}
{{- $unit := regexFind "[a-z]+$" . -}}
{{- $ms = add $ms (mul $n (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit)) -}}
{{- end -}}
{{- $ms -}}
{{- end -}}

{{/* Deep merge: every key of .src into .dst (maps merged, anything else replaced, false and "" included). */}}
{{- define "driftprobe.merge" -}}
{{- $dst := .dst -}}
{{- range $k, $val := .src -}}
{{- if and (kindIs "map" $val) (kindIs "map" (get $dst $k)) -}}
{{- include "driftprobe.merge" (dict "dst" (get $dst $k) "src" $val) -}}
{{- else -}}
{{- $_ := set $dst $k $val -}}
{{- end -}}
{{- end -}}
{{- end -}}
