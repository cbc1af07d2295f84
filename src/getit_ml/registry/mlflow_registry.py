"""Model registry on MLflow: register with lineage and a checksum, promote by a margin, roll back.

Every model version carries, as MLflow model-version tags:

* ``getit.sha256``: a deterministic SHA-256 of the artefact folder (see :func:`artifact_sha256`).
  The server refuses to load an artefact whose bytes no longer match it (:func:`verify_artifact`).
* lineage: ``getit.data_snapshot``, ``getit.feature_service``, ``getit.pipeline_run_id``,
  ``getit.code_version``.
* the last promotion decision about it: ``getit.promotion`` (``promoted``, ``rejected``,
  ``manual`` or ``rollback``), ``getit.promotion_reason`` (one readable sentence with both metric
  values) and ``getit.promotion_detail`` (the same as JSON).

Two aliases carry the serving contract: ``challenger`` is the newest registered version,
``champion`` the one served (``models:/fraud@champion``). The registered model's tag
``getit.champion_history`` lists the versions that were champion, oldest first, so that
:func:`rollback` can move ``champion`` back in one call.

Backends: the embedded default is SQLite plus a local artefact folder under ``GETIT_ML_HOME``
(:meth:`RegistryConfig.embedded`); production is PostgreSQL plus an S3-compatible artefact store
(:meth:`RegistryConfig.postgres`; MLflow reads ``MLFLOW_S3_ENDPOINT_URL`` and the usual AWS
variables for the latter). Nothing here sets MLflow's global tracking URI: every call builds an
:class:`~mlflow.MlflowClient` with explicit tracking and registry URIs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import urlsplit

import mlflow.artifacts
import sqlalchemy.exc
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from getit_ml.errors import UserError
from getit_ml.services import sqlalchemy_postgres_url
from getit_ml.settings import PlatformSettings, mask_password

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_METRIC = "test_auprc"
DEFAULT_MARGIN = 0.005

MODEL_ARTIFACT_PATH = "model"
"""Where, inside a run's artefacts, the model folder is logged."""

TAG_SHA256 = "getit.sha256"
TAG_DATA_SNAPSHOT = "getit.data_snapshot"
TAG_FEATURE_SERVICE = "getit.feature_service"
TAG_PIPELINE_RUN_ID = "getit.pipeline_run_id"
TAG_CODE_VERSION = "getit.code_version"
TAG_SIGNATURE = "getit.signature"
TAG_PROMOTION = "getit.promotion"
TAG_PROMOTION_REASON = "getit.promotion_reason"
TAG_PROMOTION_DETAIL = "getit.promotion_detail"
TAG_DEMOTION_REASON = "getit.demotion_reason"
TAG_CHAMPION_HISTORY = "getit.champion_history"

# The registered-model tag column is VARCHAR(5000) on PostgreSQL: keep the history well inside it.
_HISTORY_LIMIT = 200
# Two metric values closer than this count as equal, so that a margin met "exactly" (0.905 vs
# 0.900 at 0.005) is not lost to binary floating point.
_MARGIN_TOLERANCE = 1e-9
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,255}")
_ARTIFACT_DIGEST_HEADER = b"getit-artifact-sha256-v1\0"
_CHUNK = 1 << 20
_RETRIES = 8


class RegistryError(UserError):
    """A registry request that cannot be honoured as asked."""


class UnknownModelError(RegistryError):
    """No registered model of that name (or no registry at that address)."""


class UnknownVersionError(RegistryError):
    """The registered model has no such version or alias."""


class NoPreviousChampionError(RegistryError):
    """Rollback asked for, but there is no earlier champion to go back to."""


class ArtifactMismatchError(RegistryError):
    """An artefact's bytes differ from the SHA-256 the registry recorded for them."""


# ----------------------------------------------------------------------------- configuration


def tracking_uri_for(home: Path) -> str:
    """The embedded default's tracking (and registry) URI: SQLite under ``home/mlflow``."""
    return f"sqlite:///{(home / 'mlflow' / 'mlflow.db').resolve()}"


def artifact_location_for(home: Path) -> str:
    """The embedded default's artefact folder, ``home/mlflow/artifacts``."""
    return str((home / "mlflow" / "artifacts").resolve())


