"""What keeps serving honest when its dependencies misbehave, as the chart deploys it: Redis
persists its append-only file on a claim, a CronJob re-materializes the online store (and
refills one that lost its data), the transformers check feature freshness, alerts watch the
transformers' own dependency metrics, and every serving pod sleeps in preStop before its drain."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from getit_ml.deploy.crd import CrdSchema, validation_errors
from getit_ml.deploy.render import Manifest, load_values, render_chart
from tests.deploy.support import CHART, chart_defaults, chart_objects, dig, find, one
from tests.deploy.workloads import Workload, arg_value, selects, workloads

NAMESPACE = "getit-ml"
REDIS = "Deployment/getit-ml-redis"
MATERIALIZE = "CronJob/getit-ml-materialize"
#: The transformer's flags KServe adds in Standard mode (--model_name, the predictor's host, the
#: port); the chart gives the rest.
KSERVE_TRANSFORMER_ARGS = [
    "--model_name=fraud",
    f"--predictor_host=fraud-predictor.{NAMESPACE}",
    "--http_port=8080",
]


def workload(objects: list[Manifest], name: str) -> Workload:
    (found,) = [w for w in workloads(objects) if w.name == name]
    return found


def mounts(w: Workload) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """mountPath -> (the container's mount, the pod's volume)."""
    volumes = {v["name"]: v for v in w.pod.get("volumes", [])}
    return {
        m["mountPath"]: (m, volumes[m["name"]])
        for c in w.containers
        for m in c.get("volumeMounts", [])
    }


def redis_args(objects: list[Manifest]) -> list[str]:
    (container,) = workload(objects, REDIS).containers
    return [str(a) for a in container["args"]]


def option(args: list[str], name: str) -> str:
    """The value after ``--name`` in redis-server's command line."""
    return args[args.index(name) + 1]


