"""The pods a rendering will create, as the tests look at them: Deployments and StatefulSets
directly, Jobs and CronJobs through their pod templates, InferenceService components through
KServe's merge of the ServingRuntime container with the InferenceService's model container
(runtime first, the model's fields win, args appended)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from getit_ml.deploy.render import Manifest

POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
#: Pods that run to completion: no probes (nothing routes to them, a restart is a retry), a
#: deadline instead (``extra["job"]`` is the Job spec).
BATCH_KINDS = ("Job", "CronJob")
ISVC_COMPONENTS = ("predictor", "transformer", "explainer")


@dataclass
class Workload:
    name: str  # "Deployment/getit-ml-mlflow", "InferenceService/fraud/predictor"
    pod: dict[str, Any]  # pod-level fields
    containers: list[dict[str, Any]]
    labels: dict[str, str]  # labels of the pods
    knative: bool = False
    isvc: bool = False
    batch: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _merge_runtime(runtime: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(runtime)
    for key, value in model.items():
        if key in ("modelFormat", "runtime", "storageUri", "protocolVersion"):
            continue
        if key == "args":
            merged["args"] = [*runtime.get("args", []), *value]
        elif key == "env":
            names = {e["name"] for e in value}
            merged["env"] = [e for e in runtime.get("env", []) if e["name"] not in names] + value
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def workloads(objects: list[Manifest]) -> list[Workload]:
    runtimes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServingRuntime"}
    found: list[Workload] = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in POD_KINDS:
            spec = obj["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else obj["spec"]
            template = obj if kind == "Pod" else spec["template"]
            found.append(
                Workload(
                    f"{kind}/{name}",
                    template["spec"],
                    template["spec"]["containers"],
                    dict(template["metadata"].get("labels", {})),
                    batch=kind in BATCH_KINDS,
                    extra={"job": spec} if kind in BATCH_KINDS else {},
                )
            )
        elif kind == "InferenceService":
            mode = obj["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
            for component in ISVC_COMPONENTS:
                spec = obj["spec"].get(component)
                if spec is None:
                    continue
                if "model" in spec:
                    model = spec["model"]
                    runtime = runtimes[model["runtime"]]
                    assert model["modelFormat"]["name"] in {
                        f["name"] for f in runtime["spec"]["supportedModelFormats"]
                    }, f"{name}: runtime {model['runtime']} does not serve the model's format"
                    containers = [_merge_runtime(runtime["spec"]["containers"][0], model)]
                else:
                    containers = spec["containers"]
                found.append(
                    Workload(
                        f"InferenceService/{name}/{component}",
                        spec,
                        containers,
                        {"serving.kserve.io/inferenceservice": name, "component": component},
                        knative=mode == "Knative",
                        isvc=True,
                    )
                )
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector matches a set of labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
    return True


def arg_value(container: dict[str, Any], flag: str) -> str | None:
    """The value of ``--flag=value`` (or ``--flag value``) in a container's args."""
    args = [str(a) for a in container.get("args", [])]
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None
