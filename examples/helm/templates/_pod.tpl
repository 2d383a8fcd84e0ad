{{/* The app's pod spec, as it would be without driftprobe: deployment.yaml passes it through "driftprobe.podSpec". */}}
{{- define "app.podSpec" -}}
securityContext:
  runAsNonRoot: true
  seccompProfile:
    type: RuntimeDefault
containers:
  - name: app
    image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
    args: ["--spring.config.additional-location=file:/workspace/config/"]
    ports:
      - name: http
        containerPort: 8080
    # The app's own checks: driftprobe moves each into its probe of the same
    # kind (--http-get http://127.0.0.1:8080/actuator/health/…) and keeps these
    # timings; its timeoutSeconds becomes --app-timeout.
    livenessProbe:
      httpGet:
        path: /actuator/health/liveness
        port: http
      initialDelaySeconds: 30
      periodSeconds: 10
      timeoutSeconds: 2
      failureThreshold: 3
    readinessProbe:
      httpGet:
        path: /actuator/health/readiness
        port: http
      periodSeconds: 5
      failureThreshold: 2
    volumeMounts:
      - name: config
        mountPath: /workspace/config
        readOnly: true
      - name: credentials
        mountPath: /etc/orders/credentials
        readOnly: true
      - name: tmp
        mountPath: /tmp
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: ["ALL"]
volumes:
  - name: config
    configMap:
      name: {{ .Release.Name }}-config
  - name: credentials
    secret:
      secretName: {{ .Release.Name }}-credentials
  - name: tmp
    emptyDir: {}
{{- end }}
