"""Platform settings: the one module that reads the environment.

Every setting is a field of a pydantic-settings class with the ``GETIT_ML_`` prefix (in the style
of MLServer), documented by its docstring, so ``getit-ml settings`` can list them. Nothing is read
at import time: call :func:`load_settings` where a command starts.

This module needs pydantic 2 and is therefore for the platform environment only; the monitoring
sidecars (pydantic 1) take their configuration from command-line flags and artefacts on disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from getit_ml.errors import SettingsError

ENV_PREFIX = "GETIT_ML_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class PlatformSettings(BaseSettings):
    """Settings shared by the CLI, the demo and the tests."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    home: Path = Path(".getit-ml")
    """Folder that holds the embedded default's state: generated data, Feast's SQLite online store
    and file registry, MLflow's SQLite database and artefacts, pipeline outputs."""

    log_level: LogLevel = "WARNING"
    """Level of getit_ml's log records on stderr: DEBUG, INFO, WARNING or ERROR."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis used by the production configuration (Feast online store, event streams) and by the
    integration tests."""

    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
    """PostgreSQL used by the production configuration (Feast SQL registry, MLflow backend) and by
    the integration tests. Put credentials in a Secret-backed environment variable, never in a
    values file."""

    service_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """Seconds to wait for Redis or PostgreSQL before declaring it unreachable."""

    online_store_connect_timeout_s: float = Field(default=0.25, gt=0, le=30)
    """Seconds the feature transformer waits to open a connection to the Redis online store
    (redis-py's ``socket_connect_timeout``). A store on the same network answers in well under a
    millisecond; a dead host must cost a fraction of a second, not the kernel's minutes."""

    online_store_read_timeout_s: float = Field(default=0.25, gt=0, le=30)
    """Seconds the feature transformer waits for one Redis reply (``socket_timeout``). It bounds
    how long a read stuck behind a frozen Redis holds its thread; the caller has its answer
    earlier, at ``GETIT_ML_FEATURE_READ_DEADLINE_S``."""

    feature_read_deadline_s: float = Field(default=0.2, gt=0, le=30)
    """Per-request deadline of the transformer's online feature read. Past it the request gets
    503 with ``Retry-After`` while the read finishes (or times out) in the background. A normal
    read takes about a millisecond: 0.2 s keeps the 503 within 250 ms of normal latency."""

    feature_read_workers: int = Field(default=8, ge=1, le=256)
    """Threads that run the transformer's feature reads off the event loop. At most four reads
    per thread may be in flight (running or queued); beyond that, a request is shed with 503
    instead of queueing behind a store that does not answer."""

    store_breaker_failures: int = Field(default=5, ge=1, le=10_000)
    """Consecutive failed feature reads (errors or missed deadlines) that open the transformer's
    circuit breaker: while it is open, requests fail in microseconds with 503 instead of each
    waiting for the deadline."""

    store_breaker_reset_s: float = Field(default=0.5, gt=0, le=60)
    """Seconds an open circuit breaker waits before it lets one probe read through
    (half-open); the probe's success closes it, so recovery follows the store within about this
    long."""

    predictor_call_timeout_s: float = Field(default=2.0, gt=0, le=600)
    """Seconds the transformer waits for one scorer call before answering 503 (a scorer answers
    in milliseconds; a hung one must not hold requests). The start-up wait for the scorer is a
    separate flag, ``--predictor_timeout``."""

    dependency_probe_interval_s: float = Field(default=1.0, gt=0, le=60)
    """How often the transformer's background monitor probes the online store (reachability and
    the feature views' materialization watermarks) and the scorer's readiness."""

    dependency_probe_timeout_s: float = Field(default=0.5, gt=0, le=30)
    """Seconds one probe of the monitor (the scorer's ready endpoint, the store's watermarks)
    may take before the dependency counts as down."""

    feature_repo: Path = Path("feature_repo")
    """Folder of the Feast feature repository: the definitions and ``feature_store.yaml``."""

    mlflow_tracking_uri: str | None = None
    """MLflow tracking and model-registry URI: ``postgresql://...`` (production backend),
    ``http(s)://...`` (an MLflow server) or ``sqlite:///...``. Unset: the embedded SQLite registry
    under ``home/mlflow``."""

    mlflow_artifact_location: str | None = None
    """Where new experiments store artefacts, e.g. ``s3://getit-ml-models/mlflow`` (an
    S3-compatible store: boto3 takes its endpoint and keys from ``MLFLOW_S3_ENDPOINT_URL`` and
    ``AWS_*`` itself). Unset: ``home/mlflow/artifacts`` for the embedded registry, the server's
    default for a tracking server."""

    promotion_metric: str | None = None
    """Held-out metric that decides whether a newly registered version becomes ``champion``
    (for every family). Unset: each family's own (fraud ``test_auprc``, churn
    ``test_roc_auc``); its direction is always the family's evaluation's."""

    promotion_margin: float | None = Field(default=None, ge=0, le=1)
    """How much a challenger must beat the champion on the promotion metric to replace it.
    Unset: the family's pipeline default (0.005)."""

    monitoring_python: Path = Path(".venv-monitoring/bin/python")
    """Interpreter of the monitoring environment (alibi 0.9.4, alibi-detect 0.11.4, numpy 1.24),
    where the explainer and drift-detector sidecars run."""

    ci: bool = Field(default=False, validation_alias=AliasChoices("CI", f"{ENV_PREFIX}CI"))
    """True on CI machines (the conventional ``CI`` variable, read without the prefix): tests that
    need Redis or PostgreSQL then fail instead of skipping when a server is unreachable."""


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        variable = f"{ENV_PREFIX}{field.upper()}" if field != "settings" else field
        if item["type"] == "extra_forbidden":
            problems.append(f"{variable}: no such setting (see `getit-ml settings`)")
        else:
            problems.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
    return "invalid settings: " + "; ".join(problems)


def load_settings(**overrides: Any) -> PlatformSettings:
    """Read the settings from the environment, with ``overrides`` taking precedence.

    Raises :class:`~getit_ml.errors.SettingsError` with one readable line per bad value, and for
    any ``GETIT_ML_*`` variable that names no setting: a typo must not be silently ignored.
    """
    known = {f"{ENV_PREFIX}{name.upper()}" for name in PlatformSettings.model_fields}
    unknown = sorted(
        variable
        for variable in os.environ
        if variable.upper().startswith(ENV_PREFIX) and variable.upper() not in known
    )
    if unknown:
        raise SettingsError(
            "invalid settings: "
            + "; ".join(f"{v}: no such setting (see `getit-ml settings`)" for v in unknown)
        )
    try:
        return PlatformSettings(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def mask_password(url: str) -> str:
    """``url`` with any password replaced by ``***``, for display and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe_settings(settings: PlatformSettings) -> list[tuple[str, str, str]]:
    """``(environment variable, current value, description)`` for every setting, passwords
    masked."""
    rows = []
    for name, field in PlatformSettings.model_fields.items():
        variable = "CI" if name == "ci" else f"{ENV_PREFIX}{name.upper()}"
        value = str(getattr(settings, name))
        rows.append((variable, mask_password(value), field.description or ""))
    return rows


def child_environment(settings: PlatformSettings) -> dict[str, str]:
    """The ``GETIT_ML_*`` variables under which :func:`load_settings` in a child process (a
    kfp.local step, a model server) returns these same settings. Relative paths are made
    absolute: the child may run in another folder."""
    variables: dict[str, str] = {}
    for name in PlatformSettings.model_fields:
        if name == "ci":
            continue
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, Path):
            value = value.resolve()
        variables[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return variables
