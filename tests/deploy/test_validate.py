"""Every object validates: core kinds with kubernetes-validate (strict: unknown fields fail)
against a recent Kubernetes, KServe kinds against the KServe CRDs' OpenAPI schemas (strict in the
same way); the kinds neither covers (Prometheus operator) are checked for shape."""

from __future__ import annotations

import copy

import pytest
import yaml
from kubernetes_validate import utils as kv

from getit_ml.deploy.crd import CrdSchema, validation_errors
from getit_ml.deploy.render import Manifest, identity
from tests.deploy.support import CHART, KUBERNETES_VERSIONS, chart_objects

KSERVE_GROUP = "serving.kserve.io"
#: Kinds validated elsewhere (CRDs) or by shape.
OTHER_KINDS = {"InferenceService", "ServingRuntime", "InferenceGraph", "ClusterServingRuntime"}
PROMETHEUS_KINDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}
#: Fields of the operator's endpoint specs the chart uses (PodMetricsEndpoint adds relabelings).
ENDPOINT_FIELDS = {"port", "path", "interval", "scheme"}


def core_errors(obj: Manifest, version: str = KUBERNETES_VERSIONS[-1]) -> str | None:
    try:
        kv.validate(obj, version, strict=True)
    except kv.ValidationError as error:
        return f"{identity(obj)}: {error.message} at {list(error.absolute_path)}"
    return None


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_kinds_validate_strictly(rendering: tuple[str, list[Manifest]], version: str) -> None:
    _, objects = rendering
    core = [
        o
        for o in objects
        if o["kind"] not in OTHER_KINDS and o["apiVersion"].split("/")[0] != "monitoring.coreos.com"
    ]
    assert core
    errors = [e for e in (core_errors(o, version) for o in core) if e]
    assert errors == []


def test_strict_core_validation_rejects_an_unknown_field() -> None:
    deployment = next(o for o in chart_objects(None) if o["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    assert core_errors(deployment) is None
    assert core_errors(broken) is not None


def test_chart_requires_the_oldest_validated_kubernetes() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["kubeVersion"] == f">={KUBERNETES_VERSIONS[0]}-0"


def test_kserve_kinds_validate_against_the_crds(
    rendering: tuple[str, list[Manifest]], kserve_crds: dict[tuple[str, str], CrdSchema]
) -> None:
    _, objects = rendering
    kserve = [o for o in objects if o["apiVersion"].startswith(KSERVE_GROUP + "/")]
    assert {o["kind"] for o in kserve} >= {"InferenceService", "ServingRuntime"}
    for obj in kserve:
        crd = kserve_crds.get((obj["apiVersion"], obj["kind"]))
        assert crd is not None, f"no served CRD version for {obj['apiVersion']} {obj['kind']}"
        assert validation_errors(obj, crd) == [], identity(obj)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "predictor", "minReplica"), 1),
        (("spec", "predictor", "logger", "mode"), "everything"),
        (("spec", "predictor", "model", "readinessProbe", "httpGet", "paht"), "/"),
    ],
)
def test_crd_validation_rejects_bad_fields(
    kserve_crds: dict[tuple[str, str], CrdSchema], path: tuple[str, ...], value: object
) -> None:
    isvc = next(o for o in chart_objects(None) if o["kind"] == "InferenceService")
    broken = copy.deepcopy(isvc)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert validation_errors(broken, kserve_crds[(isvc["apiVersion"], "InferenceService")])


def test_prometheus_operator_kinds_have_their_shape(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            assert obj["spec"]["selector"]["matchLabels"]
            for endpoint in obj["spec"]["endpoints"]:
                assert set(endpoint) <= ENDPOINT_FIELDS
        elif obj["kind"] == "PodMonitor":
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            assert obj["spec"]["selector"]["matchLabels"]
            assert obj["spec"]["namespaceSelector"]["matchNames"] == [obj["metadata"]["namespace"]]
            for endpoint in obj["spec"]["podMetricsEndpoints"]:
                assert set(endpoint) <= ENDPOINT_FIELDS | {"relabelings"}
                for relabeling in endpoint.get("relabelings", []):
                    assert set(relabeling) <= {"sourceLabels", "targetLabel", "action", "regex"}
                    assert all(
                        s.startswith("__meta_kubernetes_pod_") for s in relabeling["sourceLabels"]
                    )
        elif obj["kind"] == "PrometheusRule":
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
                    assert rule["alert"]
                    assert rule["expr"].strip()
                    assert rule["expr"].count("(") == rule["expr"].count(")")
                    assert rule["expr"].count("{") == rule["expr"].count("}")
        else:
            assert obj["apiVersion"].split("/")[0] != "monitoring.coreos.com", obj["kind"]
