"""The secure-by-default rules, asserted on every rendering — including the KServe kinds that
checkov cannot read (InferenceService components, the ServingRuntime merged into the predictor)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from getit_ml.deploy.render import Manifest
from tests.deploy.support import CHART, chart_objects, find, one
from tests.deploy.workloads import Workload, arg_value, selects, workloads

#: Environment variables that carry credentials: they must come from a Secret.
SECRET_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY|DSN|REDIS_URL|BACKEND_STORE_URI")
FORBIDDEN_RESOURCES = {"secrets", "pods/exec", "pods/attach", "pods/portforward", "nodes/proxy"}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}


def container_violations(workload: Workload, container: dict[str, Any]) -> list[str]:
    where = f"{workload.name}:{container.get('name', '?')}"
    pod_context = {} if workload.knative else workload.pod.get("securityContext", {})
    context = container.get("securityContext", {})
    problems: list[str] = []

    def effective(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    if effective("runAsNonRoot") is not True:
        problems.append(f"{where}: runAsNonRoot is not true")
    if effective("runAsUser") in (None, 0):
        problems.append(f"{where}: no non-root runAsUser")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if context.get("privileged"):
        problems.append(f"{where}: privileged")
    capabilities = context.get("capabilities", {})
    if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
        problems.append(f"{where}: capabilities are not drop [ALL]")
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccomp is not RuntimeDefault")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: root filesystem is writable")
    resources = container.get("resources", {})
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(bound, {}):
                problems.append(f"{where}: no {resource} {bound}")
    if workload.batch:
        # A run-to-completion pod has no endpoints to leave and nothing to restart: its
        # deadline stops a hung run, as liveness would restart a hung server.
        if not workload.extra["job"].get("activeDeadlineSeconds"):
            problems.append(f"{where}: a batch pod without activeDeadlineSeconds")
    else:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                problems.append(f"{where}: no {probe}")
    volumes = {v["name"]: v for v in workload.pod.get("volumes", [])}
    tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
    if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
        problems.append(f"{where}: no emptyDir at /tmp for the read-only root")
    for variable in container.get("env", []):
        if SECRET_ENV.search(variable["name"]) and "secretKeyRef" not in variable.get(
            "valueFrom", {}
        ):
            problems.append(f"{where}: {variable['name']} is not read from a Secret")
    return problems


def pod_violations(workload: Workload) -> list[str]:
    problems = [p for c in workload.containers for p in container_violations(workload, c)]
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if workload.pod.get(flag):
            problems.append(f"{workload.name}: {flag}")
    if workload.pod.get("serviceAccountName") in (None, "", "default"):
        problems.append(f"{workload.name}: runs as the default ServiceAccount")
    if not workload.knative and workload.pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{workload.name}: mounts an API token")
    for volume in workload.pod.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"{workload.name}: hostPath volume")
    return problems


def test_pods_are_hardened(rendering: tuple[str, list[Manifest]]) -> None:
    _, objects = rendering
    found = workloads(objects)
    assert any(w.isvc for w in found)
    problems = [p for w in found for p in pod_violations(w)]
    assert problems == []


def test_the_hardening_check_catches_a_weakened_container() -> None:
    objects = copy.deepcopy(chart_objects(None))
    isvc = one(objects, "InferenceService", "fraud")
    transformer = isvc["spec"]["transformer"]["containers"][0]
    transformer["securityContext"]["allowPrivilegeEscalation"] = True
    del isvc["spec"]["explainer"]["containers"][0]["resources"]["limits"]
    runtime = find(objects, "ServingRuntime")[0]
    runtime["spec"]["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    isvc["spec"]["predictor"]["model"]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    problems = [p for w in workloads(objects) for p in pod_violations(w)]
    assert any("transformer" in p and "allowPrivilegeEscalation" in p for p in problems)
    assert any("explainer" in p and "limits" in p for p in problems)
    assert any("predictor" in p and "capabilities" in p for p in problems)


def test_serving_probes_drain_and_grace_period(rendering: tuple[str, list[Manifest]]) -> None:
    _, objects = rendering
    for workload in (w for w in workloads(objects) if w.isvc):
        model = workload.labels["serving.kserve.io/inferenceservice"]
        container = workload.containers[0]
        assert container["readinessProbe"]["httpGet"]["path"] == f"/v2/models/{model}/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert arg_value(container, "--enable_repository_extension") in (None, "false")
        if workload.knative:
            # Knative drains through the queue-proxy; `timeout` bounds a request.
            assert workload.pod["timeout"] > 0
            assert "terminationGracePeriodSeconds" not in workload.pod
            continue
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop >= 1
        drain = int(arg_value(container, "--grace_period") or 0)
        longest = max(drain, int(arg_value(container, "--predictor_timeout") or 0), 30)
        if workload.name.endswith("explainer"):
            longest = max(longest, 60)
        assert workload.pod["terminationGracePeriodSeconds"] > pre_stop + longest, workload.name
    predictors = [w for w in workloads(objects) if w.name.endswith("/predictor")]
    assert predictors
    for predictor in predictors:
        assert arg_value(predictor.containers[0], "--enable_repository_extension") == "false"


def test_standard_mode_autoscales_on_cpu_and_knative_mode_has_a_canary() -> None:
    standard = one(chart_objects(None), "InferenceService", "fraud")
    assert standard["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert standard["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    predictor = standard["spec"]["predictor"]
    assert 1 <= predictor["minReplicas"] < predictor["maxReplicas"]
    (metric,) = predictor["autoScaling"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "canaryTrafficPercent" not in predictor
    knative = one(chart_objects(CHART / "ci" / "knative-canary.yaml"), "InferenceService", "fraud")
    assert knative["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert 0 < knative["spec"]["predictor"]["canaryTrafficPercent"] < 100


def test_logger_sends_everything_to_the_models_drift_detector(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    for isvc in find(objects, "InferenceService"):
        model = isvc["metadata"]["name"]
        detector_name = f"getit-ml-{model}-drift-detector"
        logger = isvc["spec"]["predictor"].get("logger")
        if logger is None:
            assert find(objects, "Deployment", detector_name) == []
            continue
        assert logger["mode"] == "all"
        match = re.fullmatch(
            r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local/", logger["url"]
        )
        assert match, logger["url"]
        service = one(objects, "Service", match.group(1))
        assert service["metadata"]["namespace"] == match.group(2)
        detector = one(objects, "Deployment", detector_name)
        pod_labels = detector["spec"]["template"]["metadata"]["labels"]
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels)
        # The Service selects this model's detector and no other model's.
        others = [
            d
            for d in find(objects, "Deployment")
            if d is not detector
            and selects(
                {"matchLabels": service["spec"]["selector"]},
                d["spec"]["template"]["metadata"]["labels"],
            )
        ]
        assert others == []
        container = detector["spec"]["template"]["spec"]["containers"][0]
        assert arg_value(container, "--models") == model
        assert arg_value(container, "--model_name") == model
        assert arg_value(container, "--reference_dir") == f"/mnt/reference/{model}"
        assert arg_value(container, "--predictor_url") == (
            f"http://{model}-predictor.{match.group(2)}.svc.cluster.local"
        )
        assert "--reference_scores_url" not in " ".join(container["args"])


def test_services_and_pdbs_select_real_pods(rendering: tuple[str, list[Manifest]]) -> None:
    _, objects = rendering
    found = workloads(objects)
    for service in find(objects, "Service"):
        backing = [
            w for w in found if selects({"matchLabels": service["spec"]["selector"]}, w.labels)
        ]
        assert backing, f"Service {service['metadata']['name']} selects no pods"
        ports = {p.get("name") for w in backing for c in w.containers for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    budgets = find(objects, "PodDisruptionBudget")
    for budget in budgets:
        assert [w for w in found if selects(budget["spec"]["selector"], w.labels)], budget
        assert budget["spec"].get("maxUnavailable") == 1
    serving = [w for w in found if w.isvc or w.name.endswith("feature-server")]
    for workload in serving:
        assert any(selects(b["spec"]["selector"], workload.labels) for b in budgets), (
            f"{workload.name} has no PodDisruptionBudget"
        )


def _peer_selects_something(peer: dict[str, Any], found: list[Workload]) -> bool:
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return True
    selector = peer["podSelector"]
    if any(
        e["key"].startswith("workflows.argoproj.io") for e in selector.get("matchExpressions", [])
    ):
        return True  # the pipeline's pods, started by Argo at run time
    return any(selects(selector, w.labels) for w in found)


def test_network_is_default_deny_with_precise_allows(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    policies = find(objects, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1
    found = workloads(objects)
    allows = [p for p in policies if p["spec"]["podSelector"] != {}]
    for workload in found:
        assert any(selects(p["spec"]["podSelector"], workload.labels) for p in allows), (
            f"{workload.name} has no NetworkPolicy of its own"
        )
    for policy in allows:
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy['metadata']['name']}: ingress from anywhere"
            for peer in rule["from"]:
                assert _peer_selects_something(peer, found), (policy["metadata"]["name"], peer)
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                assert _peer_selects_something(peer, found), (policy["metadata"]["name"], peer)


@pytest.mark.parametrize(
    ("name", "port", "clients"),
    [
        ("redis", 6379, set()),
        ("postgresql", 5432, {"Deployment/getit-ml-mlflow"}),
    ],
)
def test_redis_and_postgres_accept_only_their_clients(
    name: str, port: int, clients: set[str]
) -> None:
    objects = chart_objects(None)
    policy = one(objects, "NetworkPolicy", f"getit-ml-{name}")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    allowed = {
        w.name
        for w in workloads(objects)
        if any("podSelector" in p and selects(p["podSelector"], w.labels) for p in rule["from"])
    }
    # The feature readers and the materialize runs (they write Redis and read the registry).
    assert allowed == {
        "InferenceService/fraud/transformer",
        "InferenceService/churn/transformer",
        "Deployment/getit-ml-feature-server",
        "CronJob/getit-ml-materialize",
        *clients,
    }


def test_rbac_is_least_privilege(rendering: tuple[str, list[Manifest]]) -> None:
    _, objects = rendering
    assert not find(objects, "ClusterRole")
    assert not find(objects, "ClusterRoleBinding")
    for role in find(objects, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            assert not FORBIDDEN_RESOURCES & set(rule["resources"]), rule
            assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
    for binding in find(objects, "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        one(objects, "Role", binding["roleRef"]["name"])
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            one(objects, "ServiceAccount", subject["name"])


def test_no_secrets_are_rendered(rendering: tuple[str, list[Manifest]]) -> None:
    _, objects = rendering
    assert not find(objects, "Secret")
    text = json.dumps(objects)
    assert not re.search(r"://[^/\s\"]*:[^@/\s\"]+@", text), "a URL with credentials"


def test_namespace_enforces_restricted_pod_security(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    for namespace in find(objects, "Namespace"):
        labels = namespace["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("values_file", [None, CHART / "ci" / "external-services.yaml"])
def test_images_are_pinned(values_file: Any) -> None:
    for workload in workloads(chart_objects(values_file)):
        for container in workload.containers:
            image = container["image"]
            assert re.search(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$|@sha256:", image), image
            assert not image.endswith(":latest"), image


def _transformer_collector() -> Any:
    """The transformer's own collector in a state where it yields every series it has: one
    view's watermark present and one missing, the predictor probed, a failure and a degraded
    row counted."""
    from collections import Counter
    from collections.abc import Mapping, Sequence
    from datetime import UTC, datetime

    from getit_ml.serving.dependency_monitor import (
        DependencyMonitor,
        TransformerCollector,
        TransformerCounters,
        WatchedView,
    )
    from getit_ml.serving.resilience import CircuitBreaker

    class OneMissing:
        def read(self, views: Sequence[str]) -> dict[str, datetime | None]:
            return {v: datetime.now(UTC) if i == 0 else None for i, v in enumerate(views)}

        def advance(self, marks: Mapping[str, datetime]) -> None:
            """Read-only here."""

        def ping(self) -> None:
            """Always answers."""

        def close(self) -> None:
            """Nothing to close."""

    views = [WatchedView("present", 3600.0), WatchedView("missing", 3600.0)]
    monitor = DependencyMonitor(views, OneMissing(), lambda: None)
    monitor.check_once()
    counters = TransformerCounters(degraded_rows=1)
    return TransformerCollector("m", monitor, CircuitBreaker(), Counter({"timeout": 1}), counters)


def _metric_names() -> set[str]:
    """Every series the platform's processes expose: the drift detector's, the fast v2
    servers' (scorer and transformer) and the transformer's dependency collector's."""
    from getit_ml.monitoring.metrics import DriftMetrics
    from getit_ml.serving.metrics import InferenceMetrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names: set[str] = set()
    for registry in (DriftMetrics().registry, InferenceMetrics().registry):
        for family in registry.collect():
            names.update(f"{family.name}{s}" for s in suffixes[family.type])
    for family in _transformer_collector().collect():
        assert family.samples, f"{family.name}: the collector yielded no sample"
        names.update(f"{family.name}{s}" for s in suffixes[family.type])
    return names


