"""The servers under test: source trees, a private Redis, the fixture, one stack."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from getit_ml.processes import ManagedProcess
from getit_ml.services import free_port

from .traffic import FAMILY, get_bytes, raw_exchange, read_http

REPO = Path(__file__).resolve().parents[2]
SCORER_MODULE = "inference_services.xgboost_scorer"
TRANSFORMER_MODULE = "inference_services.feature_transformer"


# ------------------------------------------------------------------------------ source trees
@dataclass(frozen=True)
class SourceTree:
    """A checkout whose code the servers run: ``PYTHONPATH=<root>/src:<root>`` comes before
    the editable install on ``sys.path``, so an older worktree's ``getit_ml`` and
    ``inference_services`` are the ones imported."""

    root: Path
    label: str

    @property
    def python_path(self) -> str:
        return os.pathsep.join([str(self.root / "src"), str(self.root)])

    def describe(self) -> str:
        try:
            revision = subprocess.run(
                ["git", "-C", str(self.root), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            revision = "?"
        dirty = subprocess.run(
            ["git", "-C", str(self.root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return f"{self.label} ({self.root} @ {revision}{' + working tree' if dirty else ''})"

    def imported_from(self) -> str:
        """Where a child with this tree's environment imports ``getit_ml`` from (the proof that
        the old code is the one running)."""
        answer = subprocess.run(
            [sys.executable, "-c", "import getit_ml; print(getit_ml.__file__)"],
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": self.python_path},
            check=True,
        )
        return answer.stdout.strip()


@contextlib.contextmanager
def worktree(ref: str, path: Path) -> Iterator[SourceTree]:
    """``git worktree add --detach path ref`` for the duration (the main checkout's index and
    files are not touched), removed afterwards."""
    if path.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(path, ignore_errors=True)
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), ref],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        yield SourceTree(path, f"before ({ref})")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       capture_output=True, check=False)  # fmt: skip
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True,
                       check=False)  # fmt: skip


def start_watching(
    process: ManagedProcess, ready: Callable[[], bool], timeout_s: float = 120.0
) -> float:
    """Spawn ``process`` and poll ``ready`` every 10 ms (ManagedProcess polls every 200 ms): the
    moment a dependency is back is measured to the poll, not to a fifth of a second. Returns
    that moment (``time.monotonic()``); raises if the process exits first or is late."""
    process.spawn()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise RuntimeError(f"the {process.name} exited with {code} while starting")
        if ready():
            return time.monotonic()
        time.sleep(0.01)
    process.stop(timeout_s=5)
    raise RuntimeError(f"the {process.name} was not ready within {timeout_s:g} s")


#: A warm ``getit-ml``: one command line (JSON) per stdin line, each answered by a marker line.
_CLI_WORKER = """
import json, sys, traceback
import feast  # noqa: F401  (seconds to import: once, not per command)
from getit_ml.cli.main import app
for line in sys.stdin:
    code = 0
    try:
        returned = app(json.loads(line), prog_name="getit-ml", standalone_mode=False)
        code = returned if isinstance(returned, int) else 0  # click returns Exit's code
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.write("\\n@@getit-ml-exit %d\\n" % code)
    sys.stdout.flush()
"""


class CliWorker:
    """``getit-ml`` commands with one tree's code in one long-lived process.

    The commands are the CLI's own (its Typer app, as ``getit-ml features materialize ...``
    runs them); only the imports are paid once: Feast alone takes 5-10 s to import on a busy
    two-core machine, which would otherwise dominate every re-materialization measured.
    """

    def __init__(self, python_path: str, env: dict[str, str], cwd: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CLI_WORKER],
            cwd=cwd,
            env={**os.environ, **env, "PYTHONPATH": python_path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, *arguments: str, timeout_s: float = 300) -> str:
        """Run ``getit-ml ARGUMENTS``; its output (raises when it fails)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(list(arguments)) + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout_s
        output: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"getit-ml {' '.join(arguments)}: no answer") from None
            if line is None:
                raise RuntimeError(f"the getit-ml worker exited: {''.join(output)[-2000:]}")
            if line.startswith("@@getit-ml-exit "):
                code = int(line.split()[1])
                if code != 0:
                    raise RuntimeError(
                        f"getit-ml {' '.join(arguments)} failed ({code}): {''.join(output)[-2000:]}"
                    )
                return "".join(output)
            output.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# ------------------------------------------------------------------------------------ Redis