@dataclass(frozen=True)
class RegistryConfig:
    """Where the registry lives: a tracking/registry URI and, for new experiments, where their
    artefacts go (``None``: the tracking server's default)."""

    tracking_uri: str
    artifact_location: str | None = None

    @classmethod
    def embedded(cls, home: Path) -> RegistryConfig:
        """SQLite database and local artefact folder under ``home/mlflow``."""
        return cls(tracking_uri_for(home), artifact_location_for(home))

    @classmethod
    def postgres(cls, dsn: str, artifact_location: str) -> RegistryConfig:
        """PostgreSQL backend (``postgresql://...``) with an artefact store such as
        ``s3://bucket/prefix``."""
        if urlsplit(dsn).scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise UserError(f"not a PostgreSQL DSN: {mask_password(dsn)}")
        return cls(sqlalchemy_postgres_url(dsn), artifact_location)

    @classmethod
    def from_uri(cls, tracking_uri: str, artifact_location: str | None = None) -> RegistryConfig:
        """Any tracking URI MLflow understands; PostgreSQL DSNs get the psycopg driver. An SQLite
        registry without an artefact location keeps artefacts in ``artifacts/`` beside its
        database file, as the embedded default does."""
        if artifact_location is None and tracking_uri.startswith("sqlite:///"):
            database = Path(tracking_uri.removeprefix("sqlite:///"))
            artifact_location = str((database.parent / "artifacts").resolve())
        return cls(sqlalchemy_postgres_url(tracking_uri), artifact_location)

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> RegistryConfig:
        """The registry the settings name: ``mlflow_tracking_uri`` (with
        ``mlflow_artifact_location``), else the embedded default under ``home``."""
        if settings.mlflow_tracking_uri:
            return cls.from_uri(settings.mlflow_tracking_uri, settings.mlflow_artifact_location)
        embedded = cls.embedded(settings.home)
        if settings.mlflow_artifact_location:
            return cls(embedded.tracking_uri, settings.mlflow_artifact_location)
        return embedded

    @property
    def display_uri(self) -> str:
        """The tracking URI with any password masked, for messages and logs."""
        return mask_password(self.tracking_uri)

    @property
    def is_tracking_server(self) -> bool:
        """True for an MLflow tracking server (it owns the database and the artefact root)."""
        return urlsplit(self.tracking_uri).scheme in ("http", "https", "databricks")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when the backend is SQLite, else ``None``."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        return Path(self.tracking_uri.removeprefix("sqlite:///"))


def client(config: RegistryConfig) -> MlflowClient:
    """An MLflow client bound to ``config`` alone (explicit tracking and registry URIs: MLflow's
    global tracking URI is neither read nor changed). Creates the SQLite folder if needed."""
    # MLflow's SQL store still uses SQLAlchemy's deprecated ``noload``; the warning is MLflow's to
    # fix and says nothing a user of the registry can act on.
    warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy is deprecated")
    sqlite_path = config.sqlite_path
    if sqlite_path is not None:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def _existing_client(config: RegistryConfig) -> MlflowClient:
    """A client for reading or changing what is there: a missing SQLite file is a user error,
    not a reason to create an empty registry."""
    sqlite_path = config.sqlite_path
    if sqlite_path is not None and not sqlite_path.is_file():
        raise UnknownModelError(
            f"no MLflow registry at {sqlite_path}: register a model first, or point "
            "--tracking-uri at the registry"
        )
    return client(config)


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Lineage:
    """Where a model came from: enough to rebuild it."""

    data_snapshot: str
    """Content hash of the data snapshot it was trained on."""
    feature_service: str
    """Feast feature service that produced its features."""
    pipeline_run_id: str
    """Kubeflow Pipelines run (or ``local-...`` for a run on one machine)."""
    code_version: str
    """Git commit (or package version) of the training code."""

    def tags(self) -> dict[str, str]:
        """The lineage as MLflow tags; raises :class:`UserError` if a field is empty."""
        values = {
            TAG_DATA_SNAPSHOT: self.data_snapshot,
            TAG_FEATURE_SERVICE: self.feature_service,
            TAG_PIPELINE_RUN_ID: self.pipeline_run_id,
            TAG_CODE_VERSION: self.code_version,
        }
        empty = [key.removeprefix("getit.") for key, value in values.items() if not value.strip()]
        if empty:
            raise UserError(f"lineage is incomplete: {', '.join(empty)} must not be empty")
        return values


@dataclass(frozen=True)
class RegisteredVersion:
    """One model version as registered (or as the champion after a promotion or rollback)."""

    name: str
    version: str
    run_id: str | None
    source: str
    sha256: str | None
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class VersionInfo:
    """What ``getit-ml registry list`` shows about a version."""

    name: str
    version: str
    aliases: tuple[str, ...]
    metric_name: str
    metric: float | None
    sha256: str | None
    created: datetime
    promotion: str | None
    promotion_reason: str | None
    demotion_reason: str | None
    """Set while the version is out of service after a rollback replaced it."""
    run_id: str | None
    source: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class PromotionDecision:
    """Whether ``version`` became champion, and why (also stored as tags on the version)."""

    name: str
    version: str
    promoted: bool
    reason: str
    metric: str | None
    challenger_value: float | None
    champion_value: float | None
    champion_version: str | None
    margin: float | None


@dataclass(frozen=True)
class ResolvedModel:
    """A registry reference resolved to a version and a local folder holding its artefact."""

    info: VersionInfo
    path: Path


# ----------------------------------------------------------------------------- checksums


