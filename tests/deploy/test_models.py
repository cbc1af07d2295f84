"""The chart's ``models`` list: every entry is one InferenceService of one model family, with the
objects of its own (drift detector, NetworkPolicies, PDBs, PodMonitor, alerts, dashboard); a
component switched off renders nothing; the schema and the templates refuse what cannot work; one
ServingRuntime per runtime in use; the defaults agree with the families' own declarations."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from getit_ml.deploy.render import Manifest, render_chart
from tests.deploy.support import CHART, chart_defaults, find, model_entry, model_objects, one
from tests.deploy.workloads import arg_value, selects, workloads

NAMESPACE = "getit-ml"


def render(models: list[dict[str, Any]], **values: Any) -> list[Manifest]:
    return render_chart(CHART, {"models": models, **values})


def three_models() -> list[dict[str, Any]]:
    """The two default families and a third, not yet in getit_ml.families: the chart takes a
    family by name and needs nothing else of it."""
    defaults = chart_defaults()["models"]
    return [*defaults, model_entry("recommendations", "recommendations")]


@pytest.fixture(scope="module")
def three() -> list[Manifest]:
    return render(three_models())


def _alerts(objects: list[Manifest]) -> dict[str, dict[str, str]]:
    """model -> alert name -> expression."""
    rule = one(objects, "PrometheusRule", "getit-ml-alerts")
    found: dict[str, dict[str, str]] = {}
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            found.setdefault(alert["labels"]["model"], {})[alert["alert"]] = alert["expr"]
    return found


# ------------------------------------------------------------------------------------------ (a)
def test_three_models_render_three_inference_services_and_drift_detectors(
    three: list[Manifest],
) -> None:
    names = ["fraud", "churn", "recommendations"]
    assert [o["metadata"]["name"] for o in find(three, "InferenceService")] == names
    for name in names:
        detector = f"getit-ml-{name}-drift-detector"
        one(three, "Deployment", detector)
        one(three, "Service", detector)
        one(three, "NetworkPolicy", detector)
        one(three, "PodMonitor", f"getit-ml-{name}-serving")
        one(three, "ConfigMap", f"getit-ml-{name}-dashboard")
        for component in ("predictor", "transformer", "explainer"):
            one(three, "NetworkPolicy", f"getit-ml-{name}-{component}")
            one(three, "PodDisruptionBudget", f"getit-ml-{name}-{component}")
    assert set(_alerts(three)) == set(names)
    for alerts in _alerts(three).values():
        assert set(alerts) == {
            "GetitMlModelDrift",
            "GetitMlDriftDetectorSilent",
            "GetitMlHighErrorRate",
            "GetitMlHighLatencyP99",
            # The transformer's view of its dependencies (tests/deploy/test_online_store.py).
            "GetitMlFeatureViewWatermarkMissing",
            "GetitMlFeatureViewStale",
            "GetitMlDependencyDown",
            "GetitMlCircuitOpen",
            "GetitMlDegradedRows",
        }


def test_each_component_takes_its_family_and_its_own_reference(three: list[Manifest]) -> None:
    isvc = one(three, "InferenceService", "recommendations")
    predictor = isvc["spec"]["predictor"]["model"]
    assert arg_value(predictor, "--family") == "recommendations"
    assert arg_value(predictor, "--model_uri") == "models:/recommendations@champion"
    transformer = isvc["spec"]["transformer"]["containers"][0]
    assert arg_value(transformer, "--family") == "recommendations"
    # The family's own feature service unless the entry overrides it.
    assert arg_value(transformer, "--feature_service") is None
    explainer = isvc["spec"]["explainer"]["containers"][0]
    assert arg_value(explainer, "--reference_dir") == "/mnt/reference/recommendations"
    assert arg_value(explainer, "--predictor_url") == (
        f"http://recommendations-predictor.{NAMESPACE}.svc.cluster.local"
    )
    # Every model's explainer and detector share the one reference claim, a folder each.
    readers = [w for w in workloads(three) if w.name.endswith(("/explainer", "-drift-detector"))]
    assert len(readers) == 6
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for w in readers
        for v in w.pod.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    assert claims == {"getit-ml-reference"}


def test_an_entry_overrides_feature_service_threshold_and_model_uri() -> None:
    models = [
        model_entry(
            "fraud-shadow",
            "fraud",
            modelUri="models:/fraud@challenger",
            threshold=0.3,
            transformer={"featureService": "fraud_scoring_v2"},
        )
    ]
    isvc = one(render(models), "InferenceService", "fraud-shadow")
    predictor = isvc["spec"]["predictor"]["model"]
    assert predictor["args"] == [
        "--family=fraud",
        "--model_uri=models:/fraud@challenger",
        "--threshold=0.3",
    ]
    transformer = isvc["spec"]["transformer"]["containers"][0]
    assert arg_value(transformer, "--feature_service") == "fraud_scoring_v2"
    assert arg_value(isvc["spec"]["explainer"]["containers"][0], "--threshold") == "0.3"


# ------------------------------------------------------------------------------------------ (b)
def test_a_model_with_its_components_off_renders_none_of_them() -> None:
    bare = model_entry(
        "churn",
        "churn",
        transformer={"enabled": False},
        explainer={"enabled": False},
        driftDetector={"enabled": False},
    )
    objects = render([model_entry("fraud", "fraud"), bare])
    isvc = one(objects, "InferenceService", "churn")
    assert set(isvc["spec"]) == {"predictor"}
    assert "logger" not in isvc["spec"]["predictor"]
    kinds_and_names = {(o["kind"], o["metadata"]["name"]) for o in model_objects(objects, "churn")}
    assert kinds_and_names == {
        ("InferenceService", "churn"),
        ("NetworkPolicy", "getit-ml-churn-predictor"),
        ("PodDisruptionBudget", "getit-ml-churn-predictor"),
        ("PodMonitor", "getit-ml-churn-serving"),
        ("ConfigMap", "getit-ml-churn-dashboard"),
    }
    assert find(objects, "Deployment", "getit-ml-churn-drift-detector") == []
    assert set(_alerts(objects)["churn"]) == {"GetitMlHighErrorRate", "GetitMlHighLatencyP99"}
    # Nobody opens a path to the components that are not there.
    absent = [
        {"serving.kserve.io/inferenceservice": "churn", "component": "transformer"},
        {"serving.kserve.io/inferenceservice": "churn", "component": "explainer"},
        {"app.kubernetes.io/name": "drift-detector", "getit-ml/model": "churn"},
    ]
    for policy in find(objects, "NetworkPolicy"):
        rules = policy["spec"].get("ingress", []) + policy["spec"].get("egress", [])
        for peer in (p for r in rules for p in r.get("from", r.get("to", []))):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            assert not any(a.items() <= labels.items() for a in absent), policy["metadata"]
    monitor = one(objects, "PodMonitor", "getit-ml-churn-serving")
    (expression,) = monitor["spec"]["selector"]["matchExpressions"]
    assert expression["values"] == ["predictor"]
    # The other model keeps everything.
    one(objects, "Deployment", "getit-ml-fraud-drift-detector")
    assert set(one(objects, "InferenceService", "fraud")["spec"]) == {
        "predictor",
        "transformer",
        "explainer",
    }


def test_no_reader_no_reference_claim() -> None:
    bare = model_entry("fraud", "fraud", explainer={"enabled": False})
    bare["driftDetector"]["enabled"] = False
    claims = {o["metadata"]["name"] for o in find(render([bare]), "PersistentVolumeClaim")}
    assert claims == {"getit-ml-redis-data", "getit-ml-offline-store"}, "the stores' own only"


# ------------------------------------------------------------------------------------------ (c)
def _without(key: str) -> dict[str, Any]:
    entry = model_entry("fraud", "fraud")
    del entry[key]
    return entry


@pytest.mark.parametrize(
    ("models", "complaint"),
    [
        ([_without("family")], r"at '/models/0': missing property 'family'"),
        ([_without("runtime")], r"at '/models/0': missing property 'runtime'"),
        ([model_entry("fraud", "fraud", runtime="lightgbm")], r"/models/0/runtime"),
        ([model_entry("Fraud_1", "fraud")], r"/models/0/name"),
        ([model_entry("fraud", "Fraud-Scoring")], r"/models/0/family"),
        ([model_entry("f" * 41, "fraud")], r"/models/0/name"),
        ([{**model_entry("fraud", "fraud"), "replicas": 3}], r"replicas"),
    ],
)
def test_the_schema_refuses_a_model_it_cannot_serve(
    models: list[dict[str, Any]], complaint: str
) -> None:
    from helm_python import HelmValuesError

    with pytest.raises(HelmValuesError, match=complaint):
        render(models)


def test_the_schema_refuses_an_unknown_runtime_in_the_runtimes_map() -> None:
    from helm_python import HelmValuesError

    runtime = chart_defaults()["runtimes"]["xgboost-binary"]
    with pytest.raises(HelmValuesError, match="invalid propertyName 'lightgbm'"):
        render_chart(CHART, {"runtimes": {"lightgbm": runtime}})


@pytest.mark.parametrize(
    ("models", "values", "complaint"),
    [
        (
            [model_entry("fraud", "fraud"), model_entry("fraud", "churn")],
            {},
            'the name "fraud" is used twice',
        ),
        (
            [model_entry("fraud", "fraud")],
            {"runtimes": {"xgboost-binary": None}},
            "is not a key of runtimes",
        ),
        (
            [model_entry("fraud", "fraud", autoscaling={"minReplicas": 5, "maxReplicas": 2})],
            {},
            "minReplicas is above maxReplicas",
        ),
        (
            [model_entry("fraud", "fraud", transformer={"replicas": {"min": 3, "max": 1}})],
            {},
            "transformer.replicas: min is above max",
        ),
        (
            [model_entry("m" * 40, "fraud")],
            {"fullnameOverride": "getit-ml-platform-release"},
            "longer than 63 characters",
        ),
    ],
)
def test_the_templates_refuse_what_the_schema_cannot_see(
    models: list[dict[str, Any]], values: dict[str, Any], complaint: str
) -> None:
    from helm_python import HelmError

    with pytest.raises(HelmError, match=re.escape(complaint)):
        render(models, **values)


# ------------------------------------------------------------------------------------------ (d)
def test_alerts_read_our_metrics_for_each_model(three: list[Manifest]) -> None:
    from getit_ml.serving.metrics import REQUEST_DURATION, REQUESTS_TOTAL

    for model, alerts in _alerts(three).items():
        selector = f'namespace="{NAMESPACE}",model="{model}"'
        errors = " ".join(alerts["GetitMlHighErrorRate"].split())
        assert f'{REQUESTS_TOTAL}{{{selector},code=~"5.."}}' in errors
        assert f"{REQUESTS_TOTAL}{{{selector}}}" in errors, "the share is over all requests"
        assert "sum by (model, component)" in errors
        latency = " ".join(alerts["GetitMlHighLatencyP99"].split())
        assert latency.startswith("histogram_quantile(0.99,")
        assert f"{REQUEST_DURATION}_bucket{{{selector}}}" in latency
        assert "sum by (model, component, le)" in latency
        assert f"getit_ml_drift_is_drift{{{selector}}}" in alerts["GetitMlModelDrift"]
        assert f'service="getit-ml-{model}-drift-detector"' in alerts["GetitMlDriftDetectorSilent"]
        # No other model's series.
        others = set(_alerts(three)) - {model}
        assert not any(f'model="{o}"' in " ".join(alerts.values()) for o in others)


def test_alert_thresholds_come_from_the_values() -> None:
    objects = render_chart(
        CHART, {"monitoring": {"rules": {"errorRateThreshold": 0.05, "p99LatencySeconds": 1.5}}}
    )
    alerts = _alerts(objects)["fraud"]
    assert alerts["GetitMlHighErrorRate"].strip().endswith("> 0.05")
    assert alerts["GetitMlHighLatencyP99"].strip().endswith("> 1.5")


def test_dashboards_are_one_per_model_on_our_metrics(three: list[Manifest]) -> None:
    for isvc in find(three, "InferenceService"):
        model = isvc["metadata"]["name"]
        data = one(three, "ConfigMap", f"getit-ml-{model}-dashboard")["data"]
        board = json.loads(data[f"getit-ml-{model}.json"])
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        inference = [e for e in exprs if "getit_ml_inference_" in e]
        assert inference
        assert all(f'model="{model}"' in e for e in inference)
        assert any("getit_ml_inference_request_duration_seconds_bucket" in e for e in inference)


# ------------------------------------------------------------------------------------------ (e)
def test_one_serving_runtime_serves_every_model_of_its_runtime(three: list[Manifest]) -> None:
    (runtime,) = find(three, "ServingRuntime")
    assert runtime["metadata"]["name"] == "getit-ml-xgboost-binary"
    (container,) = runtime["spec"]["containers"]
    assert container["image"] == "getit-ml/xgboost-scorer:0.1.0"
    assert arg_value(container, "--model_name") == "{{.Name}}"
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    for isvc in find(three, "InferenceService"):
        model = isvc["spec"]["predictor"]["model"]
        assert model["runtime"] == "getit-ml-xgboost-binary"
        assert model["modelFormat"]["name"] in formats


def test_no_model_no_serving_runtime() -> None:
    objects = render([])
    assert find(objects, "ServingRuntime") == []
    assert find(objects, "InferenceService") == []
    assert find(objects, "PrometheusRule") == []


# --------------------------------------------------------------------- the families themselves
def test_the_default_models_match_their_families_declarations() -> None:
    from getit_ml.families import family_names, get_family

    values = chart_defaults()
    assert [(m["name"], m["family"]) for m in values["models"]] == [
        ("fraud", "fraud"),
        ("churn", "churn"),
    ]
    for entry in values["models"]:
        family = get_family(entry["family"])
        assert entry["runtime"] == family.serving.runtime
        assert entry["transformer"]["enabled"] is True
    assert {m["family"] for m in values["models"]} <= set(family_names())


def test_the_schema_knows_the_platforms_runtimes_and_family_names() -> None:
    from getit_ml.families import family_names
    from getit_ml.families.base import NAME_PATTERN
    from getit_ml.serving.runtime import RUNTIMES

    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["runtimeName"]["enum"] == list(RUNTIMES)
    assert set(chart_defaults()["runtimes"]) == set(RUNTIMES)
    family = schema["$defs"]["model"]["properties"]["family"]["pattern"]
    assert family == f"^{NAME_PATTERN.pattern}$"
    for name in family_names():
        assert re.fullmatch(family, name)


def test_each_models_pods_are_selected_by_its_own_policies_only(three: list[Manifest]) -> None:
    policies = [p for p in find(three, "NetworkPolicy") if p["spec"]["podSelector"]]
    for workload in workloads(three):
        model = workload.labels.get(
            "serving.kserve.io/inferenceservice", workload.labels.get("getit-ml/model")
        )
        if model is None:
            continue
        own = [p for p in policies if selects(p["spec"]["podSelector"], workload.labels)]
        assert own, workload.name
        assert {p["metadata"]["labels"].get("getit-ml/model") for p in own} == {model}