def test_alerts_and_dashboards_use_metrics_that_exist() -> None:
    objects = chart_objects(None)
    rule = one(objects, "PrometheusRule", "getit-ml-alerts")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    for isvc in find(objects, "InferenceService"):
        model = isvc["metadata"]["name"]
        dashboard = one(objects, "ConfigMap", f"getit-ml-{model}-dashboard")
        board = json.loads(dashboard["data"][f"getit-ml-{model}.json"])
        exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
        assert "${" not in json.dumps(board).replace("${datasource}", "")
        assert board["uid"] == f"getit-ml-{model}"
        assert len(board["uid"]) <= 40  # Grafana's limit
    known = _metric_names()
    used = {m for e in exprs for m in re.findall(r"getit_ml_[a-z_]+", e)}
    assert {"getit_ml_inference_requests_total", "getit_ml_drift_is_drift"} <= used
    assert {"getit_ml_feature_view_watermark_present", "getit_ml_dependency_up"} <= used
    assert used <= known, used - known
    assert not re.search(r"istio_|response_code|destination_service", json.dumps(exprs))


def test_the_metric_check_catches_an_unknown_metric() -> None:
    assert "getit_ml_inference_request_duration_seconds_bucket" in _metric_names()
    assert "getit_ml_inference_requests_total" in _metric_names()
    assert "getit_ml_inference_requests_bucket" not in _metric_names()
    assert "getit_ml_inference_request_duration_seconds_total" not in _metric_names()
    assert {"getit_ml_dependency_up", "getit_ml_degraded_rows_total"} <= _metric_names()
    assert "getit_ml_degraded_rows" not in _metric_names(), "a counter is scraped as _total"


