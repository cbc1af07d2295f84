"""The Helm chart: lints clean, renders for every ci/*.yaml, its schema refuses bad values, every
value is documented and the README's values table is the one the @param lines generate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from getit_ml.deploy.render import identity, lint_chart, load_values, render_chart
from getit_ml.deploy.values_doc import BEGIN, END, render_readme, undocumented, values_table
from tests.deploy.support import CHART, CI_VALUES, chart_objects, find

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
    problems = lint_chart(CHART, {"fraud": {"deploymentMode": "Serverless"}})
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
    knative = find(chart_objects(CHART / "ci" / "knative-canary.yaml"), "InferenceService")[0]
    assert knative["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert knative["spec"]["predictor"]["canaryTrafficPercent"] == 10
    minimal = {o["kind"] for o in chart_objects(CHART / "ci" / "minimal.yaml")}
    assert "Role" not in minimal
    assert "PrometheusRule" not in minimal
    isvc = find(chart_objects(CHART / "ci" / "minimal.yaml"), "InferenceService")[0]
    assert set(isvc["spec"]) == {"predictor"}
    assert "logger" not in isvc["spec"]["predictor"]


def test_namespace_is_rendered_only_when_asked() -> None:
    assert find(chart_objects(None), "Namespace") == []
    assert len(find(chart_objects(CHART / "ci" / "kustomize-base.yaml"), "Namespace")) == 1


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"images": {"tag": "latest"}}, "/images/tag"),
        ({"images": {"redis": "redis:latest"}}, "/images/redis"),
        ({"fraud": {"deploymentMode": "Serverless"}}, "deploymentMode"),
        ({"fraud": {"canaryTrafficPercent": 120}}, "canaryTrafficPercent"),
        ({"fraud": {"autoscaling": {"minReplicas": 0}}}, "minReplicas"),
        ({"redis": {"password": "hunter2"}}, "password"),
        ({"secrets": {"postgresql": "Not_A_Name"}}, "/secrets/postgresql"),
        ({"fraud": {"resources": {"requests": {"cpu": "lots"}}}}, "cpu"),
        ({"serving": {"requestTimeoutSeconds": 0}}, "requestTimeoutSeconds"),
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


def test_readme_values_table_is_generated_from_values() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    table = values_table((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert render_readme(readme, table) == readme, "run: python -m getit_ml.deploy values-table"
    assert BEGIN in readme
    assert END in readme
    assert "| `fraud.autoscaling.minReplicas` |" in table


def test_values_schema_lists_every_top_level_value() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert set(schema["properties"]) == set(values)
    assert schema["additionalProperties"] is False
