"""Local serving: the fraud scorer (and its feature transformer) as processes on this machine.

What ``getit-ml serve fraud`` and the demo run: the scorer in one process; with the transformer,
the transformer takes the public ports and the scorer moves to ``predictor_http_port`` /
``predictor_grpc_port`` behind it — two processes, as two containers would be on Kubernetes.
:meth:`LocalServing.stop` sends SIGTERM, and the servers drain in-flight requests before exiting.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from getit_ml.errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchOptions:
    model_uri: str | None = "models:/fraud@champion"
    model_dir: Path | None = None
    tracking_uri: str | None = None
    with_transformer: bool = False
    http_port: int = 8080
    grpc_port: int = 8081
    #: The scorer's ports behind the transformer (``None``: public ports + 10).
    predictor_http_port: int | None = None
    predictor_grpc_port: int | None = None
    feature_store: Path | None = None
    predictor_protocol: str = "v2"
    host: str = "127.0.0.1"
    threshold: float | None = None
    max_body_bytes: int | None = None
    enable_repository_extension: bool = False
    log_level: str = "INFO"
    start_timeout_s: float = 120.0
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerProcess:
    role: str
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


class LocalServing:
    """The running processes; a context manager that always stops them."""

    def __init__(self, options: LaunchOptions) -> None:
        self.options = options
        self.processes: list[ServerProcess] = []

    @property
    def entry(self) -> ServerProcess:
        """The process clients talk to (the transformer when there is one)."""
        return self.processes[-1]

    def _spawn(self, role: str, args: list[str], http_port: int, grpc_port: int) -> ServerProcess:
        command = [sys.executable, "-m", "getit_ml.serving", role,
                   "--http_port", str(http_port), "--grpc_port", str(grpc_port),
                   "--host", self.options.host, "--log_level", self.options.log_level,
                   *args]  # fmt: skip
        if self.options.max_body_bytes is not None:
            command += ["--max_body_bytes", str(self.options.max_body_bytes)]
        if self.options.enable_repository_extension:
            command += ["--enable_repository_extension", "true"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", **self.options.extra_env}
        logger.info("starting the %s: %s", role, " ".join(command))
        process = subprocess.Popen(command, env=env)
        server = ServerProcess(role, process, http_port, grpc_port)
        self.processes.append(server)
        return server

    def _wait_ready(self, server: ServerProcess) -> None:
        deadline = time.monotonic() + self.options.start_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = server.process.poll()
                if code is not None:
                    raise UserError(f"the {server.role} exited with status {code} while starting")
                try:
                    if client.get(f"{server.url}/v2/health/ready").status_code == 200:
                        logger.info("%s ready on %s", server.role, server.url)
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise UserError(f"the {server.role} was not ready within {self.options.start_timeout_s}s")

    def start(self) -> LocalServing:
        o = self.options
        if (o.model_uri is None) == (o.model_dir is None) and o.model_dir is None:
            raise UserError("give a model: a registry URI or a model folder")
        scorer_args = (
            ["--model_dir", str(o.model_dir)]
            if o.model_dir is not None
            else ["--model_uri", str(o.model_uri)]
        )
        if o.tracking_uri and o.model_dir is None:
            scorer_args += ["--tracking_uri", o.tracking_uri]
        if o.threshold is not None:
            scorer_args += ["--threshold", repr(o.threshold)]
        try:
            if not o.with_transformer:
                self._wait_ready(self._spawn("scorer", scorer_args, o.http_port, o.grpc_port))
                return self
            p_http = o.predictor_http_port or o.http_port + 10
            p_grpc = o.predictor_grpc_port or o.grpc_port + 10
            scorer = self._spawn("scorer", scorer_args, p_http, p_grpc)
            host = f"127.0.0.1:{p_http}" if o.predictor_protocol == "v2" else f"127.0.0.1:{p_grpc}"
            transformer_args = ["--predictor_host", host,
                                "--predictor_protocol", o.predictor_protocol,
                                "--predictor_timeout", str(o.start_timeout_s)]  # fmt: skip
            if o.feature_store is not None:
                transformer_args += ["--feature_store", str(o.feature_store)]
            # Both start at once: the transformer waits for the scorer to be ready by itself.
            transformer = self._spawn("transformer", transformer_args, o.http_port, o.grpc_port)
            self._wait_ready(scorer)
            self._wait_ready(transformer)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 40.0) -> dict[str, int | None]:
        """SIGTERM every process (transformer first), wait for each; their exit codes."""
        codes: dict[str, int | None] = {}
        for server in reversed(self.processes):
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
            try:
                codes[server.role] = server.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.error("the %s did not stop in %ss: killing it", server.role, timeout_s)
                server.process.kill()
                codes[server.role] = server.process.wait()
        self.processes.clear()
        return codes

    def wait(self) -> int | None:
        """Block until a process exits (the CLI's foreground mode); its exit code."""
        while True:
            for server in self.processes:
                code = server.process.poll()
                if code is not None:
                    return code
            time.sleep(0.5)

    def __enter__(self) -> LocalServing:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
