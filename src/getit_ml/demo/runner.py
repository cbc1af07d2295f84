"""The demo's stages in data-flow order, and the runner.

``getit-ml demo`` runs, on one machine (SQLite, local files, local processes, no cluster): the
ground floor (both pinned environments, the embedded backends), then each model family's path —
its synthetic population's data and features (once per population), its training pipeline, its
served champion, its monitoring sidecars. ``getit-ml demo --only FAMILY`` runs the ground floor
and that family's path. Each family's stages are sized for the whole demo to stay well within
15 minutes; the full-size runs are benchmarks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from getit_ml.demo.data import MarketplaceDataStage
from getit_ml.demo.environment import (
    EmbeddedBackendsStage,
    MonitoringEnvironmentStage,
    PlatformEnvironmentStage,
)
from getit_ml.demo.features import FeatureStoreStage
from getit_ml.demo.monitoring import MonitoringStage
from getit_ml.demo.serving import ServingStage
from getit_ml.demo.stages import (
    DemoContext,
    DemoReport,
    Stage,
    StageOutcome,
    StageResult,
    StageStatus,
)
from getit_ml.demo.training import TrainingPipelineStage
from getit_ml.families import family_names, get_family

logger = logging.getLogger(__name__)


def ground_floor() -> list[Stage]:
    """What every family's path stands on."""
    return [PlatformEnvironmentStage(), MonitoringEnvironmentStage(), EmbeddedBackendsStage()]


def family_stages(name: str, populations_done: set[str] | None = None) -> list[Stage]:
    """One family's path: its population's data and features (unless already in
    ``populations_done``), training, serving, monitoring."""
    family = get_family(name)
    done = populations_done if populations_done is not None else set()
    stages: list[Stage] = []
    population = family.demo.population
    if population not in done:
        done.add(population)
        stages += [
            MarketplaceDataStage(population, family.demo.marketplace),
            FeatureStoreStage(family),
        ]
    stages += [TrainingPipelineStage(family), ServingStage(family), MonitoringStage(family)]
    return stages


def default_stages(only: Sequence[str] | None = None) -> list[Stage]:
    """The demo's stages, in data-flow order: the ground floor, then every family's path (or
    only the families named)."""
    names = list(only) if only else list(family_names())
    for name in names:
        get_family(name)  # a clear error for an unknown family before anything runs
    done: set[str] = set()
    stages = ground_floor()
    for name in names:
        stages += family_stages(name, done)
    return stages


def run_demo(
    stages: Sequence[Stage],
    context: DemoContext,
    on_start: Callable[[Stage], None] | None = None,
    on_finish: Callable[[Stage, StageOutcome], None] | None = None,
) -> DemoReport:
    """Run ``stages`` in order; after a failure the remaining stages are reported NOT_RUN."""
    context.workdir.mkdir(parents=True, exist_ok=True)
    outcomes: list[StageOutcome] = []
    failed = False
    for stage in stages:
        if failed:
            result = StageResult(StageStatus.NOT_RUN, "skipped: an earlier stage failed")
            outcome = StageOutcome(stage.name, stage.description, result, 0.0)
        else:
            if on_start is not None:
                on_start(stage)
            started = time.perf_counter()
            result = stage.run(context)
            outcome = StageOutcome(
                stage.name, stage.description, result, time.perf_counter() - started
            )
            failed = result.status is not StageStatus.OK
            logger.debug("stage %s: %s (%s)", stage.name, result.status, result.summary)
        outcomes.append(outcome)
        if on_finish is not None:
            on_finish(stage, outcome)
    return DemoReport(outcomes)
