"""Supervision: a child that dies is started again after a growing backoff (logged with its exit
status), a stable run resets the backoff, the others keep running; ``getit-ml serve``'s stack
(scorer + feature transformer) survives a SIGKILL of its scorer."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
from getit_ml.processes import Backoff, ManagedProcess, Supervisor
from getit_ml.registry.mlflow_registry import artifact_sha256
from getit_ml.services import free_port
from getit_ml.serving.launcher import LaunchOptions, LocalServing
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.serving.support import build_service_model, family_feature_types

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _python(code: str, name: str) -> ManagedProcess:
    return ManagedProcess([sys.executable, "-c", code], name=name)


def test_backoff_doubles_to_its_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=30.0)
    assert [backoff.delay_s(n) for n in (1, 2, 3, 4, 7, 8, 20)] == [
        0.5, 1.0, 2.0, 4.0, 30.0, 30.0, 30.0,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="inconsistent"):
        Backoff(initial_s=2.0, max_s=1.0)


def test_a_dying_child_is_restarted_with_backoff_and_the_others_keep_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crasher = _python("import time, sys; time.sleep(0.05); sys.exit(3)", "crasher").spawn()
    steady = _python("import time; time.sleep(60)", "steady").spawn()
    steady_pid = steady.pid
    supervisor = Supervisor([crasher, steady], Backoff(initial_s=0.1, max_s=0.4, stable_s=60))
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="getit_ml.processes")
    runner = threading.Thread(target=supervisor.run, args=(stop, 0.02))
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while supervisor.restarts["crasher"] < 4:
            assert time.monotonic() < deadline, supervisor.restarts
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(10)
        crasher.stop(5)
        assert steady.poll() is None  # never touched ...
        assert steady.pid == steady_pid  # ... never restarted
        steady.stop(5)
    assert supervisor.restarts["steady"] == 0
    deaths = [r.getMessage() for r in caplog.records if "exited with status 3" in r.getMessage()]
    delays = [float(m.split("restarting it in ")[1].split(" s")[0]) for m in deaths[:4]]
    assert delays == [0.1, 0.2, 0.4, 0.4]  # doubling, capped
    assert "death 4 in a row" in deaths[3]
    assert any("restarted the crasher (restart 4" in r.getMessage() for r in caplog.records)


def test_a_stable_run_resets_the_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """A child that ran for a stable minute before it died starts again from the first delay."""
    now = [0.0]
    child = _python("raise SystemExit(7)", "flaky").spawn()
    supervisor = Supervisor([child], Backoff(initial_s=1.0, stable_s=60), clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="getit_ml.processes")

    def die_after(ran_s: float) -> str:
        child.wait(10)
        now[0] += ran_s
        supervisor.check()  # noticed: a restart is scheduled
        message = caplog.records[-1].getMessage()
        now[0] += 100  # past any delay
        supervisor.check()  # restarted
        return message

    assert "death 1 in a row" in die_after(1.0)
    assert "death 2 in a row" in die_after(1.0)
    assert "restarting it in 2.0 s" in caplog.text
    assert "death 1 in a row" in die_after(61.0)  # it had been stable: back to 1 s
    assert supervisor.restarts["flaky"] == 3
    child.stop(5)


# --------------------------------------------------------------- getit-ml serve's real stack
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A materialized embedded store and a model over its feature service."""
    root = tmp_path_factory.mktemp("supervised") / "features"
    rows = [(c, T0 + timedelta(days=1), 1) for c in (1, 2)]
    write_offline(StoreLayout(root).offline_dir, {"customer_features": rows, "customer_risk": rows})
    settings = load_settings()
    store = open_store(settings, root)
    apply_definitions(store, settings.feature_repo)
    materialize(store, T0, T0 + timedelta(days=5))
    return root, build_service_model(family_feature_types(store), root.parent / "model")


@pytest.fixture
def stack(served: tuple[Path, Path]) -> Iterator[LocalServing]:
    root, model_dir = served
    options = LaunchOptions(
        family="fraud",
        model_dir=model_dir,
        expected_sha256=artifact_sha256(model_dir),
        with_transformer=True,
        http_port=free_port(),
        grpc_port=free_port(),
        predictor_http_port=free_port(),
        predictor_grpc_port=free_port(),
        feature_store=root,
        log_level="WARNING",
        start_timeout_s=90,
    )
    with LocalServing(options) as serving:
        yield serving


CHECKOUT = orjson.dumps(
    {
        "inputs": [
            {"name": "customer_id", "datatype": "INT64", "shape": [1], "data": [1]},
            {"name": "amount_bdt", "datatype": "FP64", "shape": [1], "data": [1500.0]},
            {"name": "payment_method", "datatype": "BYTES", "shape": [1], "data": ["nagad"]},
            {"name": "checkout_device_id", "datatype": "INT64", "shape": [1], "data": [1]},
        ]
    }
)


@pytest.mark.slow
def test_serve_restarts_a_killed_scorer_while_the_transformer_keeps_serving(
    stack: LocalServing,
) -> None:
    scorer, transformer = stack.processes
    assert (scorer.role, transformer.role) == ("scorer", "transformer")
    url = f"{transformer.url}/v2/models/fraud/infer"
    headers = {"content-type": "application/json"}
    assert httpx.post(url, content=CHECKOUT, headers=headers, timeout=10).status_code == 200
    transformer_pid, scorer_pid = transformer.process.pid, scorer.process.pid
    stop = threading.Event()
    supervisor: list[Supervisor] = []
    runner = threading.Thread(
        target=lambda: supervisor.append(stack.supervise(stop, Backoff(initial_s=0.2), poll_s=0.1))
    )
    runner.start()
    try:
        scorer.process.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        answers: set[int] = set()
        while True:  # the transformer answers all along: 503 + Retry-After, then 200 again
            answer = httpx.post(url, content=CHECKOUT, headers=headers, timeout=10)
            answers.add(answer.status_code)
            if answer.status_code == 503:
                assert answer.headers["retry-after"] == "1"
            if answer.status_code == 200 and scorer.process.pid != scorer_pid:
                break
            assert time.monotonic() < deadline, f"no recovery: {answers}"
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(10)
    assert answers <= {200, 503}, answers
    assert supervisor[0].restarts == {"fraud scorer": 1, "fraud transformer": 0}
    assert transformer.process.pid == transformer_pid  # never restarted
    assert stack.stop() == {"transformer": 0, "scorer": 0}  # and both still stop cleanly
