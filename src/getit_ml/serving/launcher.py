"""Local serving: a family's model server (and its feature transformer) as processes here.

What ``getit-ml serve FAMILY`` and the demo run: the runtime's server
(``python -m inference_services.<server>``, the same entry point as its container) in one
process; with the transformer, the transformer takes the public ports and the scorer moves to
``predictor_http_port`` / ``predictor_grpc_port`` behind it — two processes, as two containers
would be on Kubernetes. :meth:`LocalServing.supervise` keeps them running as a kubelet would: a
child that dies is started again with an exponential backoff (:class:`~getit_ml.processes.Backoff`)
and the restart is logged with its exit status, while the other keeps serving (the transformer
answers 503 + ``Retry-After`` until its scorer is back). :meth:`LocalServing.stop` sends SIGTERM,
and the servers drain in-flight requests before exiting.

The transformer is started with ``--freshness_check off``: the demo's embedded feature data is
historical, so every watermark is older than its view's TTL and a freshness check would keep it
"not ready" for ever. A model folder is served only with its ``expected_sha256`` or with
``allow_unverified`` said out loud (the scorer's own rule).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from getit_ml.errors import UserError
from getit_ml.processes import (
    DEFAULT_BACKOFF,
    Backoff,
    ManagedProcess,
    Supervisor,
    module_command,
)
from getit_ml.serving.runtime import RUNTIME_SERVERS, TRANSFORMER_SERVER

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchOptions:
    #: The family served: the model's name, its request and feature service.
    family: str
    #: The family's serving runtime (which server loads its model).
    runtime: str = "xgboost-binary"
    #: Registry reference; ``None`` with no ``model_dir``: the family's champion.
    model_uri: str | None = None
    model_dir: Path | None = None
    #: With ``model_dir``: the artefact's SHA-256 (other bytes are refused) ...
    expected_sha256: str | None = None
    #: ... or serve the folder unverified (development only).
    allow_unverified: bool = False
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

    @property
    def model_reference(self) -> str:
        return self.model_uri or f"models:/{self.family}@champion"


@dataclass
class ServerProcess:
    role: str
    process: ManagedProcess
    http_port: int
    grpc_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


class LocalServing:
    """The running processes; a context manager that always stops them."""

    def __init__(self, options: LaunchOptions) -> None:
        if options.runtime not in RUNTIME_SERVERS:
            raise UserError(f"unknown serving runtime {options.runtime!r}")
        self.options = options
        self.processes: list[ServerProcess] = []

    @property
    def entry(self) -> ServerProcess:
        """The process clients talk to (the transformer when there is one)."""
        return self.processes[-1]

    def _spawn(
        self, role: str, module: str, args: list[str], http_port: int, grpc_port: int
    ) -> ServerProcess:
        o = self.options
        arguments = [
            "--model_name",
            o.family,
            "--family",
            o.family,
            "--http_port",
            str(http_port),
            "--grpc_port",
            str(grpc_port),
            "--host",
            o.host,
            "--log_level",
            o.log_level,
            *args,
        ]
        if o.max_body_bytes is not None:
            arguments += ["--max_body_bytes", str(o.max_body_bytes)]
        if o.enable_repository_extension:
            arguments += ["--enable_repository_extension", "true"]
        process = ManagedProcess(
            module_command(module, arguments),
            name=f"{o.family} {role}",
            ready_url=f"http://127.0.0.1:{http_port}/v2/health/ready",
            env={"OMP_NUM_THREADS": "1", **o.extra_env},
            in_repository=True,
            start_timeout_s=o.start_timeout_s,
        )
        server = ServerProcess(role, process, http_port, grpc_port)
        self.processes.append(server)
        process.spawn()
        return server

    def start(self) -> LocalServing:
        o = self.options
        if o.model_dir is not None:
            scorer_args = ["--model_dir", str(o.model_dir)]
            if o.expected_sha256:
                scorer_args += ["--expected_sha256", o.expected_sha256]
            if o.allow_unverified:
                scorer_args += ["--allow_unverified", "true"]
        else:
            scorer_args = ["--model_uri", o.model_reference]
        if o.tracking_uri and o.model_dir is None:
            scorer_args += ["--tracking_uri", o.tracking_uri]
        if o.threshold is not None:
            scorer_args += ["--threshold", repr(o.threshold)]
        server = RUNTIME_SERVERS[o.runtime]
        try:
            if not o.with_transformer:
                self._spawn("scorer", server, scorer_args, o.http_port, o.grpc_port)
                self.entry.process.wait_ready()
                return self
            p_http = o.predictor_http_port or o.http_port + 10
            p_grpc = o.predictor_grpc_port or o.grpc_port + 10
            scorer = self._spawn("scorer", server, scorer_args, p_http, p_grpc)
            host = f"127.0.0.1:{p_http}" if o.predictor_protocol == "v2" else f"127.0.0.1:{p_grpc}"
            transformer_args = [
                "--predictor_host",
                host,
                "--predictor_protocol",
                o.predictor_protocol,
                "--predictor_timeout",
                str(o.start_timeout_s),
                "--freshness_check",
                "off",
            ]
            if o.feature_store is not None:
                transformer_args += ["--feature_store", str(o.feature_store)]
            # Both start at once: the transformer waits for the scorer to be ready by itself.
            transformer = self._spawn(
                "transformer", TRANSFORMER_SERVER, transformer_args, o.http_port, o.grpc_port
            )
            scorer.process.wait_ready()
            transformer.process.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 40.0) -> dict[str, int | None]:
        """SIGTERM every process (transformer first), wait for each; their exit codes."""
        codes: dict[str, int | None] = {}
        for server in reversed(self.processes):
            codes[server.role] = server.process.stop(timeout_s)
        self.processes.clear()
        return codes

    def supervise(
        self,
        stop: threading.Event | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        *,
        poll_s: float = 0.5,
    ) -> Supervisor:
        """Keep the started processes running until ``stop`` is set (for ever without one: the
        CLI's foreground mode, until Ctrl-C); the supervisor, with its restart counts. The
        processes are still running when it returns: :meth:`stop` them."""
        supervisor = Supervisor([server.process for server in self.processes], backoff)
        supervisor.run(stop, poll_s)
        return supervisor

    def __enter__(self) -> LocalServing:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
