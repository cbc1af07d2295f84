"""The demo's stage types: what a stage gets, what it returns, how the runner reports it.

A stage returns a :class:`StageResult`; the runner stops at the first failure, because every
later stage consumes what the earlier ones produce. Rendering (progress bars, tables) belongs to
the CLI: the runner only reports through callbacks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from getit_ml.settings import PlatformSettings


class StageStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class StageResult:
    """What a stage did: a one-line summary plus named figures for the summary table."""

    status: StageStatus
    summary: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoContext:
    """What every stage gets: the settings and the folder that holds the run's state."""

    settings: PlatformSettings
    workdir: Path


class Stage(Protocol):
    """One step of the demo. ``run`` must not raise for expected failures: it returns a
    FAILED result that says what went wrong and what to do."""

    name: str
    description: str

    def run(self, context: DemoContext) -> StageResult: ...


@dataclass(frozen=True)
class StageOutcome:
    name: str
    description: str
    result: StageResult
    seconds: float


@dataclass(frozen=True)
class DemoReport:
    outcomes: list[StageOutcome]

    @property
    def ok(self) -> bool:
        return all(o.result.status is StageStatus.OK for o in self.outcomes)
