#!/usr/bin/env bash
# Seed a kind deployment of getit-ml (`make kind-seed`) from this machine's embedded demo state,
# for every family the kind values deploy (FAMILIES; each InferenceService is named after its
# family there, helm/getit-ml/ci/kind-values.yaml):
#   1. apply the Feast definitions to the cluster's PostgreSQL registry and materialize each
#      family's demo population into the cluster's Redis (production profile, port-forwards);
#   2. register each family's champion in the cluster's MLflow (its training pipeline, run locally
#      with kfp.local on GETIT_ML_HOME/data/<population>, registering through a port-forward) so
#      models:/<family>@champion resolves;
#   3. copy each family's newest reference export (the one whose feature_schema.json says
#      metadata.family = <family>) into /mnt/reference/<family>/ of the reference volume (a
#      short-lived restricted pod), then restart the pods that read the models and references;
#   4. copy the offline tables of the population materialized last (the first family's) onto the
#      offline-store volume, offline/, where the materialize CronJob reads them: without them its
#      runs fail and a Redis that lost its data is never refilled.
# Needs `make demo` (or its data and features steps for every family) to have run here first.
set -euo pipefail

NS=${NS:-getit-ml}
KUBECTL=${KUBECTL:-kubectl}
GETIT_ML=${GETIT_ML:-.venv/bin/getit-ml}
PY=${PY:-.venv/bin/python}
HOME_DIR=${GETIT_ML_HOME:-.getit-ml}
START=${FEATURES_START:-2025-01-01}
FAMILIES=${FAMILIES:-fraud churn}
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
# The folder of a family's demo population under GETIT_ML_HOME/data and /features (fraud:
# marketplace, churn: churn): the family declares it, so a new family needs no change here.
population() {
  "$PY" -c 'import sys; from getit_ml.families import get_family; print(get_family(sys.argv[1]).demo.population)' "$1"
}
# The newest reference export of a family: kfp.local writes one per run under
# GETIT_ML_HOME/pipelines/<run>/...; the schema's metadata.family tells whose it is.
newest_reference() {
  "$PY" - "$HOME_DIR" "$1" <<'PY'
import json
import sys
from pathlib import Path

home, family = Path(sys.argv[1]), sys.argv[2]
found = []
for schema in (home / "pipelines").glob("*/**/reference/feature_schema.json"):
    metadata = json.loads(schema.read_text(encoding="utf-8")).get("metadata") or {}
    if metadata.get("family") == family and (schema.parent / "reference.parquet").is_file():
        found.append((schema.stat().st_mtime, schema.parent))
if not found:
    sys.exit(f"no reference export of {family} under {home / 'pipelines'}")
print(max(found)[1])
PY
}

forward svc/getit-ml-redis 16379 6379
forward svc/getit-ml-postgresql 15432 5432
forward svc/getit-ml-mlflow 15000 5000
REDIS_PASSWORD=$(secret getit-ml-redis password)
PG_PASSWORD=$(secret getit-ml-postgresql password)
export GETIT_ML_REDIS_URL="redis://:${REDIS_PASSWORD}@127.0.0.1:16379/0"
export GETIT_ML_POSTGRES_DSN="postgresql://postgres:${PG_PASSWORD}@127.0.0.1:15432/feast"
export GETIT_ML_MLFLOW_TRACKING_URI="http://127.0.0.1:15000"
export GETIT_ML_HOME="$HOME_DIR"

declare -A populations=()
order=()
for family in $FAMILIES; do
  populations[$family]=$(population "$family")
  order=("$family" "${order[@]}")
done

echo "== 1. Feast: registry in PostgreSQL, online store in Redis"
# One online store holds one marketplace. The demo's populations share entity ids (customers), so
# the population materialized last wins the views they share: the first family's, materialized
# last (hence the reverse order); a family's own views keep its population.
done_populations=" "
for family in "${order[@]}"; do
  pop=${populations[$family]}
  [[ "$done_populations" == *" $pop "* ]] && continue
  done_populations+="$pop "
  store="$HOME_DIR/features/$pop"
  test -d "$store" || { echo "no feature store at $store: run \`make demo\` first" >&2; exit 1; }
  "$GETIT_ML" features apply --profile production --workdir "$store"
  "$GETIT_ML" features materialize --profile production --workdir "$store" --start "$START"
done

echo "== 2. MLflow: each family's training pipeline registers its champion"
for family in $FAMILIES; do
  "$GETIT_ML" pipeline run "$family" --local --data-dir "$HOME_DIR/data/${populations[$family]}"
done

echo "== 3. Each family's reference export into /mnt/reference/<family>/"
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
        - {name: offline-store, mountPath: /mnt/offline-store}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: reference
      persistentVolumeClaim: {claimName: getit-ml-reference}
    - name: offline-store
      persistentVolumeClaim: {claimName: getit-ml-offline-store}
    - name: tmp
      emptyDir: {}
YAML
"$KUBECTL" -n "$NS" wait --for=condition=Ready pod/getit-ml-reference-loader --timeout=180s
for family in $FAMILIES; do
  reference=$(newest_reference "$family")
  echo "   $family <- $reference"
  # Replace, not merge: a stale file from an older export must not survive.
  "$KUBECTL" -n "$NS" exec getit-ml-reference-loader -- \
    sh -c "rm -rf '/mnt/reference/$family' && mkdir -p '/mnt/reference/$family'"
  for file in "$reference"/*; do
    "$KUBECTL" -n "$NS" cp "$file" "getit-ml-reference-loader:/mnt/reference/$family/$(basename "$file")"
  done
done

echo "== 4. The materialize CronJob's offline store: offline/ of the population materialized last"
first_family=${order[-1]}
offline="$HOME_DIR/features/${populations[$first_family]}/offline"
test -d "$offline" || { echo "no offline tables at $offline: run \`make demo\` first" >&2; exit 1; }
echo "   offline-store <- $offline"
"$KUBECTL" -n "$NS" exec getit-ml-reference-loader -- \
  sh -c "rm -rf /mnt/offline-store/offline && mkdir -p /mnt/offline-store/offline"
# kubectl cp of a folder copies its tree (the views' parquet folders included).
for entry in "$offline"/*; do
  "$KUBECTL" -n "$NS" cp "$entry" "getit-ml-reference-loader:/mnt/offline-store/offline/$(basename "$entry")"
done

echo "== restart the pods that load the models and the references"
for family in $FAMILIES; do
  "$KUBECTL" -n "$NS" rollout restart "deployment/getit-ml-$family-drift-detector"
  "$KUBECTL" -n "$NS" rollout restart deployment -l "serving.kserve.io/inferenceservice=$family"
done
for family in $FAMILIES; do
  "$KUBECTL" -n "$NS" wait --for=condition=Ready "inferenceservice/$family" --timeout=600s
done