class RedisServer:
    """A private ``redis-server`` on a free port, without persistence, in its own folder.

    ``save()`` writes ``dump.rdb`` (``SAVE``); ``start(empty=False)`` loads it, ``start(empty=
    True)`` starts from nothing (the chart's Redis after a restart). SIGSTOP/SIGCONT freeze and
    thaw it: connections stay open and nothing answers, the worst case for a client without
    socket timeouts.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: ManagedProcess | None = None
        self.frozen = False
        self.started_at = 0.0
        self._starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self, timeout_s: float = 0.5) -> bool:
        answer = raw_exchange(self.port, b"PING\r\n", timeout_s=timeout_s, http=False)
        return answer.body.startswith(b"+PONG")

    def start(self, *, empty: bool = False) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        dump = self.directory / "dump.rdb"
        if empty:
            dump.unlink(missing_ok=True)
        self._starts += 1
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                   "--dbfilename", "dump.rdb", "--protected-mode", "no"]  # fmt: skip
        self.process = ManagedProcess(
            command, name="redis-server", log=self.directory / f"redis-{self._starts}.log",
            stop_timeout_s=5,
        )  # fmt: skip
        self.started_at = start_watching(self.process, lambda: self.ping(0.2), timeout_s=20)
        self.frozen = False
        return self

    def _pid(self) -> int:
        if self.process is None:
            raise RuntimeError("redis-server is not running")
        return self.process.pid

    def freeze(self) -> None:
        os.kill(self._pid(), signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self._pid(), signal.SIGCONT)
        self.frozen = False

    def save(self) -> None:
        answer = raw_exchange(self.port, b"SAVE\r\n", timeout_s=10, http=False)
        if not answer.body.startswith(b"+OK"):
            raise RuntimeError(f"redis SAVE failed: {answer.body[:200]!r}")

    def kill(self) -> None:
        if self.process is None:
            return
        if self.frozen:
            self.thaw()
        self.process.stop(timeout_s=5, sig=signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            if self.frozen:
                self.thaw()
            self.process.stop(timeout_s=5)
            self.process = None


# ---------------------------------------------------------------------------------- fixture
@dataclass(frozen=True)
class Fixture:
    """What every stack serves: offline features, a model and one checkout."""

    root: Path
    market: Path
    features: Path
    model_dir: Path
    sha256: str
    checkout: dict[str, Any]
    customer: int
    start: date


def build_fixture(root: Path, *, customers: int = 1_000, days: int = 14) -> Fixture:
    """A marketplace ending today, its offline feature tables, a 30-tree model over the fraud
    family's inputs (random training data: the faults are about serving, not quality) and the
    checkout of the customer with the newest payment (every view has a value for them)."""
    import numpy as np
    import pandas as pd
    import pyarrow.dataset as ds

    from getit_ml.data.generator import MarketplaceConfig, generate
    from getit_ml.families import get_family
    from getit_ml.features.engineering import build_offline_features
    from getit_ml.features.feature_schema import fit_schema
    from getit_ml.features.store import StoreLayout, apply_definitions, open_store
    from getit_ml.registry.mlflow_registry import artifact_sha256
    from getit_ml.settings import load_settings
    from getit_ml.training.dataset import service_feature_types, to_matrix
    from getit_ml.training.xgb import save_model, train_xgboost

    family = get_family(FAMILY)
    task = family.trainer.task  # type: ignore[attr-defined]
    start = date.today() - timedelta(days=days - 1)
    market = root / "market"
    generate(MarketplaceConfig(customers=customers, days=days, seed=7, start=start), market)
    features = root / "features"
    build_offline_features(market, StoreLayout(features).offline_dir)
    # The model's inputs from an embedded copy of the definitions (no server involved).
    types_root = root / "types-store"
    shutil.copytree(StoreLayout(features).offline_dir, StoreLayout(types_root).offline_dir)
    settings = load_settings(feature_repo=REPO / "feature_repo")
    store = open_store(settings, types_root)
    apply_definitions(store, settings.feature_repo)
    types = service_feature_types(
        store, family.feature_service, request_fields=task.request_fields,
        identifiers=task.identifiers,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    rows = 3_000
    frame = pd.DataFrame(
        {
            name: (
                rng.choice(["bkash", "card", "cod", "nagad", "rocket"], rows)
                if kind == "string"
                else rng.random(rows) < 0.3
                if kind == "bool"
                else rng.normal(100, 50, rows)
            )
            for name, kind in types.items()
        }
    )
    score = frame.select_dtypes("number").iloc[:, :5].sum(axis=1) + rng.normal(0, 30, rows)
    frame[task.label] = score > score.quantile(0.9)
    schema = fit_schema(
        frame, types, label=task.label, monitoring=task.monitoring,
        metadata={"family": FAMILY, "feature_service": family.feature_service},
    )  # fmt: skip
    booster = train_xgboost(
        to_matrix(frame, schema), None, {"max_depth": 4}, seed=0, num_boost_round=30, nthread=1
    )
    model_dir = root / "model"
    save_model(booster, schema, model_dir)
    payments = ds.dataset(market / "payments", partitioning="hive").to_table().to_pandas()
    # The newest payment already in the past (the data runs to the end of today, materialize to
    # now): its customer and device have a value in every view.
    stamps = pd.to_datetime(payments["payment_ts"], utc=True)
    past = payments[stamps <= pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2)]
    last = past.sort_values("payment_ts").iloc[-1]
    checkout = family.serving.request_document(
        [
            {
                "customer_id": int(last["customer_id"]),
                "amount_bdt": float(last["amount_bdt"]),
                "payment_method": str(last["payment_method"]),
                "checkout_device_id": int(last["device_id"]),
            }
        ]
    )
    return Fixture(
        root=root,
        market=market,
        features=features,
        model_dir=model_dir,
        sha256=artifact_sha256(model_dir),
        checkout=checkout,
        customer=int(last["customer_id"]),
        start=start,
    )


def checkout_with(checkout: dict[str, Any], **values: Any) -> dict[str, Any]:
    """The checkout with some request inputs replaced (or added, with the fraud request's
    datatype)."""
    kinds = {"request_ts_us": "INT64", "checkout_wallet_account_id": "INT64",
             "device_id": "INT64"}  # fmt: skip
    inputs = [dict(item) for item in checkout["inputs"]]
    for name, value in values.items():
        for item in inputs:
            if item["name"] == name:
                item["data"] = [value]
                break
        else:
            inputs.append({"name": name, "datatype": kinds.get(name, "FP64"), "shape": [1],
                           "data": [value]})  # fmt: skip
    return {**checkout, "inputs": inputs}


# ------------------------------------------------------------------------------------ stack
@dataclass
class Stack:
    """One source tree's scorer and transformer over a private Redis and the real PostgreSQL.

    ``keep_alive_s``: passed to the scorer as ``--timeout-keep-alive`` (KServe's flag); whether
    the scorer honours it is measured, not assumed (:meth:`scorer_keep_alive_s`).
    """

    tree: SourceTree
    fixture: Fixture
    redis: RedisServer
    postgres_dsn: str
    workdir: Path
    keep_alive_s: int | None = None
    project: str = field(default_factory=lambda: f"getit_faults_{uuid.uuid4().hex[:10]}")
    scorer_http: int = field(default_factory=free_port)
    scorer_grpc: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    scorer: ManagedProcess | None = None
    transformer: ManagedProcess | None = None
    materialize_s: float = 0.0
    scorer_started_at: float = 0.0
    _cli: CliWorker | None = None
    _scorer_starts: int = 0
    _transformer_starts: int = 0

    # ------------------------------------------------------------------------ environment
    @property
    def feature_repo(self) -> Path:
        return self.workdir / "feature_repo"

    def env(self) -> dict[str, str]:
        return {
            "PYTHONPATH": self.tree.python_path,
            "GETIT_ML_REDIS_URL": self.redis.url,
            "GETIT_ML_POSTGRES_DSN": self.postgres_dsn,
            "GETIT_ML_FEATURE_REPO": str(self.feature_repo),
            "GETIT_ML_HOME": str(self.workdir / "home"),
            "GETIT_ML_LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
        }

    def cli(self, *arguments: str, timeout_s: float = 300) -> str:
        """``getit-ml ARGUMENTS`` with this tree's code (in its warm worker); its output."""
        if self._cli is None:
            self._cli = CliWorker(self.tree.python_path, self.env(), self.tree.root,
                                  self.workdir / "getit-ml.log")  # fmt: skip
        return self._cli.run(*arguments, timeout_s=timeout_s)

    def prepare(self) -> None:
        """The tree's feature repository under a project of its own, applied and materialized
        with the tree's code."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.tree.root / "feature_repo", self.feature_repo, dirs_exist_ok=True)
        config = self.feature_repo / "feature_store.yaml"
        text = re.sub(r"(?m)^project:.*$", f"project: {self.project}", config.read_text())
        config.write_text(text)
        store = ["--workdir", str(self.fixture.features), "--profile", "production"]
        self.cli("features", "apply", *store)
        self.materialize()

    def materialize(self) -> float:
        """The whole data range into the online store; the seconds it took."""
        began = time.monotonic()
        start = datetime.combine(self.fixture.start, datetime.min.time(), UTC) - timedelta(days=1)
        end = datetime.now(UTC)
        self.cli("features", "materialize", "--start", start.isoformat(), "--end",
                 end.isoformat(), "--workdir", str(self.fixture.features),
                 "--profile", "production")  # fmt: skip
        self.materialize_s = time.monotonic() - began
        return self.materialize_s

    def drop_project(self) -> None:
        """Remove this run's project from the shared PostgreSQL registry (only this project:
        Feast's ``FeatureStore.teardown`` deletes every project of the registry)."""
        from getit_ml.features.store import Profile, open_store
        from getit_ml.settings import load_settings

        settings = load_settings(redis_url=self.redis.url, postgres_dsn=self.postgres_dsn)
        with contextlib.suppress(Exception):
            store = open_store(settings, self.fixture.features, Profile.PRODUCTION,
                               project=self.project)  # fmt: skip
            store.registry.delete_project(self.project, commit=True)

    # ------------------------------------------------------------------------------ servers
    def _process(self, name: str, command: list[str], port: int, log: Path) -> ManagedProcess:
        return ManagedProcess(
            command,
            name=name,
            ready_url=f"http://127.0.0.1:{port}/v2/models/{FAMILY}/ready",
            env=self.env(),
            cwd=self.tree.root,
            log=log,
            start_timeout_s=120,
            stop_timeout_s=40,
        )

    def scorer_command(self) -> list[str]:
        command = [sys.executable, "-m", SCORER_MODULE, "--model_dir", str(self.fixture.model_dir),
                   "--expected_sha256", self.fixture.sha256, "--model_name", FAMILY,
                   "--http_port", str(self.scorer_http), "--grpc_port", str(self.scorer_grpc),
                   "--host", "127.0.0.1", "--log_level", "WARNING"]  # fmt: skip
        if self.keep_alive_s is not None:
            command += ["--timeout-keep-alive", str(self.keep_alive_s)]
        return command

    def transformer_command(self) -> list[str]:
        return [sys.executable, "-m", TRANSFORMER_MODULE, "--model_name", FAMILY,
                "--family", FAMILY, "--predictor_host", f"127.0.0.1:{self.scorer_http}",
                "--feature_store", str(self.fixture.features),
                "--feature_store_profile", "production",
                "--http_port", str(self.http_port), "--grpc_port", str(self.grpc_port),
                "--host", "127.0.0.1", "--log_level", "WARNING"]  # fmt: skip

    def start_scorer(self) -> ManagedProcess:
        self._scorer_starts += 1
        log = self.workdir / f"scorer-{self._scorer_starts}.log"
        self.scorer = self._process("scorer", self.scorer_command(), self.scorer_http, log)
        ready = get_bytes(f"/v2/models/{FAMILY}/ready")
        self.scorer_started_at = start_watching(
            self.scorer, lambda: raw_exchange(self.scorer_http, ready, timeout_s=0.5).status == 200
        )
        return self.scorer

    def start_transformer(self) -> ManagedProcess:
        self._transformer_starts += 1
        log = self.workdir / f"transformer-{self._transformer_starts}.log"
        self.transformer = self._process(
            "transformer", self.transformer_command(), self.http_port, log
        )
        self.transformer.start()
        return self.transformer

    def restart_transformer(self) -> None:
        if self.transformer is not None:
            self.transformer.stop(timeout_s=10)
        self.start_transformer()

    @property
    def transformer_pid(self) -> int:
        if self.transformer is None:
            raise RuntimeError("no transformer")
        return self.transformer.pid

    @property
    def transformer_restarts(self) -> int:
        return self._transformer_starts - 1

    def start(self) -> Stack:
        self.prepare()
        self.start_scorer()
        self.start_transformer()
        return self

    def stop(self) -> None:
        for process in (self.transformer, self.scorer):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop(timeout_s=10)
        self.transformer = self.scorer = None
        if self._cli is not None:
            self._cli.close()
            self._cli = None

    def scorer_keep_alive_s(self, wait_s: float) -> float | None:
        """Seconds after which the scorer closes an idle keep-alive connection (None: still
        open after ``wait_s``)."""
        with socket.create_connection(("127.0.0.1", self.scorer_http), timeout=5) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            read_http(sock, time.monotonic() + 5)
            answered = time.monotonic()
            sock.settimeout(wait_s)
            try:
                if sock.recv(1) == b"":
                    return time.monotonic() - answered
            except TimeoutError:
                return None
            except OSError:
                return time.monotonic() - answered
        return None

    def logs(self) -> str:
        """Every server log of this stack, for a failing test's message."""
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- {path.name}\n{text[-3000:]}")
        return "\n".join(parts)
