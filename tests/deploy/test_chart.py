"""The Helm chart: lints clean, renders for every ci/*.yaml, its schema refuses bad values, every
value is documented and the README's values table is the one the @param lines generate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from getit_ml.deploy.render import identity, lint_chart, load_values, render_chart
from getit_ml.deploy.values_doc import BEGIN, END, render_readme, undocumented, values_table
from tests.deploy.support import CHART, CI_VALUES, chart_objects, find, model_entry

EXPECTED_CI = {
    "external-services",
    "kind-values",
    "knative-canary",
    "kustomize-base",
    "minimal",
    "prod-values",
}


def test_every_value_set_is_here() -> None:
    assert {p.stem for p in CI_VALUES} == EXPECTED_CI


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_chart_lints_clean(values_file: Path) -> None:
    assert lint_chart(CHART, load_values(values_file)) == []


def test_lint_reports_a_broken_value() -> None:
    models = [model_entry("fraud", "fraud", deploymentMode="Serverless")]
    problems = lint_chart(CHART, {"models": models})
    assert any("deploymentMode" in p for p in problems), problems


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.stem)
def test_renders_unique_objects(values_file: Path) -> None:
    objects = chart_objects(values_file)
    assert objects
    duplicates = [k for k, n in Counter(identity(o) for o in objects).items() if n > 1]
    assert duplicates == []
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"getit-ml"}


def test_knative_variant_and_minimal_set_differ_as_designed() -> None:
    variant = {
        o["metadata"]["name"]: o
        for o in find(chart_objects(CHART / "ci" / "knative-canary.yaml"), "InferenceService")
    }
    modes = {n: o["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
             for n, o in variant.items()}  # fmt: skip
    assert modes == {"fraud": "Knative", "churn": "Standard"}, "one release, a mode per model"
    assert variant["fraud"]["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert "explainer" not in variant["churn"]["spec"]
    minimal_objects = chart_objects(CHART / "ci" / "minimal.yaml")
    minimal = {o["kind"] for o in minimal_objects}
    assert "Role" not in minimal
    assert "PrometheusRule" not in minimal
    assert "PersistentVolumeClaim" not in minimal, "no explainer or detector reads a reference"
    (isvc,) = find(minimal_objects, "InferenceService")
    assert set(isvc["spec"]) == {"predictor"}
    assert "logger" not in isvc["spec"]["predictor"]
    assert isvc["spec"]["predictor"]["model"]["args"] == [
        "--family=fraud",
        "--model_uri=models:/fraud/3",
        "--threshold=0.4",
    ]


def test_namespace_is_rendered_only_when_asked() -> None:
    assert find(chart_objects(None), "Namespace") == []
    assert len(find(chart_objects(CHART / "ci" / "kustomize-base.yaml"), "Namespace")) == 1


def _models(**changes: object) -> dict[str, object]:
    """Values with one model whose entry has ``changes``."""
    return {"models": [model_entry("fraud", "fraud", **changes)]}


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"images": {"tag": "latest"}}, "/images/tag"),
        ({"images": {"redis": "redis:latest"}}, "/images/redis"),
        (_models(deploymentMode="Serverless"), "/models/0/deploymentMode"),
        (_models(canaryTrafficPercent=120), "/models/0/canaryTrafficPercent"),
        (_models(autoscaling={"minReplicas": 0}), "/models/0/autoscaling/minReplicas"),
        (_models(threshold=1.5), "/models/0/threshold"),
        (_models(modelUri="fraud-latest"), "/models/0/modelUri"),
        (_models(transformer={"featureService": "Fraud Scoring"}), "featureService"),
        (_models(driftDetector={"alertUrl": "ftp://x"}), "alertUrl"),
        ({"redis": {"password": "hunter2"}}, "password"),
        ({"secrets": {"postgresql": "Not_A_Name"}}, "/secrets/postgresql"),
        (_models(resources={"requests": {"cpu": "lots"}}), "cpu"),
        ({"runtimes": {"xgboost-binary": {"image": "getit-ml/xgboost-scorer:latest"}}}, "image"),
        ({"serving": {"requestTimeoutSeconds": 0}}, "requestTimeoutSeconds"),
        ({"fraud": {"name": "fraud"}}, "fraud"),
    ],
)
def test_schema_refuses_bad_values(values: dict[str, object], complaint: str) -> None:
    from helm_python import HelmValuesError

    with pytest.raises(HelmValuesError, match=complaint):
        render_chart(CHART, values)


def test_every_value_is_documented() -> None:
    missing, unknown = undocumented((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert missing == [], "values without a ## @param line"
    assert unknown == [], "## @param lines that name no value"


def test_an_undocumented_value_is_caught() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8") + "\nsneaky:\n  value: 1\n"
    assert undocumented(text)[0] == ["sneaky.value"]


def test_every_item_of_a_list_is_documented_with_its_index() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(text)
    # A third default model without @param lines of its own is caught, key by key.
    third = dict(values["models"][0], name="recommendations", family="recommendations")
    section = "\n\n## @section Feast feature server"
    grown = text.replace(section, "\n" + _flow_item(third) + section, 1)
    assert [m["name"] for m in yaml.safe_load(grown)["models"]] == ["fraud", "churn", third["name"]]
    missing, unknown = undocumented(grown)
    assert "models[2].name" in missing
    assert "models[2].driftDetector.pValue" in missing
    assert unknown == []
    # A @param line for an item that is not there names no value.
    stray = text.replace(
        "## @param models[1].name", "## @param models[5].name Nothing.\n## @param models[1].name"
    )
    assert undocumented(stray)[1] == ["models[5].name"]


def _flow_item(entry: dict[str, object]) -> str:
    """One list item in flow style, indented as the values file's models."""
    return "  - " + yaml.safe_dump(entry, default_flow_style=True, width=10_000).strip() + "\n"


def test_readme_values_table_is_generated_from_values() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    table = values_table((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert render_readme(readme, table) == readme, "run: python -m getit_ml.deploy values-table"
    assert BEGIN in readme
    assert END in readme
    assert "| `models[0].autoscaling.minReplicas` |" in table
    assert "| `runtimes.xgboost-binary.image` |" in table


def test_values_schema_lists_every_top_level_value() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert set(schema["properties"]) == set(values)
    assert schema["additionalProperties"] is False
