"""The demo's monitoring stage: a family's champion served, the explainer and the drift detector
beside it, normal traffic and then the family's shifted traffic, the drift alert and one
explained row.

:class:`MonitoringStage` runs in the platform environment; the two sidecars run as processes of
the monitoring interpreter (``settings.monitoring_python``), exactly as ``getit-ml monitor`` starts
them. There is no KServe agent on one machine, so
:func:`~getit_ml.monitoring.traffic.replay` sends the payload logger's CloudEvents itself, in the
agent's format. The detector's reference is 80% of the pipeline's reference export; the other 20%,
rows the detector never saw, are the normal traffic, and the shifted traffic is those rows after
the family's :class:`~getit_ml.monitoring.traffic.TrafficShift` (fraud: a festival week).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Final

from getit_ml.demo.stages import DemoContext, StageResult, StageStatus
from getit_ml.errors import UserError
from getit_ml.families.base import ModelFamily
from getit_ml.monitoring.alerts import AlertReceiver
from getit_ml.processes import ManagedProcess
from getit_ml.services import free_port

logger = logging.getLogger(__name__)

#: Share of the reference export the detector is fitted on; the rest is the normal traffic.
REFERENCE_SHARE: Final = 0.8
#: Events per drift window (the detector's ``--window_size``).
WINDOW: Final = 200
START_TIMEOUT_S: Final = 180.0


def sidecar(python: Path, name: str, arguments: list[str], port: int, log: Path) -> ManagedProcess:
    """A monitoring sidecar as a process of the monitoring interpreter, ready when its health
    route answers."""
    from getit_ml.monitoring.sidecars import sidecar_command

    return ManagedProcess(
        sidecar_command(python, name, ["--http_port", str(port), *arguments]),
        name=f"{name} sidecar",
        ready_url=f"http://127.0.0.1:{port}/v2/health/ready",
        log=log,
        in_repository=True,
        start_timeout_s=START_TIMEOUT_S,
        stop_timeout_s=20.0,
    )


def find_reference_export(workdir: Path, family: str) -> Path:
    """The newest reference export of the demo's pipeline runs of ``family``."""
    found = sorted(
        (
            p.parent
            for p in workdir.glob("pipelines/*/*/export-reference-data/reference/*.json")
            if _family_of(p) == family
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise UserError(
            f"no {family} reference export under {workdir / 'pipelines'}: run the pipeline"
        )
    return found[-1]


def _family_of(schema_file: Path) -> str | None:
    try:
        document = json.loads(schema_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    return metadata.get("family") if isinstance(metadata, dict) else None


def split_reference(export: Path, out: Path, share: float = REFERENCE_SHARE) -> Any:
    """Write the first ``share`` of the export's rows (random order) as the detector's reference
    into ``out``; return the other rows' encoded features (the normal traffic)."""
    import numpy as np
    import pyarrow.parquet as pq

    from getit_ml.monitoring.schema import REFERENCE_FILE, SCHEMA_FILE, load_reference

    table = pq.read_table(export / REFERENCE_FILE)
    order = np.random.default_rng(0).permutation(table.num_rows)
    cut = int(table.num_rows * share)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(np.sort(order[:cut])), out / REFERENCE_FILE)
    (out / SCHEMA_FILE).write_bytes((export / SCHEMA_FILE).read_bytes())
    held_out = out.parent / "held_out"
    held_out.mkdir(parents=True, exist_ok=True)
    # Shuffled: the export is in time order, and a window of 200 consecutive rows from one week
    # differs from months of reference in every time-dependent feature (account age, days to
    # the next festival). The normal phase is a random sample of the same period.
    pq.write_table(table.take(order[cut:]), held_out / REFERENCE_FILE)
    (held_out / SCHEMA_FILE).write_bytes((export / SCHEMA_FILE).read_bytes())
    return load_reference(held_out)


class MonitoringStage:
    """Explainer and drift detector beside a family's served champion, fed normal then shifted
    traffic."""

    description = (
        "explainer + drift detector (alibi 0.9.4 / alibi-detect 0.11.4) on the payload log: "
        "normal traffic, then a shift → drift alert, one flagged row explained"
    )

    def __init__(self, family: ModelFamily) -> None:
        self.family = family
        self.name = f"monitoring: {family.name}"

    def run(self, context: DemoContext) -> StageResult:
        try:
            return self._run(context)
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))

    def _run(self, context: DemoContext) -> StageResult:
        import numpy as np

        from getit_ml.monitoring.sidecars import monitoring_python
        from getit_ml.monitoring.traffic import replay, shifted_traffic
        from getit_ml.registry.mlflow_registry import RegistryConfig
        from getit_ml.serving.launcher import LaunchOptions, LocalServing

        family = self.family
        name = family.name
        workdir = context.workdir.resolve()
        folder = workdir / "monitoring" / name
        python = monitoring_python(context.settings.monitoring_python)
        held_out = split_reference(find_reference_export(workdir, name), folder / "reference")
        rng = np.random.default_rng(7)
        normal = held_out.features
        shifted = shifted_traffic(held_out.schema, held_out.features, rng, family.demo.shift)
        scorer_port = free_port()
        serving = LocalServing(
            LaunchOptions(
                family=name,
                runtime=family.serving.runtime,
                tracking_uri=RegistryConfig.embedded(workdir).tracking_uri,
                http_port=scorer_port,
                grpc_port=free_port(),
                log_level="WARNING",
                extra_env={"GETIT_ML_HOME": str(workdir)},
            )
        )
        predictor_url = f"http://127.0.0.1:{scorer_port}"
        reference = str(folder / "reference")
        drift_arguments = [
            "--model_name",
            name,
            "--reference_dir",
            reference,
            "--window_size",
            str(WINDOW),
            "--predictor_url",
            predictor_url,
        ]
        explainer_arguments = [
            "--model_name",
            name,
            "--reference_dir",
            reference,
            "--predictor_url",
            predictor_url,
        ]
        started = time.perf_counter()
        with serving, AlertReceiver() as receiver:
            drift_arguments += ["--alert_url", receiver.url]
            with (
                sidecar(
                    python, "drift", drift_arguments, free_port(), folder / "drift.log"
                ) as drift,
                sidecar(
                    python, "explainer", explainer_arguments, free_port(), folder / "explainer.log"
                ) as explainer,
            ):
                drift_url = f"http://127.0.0.1:{_port(drift)}"
                report = replay(
                    predictor_url,
                    name,
                    [normal, shifted],
                    logger_url=f"{drift_url}/",
                    explainer_url=f"http://127.0.0.1:{_port(explainer)}",
                    drift_url=drift_url,
                    output_name=held_out.schema.monitoring.output,
                )
                receiver.wait(1, timeout=30)
        seconds = time.perf_counter() - started
        status = (report.drift_status or {}).get("models", {}).get(name, {})
        history = [
            *status.get("history", []),
            *([status["last_result"]] if status.get("last_result") else []),
        ]
        windows = ["drift" if h.get("is_drift") else "ok" for h in history]
        shift = family.demo.shift_name
        details: dict[str, str] = {
            "rows scored and logged": f"{report.payments:,} ({report.log_failures} lost)",
            f"windows (normal, then {shift})": " ".join(windows) or "none",
        }
        if not receiver.received:
            return StageResult(
                StageStatus.FAILED,
                f"no drift alert after the {shift} (windows: {' '.join(windows)})",
                details,
            )
        _, alert = receiver.received[0]
        drifted = alert.get("drifted_features", []) if isinstance(alert, dict) else []
        details["alert"] = json.dumps(alert)[:400]
        explanation = report.explanation or {}
        reasons = explanation.get("reasons", [])
        anchor = explanation.get("anchor") or {}
        details["explained row"] = f"p={report.explained_score:.3f}"
        details["reasons"] = "; ".join(str(r) for r in reasons)
        if anchor:
            details["anchor"] = str(anchor.get("rule", anchor))
        normal_windows = windows[: len(normal) // WINDOW]
        false_alarms = normal_windows.count("drift")
        shown = ", ".join(drifted[:4]) + (" ..." if len(drifted) > 4 else "")
        return StageResult(
            StageStatus.OK if reasons else StageStatus.FAILED,
            f"{report.payments:,} rows through the {name} champion in {seconds:.0f} s; normal "
            f"windows {normal_windows.count('ok')}/{len(normal_windows)} clean"
            f"{f' ({false_alarms} false alarm)' if false_alarms else ''}, {shift} → drift alert "
            f"({shown}); top row p={report.explained_score:.2f} explained: "
            f"{'; '.join(str(r) for r in reasons[:3]) or 'no reasons'}",
            details,
        )


def _port(process: ManagedProcess) -> int:
    index = process.command.index("--http_port")
    return int(process.command[index + 1])