def test_drift_detectors_are_scraped_through_their_services() -> None:
    objects = chart_objects(None)
    monitor = one(objects, "ServiceMonitor", "getit-ml-drift-detector")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [
        s for s in find(objects, "Service") if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert {s["metadata"]["name"] for s in services} == {
        "getit-ml-fraud-drift-detector",
        "getit-ml-churn-drift-detector",
    }
    for service in services:
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert monitor["spec"]["endpoints"][0]["port"] in ports


@pytest.mark.parametrize("values_file", [None, CHART / "ci" / "knative-canary.yaml"])
def test_pod_monitors_scrape_each_models_predictor_and_transformer(values_file: Any) -> None:
    objects = chart_objects(values_file)
    found = workloads(objects)
    policies = find(objects, "NetworkPolicy")
    for isvc in find(objects, "InferenceService"):
        model = isvc["metadata"]["name"]
        knative = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
        monitor = one(objects, "PodMonitor", f"getit-ml-{model}-serving")
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["path"] == "/metrics"
        scraped = [w for w in found if selects(monitor["spec"]["selector"], w.labels)]
        expected = {f"InferenceService/{model}/predictor"}
        if "transformer" in isvc["spec"]:
            expected.add(f"InferenceService/{model}/transformer")
        assert {w.name for w in scraped} == expected
        for workload in scraped:
            (port,) = [p for c in workload.containers for p in c.get("ports", [])]
            assert port["containerPort"] == 8080
            # Knative renames the user container's port; KServe's Standard mode keeps ours.
            assert endpoint["port"] == ("user-port" if knative else port["name"])
            # Prometheus's namespace may reach port 8080 of the pod.
            assert any(
                selects(p["spec"]["podSelector"], workload.labels)
                and any(
                    {"port": 8080, "protocol": "TCP"} in rule.get("ports", [])
                    and any(
                        peer.get("namespaceSelector", {}).get("matchLabels", {})
                        == {"kubernetes.io/metadata.name": "monitoring"}
                        for peer in rule["from"]
                    )
                    for rule in p["spec"].get("ingress", [])
                )
                for p in policies
            ), f"{workload.name}: Prometheus may not scrape it"


def test_platform_settings_in_the_environment_exist(rendering: tuple[str, list[Manifest]]) -> None:
    from getit_ml.settings import ENV_PREFIX, PlatformSettings

    known = {ENV_PREFIX + name.upper() for name in PlatformSettings.model_fields}
    _, objects = rendering
    used = {
        variable["name"]
        for workload in workloads(objects)
        for container in workload.containers
        for variable in container.get("env", [])
        if variable["name"].startswith(ENV_PREFIX)
    }
    assert used, "no platform settings passed at all"
    assert used <= known, f"not settings (getit-ml refuses to start): {sorted(used - known)}"
