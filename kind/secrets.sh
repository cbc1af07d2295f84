#!/usr/bin/env bash
# The Secrets the chart references, for a kind deployment (`make kind-deploy`): random passwords,
# created once (a re-run keeps them: PostgreSQL's data volume holds the first password). On a real
# cluster create them from your secret store instead (helm/getit-ml/README.md, "Secrets").
set -euo pipefail
NS=${NS:-getit-ml}
KUBECTL=${KUBECTL:-kubectl}

exists() { "$KUBECTL" -n "$NS" get secret "$1" >/dev/null 2>&1; }
random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

if ! exists getit-ml-redis; then
  password=$(random)
  "$KUBECTL" -n "$NS" create secret generic getit-ml-redis \
    --from-literal=password="$password" \
    --from-literal=url="redis://:${password}@getit-ml-redis:6379/0"
fi
if ! exists getit-ml-postgresql; then
  password=$(random)
  "$KUBECTL" -n "$NS" create secret generic getit-ml-postgresql \
    --from-literal=password="$password" \
    --from-literal=feast-dsn="postgresql://postgres:${password}@getit-ml-postgresql:5432/feast" \
    --from-literal=mlflow-uri="postgresql+psycopg://postgres:${password}@getit-ml-postgresql:5432/mlflow"
fi
# kind keeps MLflow's artefacts on the MLflow pod (no S3): the artefact-store Secret is unused
# there and not created.