def _files_under(root: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of every file under ``root``, sorted by relative path."""
    found: list[tuple[str, Path]] = []
    for folder, _dirs, files in os.walk(root):
        for file_name in files:
            path = Path(folder) / file_name
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def artifact_sha256(path: Path) -> str:
    """Deterministic SHA-256 of an artefact folder: every file's relative POSIX path, size and
    bytes, in sorted path order (timestamps and permissions do not count; empty folders do not
    exist in artefact stores, so they do not count either). A single file hashes as a folder
    holding just that file."""
    if path.is_dir():
        entries = _files_under(path)
    elif path.is_file():
        entries = [(path.name, path)]
    else:
        raise RegistryError(f"no artefact at {path}")
    digest = hashlib.sha256(_ARTIFACT_DIGEST_HEADER)
    for relative, file_path in entries:
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(file_path.stat().st_size.to_bytes(8, "big"))
        with file_path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def verify_artifact(path: Path, expected_sha256: str) -> str:
    """Return the artefact's SHA-256 if it equals ``expected_sha256``; otherwise raise
    :class:`ArtifactMismatchError` (the artefact changed since it was registered)."""
    actual = artifact_sha256(path)
    if actual != expected_sha256.strip().lower():
        raise ArtifactMismatchError(
            f"artefact at {path} has sha256 {actual}, but the registry recorded "
            f"{expected_sha256}: it changed after registration; refusing to use it"
        )
    return actual


# ----------------------------------------------------------------------------- helpers


def _check_name(name: str) -> str:
    if not _NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"invalid model name {name!r}: use letters, digits, '_', '.' and '-', starting "
            "with a letter or digit"
        )
    return name


def _check_version(version: str | int) -> str:
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise UnknownVersionError(f"model versions are positive integers (got {version!r})")
    return str(int(text))


def _now() -> datetime:
    return datetime.now(UTC)


def _is_transient(error: Exception) -> bool:
    """Database races and lock timeouts that a retry resolves: two writers inserting the same
    alias or tag row, the version-number race MLflow gives up on after 3 tries, a busy SQLite."""
    if isinstance(error, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.OperationalError):
        return True
    if not isinstance(error, MlflowException):
        return False
    if error.error_code == "TEMPORARILY_UNAVAILABLE":
        return True
    if isinstance(error.__cause__, sqlalchemy.exc.IntegrityError):
        return True
    return "Model Version creation error" in error.message


def _retrying(operation: Callable[[], T], what: str) -> T:
    """Run ``operation``, retrying transient database errors with jittered back-off."""
    for attempt in range(1, _RETRIES + 1):
        try:
            return operation()
        except Exception as error:
            if attempt == _RETRIES or not _is_transient(error):
                raise
            delay = min(2.0, 0.02 * 2**attempt) * (0.5 + random.random())
            logger.debug("%s: transient error (attempt %d), retrying: %s", what, attempt, error)
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


_slots_guard = threading.Lock()
_slots: dict[tuple[str, str], threading.BoundedSemaphore] = {}

# MLflow's SQL tracking store holds one pooled connection while ``log_batch`` takes a second
# (MLflow 3.17), so more concurrent writers than half the pool (5 + 10 overflow by default)
# deadlock until the pool times out. Registrations in one process therefore take at most this
# many slots at once; the version-number race serialises them in the database anyway.
_DATABASE_WRITERS = 4


@contextlib.contextmanager
def _slot(config: RegistryConfig, purpose: str, writers: int = 1) -> Iterator[None]:
    """Let at most ``writers`` threads of this process through at once, per registry and
    purpose (one: take turns)."""
    key = (config.tracking_uri, purpose)
    with _slots_guard:
        slots = _slots.setdefault(key, threading.BoundedSemaphore(writers))
    with slots:
        yield


def _registration_slot(config: RegistryConfig) -> contextlib.AbstractContextManager[None]:
    """SQLite has one writer at a time and fails lock upgrades instead of waiting on them:
    registrations take turns. A database server gets a few at a time (see _DATABASE_WRITERS);
    a tracking server (http) pools its own connections."""
    if config.sqlite_path is not None:
        return _slot(config, "register")
    if config.is_tracking_server:
        return contextlib.nullcontext()
    return _slot(config, "register", _DATABASE_WRITERS)


def _serialized(config: RegistryConfig) -> contextlib.AbstractContextManager[None]:
    """Champion changes read-modify-write the history tag, so this process's take turns (across
    processes they rely on promotions being rare: one pipeline step or one operator at a time)."""
    return _slot(config, "champion")


def _is_missing(error: MlflowException) -> bool:
    return error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _registered_model(mlflow_client: MlflowClient, name: str) -> RegisteredModel:
    try:
        return mlflow_client.get_registered_model(_check_name(name))
    except MlflowException as error:
        if _is_missing(error):
            raise UnknownModelError(f"no registered model named {name!r}") from None
        raise


def _model_version(mlflow_client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    number = _check_version(version)
    _registered_model(mlflow_client, name)  # a missing model is a different mistake
    try:
        return mlflow_client.get_model_version(name, number)
    except MlflowException as error:
        if _is_missing(error):
            raise UnknownVersionError(f"model {name!r} has no version {number}") from None
        raise


def _aliases_by_version(model: RegisteredModel) -> dict[str, tuple[str, ...]]:
    aliases = cast("dict[str, str | int]", model.aliases)
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(str(version), []).append(alias)
    return {version: tuple(names) for version, names in by_version.items()}


def _alias_version(model: RegisteredModel, alias: str) -> str | None:
    aliases = cast("dict[str, str | int]", model.aliases)
    version = aliases.get(alias)
    return None if version is None else str(version)


def alias_version(config: RegistryConfig, name: str, alias: str = CHAMPION) -> str | None:
    """The version ``alias`` points at; None when the registry, the model or the alias does
    not exist yet."""
    try:
        return _alias_version(_registered_model(_existing_client(config), name), alias)
    except UnknownModelError:
        return None


def _run_metric(
    mlflow_client: MlflowClient, run_id: str | None, metric: str | None
) -> tuple[str, float | None]:
    """``metric`` of the version's run, or (``metric`` None) the run's own promotion metric (its
    ``promotion_metric`` parameter, else :data:`DEFAULT_METRIC`), with its name."""
    if not run_id:
        return metric or DEFAULT_METRIC, None
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException as error:
        if _is_missing(error):
            return metric or DEFAULT_METRIC, None
        raise
    name = metric or str(run.data.params.get("promotion_metric") or DEFAULT_METRIC)
    value = run.data.metrics.get(name)
    return name, None if value is None else float(value)


def _tags(version: ModelVersion) -> dict[str, str]:
    return dict(cast("dict[str, str]", version.tags or {}))


def _info(
    mlflow_client: MlflowClient,
    version: ModelVersion,
    aliases: Mapping[str, tuple[str, ...]],
    metric: str | None,
) -> VersionInfo:
    tags = _tags(version)
    number = str(version.version)
    run_id = version.run_id
    created_ms = cast("int | None", version.creation_timestamp) or 0
    metric_name, value = _run_metric(mlflow_client, run_id, metric)
    return VersionInfo(
        name=version.name,
        version=number,
        aliases=aliases.get(number, ()),
        metric_name=metric_name,
        metric=value,
        sha256=tags.get(TAG_SHA256),
        created=datetime.fromtimestamp(created_ms / 1000, UTC),
        promotion=tags.get(TAG_PROMOTION),
        promotion_reason=tags.get(TAG_PROMOTION_REASON),
        demotion_reason=tags.get(TAG_DEMOTION_REASON),
        run_id=run_id,
        source=version.source or "",
        tags=tags,
    )


def _registered(version: ModelVersion, aliases: Mapping[str, tuple[str, ...]]) -> RegisteredVersion:
    number = str(version.version)
    return RegisteredVersion(
        name=version.name,
        version=number,
        run_id=version.run_id,
        source=version.source or "",
        sha256=_tags(version).get(TAG_SHA256),
        aliases=aliases.get(number, ()),
    )


# ----------------------------------------------------------------------------- registration


def _experiment_id(mlflow_client: MlflowClient, config: RegistryConfig, experiment: str) -> str:
    existing = mlflow_client.get_experiment_by_name(experiment)
    if existing is None:
        if config.artifact_location is None and not config.is_tracking_server:
            # A database backend without an artefact location would write into ./mlruns of
            # whatever folder the process happens to run in.
            raise UserError(
                f"experiment {experiment!r} does not exist and no artefact location is "
                "configured for it: pass one (e.g. s3://bucket/mlflow) in the registry config"
            )
        try:
            return mlflow_client.create_experiment(
                experiment, artifact_location=config.artifact_location
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            existing = mlflow_client.get_experiment_by_name(experiment)  # another writer won
            if existing is None:
                raise
    if existing.lifecycle_stage != "active":
        raise UserError(
            f"experiment {experiment!r} is deleted: restore it in MLflow or use another name"
        )
    return existing.experiment_id


def _ensure_registered_model(mlflow_client: MlflowClient, name: str) -> None:
    try:
        mlflow_client.get_registered_model(name)
        return
    except MlflowException as error:
        if not _is_missing(error):
            raise
    try:
        mlflow_client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # else another writer created it
            raise


def _signature_state(model_dir: Path) -> str:
    """``present``, ``absent`` (an MLflow model without a signature) or ``not an MLflow model``."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        return "not an MLflow model"
    from mlflow.models import Model  # only needed for MLflow-format folders

    loaded = Model.load(str(mlmodel))
    return "present" if loaded.signature is not None else "absent"


