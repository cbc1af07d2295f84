#!/usr/bin/env bash
# Seed a kind deployment of getit-ml (`make kind-seed`) from this machine's embedded demo state:
#   1. apply the Feast definitions to the cluster's PostgreSQL registry and materialize the
#      offline features into the cluster's Redis (production profile, through port-forwards);
#   2. register the fraud model in the cluster's MLflow (the training pipeline, run locally with
#      kfp.local, registering through a port-forward) so models:/fraud@champion resolves;
#   3. copy the pipeline's reference export into the reference volume of the explainer and the
#      drift detector (a short-lived restricted pod), then restart the serving pods.
# Needs `make demo` (or the data and features steps) to have run here first.
set -euo pipefail

NS=${NS:-getit-ml}
KUBECTL=${KUBECTL:-kubectl}
GETIT_ML=${GETIT_ML:-.venv/bin/getit-ml}
HOME_DIR=${GETIT_ML_HOME:-.getit-ml}
START=${FEATURES_START:-2025-01-01}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$KUBECTL" -n "$NS" delete pod getit-ml-reference-loader --ignore-not-found --wait=false >/dev/null
}
trap cleanup EXIT

forward() { # forward TARGET LOCAL REMOTE
  "$KUBECTL" -n "$NS" port-forward "$1" "$2:$3" >/dev/null 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "port-forward $1 did not open" >&2
  return 1
}
secret() { "$KUBECTL" -n "$NS" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d; }

forward svc/getit-ml-redis 16379 6379
forward svc/getit-ml-postgresql 15432 5432
forward svc/getit-ml-mlflow 15000 5000
REDIS_PASSWORD=$(secret getit-ml-redis password)
PG_PASSWORD=$(secret getit-ml-postgresql password)
export GETIT_ML_REDIS_URL="redis://:${REDIS_PASSWORD}@127.0.0.1:16379/0"
export GETIT_ML_POSTGRES_DSN="postgresql://postgres:${PG_PASSWORD}@127.0.0.1:15432/feast"
export GETIT_ML_MLFLOW_TRACKING_URI="http://127.0.0.1:15000"
export GETIT_ML_HOME="$HOME_DIR"

echo "== 1. Feast: registry in PostgreSQL, online store in Redis"
"$GETIT_ML" features apply --profile production
"$GETIT_ML" features materialize --profile production --start "$START"

echo "== 2. MLflow: the training pipeline registers the champion"
"$GETIT_ML" pipeline run fraud --local

echo "== 3. The reference export into the reference volume"
reference=$(ls -td "$HOME_DIR"/pipelines/*/*/export-reference-data/reference 2>/dev/null | head -1)
test -n "$reference" || { echo "no reference export under $HOME_DIR/pipelines" >&2; exit 1; }
"$KUBECTL" -n "$NS" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: getit-ml-reference-loader
  labels: {app.kubernetes.io/name: reference-loader, app.kubernetes.io/part-of: getit-ml}
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: loader
      image: getit-ml/components:0.1.0
      imagePullPolicy: IfNotPresent
      command: [sleep, "600"]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      resources:
        requests: {cpu: 50m, memory: 64Mi}
        limits: {cpu: 200m, memory: 128Mi}
      volumeMounts:
        - {name: reference, mountPath: /mnt/reference}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: reference
      persistentVolumeClaim: {claimName: getit-ml-reference}
    - name: tmp
      emptyDir: {}
YAML
"$KUBECTL" -n "$NS" wait --for=condition=Ready pod/getit-ml-reference-loader --timeout=180s
for file in "$reference"/*; do
  "$KUBECTL" -n "$NS" cp "$file" "getit-ml-reference-loader:/mnt/reference/$(basename "$file")"
done

echo "== restart the pods that load the model and the reference"
"$KUBECTL" -n "$NS" rollout restart deployment/getit-ml-drift-detector
"$KUBECTL" -n "$NS" rollout restart deployment -l serving.kserve.io/inferenceservice=fraud
"$KUBECTL" -n "$NS" wait --for=condition=Ready inferenceservice/fraud --timeout=600s
