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

{{/* Name of one component's objects: (dict "ctx" $ "component" "mlflow"), or of one model's
(dict "ctx" $ "component" "drift-detector" "model" "fraud"): "<prefix>-fraud-drift-detector".
Names also name Services and label values, so longer than 63 characters fails the render rather
than being cut (two cut names could collide). */}}
{{- define "getit-ml.name" -}}
{{- $name := include "getit-ml.fullname" .ctx -}}
{{- with .model }}{{ $name = printf "%s-%s" $name . }}{{ end -}}
{{- $name = printf "%s-%s" $name .component -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "object name %s is longer than 63 characters: shorten the model's name or set fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* A model's own objects (its drift detector) carry the model's name in getit-ml/model, so one
selector picks one model's pods and app.kubernetes.io/name still says what they are. */}}
{{- define "getit-ml.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .model }}
getit-ml/model: {{ . }}
{{- end }}
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

{{/* The payload logger's target: the model's drift detector, (dict "ctx" $ "model" "fraud"). */}}
{{- define "getit-ml.driftUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local/" (include "getit-ml.name" (dict "ctx" .ctx "component" "drift-detector" "model" .model)) .ctx.Release.Namespace -}}
{{- end -}}

{{/* The v2 predictor of a model, as the explainer and the drift detector call it. */}}
{{- define "getit-ml.predictorUrl" -}}
{{- printf "http://%s-predictor.%s.svc.cluster.local" .model .ctx.Release.Namespace -}}
{{- end -}}

{{/* What the schema cannot say about the models list: names are unique, each runtime is in
`runtimes`, replica bounds are ordered. Renders nothing; fails the render with the reason. */}}
{{- define "getit-ml.validateModels" -}}
{{- $seen := dict -}}
{{- range $m := .Values.models -}}
{{- if hasKey $seen $m.name -}}
{{- fail (printf "models: the name %q is used twice (each entry is one InferenceService)" $m.name) -}}
{{- end -}}
{{- $_ := set $seen $m.name true -}}
{{- if not (index $.Values.runtimes $m.runtime) -}}
{{- fail (printf "models[%s].runtime %q is not a key of runtimes" $m.name $m.runtime) -}}
{{- end -}}
{{- if gt (int $m.autoscaling.minReplicas) (int $m.autoscaling.maxReplicas) -}}
{{- fail (printf "models[%s].autoscaling: minReplicas is above maxReplicas" $m.name) -}}
{{- end -}}
{{- range $component := list "transformer" "explainer" -}}
{{- $c := index $m $component -}}
{{- if and $c.enabled (gt (int $c.replicas.min) (int $c.replicas.max)) -}}
{{- fail (printf "models[%s].%s.replicas: min is above max" $m.name $component) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether any model has a component enabled: (dict "ctx" $ "component" "driftDetector") -> "true" or "". */}}
{{- define "getit-ml.anyModelHas" -}}
{{- $found := false -}}
{{- range .ctx.Values.models -}}
{{- if (index . $.component).enabled }}{{ $found = true }}{{ end -}}
{{- end -}}
{{- if $found }}true{{ end -}}
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

{{/* Labels KServe puts on an InferenceService component's pods: (dict "model" "fraud" "component" "predictor"). */}}
{{- define "getit-ml.isvcPodLabels" -}}
serving.kserve.io/inferenceservice: {{ .model }}
component: {{ .component }}
{{- end -}}

{{- define "getit-ml.referenceClaim" -}}
{{- default (include "getit-ml.name" (dict "ctx" . "component" "reference")) .Values.reference.existingClaim -}}
{{- end -}}
