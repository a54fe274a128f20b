{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "djinn-scheduler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release already has it. */}}
{{- define "djinn-scheduler.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "djinn-scheduler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name + instance only, so they never change across upgrades. */}}
{{- define "djinn-scheduler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "djinn-scheduler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "djinn-scheduler.labels" -}}
helm.sh/chart: {{ include "djinn-scheduler.chart" . }}
{{ include "djinn-scheduler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: scheduler
app.kubernetes.io/part-of: djinn
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "djinn-scheduler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "djinn-scheduler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the credentials: an existing one, or the chart's. */}}
{{- define "djinn-scheduler.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else }}
{{- include "djinn-scheduler.fullname" . }}
{{- end }}
{{- end }}

{{- define "djinn-scheduler.image" -}}
{{- if not .Values.image.repository }}
{{- fail "image.repository is not set: no djinn-scheduler image is published. Build one (scripts/build-image.sh), push it to your registry and set image.registry and image.repository (README: Deploy on Kubernetes)" }}
{{- end }}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .Values.image.registry) .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the ConfigMap and the database TLS Secret are mounted. */}}
{{- define "djinn-scheduler.configDir" -}}/etc/djinn{{- end }}
{{- define "djinn-scheduler.configPath" -}}/etc/djinn/scheduler.yaml{{- end }}
{{- define "djinn-scheduler.tlsDir" -}}/var/run/secrets/djinn/database-tls{{- end }}

{{/*
The scheduler's YAML config (the keys of Djinn's scheduler.conf). Secrets are ${VAR}
references to environment variables that the Deployment fills from the Secret.
*/}}
{{- define "djinn-scheduler.config" -}}
{{- $c := .Values.config -}}
# Rendered by the djinn-scheduler Helm chart from its values (config.*).
# Secrets are not in this file: ${VAR} is replaced from the environment at start.
interval: {{ $c.interval | quote }}
batch_size: {{ int64 $c.batchSize }}
log:
  level: {{ $c.log.level }}
  file: /dev/stdout
  format: {{ $c.log.format }}
drivers:
{{- range $c.drivers }}
  - {{ . | quote }}
{{- end }}
crypto:
  salt: "${DJINN_CRYPTO_SALT}"
database:
  addr: {{ printf "%s:%d" $c.database.host (int64 $c.database.port) | quote }}
  name: {{ $c.database.name | quote }}
  username: {{ $c.database.username | quote }}
  password: "${DJINN_DATABASE_PASSWORD}"
  statement_timeout: {{ printf "%ds" (int64 $c.database.statementTimeoutSeconds) | quote }}
{{- if gt (int64 $c.database.dispatchSessions) 1 }}
  dispatch_sessions: {{ int64 $c.database.dispatchSessions }}
{{- end }}
{{- if $c.database.tls.enabled }}
  tls:
    ca: {{ printf "%s/ca.crt" (include "djinn-scheduler.tlsDir" .) | quote }}
    cert: {{ printf "%s/tls.crt" (include "djinn-scheduler.tlsDir" .) | quote }}
    key: {{ printf "%s/tls.key" (include "djinn-scheduler.tlsDir" .) | quote }}
{{- end }}
redis:
  addr: {{ printf "%s:%d" $c.redis.host (int64 $c.redis.port) | quote }}
{{- if $c.redis.auth }}
  password: "${DJINN_REDIS_PASSWORD}"
{{- end }}
http:
  addr: {{ printf "0.0.0.0:%d" (int64 .Values.http.port) | quote }}
  liveness_timeout: {{ printf "%ds" (int64 $c.livenessTimeoutSeconds) | quote }}
leader:
{{- if not (kindIs "invalid" $c.leader.key) }}
  key: {{ int64 $c.leader.key }}
{{- end }}
  retry_interval: {{ $c.leader.retryInterval | quote }}
  lock_timeout: {{ $c.leader.lockTimeout | quote }}
drain_timeout: {{ printf "%ds" (int64 $c.drainTimeoutSeconds) | quote }}
{{- end }}

{{/* Refuse value combinations that would deploy something broken. */}}
{{- define "djinn-scheduler.validate" -}}
{{- if le (int64 .Values.terminationGracePeriodSeconds) (int64 .Values.config.drainTimeoutSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than config.drainTimeoutSeconds (%d): Kubernetes would kill the scheduler mid-batch" (int64 .Values.terminationGracePeriodSeconds) (int64 .Values.config.drainTimeoutSeconds)) }}
{{- end }}
{{- if lt (int64 .Values.config.livenessTimeoutSeconds) (add (int64 .Values.config.database.statementTimeoutSeconds) 10) }}
{{- fail (printf "config.livenessTimeoutSeconds (%d) must be at least config.database.statementTimeoutSeconds + 10 (%d): one statement may take that long while the scheduler is healthy" (int64 .Values.config.livenessTimeoutSeconds) (add (int64 .Values.config.database.statementTimeoutSeconds) 10)) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled }}
{{- fail "enable metrics.serviceMonitor or metrics.podMonitor, not both: each pod would be scraped twice" }}
{{- end }}
{{- if and (not .Values.secret.create) (not .Values.secret.existingSecret) }}
{{- fail "secret.create is false: set secret.existingSecret to the Secret holding the credentials" }}
{{- end }}
{{- if and .Values.config.database.tls.enabled (not .Values.config.database.tls.existingSecret) }}
{{- fail "config.database.tls.enabled needs config.database.tls.existingSecret (a Secret with ca.crt, tls.crt, tls.key)" }}
{{- end }}
{{- end }}
