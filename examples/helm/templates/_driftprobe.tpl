{{/* Copy this file into your chart's templates/. */}}

{{/* Under spec.template.spec.initContainers: copies the probe into the emptyDir. */}}
{{- define "driftprobe.initContainer" -}}
- name: install-driftprobe
  image: {{ .Values.driftprobe.image }}
  imagePullPolicy: IfNotPresent
  args: ["install", "/probe/driftprobe"]
  volumeMounts:
    - name: probe
      mountPath: /probe
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
{{- end }}

{{/* Under spec.template.spec.volumes. */}}
{{- define "driftprobe.volume" -}}
- name: probe
  emptyDir: {}
{{- end }}

{{/* Under the app container's volumeMounts. */}}
{{- define "driftprobe.volumeMount" -}}
- name: probe
  mountPath: /probe
  readOnly: true
{{- end }}

{{/* In the app container: both probes, with the same window. */}}
{{- define "driftprobe.probes" -}}
readinessProbe:
  exec:
    command: ["/probe/driftprobe", "readiness", "--grace", {{ .Values.driftprobe.grace | quote }}, "--stagger", {{ .Values.driftprobe.stagger | quote }}, {{ .Values.driftprobe.path | quote }}]
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 1
livenessProbe:
  exec:
    command: ["/probe/driftprobe", "liveness", "--grace", {{ .Values.driftprobe.grace | quote }}, "--stagger", {{ .Values.driftprobe.stagger | quote }}, {{ .Values.driftprobe.path | quote }}]
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
{{- end }}