def _log_run(
    mlflow_client: MlflowClient,
    experiment_id: str,
    *,
    model_dir: Path,
    metrics: Mapping[str, float],
    params: Mapping[str, object],
    tags: Mapping[str, str],
    run_name: str | None,
    extra_artifacts: Mapping[str, Path],
) -> tuple[str, str]:
    """Log one finished run; returns (run id, artefact URI of the logged model folder)."""
    run = mlflow_client.create_run(experiment_id, tags=dict(tags), run_name=run_name)
    run_id = cast("str", run.info.run_id)
    try:
        stamp = int(time.time() * 1000)
        metric_rows = [Metric(key, float(value), stamp, 0) for key, value in metrics.items()]
        param_rows = [Param(key, str(value)) for key, value in params.items()]
        # MLflow caps a batch at 1000 metrics and 100 params.
        batches = max(1, -(-len(metric_rows) // 1000), -(-len(param_rows) // 100))
        for batch in range(batches):
            mlflow_client.log_batch(
                run_id,
                metrics=metric_rows[batch * 1000 : (batch + 1) * 1000],
                params=param_rows[batch * 100 : (batch + 1) * 100],
            )
        mlflow_client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_PATH)
        for artifact_path, local in extra_artifacts.items():
            if local.is_dir():
                mlflow_client.log_artifacts(run_id, str(local), artifact_path)
            else:
                mlflow_client.log_artifact(run_id, str(local), artifact_path)
    except BaseException:
        mlflow_client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    mlflow_client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    artifact_uri = cast("str", run.info.artifact_uri).rstrip("/")
    return run_id, f"{artifact_uri}/{MODEL_ARTIFACT_PATH}"


def _newest_version(mlflow_client: MlflowClient, name: str) -> int:
    page = mlflow_client.search_model_versions(
        f"name = '{name}'", max_results=1, order_by=["version_number DESC"]
    )
    return max((int(v.version) for v in page), default=0)


def _version_by_alias(mlflow_client: MlflowClient, name: str, alias: str) -> int | None:
    """The version ``alias`` points at (one row, unlike fetching the registered model)."""
    try:
        return int(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if _is_missing(error) or "not found" in error.message:  # MLflow 3: INVALID_PARAMETER
            return None
        raise


def _point_challenger_at_newest(mlflow_client: MlflowClient, name: str, registered: int) -> int:
    """Point ``challenger`` at the newest version, never backwards; returns where it points.

    Concurrent registrations race here: whoever sets the alias re-reads the newest version
    afterwards and moves it on if a newer one appeared meanwhile, so once every registration
    has returned, ``challenger`` is the newest version.
    """
    newest = registered
    for _ in range(_RETRIES):
        newest = max(registered, _newest_version(mlflow_client, name))
        current = _version_by_alias(mlflow_client, name, CHALLENGER)
        if current is not None and current >= newest:
            return current
        _retrying(
            functools.partial(
                mlflow_client.set_registered_model_alias, name, CHALLENGER, str(newest)
            ),
            "set challenger alias",
        )
    logger.warning("%s: challenger alias still moving after %d tries", name, _RETRIES)
    return newest


def register_model_version(
    config: RegistryConfig,
    *,
    name: str,
    model_dir: Path,
    metrics: Mapping[str, float],
    params: Mapping[str, object],
    lineage: Lineage,
    experiment: str,
    run_name: str | None = None,
    description: str | None = None,
    extra_artifacts: Mapping[str, Path] | None = None,
) -> RegisteredVersion:
    """Log a run in ``experiment`` (params, metrics, ``model_dir`` as its ``model`` artefact),
    register it as a new version of ``name`` and point ``challenger`` at it.

    ``model_dir`` may hold anything: an MLflow model folder (``mlflow.xgboost.save_model``, whose
    signature and input example then travel with it) or plain files. Its SHA-256
    (:func:`artifact_sha256`) and the ``lineage`` become tags of the run and of the version.
    ``extra_artifacts`` maps a run artefact path (e.g. ``evaluation``) to a local file or folder
    logged beside the model: plots and reports that belong to the run, not to the model.
    Safe to call from many threads and processes at once: each call gets its own version.
    """
    _check_name(name)
    extras = dict(extra_artifacts or {})
    for artifact_path, local in extras.items():
        if artifact_path == MODEL_ARTIFACT_PATH or not artifact_path.strip("/"):
            raise UserError(f"extra artefact path {artifact_path!r} is reserved or empty")
        if not local.exists():
            raise UserError(f"extra artefact {local} does not exist")
    lineage_tags = lineage.tags()
    if not model_dir.is_dir():
        raise UserError(f"model folder {model_dir} does not exist or is not a folder")
    if not _files_under(model_dir):
        raise UserError(f"model folder {model_dir} is empty")
    sha256 = artifact_sha256(model_dir)
    tags = {**lineage_tags, TAG_SHA256: sha256, TAG_SIGNATURE: _signature_state(model_dir)}
    mlflow_client = client(config)
    with _registration_slot(config):
        experiment_id = _retrying(
            lambda: _experiment_id(mlflow_client, config, experiment), "create experiment"
        )
        run_id, source = _log_run(
            mlflow_client,
            experiment_id,
            model_dir=model_dir,
            metrics=metrics,
            params=params,
            tags=tags,
            run_name=run_name,
            extra_artifacts=extras,
        )
        _retrying(lambda: _ensure_registered_model(mlflow_client, name), "register model")
        version = _retrying(
            lambda: mlflow_client.create_model_version(
                name, source, run_id=run_id, tags=tags, description=description
            ),
            "create model version",
        )
        number = str(version.version)
        challenger = _point_challenger_at_newest(mlflow_client, name, int(number))
    logger.info(
        "registered %s version %s (run %s, sha256 %s) in %s",
        name, number, run_id, sha256[:12], config.display_uri,
    )  # fmt: skip
    return RegisteredVersion(
        name=name,
        version=number,
        run_id=run_id,
        source=source,
        sha256=sha256,
        aliases=(CHALLENGER,) if challenger == int(number) else (),
    )


# ----------------------------------------------------------------------------- promotion


def decide_promotion(
    *,
    challenger_value: float | None,
    champion_value: float | None,
    margin: float,
    higher_is_better: bool,
    metric: str,
    champion_version: str | None,
) -> tuple[bool, str]:
    """(promote?, why) for a challenger against the current champion (``None``: no champion)."""
    shown = "n/a" if challenger_value is None else f"{challenger_value:.4f}"
    if champion_version is None:
        return True, f"no current champion; {metric} {shown}"
    if challenger_value is None:
        return False, f"no {metric} recorded for this version; champion stays {champion_version}"
    if champion_value is None:
        return False, (
            f"champion version {champion_version} has no {metric} to compare against "
            f"(challenger {shown}); promote manually if intended"
        )
    gain = challenger_value - champion_value
    if not higher_is_better:
        gain = -gain
    direction = "higher" if higher_is_better else "lower"
    comparison = (
        f"{metric} {challenger_value:.4f} vs champion version {champion_version}'s "
        f"{champion_value:.4f} ({direction} is better): improvement {gain:+.4f}"
    )
    if gain + _MARGIN_TOLERANCE >= margin:
        return True, f"{comparison} meets the margin {margin:g}"
    return False, f"{comparison} is below the margin {margin:g}"


def _history(model: RegisteredModel) -> list[str]:
    raw = cast("dict[str, str]", model.tags or {}).get(TAG_CHAMPION_HISTORY)
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        logger.warning("ignoring an unreadable %s tag: %r", TAG_CHAMPION_HISTORY, raw[:80])
        return []
    return [str(item) for item in parsed] if isinstance(parsed, list) else []


def _record(mlflow_client: MlflowClient, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        _retrying(
            functools.partial(mlflow_client.set_model_version_tag, name, version, key, value),
            f"tag version {version}",
        )


def _decision_tags(decision: PromotionDecision, kind: str) -> dict[str, str]:
    detail = {
        "promoted": decision.promoted,
        "metric": decision.metric,
        "challenger_value": decision.challenger_value,
        "champion_value": decision.champion_value,
        "champion_version": decision.champion_version,
        "margin": decision.margin,
        "decided_at": _now().isoformat(),
    }
    return {
        TAG_PROMOTION: kind,
        TAG_PROMOTION_REASON: decision.reason,
        TAG_PROMOTION_DETAIL: json.dumps(detail, sort_keys=True),
    }


def _clear_demotion(mlflow_client: MlflowClient, version: ModelVersion) -> bool:
    """A version that is champion again is no longer demoted; True if a tag was removed."""
    if TAG_DEMOTION_REASON not in _tags(version):
        return False
    mlflow_client.delete_model_version_tag(version.name, str(version.version), TAG_DEMOTION_REASON)
    return True


def _make_champion(
    mlflow_client: MlflowClient, name: str, version: str, history: list[str]
) -> None:
    """Point ``champion`` at ``version`` and append it to the history. The alias goes first: it
    is what serving reads, and rollback tolerates a history entry whose alias move failed."""
    _retrying(
        lambda: mlflow_client.set_registered_model_alias(name, CHAMPION, version),
        "set champion alias",
    )
    _write_history(mlflow_client, name, [*history, version])


def _write_history(mlflow_client: MlflowClient, name: str, history: list[str]) -> None:
    value = json.dumps(history[-_HISTORY_LIMIT:])
    _retrying(
        lambda: mlflow_client.set_registered_model_tag(name, TAG_CHAMPION_HISTORY, value),
        "write champion history",
    )


def promote_if_better(
    config: RegistryConfig,
    name: str,
    version: str | int,
    *,
    metric: str = DEFAULT_METRIC,
    margin: float = DEFAULT_MARGIN,
    higher_is_better: bool = True,
    champion_value: float | None = None,
    champion_value_for: str | None = None,
) -> PromotionDecision:
    """Make ``version`` the champion if there is none, or if its ``metric`` (from its run) beats
    the champion's by at least ``margin``; otherwise leave the champion alone. Either way the
    decision and its reason are stored as tags on ``version``.

    ``champion_value`` overrides the champion's recorded metric: pass the champion re-scored on
    the challenger's held-out test set when the two were evaluated on different snapshots;
    ``champion_value_for`` names the version it was measured for: if the champion has moved on
    since, that version's recorded metric is used instead.
    """
    if margin < 0:
        raise UserError(f"the promotion margin must be >= 0 (got {margin})")
    mlflow_client = _existing_client(config)
    with _serialized(config):
        candidate = _model_version(mlflow_client, name, version)
        number = str(candidate.version)
        model = _registered_model(mlflow_client, name)
        champion_version = _alias_version(model, CHAMPION)
        _, challenger_value = _run_metric(mlflow_client, candidate.run_id, metric)
        if champion_version == number:
            decision = PromotionDecision(
                name, number, False, f"version {number} is already the champion", metric,
                challenger_value, challenger_value, champion_version, margin,
            )  # fmt: skip
            logger.info("%s version %s: %s", name, number, decision.reason)
            return decision
        if champion_value_for is not None and champion_value_for != champion_version:
            logger.info("%s: champion is version %s, not %s as re-scored: using its record",
                        name, champion_version, champion_value_for)  # fmt: skip
            champion_value = None
        if champion_version is not None and champion_value is None:
            champion = _model_version(mlflow_client, name, champion_version)
            _, champion_value = _run_metric(mlflow_client, champion.run_id, metric)
        promoted, reason = decide_promotion(
            challenger_value=challenger_value,
            champion_value=champion_value,
            margin=margin,
            higher_is_better=higher_is_better,
            metric=metric,
            champion_version=champion_version,
        )
        decision = PromotionDecision(
            name, number, promoted, reason, metric, challenger_value, champion_value,
            champion_version, margin,
        )  # fmt: skip
        _record(
            mlflow_client, name, number,
            _decision_tags(decision, "promoted" if promoted else "rejected"),
        )  # fmt: skip
        if promoted:
            _make_champion(mlflow_client, name, number, _history(model))
            _clear_demotion(mlflow_client, candidate)
    logger.info(
        "%s version %s %s: %s", name, number, "promoted" if promoted else "not promoted", reason
    )
    return decision


def promote(
    config: RegistryConfig, name: str, version: str | int, *, reason: str | None = None
) -> PromotionDecision:
    """Make ``version`` the champion unconditionally (an operator's decision), recorded as a
    ``manual`` promotion on the version and in the champion history."""
    mlflow_client = _existing_client(config)
    with _serialized(config):
        candidate = _model_version(mlflow_client, name, version)
        number = str(candidate.version)
        model = _registered_model(mlflow_client, name)
        previous = _alias_version(model, CHAMPION)
        if previous == number:
            return PromotionDecision(
                name, number, False, f"version {number} is already the champion",
                None, None, None, previous, None,
            )  # fmt: skip
        why = f"manual promotion (previous champion: {previous or 'none'})"
        if reason:
            why = f"{why}: {reason}"
        decision = PromotionDecision(name, number, True, why, None, None, None, previous, None)
        _record(mlflow_client, name, number, _decision_tags(decision, "manual"))
        _make_champion(mlflow_client, name, number, _history(model))
        _clear_demotion(mlflow_client, candidate)
    logger.info("%s version %s promoted by hand: %s", name, number, why)
    return decision


def rollback_target(
    history: list[str], current: str, exists: Callable[[str], bool]
) -> tuple[str | None, list[str]]:
    """(version to go back to, the history afterwards) given the champion ``current``.

    The target is the last champion before the latest stint of ``current`` that still exists;
    the history afterwards ends with it, so a second rollback goes back one step further.
    """
    cut = len(history)
    for index in range(len(history) - 1, -1, -1):
        if history[index] == current:
            cut = index
            break
    earlier = history[:cut]
    while earlier:
        candidate = earlier[-1]
        if candidate != current and exists(candidate):
            return candidate, earlier
        earlier = earlier[:-1]
    return None, []


def rollback(config: RegistryConfig, name: str, *, reason: str | None = None) -> RegisteredVersion:
    """Move ``champion`` back to the previous champion, in one call; the demoted and restored
    versions both get a tag saying so. Raises :class:`NoPreviousChampionError` when there is
    no champion or no earlier one."""
    mlflow_client = _existing_client(config)
    with _serialized(config):
        model = _registered_model(mlflow_client, name)
        current = _alias_version(model, CHAMPION)
        if current is None:
            raise NoPreviousChampionError(f"model {name!r} has no champion to roll back")

        def exists(version: str) -> bool:
            try:
                _model_version(mlflow_client, name, version)
            except UnknownVersionError:
                logger.warning("previous champion %s version %s was deleted", name, version)
                return False
            return True

        target, history = rollback_target(_history(model), current, exists)
        if target is None:
            raise NoPreviousChampionError(
                f"model {name!r} has no previous champion to roll back to (champion is "
                f"version {current})"
            )
        _retrying(
            lambda: mlflow_client.set_registered_model_alias(name, CHAMPION, target),
            "set champion alias",
        )
        _write_history(mlflow_client, name, history)
        why = f"rolled back from version {current} to version {target}"
        if reason:
            why = f"{why}: {reason}"
        decision = PromotionDecision(name, target, True, why, None, None, None, current, None)
        _record(mlflow_client, name, target, _decision_tags(decision, "rollback"))
        _record(mlflow_client, name, current, {TAG_DEMOTION_REASON: why})
        restored = mlflow_client.get_model_version(name, target)
        if _clear_demotion(mlflow_client, restored):
            restored = mlflow_client.get_model_version(name, target)
        aliases = _aliases_by_version(_registered_model(mlflow_client, name))
    logger.info("%s: %s", name, why)
    return _registered(restored, aliases)


# ----------------------------------------------------------------------------- reading


def _all_versions(mlflow_client: MlflowClient, name: str) -> list[ModelVersion]:
    versions: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = mlflow_client.search_model_versions(
            f"name = '{name}'", max_results=1000, page_token=token
        )
        versions.extend(page)
        token = cast("str | None", page.token)
        if not token:
            return versions


def list_versions(
    config: RegistryConfig, name: str, *, metric: str | None = None, limit: int | None = None
) -> list[VersionInfo]:
    """The versions of ``name``, newest first (at most ``limit``), with aliases, ``metric`` from
    each version's run (default: the promotion metric the run recorded), checksum, creation
    time and the last promotion decision."""
    mlflow_client = _existing_client(config)
    model = _registered_model(mlflow_client, name)
    aliases = _aliases_by_version(model)
    versions = sorted(
        _all_versions(mlflow_client, name), key=lambda v: int(v.version), reverse=True
    )
    if limit is not None:
        versions = versions[:limit]
    return [_info(mlflow_client, version, aliases, metric) for version in versions]


def parse_model_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(name, version, alias) from ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``NAME@ALIAS``,
    ``NAME/VERSION`` or a bare ``NAME`` (meaning its champion)."""
    body = reference.strip().removeprefix("models:/").strip("/")
    if "@" in body:
        name, _, alias = body.partition("@")
        if not alias or "/" in alias:
            raise UserError(f"cannot read model reference {reference!r}: expected NAME@ALIAS")
        return _check_name(name), None, alias
    if "/" in body:
        name, _, version = body.partition("/")
        if not version.isdigit():
            raise UserError(
                f"cannot read model reference {reference!r}: expected NAME/VERSION with a "
                "version number (stages are gone in MLflow 3: use an alias, NAME@ALIAS)"
            )
        return _check_name(name), _check_version(version), None
    return _check_name(body), None, CHAMPION


def resolve(
    config: RegistryConfig,
    uri_or_name: str,
    *,
    dst_dir: Path | None = None,
    verify: bool = True,
    metric: str | None = None,
) -> ResolvedModel:
    """Resolve ``models:/fraud@champion`` (or ``models:/fraud/3``, ``fraud``) to its version and a
    local folder with its artefact: downloaded into ``dst_dir`` if given, else MLflow's choice
    (the registered folder itself for a local artefact store, a temporary folder otherwise).

    With ``verify`` (the default) the folder's SHA-256 must equal the version's ``getit.sha256``
    tag, or :class:`ArtifactMismatchError` is raised: serve nothing rather than the wrong bytes.
    """
    name, number, alias = parse_model_reference(uri_or_name)
    mlflow_client = _existing_client(config)
    model = _registered_model(mlflow_client, name)
    if alias is not None:
        number = _alias_version(model, alias)
        if number is None:
            raise UnknownVersionError(f"model {name!r} has no alias {alias!r}")
    assert number is not None  # one of the two is set by parse_model_reference
    version = _model_version(mlflow_client, name, number)
    info = _info(mlflow_client, version, _aliases_by_version(model), metric)
    download_uri = mlflow_client.get_model_version_download_uri(name, number)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=download_uri,
        dst_path=None if dst_dir is None else str(dst_dir),
        tracking_uri=config.tracking_uri,
        registry_uri=config.tracking_uri,
    )
    path = Path(local)
    if verify:
        if info.sha256 is None:
            raise ArtifactMismatchError(
                f"{name} version {number} has no {TAG_SHA256} tag: cannot verify its artefact"
            )
        verify_artifact(path, info.sha256)
    logger.info("resolved %s to %s version %s at %s", uri_or_name, name, number, path)
    return ResolvedModel(info=info, path=path)