# ----------------------------------------------------------------- Redis keeps its data
def test_redis_appends_every_write_to_a_file_on_its_claim(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    if not find(objects, "Deployment", "getit-ml-redis"):
        pytest.skip("this rendering uses an external Redis")
    args = redis_args(objects)
    assert option(args, "--appendonly") == "yes"
    assert option(args, "--appendfsync") == "everysec"
    data_dir = option(args, "--dir")
    mount, volume = mounts(workload(objects, REDIS))[data_dir]
    assert not mount.get("readOnly")
    claim = one(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    deployment = one(objects, "Deployment", "getit-ml-redis")
    # One writer of a ReadWriteOnce claim: the old pod stops before the new one starts.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_redis_persistence_follows_its_values() -> None:
    objects = render_chart(
        CHART,
        {"redis": {"persistence": {"appendfsync": "always", "size": "20Gi",
                                   "storageClassName": "fast-ssd"}}},
    )  # fmt: skip
    assert option(redis_args(objects), "--appendfsync") == "always"
    claim = one(objects, "PersistentVolumeClaim", "getit-ml-redis-data")
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"


def test_redis_without_persistence_says_so() -> None:
    objects = render_chart(CHART, {"redis": {"persistence": {"enabled": False}}})
    args = redis_args(objects)
    assert option(args, "--appendonly") == "no"
    assert "--appendfsync" not in args
    _, volume = mounts(workload(objects, REDIS))[option(args, "--dir")]
    assert "emptyDir" in volume
    assert find(objects, "PersistentVolumeClaim", "getit-ml-redis-data") == []
    # Nothing survives a restart: the CronJob is what refills the store.
    one(objects, "CronJob", "getit-ml-materialize")


def test_the_schema_refuses_an_unknown_fsync_policy() -> None:
    from helm_python import HelmValuesError

    with pytest.raises(HelmValuesError, match="appendfsync"):
        render_chart(CHART, {"redis": {"persistence": {"appendfsync": "sometimes"}}})


# --------------------------------------------------------------- the materialize CronJob
def test_materialize_runs_the_incremental_cli_on_the_schedule() -> None:
    objects = chart_objects(None)
    cron = one(objects, "CronJob", "getit-ml-materialize")
    assert cron["spec"]["schedule"] == chart_defaults()["materialize"]["schedule"]
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid", "a run never overlaps another"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == chart_defaults()["materialize"]["activeDeadlineSeconds"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = workload(objects, MATERIALIZE).containers
    assert container["command"] == ["getit-ml", "features", "materialize"]
    assert container["image"] == "getit-ml/components:0.1.0"
    params = materialize_params(container["args"])
    assert params["incremental"] is True
    assert params["profile"] == "production"
    assert params["start"] is None
    # The settings come from the Secrets, as every other reader of the stores.
    env = {e["name"]: e for e in container["env"]}
    assert env["GETIT_ML_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "getit-ml-redis",
        "key": "url",
    }
    assert env["GETIT_ML_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "getit-ml-postgresql",
        "key": "feast-dsn",
    }


def materialize_params(args: list[str]) -> dict[str, Any]:
    """The CronJob's args as the real ``getit-ml features materialize`` parses them (an unknown
    or misspelled option fails here, not in the cluster at the first run)."""
    import typer

    from getit_ml.cli.main import app

    command = typer.main.get_command(app).commands["features"].commands["materialize"]  # type: ignore[attr-defined]
    return dict(command.make_context("materialize", list(args)).params)


def test_the_cli_check_catches_a_misspelled_option() -> None:
    with pytest.raises(Exception, match="No such option"):
        materialize_params(["--incrementl", "--profile=production"])


def test_materialize_reads_the_offline_store_read_only_under_its_workdir() -> None:
    objects = chart_objects(None)
    (container,) = workload(objects, MATERIALIZE).containers
    workdir = str(materialize_params(container["args"])["workdir"])
    found = mounts(workload(objects, MATERIALIZE))
    mount, volume = found[f"{workdir}/offline"]
    assert mount["readOnly"] is True
    assert mount["subPath"] == "offline", "the claim holds a store folder (features build)"
    assert volume["persistentVolumeClaim"] == {
        "claimName": "getit-ml-offline-store",
        "readOnly": True,
    }
    one(objects, "PersistentVolumeClaim", "getit-ml-offline-store")
    # The rest of the workdir (Feast's data/) is the writable emptyDir at /tmp.
    assert workdir.startswith("/tmp/")
    assert "emptyDir" in found["/tmp"][1]


def test_materialize_values_reach_the_cronjob() -> None:
    objects = render_chart(
        CHART,
        {
            "materialize": {
                "schedule": "17 * * * *",
                "activeDeadlineSeconds": 600,
                "backoffLimit": 0,
                "offlineStore": {"existingClaim": "features-parquet"},
            }
        },
    )
    cron = one(objects, "CronJob", "getit-ml-materialize")
    assert cron["spec"]["schedule"] == "17 * * * *"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert (job["activeDeadlineSeconds"], job["backoffLimit"]) == (600, 0)
    (volume,) = [v for v in job["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == "features-parquet"
    assert find(objects, "PersistentVolumeClaim", "getit-ml-offline-store") == []


@pytest.mark.parametrize("schedule", ["every 5 minutes", "*/5 * * *", "CRON_TZ=UTC */5 * * * *"])
def test_the_schema_refuses_a_schedule_that_is_not_cron(schedule: str) -> None:
    from helm_python import HelmValuesError

    with pytest.raises(HelmValuesError, match="/materialize/schedule"):
        render_chart(CHART, {"materialize": {"schedule": schedule}})


def test_materialize_off_renders_nothing_of_it() -> None:
    objects = render_chart(CHART, {"materialize": {"enabled": False}})
    names = {o["metadata"]["name"] for o in objects}
    assert not {"getit-ml-materialize", "getit-ml-offline-store"} & names
    for policy in find(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                assert labels.get("app.kubernetes.io/name") != "materialize"
    # The runbooks then say how to refill by hand rather than name a CronJob that is not there.
    rule = one(objects, "PrometheusRule", "getit-ml-alerts")
    runbooks = " ".join(
        r["annotations"].get("runbook", "") for g in rule["spec"]["groups"] for r in g["rules"]
    )
    assert "cronjob/" not in runbooks
    assert "getit-ml features materialize --incremental" in runbooks


def egress_ports(policy: Manifest, w: Workload) -> set[int]:
    """Ports of the rules of ``policy`` whose pod peers select ``w``'s pods."""
    return {
        port["port"]
        for rule in policy["spec"].get("egress", [])
        if any("podSelector" in p and selects(p["podSelector"], w.labels) for p in rule["to"])
        for port in rule.get("ports", [])
    }


def test_materialize_may_reach_redis_and_postgresql_and_nothing_else() -> None:
    objects = chart_objects(None)
    runs = workload(objects, MATERIALIZE)
    own = [
        p
        for p in find(objects, "NetworkPolicy")
        if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], runs.labels)
    ]
    (policy,) = own
    assert policy["spec"]["ingress"] == [], "nothing calls a batch run"
    redis, postgres = workload(objects, REDIS), workload(objects, "StatefulSet/getit-ml-postgresql")
    assert egress_ports(policy, redis) == {6379}
    assert egress_ports(policy, postgres) == {5432}
    reached = [w.name for w in workloads(objects) if egress_ports(policy, w)]
    assert sorted(reached) == sorted([redis.name, postgres.name])


def test_materialize_reaches_external_stores_through_their_egress_rules() -> None:
    objects = chart_objects(CHART / "ci" / "external-services.yaml")
    policy = one(objects, "NetworkPolicy", "getit-ml-materialize")
    values = load_values(CHART / "ci" / "external-services.yaml")
    expected = values["redis"]["externalEgress"] + values["postgresql"]["externalEgress"]
    assert policy["spec"]["egress"] == expected


# ---------------------------------------------------------------------- the transformers
def transformer_args(objects: list[Manifest], model: str) -> list[str]:
    isvc = one(objects, "InferenceService", model)
    return [str(a) for a in isvc["spec"]["transformer"]["containers"][0]["args"]]


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    """argparse's complaint (the last line it wrote, after the usage)."""
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else "(nothing on stderr)"


def test_transformers_check_freshness_against_each_views_ttl(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    checked = 0
    for isvc in find(objects, "InferenceService"):
        if "transformer" in isvc["spec"]:
            args = transformer_args(objects, isvc["metadata"]["name"])
            assert arg_value({"args": args}, "--freshness_check") == "ttl"
            checked += 1
    if not checked:
        pytest.skip("no transformer in this rendering")


def test_the_transformer_entry_point_accepts_the_charts_args(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The chart's transformer flags as the image's entry point parses them: a flag the
    transformer does not know would crash-loop every transformer pod."""
    from getit_ml.serving.entrypoints import transformer_parser

    args = transformer_args(chart_objects(None), "fraud")
    try:
        parsed = transformer_parser().parse_args([*KSERVE_TRANSFORMER_ARGS, *args])
    except SystemExit:
        pytest.fail(f"the transformer refuses the chart's args: {_last_line(capsys)}")
    assert parsed.freshness_check == "ttl"
    assert parsed.feature_store_profile == "production"
    assert parsed.grace_period == chart_defaults()["serving"]["requestTimeoutSeconds"]


def test_the_scorer_loads_from_the_registry_so_no_sha256_flag_is_needed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--model_dir needs --expected_sha256 (or --allow_unverified); the chart's scorers load
    ``--model_uri`` (the registry records the sha256), and the runtime's args plus the model's
    parse as the scorer's entry point parses them."""
    from getit_ml.serving.entrypoints import scorer_parser

    for w in (w for w in workloads(chart_objects(None)) if w.name.endswith("/predictor")):
        (container,) = w.containers
        args = [str(a) for a in container["args"]]
        try:
            parsed = scorer_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{w.name}: the scorer refuses the chart's args: {_last_line(capsys)}")
        assert parsed.model_uri.startswith("models:/")
        assert parsed.model_dir is None
        assert arg_value(container, "--allow_unverified") is None


#: Chart value (under ``serving``) -> the platform setting it sets in every transformer.
TRANSFORMER_SETTINGS = {
    "predictorCallTimeoutSeconds": "predictor_call_timeout_s",
    "featureReadDeadlineSeconds": "feature_read_deadline_s",
}


def transformer_env(objects: list[Manifest], model: str) -> dict[str, str]:
    isvc = one(objects, "InferenceService", model)
    env = isvc["spec"]["transformer"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


def test_transformer_timeouts_are_the_settings_defaults_unless_changed() -> None:
    from getit_ml.settings import ENV_PREFIX, PlatformSettings

    env = transformer_env(chart_objects(None), "fraud")
    serving = chart_defaults()["serving"]
    for value, setting in TRANSFORMER_SETTINGS.items():
        variable = ENV_PREFIX + setting.upper()
        # The chart's default is the platform's: one place decides it, the chart can change it.
        assert float(env[variable]) == PlatformSettings.model_fields[setting].default
        assert float(env[variable]) == serving[value]
    changed = render_chart(
        CHART, {"serving": {"predictorCallTimeoutSeconds": 5, "featureReadDeadlineSeconds": 0.5}}
    )
    env = transformer_env(changed, "fraud")
    assert env["GETIT_ML_PREDICTOR_CALL_TIMEOUT_S"] == "5"
    assert env["GETIT_ML_FEATURE_READ_DEADLINE_S"] == "0.5"


def test_the_transformers_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transformer's environment as its process reads it: every literal GETIT_ML_* value
    the chart sets is a valid setting (a bad one stops the pod at start-up)."""
    from getit_ml.settings import ENV_PREFIX, load_settings

    for name in [v for v in os.environ if v.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in transformer_env(chart_objects(None), "fraud").items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.predictor_call_timeout_s == 2.0
    assert settings.feature_read_deadline_s == 0.2


@pytest.mark.parametrize("value", ["predictorCallTimeoutSeconds", "featureReadDeadlineSeconds"])
def test_the_schema_refuses_a_zero_timeout(value: str) -> None:
    from helm_python import HelmValuesError

    with pytest.raises(HelmValuesError, match=f"/serving/{value}"):
        render_chart(CHART, {"serving": {value: 0}})


# --------------------------------------------------------------------------- the alerts
def alerts(objects: list[Manifest], model: str) -> dict[str, dict[str, Any]]:
    rule = one(objects, "PrometheusRule", "getit-ml-alerts")
    (group,) = [g for g in rule["spec"]["groups"] if g["name"] == f"getit-ml.{model}"]
    return {r["alert"]: r for r in group["rules"]}


def flat(expr: str) -> str:
    return " ".join(expr.split())


SEL = f'namespace="{NAMESPACE}",model="fraud"'
#: alert -> (expression, for, severity)
DEPENDENCY_ALERTS = {
    "GetitMlFeatureViewWatermarkMissing": (
        f"min by (model, view) (getit_ml_feature_view_watermark_present{{{SEL}}}) == 0",
        "2m",
        "critical",
    ),
    "GetitMlFeatureViewStale": (
        f"max by (model, view) (getit_ml_feature_view_watermark_age_seconds{{{SEL}}}) > "
        f"max by (model, view) (getit_ml_feature_view_ttl_seconds{{{SEL}}})",
        "2m",
        "critical",
    ),
    "GetitMlDependencyDown": (
        f"min by (model, dependency) (getit_ml_dependency_up{{{SEL}}}) == 0",
        "1m",
        "critical",
    ),
    "GetitMlCircuitOpen": (
        f"max by (model, dependency) (getit_ml_circuit_open{{{SEL}}}) == 1",
        "1m",
        "warning",
    ),
    "GetitMlDegradedRows": (
        f"sum by (model) (rate(getit_ml_degraded_rows_total{{{SEL}}}[5m])) > 0",
        "5m",
        "warning",
    ),
}


@pytest.mark.parametrize("name", sorted(DEPENDENCY_ALERTS))
def test_dependency_alerts_have_their_expressions_and_runbooks(name: str) -> None:
    expr, duration, severity = DEPENDENCY_ALERTS[name]
    alert = alerts(chart_objects(None), "fraud")[name]
    assert flat(alert["expr"]) == expr
    assert alert["for"] == duration
    assert alert["labels"]["severity"] == severity
    assert alert["labels"]["model"] == "fraud"
    runbook = alert["annotations"]["runbook"]
    assert len(runbook) > 100
    assert "{{" not in runbook, "runbooks are plain text"
    for annotation in ("summary", "description"):
        assert "fraud" in alert["annotations"][annotation]
    # Prometheus's own templates survive Helm's rendering: the view or dependency is named.
    label = "view" if "FeatureView" in name else "dependency" if "Degraded" not in name else None
    if label:
        assert f"{{{{ $labels.{label} }}}}" in alert["annotations"]["summary"]


def test_watermark_runbook_names_the_cronjob_that_refills_the_store() -> None:
    runbook = alerts(chart_objects(None), "fraud")["GetitMlFeatureViewWatermarkMissing"][
        "annotations"
    ]["runbook"]
    assert f"kubectl -n {NAMESPACE} create job --from=cronjob/getit-ml-materialize" in runbook


def test_degraded_rows_threshold_comes_from_the_values() -> None:
    objects = render_chart(CHART, {"monitoring": {"rules": {"degradedRowsPerSecond": 0.5}}})
    assert flat(alerts(objects, "fraud")["GetitMlDegradedRows"]["expr"]).endswith("> 0.5")


def test_a_model_without_transformer_has_no_dependency_alerts() -> None:
    from tests.deploy.support import model_entry

    models = [
        model_entry("fraud", "fraud"),
        model_entry("churn", "churn", transformer={"enabled": False}),
    ]
    objects = render_chart(CHART, {"models": models})
    assert set(DEPENDENCY_ALERTS) <= set(alerts(objects, "fraud"))
    assert not set(DEPENDENCY_ALERTS) & set(alerts(objects, "churn"))


def test_dashboards_show_the_transformers_dependencies() -> None:
    objects = chart_objects(None)
    data = one(objects, "ConfigMap", "getit-ml-fraud-dashboard")["data"]
    board = json.loads(data["getit-ml-fraud.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in (
        "getit_ml_feature_view_watermark_age_seconds",
        "getit_ml_feature_view_ttl_seconds",
        "getit_ml_feature_view_watermark_present",
        "getit_ml_dependency_up",
        "getit_ml_circuit_open",
        "getit_ml_dependency_failures_total",
        "getit_ml_degraded_rows_total",
    ):
        assert re.search(rf'{metric}\{{namespace="{NAMESPACE}",model="fraud"\}}', exprs), metric
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]}
    assert len(cells) == len(ids), "no two panels on one spot"


# ------------------------------------------------------------------------- preStop, grace
def test_serving_pods_sleep_in_prestop_within_their_grace_period(
    rendering: tuple[str, list[Manifest]],
) -> None:
    _, objects = rendering
    checked = [w for w in workloads(objects) if w.isvc and not w.knative]
    if not checked:
        pytest.skip("Knative only: the queue-proxy drains")
    for w in checked:
        (container,) = w.containers
        sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 5 <= sleep <= 30, w.name
        if w.name.endswith("/explainer"):
            # KServe's own server (monitoring environment): no --grace_period to add.
            assert w.pod["terminationGracePeriodSeconds"] > sleep, w.name
            continue
        drain = int(arg_value(container, "--grace_period") or 0)
        assert drain > 0, f"{w.name}: no --grace_period"
        # SIGTERM comes after the sleep; the drain must still fit before SIGKILL.
        assert w.pod["terminationGracePeriodSeconds"] >= sleep + drain, w.name


def test_grace_period_grows_with_the_prestop_sleep_and_the_drain() -> None:
    objects = render_chart(
        CHART, {"serving": {"preStopSleepSeconds": 20, "requestTimeoutSeconds": 45}}
    )
    isvc = one(objects, "InferenceService", "fraud")
    for component in ("predictor", "transformer"):
        spec = isvc["spec"][component]
        container = spec["model"] if component == "predictor" else spec["containers"][0]
        assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == 20
        assert spec["terminationGracePeriodSeconds"] == 20 + 45 + 10
    (runtime,) = find(objects, "ServingRuntime")
    assert arg_value(runtime["spec"]["containers"][0], "--grace_period") == "45"
    assert arg_value(isvc["spec"]["transformer"]["containers"][0], "--grace_period") == "45"


def test_the_default_prestop_covers_endpoint_propagation() -> None:
    assert chart_defaults()["serving"]["preStopSleepSeconds"] == 10


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "predictor", "model", "lifecycle", "preStop", "sleep", "secnds"), 10),
        (("spec", "transformer", "containers", 0, "lifecycle", "preStp"), {}),
        (("spec", "transformer", "terminationGracePeriodSeconds"), "fifty"),
    ],
)
def test_the_kserve_crds_check_lifecycle_and_grace_period(
    kserve_crds: dict[tuple[str, str], CrdSchema], path: tuple[str | int, ...], value: object
) -> None:
    """The CRDs type these fields (no preserve-unknown-fields there): the chart's valid use
    passes test_validate, and a misspelt or mistyped one fails."""
    isvc = json.loads(json.dumps(one(chart_objects(None), "InferenceService", "fraud")))
    crd = kserve_crds[(isvc["apiVersion"], "InferenceService")]
    assert validation_errors(isvc, crd) == []
    node = dig(isvc, *path[:-1])
    node[path[-1]] = value
    assert validation_errors(isvc, crd)
