"""The demo's monitoring stage: the champion served, the explainer and the drift detector beside
it, normal traffic and then a festival week's, the drift alert and one explained payment.

:class:`MonitoringStage` follows :class:`getit_ml.demo.Stage`. It runs in the platform
environment; the two sidecars run as processes of the monitoring interpreter
(``settings.monitoring_python``), exactly as ``getit-ml monitor`` starts them. There is no KServe
agent on one machine, so :func:`~getit_ml.monitoring.traffic.replay` sends the payload logger's
CloudEvents itself, in the agent's format. The detector's reference is 80% of the pipeline's
reference export; the other 20%, rows the detector never saw, are the normal traffic, and the
festival week is those rows with the payment mix moved 20 points and amounts up 50%.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from getit_ml.errors import UserError
from getit_ml.monitoring.alerts import AlertReceiver
from getit_ml.services import free_port

if TYPE_CHECKING:
    from getit_ml.demo import DemoContext, StageResult

logger = logging.getLogger(__name__)

#: Share of the reference export the detector is fitted on; the rest is the normal traffic.
REFERENCE_SHARE: Final = 0.8
#: Events per drift window (the detector's ``--window_size``).
WINDOW: Final = 200
START_TIMEOUT_S: Final = 180.0


class Sidecar:
    """A monitoring sidecar as a process of the monitoring interpreter; always stopped."""

    def __init__(self, python: Path, name: str, arguments: list[str], port: int, log: Path) -> None:
        from getit_ml.cli.monitor import repository_root, sidecar_command

        self.name, self.port, self.log = name, port, log
        self.root = repository_root()
        self.command = sidecar_command(python, name, ["--http_port", str(port), *arguments])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Sidecar:
        environment = {**os.environ, "PYTHONPATH": str(self.root)}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(self.command, cwd=self.root, env=environment,
                                            stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-1500:]
                raise UserError(f"the {self.name} sidecar exited {self.process.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise UserError(f"the {self.name} sidecar was not ready in {START_TIMEOUT_S} s")
            time.sleep(0.3)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def find_reference_export(workdir: Path) -> Path:
    """The newest reference export of the demo's pipeline runs."""
    found = sorted(
        (p.parent for p in workdir.glob("pipelines/*/*/export-reference-data/reference/*.json")),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise UserError(f"no reference export under {workdir / 'pipelines'}: run the pipeline")
    return found[-1]


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
    # Shuffled: the export is in time order, and a window of 200 consecutive payments from one
    # week differs from two months of reference in every time-dependent feature (account age,
    # days to the next festival). The normal phase is a random sample of the same period.
    pq.write_table(table.take(order[cut:]), held_out / REFERENCE_FILE)
    (held_out / SCHEMA_FILE).write_bytes((export / SCHEMA_FILE).read_bytes())
    return load_reference(held_out)


class MonitoringStage:
    """Explainer and drift detector beside the served champion, fed normal then festival traffic."""

    name = "monitoring"
    description = (
        "explainer + drift detector (alibi 0.9.4 / alibi-detect 0.11.4) on the payload log: "
        "normal traffic, then a festival week → drift alert, one flagged payment explained"
    )

    def run(self, context: DemoContext) -> StageResult:
        from getit_ml.demo import StageResult, StageStatus

        try:
            return self._run(context)
        except UserError as error:
            return StageResult(StageStatus.FAILED, str(error))

    def _run(self, context: DemoContext) -> StageResult:
        import numpy as np

        from getit_ml.cli.monitor import monitoring_python
        from getit_ml.demo import StageResult, StageStatus
        from getit_ml.monitoring.traffic import festival_week, replay
        from getit_ml.registry.mlflow_registry import RegistryConfig
        from getit_ml.serving.launcher import LaunchOptions, LocalServing

        workdir = context.workdir.resolve()
        folder = workdir / "monitoring"
        python = monitoring_python(context.settings.monitoring_python)
        held_out = split_reference(find_reference_export(workdir), folder / "reference")
        rng = np.random.default_rng(7)
        normal = held_out.features
        festival = festival_week(held_out.schema, held_out.features, rng)
        scorer_port = free_port()
        serving = LocalServing(
            LaunchOptions(
                model_uri="models:/fraud@champion",
                tracking_uri=RegistryConfig.embedded(workdir).tracking_uri,
                http_port=scorer_port,
                grpc_port=free_port(),
                log_level="WARNING",
                extra_env={"GETIT_ML_HOME": str(workdir)},
            )
        )
        predictor_url = f"http://127.0.0.1:{scorer_port}"
        reference = str(folder / "reference")
        drift_arguments = ["--model_name", "fraud", "--reference_dir", reference,
                           "--window_size", str(WINDOW),
                           "--reference_scores_url", predictor_url]  # fmt: skip
        explainer_arguments = ["--model_name", "fraud", "--reference_dir", reference,
                               "--predictor_url", predictor_url]  # fmt: skip
        started = time.perf_counter()
        with serving, AlertReceiver() as receiver:
            drift_arguments += ["--alert_url", receiver.url]
            with (
                Sidecar(
                    python, "drift", drift_arguments, free_port(), folder / "drift.log"
                ) as drift,
                Sidecar(
                    python, "explainer", explainer_arguments, free_port(), folder / "explainer.log"
                ) as explainer,  # fmt: skip
            ):
                report = replay(
                    predictor_url,
                    "fraud",
                    [normal, festival],
                    logger_url=f"{drift.url}/",
                    explainer_url=explainer.url,
                    drift_url=drift.url,
                )
                receiver.wait(1, timeout=30)
        seconds = time.perf_counter() - started
        status = (report.drift_status or {}).get("models", {}).get("fraud", {})
        history = [*status.get("history", []), *([status["last_result"]] if status.get(
            "last_result") else [])]  # fmt: skip
        windows = ["drift" if h.get("is_drift") else "ok" for h in history]
        details: dict[str, str] = {
            "payments scored and logged": f"{report.payments:,} ({report.log_failures} lost)",
            "windows (normal, then festival week)": " ".join(windows) or "none",
        }
        if not receiver.received:
            return StageResult(
                StageStatus.FAILED,
                f"no drift alert after the festival week (windows: {' '.join(windows)})",
                details,
            )
        _, alert = receiver.received[0]
        drifted = alert.get("drifted_features", []) if isinstance(alert, dict) else []
        details["alert"] = json.dumps(alert)[:400]
        explanation = report.explanation or {}
        reasons = explanation.get("reasons", [])
        anchor = explanation.get("anchor") or {}
        details["explained payment"] = f"p={report.explained_score:.3f}"
        details["reasons"] = "; ".join(str(r) for r in reasons)
        if anchor:
            details["anchor"] = str(anchor.get("rule", anchor))
        normal_windows = windows[: len(normal) // WINDOW]
        false_alarms = normal_windows.count("drift")
        shown = ", ".join(drifted[:4]) + (" ..." if len(drifted) > 4 else "")
        return StageResult(
            StageStatus.OK if reasons else StageStatus.FAILED,
            f"{report.payments:,} payments through the champion in {seconds:.0f} s; normal "
            f"windows {normal_windows.count('ok')}/{len(normal_windows)} clean"
            f"{f' ({false_alarms} false alarm)' if false_alarms else ''}, festival week → "
            f"drift alert ({shown}); top payment p={report.explained_score:.2f} explained: "
            f"{'; '.join(str(r) for r in reasons[:3]) or 'no reasons'}",
            details,
        )
