"""The demo runner: stage order, failure handling, and the real stages on this machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from getit_ml.data.generator import MarketplaceConfig
from getit_ml.demo import (
    WORKSPACE_LAYOUT,
    DemoContext,
    EmbeddedBackendsStage,
    MonitoringEnvironmentStage,
    StageResult,
    StageStatus,
    data_dir,
    default_stages,
    run_demo,
)
from getit_ml.demo.data import MarketplaceDataStage
from getit_ml.demo.features import FeatureStoreStage
from getit_ml.errors import UserError
from getit_ml.families import get_family
from getit_ml.settings import load_settings


@dataclass
class RecordingStage:
    name: str
    status: StageStatus
    description: str = "test stage"
    calls: list[Path] = field(default_factory=list)

    def run(self, context: DemoContext) -> StageResult:
        self.calls.append(context.workdir)
        return StageResult(self.status, f"{self.name} said {self.status}")


@pytest.fixture
def context(tmp_path: Path) -> DemoContext:
    return DemoContext(settings=load_settings(), workdir=tmp_path / "run")


def test_stages_run_in_order_and_report(context: DemoContext) -> None:
    first = RecordingStage("data", StageStatus.OK)
    second = RecordingStage("features", StageStatus.OK)
    started: list[str] = []
    finished: list[str] = []
    report = run_demo(
        [first, second],
        context,
        on_start=lambda s: started.append(s.name),
        on_finish=lambda s, o: finished.append(o.name),
    )
    assert report.ok
    assert started == finished == ["data", "features"]
    assert first.calls == second.calls == [context.workdir]
    assert context.workdir.is_dir()


def test_a_failure_stops_the_later_stages(context: DemoContext) -> None:
    broken = RecordingStage("features", StageStatus.FAILED)
    later = RecordingStage("training", StageStatus.OK)
    report = run_demo([RecordingStage("data", StageStatus.OK), broken, later], context)
    assert not report.ok
    assert [o.result.status for o in report.outcomes] == [
        StageStatus.OK,
        StageStatus.FAILED,
        StageStatus.NOT_RUN,
    ]
    assert later.calls == []


def test_embedded_backends_lay_out_the_workdir(context: DemoContext) -> None:
    result = EmbeddedBackendsStage().run(context)
    assert result.status is StageStatus.OK
    assert sorted(p.name for p in context.workdir.iterdir()) == sorted(WORKSPACE_LAYOUT)


def test_missing_monitoring_interpreter_fails_with_advice(tmp_path: Path) -> None:
    settings = load_settings(monitoring_python=tmp_path / "nope" / "python")
    result = MonitoringEnvironmentStage().run(DemoContext(settings, tmp_path))
    assert result.status is StageStatus.FAILED
    assert "make setup" in result.summary


def test_broken_monitoring_interpreter_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Traceback: numpy exploded' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = MonitoringEnvironmentStage().run(
        DemoContext(load_settings(monitoring_python=fake), tmp_path)
    )
    assert result.status is StageStatus.FAILED
    assert "numpy exploded" in result.summary


def test_default_stages_follow_the_data_flow() -> None:
    names = [stage.name for stage in default_stages()]
    assert names[:3] == ["platform environment", "monitoring environment", "embedded backends"]
    assert len(names) == len(set(names))
    for family in ("fraud", "churn"):
        path = [n for n in names if n.endswith(f": {family}") and n.split(":")[0] in (
            "training", "serving", "monitoring")]  # fmt: skip
        assert path == [f"training: {family}", f"serving: {family}", f"monitoring: {family}"]
    # Each family's data and features come before its training.
    assert (
        names.index("data: churn") < names.index("features: churn") < names.index("training: churn")
    )


def test_only_one_family_runs_its_own_path() -> None:
    names = [stage.name for stage in default_stages(["churn"])]
    assert names == ["platform environment", "monitoring environment", "embedded backends",
                     "data: churn", "features: churn", "training: churn", "serving: churn",
                     "monitoring: churn"]  # fmt: skip
    with pytest.raises(UserError, match="unknown model family"):
        default_stages(["nope"])


def test_marketplace_stage_generates_and_reruns(context: DemoContext) -> None:
    stage = MarketplaceDataStage("small", MarketplaceConfig(customers=2_000, days=30))
    first = stage.run(context)
    assert first.status is StageStatus.OK, first.summary
    assert (data_dir(context.workdir, "small") / "customers.parquet").is_file()
    again = stage.run(context)  # the demo may be run twice
    assert again.status is StageStatus.OK
    assert again.details == first.details


def test_data_and_feature_stages_work_with_a_relative_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default GETIT_ML_HOME is relative (.getit-ml): Feast must not resolve it twice."""
    repo = Path(__file__).resolve().parents[3] / "feature_repo"
    monkeypatch.chdir(tmp_path)
    context = DemoContext(settings=load_settings(feature_repo=repo), workdir=Path(".getit-ml"))
    fraud = get_family("fraud")
    small = MarketplaceConfig(customers=2_000, days=30)
    assert MarketplaceDataStage(fraud.demo.population, small).run(context).status is StageStatus.OK
    result = FeatureStoreStage(fraud).run(context)
    assert result.status is StageStatus.OK, result.summary
    assert "fraud_scoring_v1 online for customer" in result.summary
    store = tmp_path / ".getit-ml" / "features" / fraud.demo.population
    assert (store / "data" / "registry.db").is_file()
