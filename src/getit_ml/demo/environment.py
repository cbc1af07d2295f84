"""The demo's ground floor: both pinned environments import, and the embedded backends work."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time

from getit_ml.demo.stages import DemoContext, StageResult, StageStatus
from getit_ml.demo.workspace import WORKSPACE_LAYOUT
from getit_ml.environments import EnvironmentReport, probe


def _environment_result(report: EnvironmentReport) -> StageResult:
    versions = {p.distribution: p.version or "missing" for p in report.packages}
    if not report.ok:
        return StageResult(StageStatus.FAILED, "; ".join(report.problems()), versions)
    slowest = max(report.packages, key=lambda p: p.import_seconds)
    summary = (
        f"Python {report.python}, {len(report.packages)} packages import "
        f"(slowest: {slowest.distribution} {slowest.import_seconds:.1f}s)"
    )
    return StageResult(StageStatus.OK, summary, versions)


class PlatformEnvironmentStage:
    """Imports everything the platform environment promises, in this process."""

    name = "platform environment"
    description = "torch, kfp, kserve, feast, mlflow, xgboost, optuna, transformers import"

    def run(self, context: DemoContext) -> StageResult:
        return _environment_result(probe("platform"))


class MonitoringEnvironmentStage:
    """Probes the monitoring environment from outside, in its own interpreter."""

    name = "monitoring environment"
    description = "alibi 0.9.4 and alibi-detect 0.11.4 (Apache-2.0) import on numpy 1.24"

    def run(self, context: DemoContext) -> StageResult:
        python = context.settings.monitoring_python
        if not python.exists():
            return StageResult(
                StageStatus.FAILED,
                f"no interpreter at {python}: run `make setup` to create .venv-monitoring "
                "(or set GETIT_ML_MONITORING_PYTHON)",
            )
        completed = subprocess.run(
            [str(python), "-m", "getit_ml.environments", "monitoring"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            check=False,
        )
        try:
            report = EnvironmentReport.from_json(completed.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError, KeyError, TypeError):
            tail = (completed.stderr or completed.stdout).strip()[-500:]
            return StageResult(
                StageStatus.FAILED,
                f"{python} -m getit_ml.environments exited {completed.returncode}: {tail}",
            )
        return _environment_result(report)


class EmbeddedBackendsStage:
    """Lays out the working directory and proves its SQLite backend works."""

    name = "embedded backends"
    description = "working directory laid out; SQLite (Feast online store, MLflow) writes and reads"

    def run(self, context: DemoContext) -> StageResult:
        for folder in WORKSPACE_LAYOUT:
            (context.workdir / folder).mkdir(parents=True, exist_ok=True)
        probe_db = context.workdir / "embedded-check.db"
        with sqlite3.connect(probe_db) as connection:
            stamp = str(time.time())
            connection.execute("CREATE TABLE IF NOT EXISTS probe (k TEXT PRIMARY KEY, v TEXT)")
            connection.execute("INSERT OR REPLACE INTO probe VALUES ('written', ?)", (stamp,))
            (read_back,) = connection.execute("SELECT v FROM probe WHERE k = 'written'").fetchone()
            # JSON functions are used by MLflow's and Feast's SQLite stores.
            (json_ok,) = connection.execute("SELECT json_valid('{\"a\": 1}')").fetchone()
        probe_db.unlink()
        if read_back != stamp:
            return StageResult(StageStatus.FAILED, f"SQLite at {probe_db} lost a write")
        if not json_ok:
            return StageResult(StageStatus.FAILED, "SQLite lacks the JSON1 functions")
        return StageResult(
            StageStatus.OK,
            f"{context.workdir} ready ({', '.join(WORKSPACE_LAYOUT)})",
            {"sqlite": sqlite3.sqlite_version, "workdir": str(context.workdir.resolve())},
        )
