{{/* Object name prefix: the release name, or "<release>-getit-ml" when the release name does not
contain the chart name. */}}
{{- define "getit-ml.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: (dict "ctx" $ "component" "drift-detector") */}}
{{- define "getit-ml.name" -}}
{{- printf "%s-%s" (include "getit-ml.fullname" .ctx) .component -}}
{{- end -}}

{{- define "getit-ml.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{- define "getit-ml.labels" -}}
{{ include "getit-ml.selectorLabels" . }}
app.kubernetes.io/part-of: getit-ml
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* Metadata of a namespaced object: (dict "ctx" $ "component" "x") */}}
{{- define "getit-ml.metadata" -}}
name: {{ include "getit-ml.name" . }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "getit-ml.labels" . | nindent 2 }}
{{- end -}}

{{/* An image of the platform: (dict "ctx" $ "repository" "getit-ml/x") */}}
{{- define "getit-ml.image" -}}
{{- if .ctx.Values.images.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .ctx.Values.images.registry) .repository .ctx.Values.images.tag -}}
{{- else -}}
{{- printf "%s:%s" .repository .ctx.Values.images.tag -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context (Pod Security "restricted"): (dict "uid" 1000) */}}
{{- define "getit-ml.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context: non-root, no escalation, no capabilities, read-only root. */}}
{{- define "getit-ml.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "getit-ml.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Seconds a serving container drains on SIGTERM: the longest request. */}}
{{- define "getit-ml.drainSeconds" -}}
{{- .Values.serving.requestTimeoutSeconds -}}
{{- end -}}

{{/* Termination grace period: preStop sleep + drain + 10 s for the process to exit. */}}
{{- define "getit-ml.terminationGracePeriod" -}}
{{- add .Values.serving.preStopSleepSeconds .timeout 10 -}}
{{- end -}}

{{- define "getit-ml.mlflowUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:5000" (include "getit-ml.name" (dict "ctx" . "component" "mlflow")) .Release.Namespace -}}
{{- end -}}

{{- define "getit-ml.driftUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local/" (include "getit-ml.name" (dict "ctx" . "component" "drift-detector")) .Release.Namespace -}}
{{- end -}}

{{/* Environment shared by the platform's processes that read Redis and the Feast registry. */}}
{{- define "getit-ml.storeEnv" -}}
- name: GETIT_ML_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.redis }}, key: url}
- name: GETIT_ML_POSTGRES_DSN
  valueFrom:
    secretKeyRef: {name: {{ .Values.secrets.postgresql }}, key: feast-dsn}
- name: GETIT_ML_FEATURE_REPO
  value: /app/feature_repo
- name: GETIT_ML_HOME
  value: /tmp/getit-ml
- name: GETIT_ML_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{ include "getit-ml.writableHome" . }}
- name: FEAST_USAGE
  value: "False"
{{- end -}}

{{/* The root filesystem is read-only: caches and home directories go to the /tmp emptyDir. */}}
{{- define "getit-ml.writableHome" -}}
- name: HOME
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
{{- end -}}

{{/* The monitoring images also JIT-compile with numba. */}}
{{- define "getit-ml.monitoringEnv" -}}
{{ include "getit-ml.writableHome" . }}
- name: NUMBA_CACHE_DIR
  value: /tmp/numba
{{- end -}}

{{/* Labels KServe puts on an InferenceService component's pods. */}}
{{- define "getit-ml.isvcPodLabels" -}}
serving.kserve.io/inferenceservice: {{ .ctx.Values.fraud.name }}
component: {{ .component }}
{{- end -}}

{{- define "getit-ml.referenceClaim" -}}
{{- default (include "getit-ml.name" (dict "ctx" . "component" "reference")) .Values.reference.existingClaim -}}
{{- end -}}
