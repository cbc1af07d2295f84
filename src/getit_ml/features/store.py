"""The platform's Feast feature store: configuration, apply, materialize and online reads.

Two profiles share one feature repository (``feature_repo/``):

* ``embedded`` (the default): the checked-in ``feature_store.yaml`` as it is — file registry,
  guarded SQLite online store, file offline store — with its paths under
  ``GETIT_ML_HOME/features``.
* ``production``: the same definitions with Redis as online store and a PostgreSQL SQL registry,
  addressed by ``GETIT_ML_REDIS_URL`` and ``GETIT_ML_POSTGRES_DSN``.

The offline sources' relative paths (``offline/*.parquet``) resolve against the store's folder,
so a workdir holds one complete, independent store. Feast's errors for a caller's mistake (an
unknown feature service, a missing entity key) become :class:`~getit_ml.errors.UserError`.
"""

from __future__ import annotations

import enum
import importlib.util
import logging
import math
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

import pandas as pd
import yaml
from feast import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    OnDemandFeatureView,
    RepoConfig,
)
from feast.data_source import DataSource, PushMode
from feast.errors import FeastError
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

from getit_ml.errors import UserError
from getit_ml.features.watermark import watermarks_for
from getit_ml.services import sqlalchemy_postgres_url
from getit_ml.settings import PlatformSettings

logger = logging.getLogger(__name__)

FEATURE_STORE_YAML: Final = "feature_store.yaml"


class Profile(enum.StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


@dataclass(frozen=True)
class StoreLayout:
    """Where one store keeps its files."""

    root: Path

    @property
    def offline_dir(self) -> Path:
        return self.root / "offline"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


@dataclass(frozen=True)
class RedisTimeouts:
    """redis-py socket timeouts for the Redis online store, in seconds (``None``: none).

    A server reading features sets both short (the transformer's settings); a batch job
    connects with a bound but leaves replies unbounded: a large materialization pipeline may
    keep Redis busy for longer than any serving timeout."""

    connect_s: float | None = None
    read_s: float | None = None


def redis_connection_string(url: str, timeouts: RedisTimeouts | None = None) -> str:
    """Feast's Redis ``connection_string`` (``host:port,db=N,password=...``) from a redis URL,
    with ``socket_connect_timeout`` / ``socket_timeout`` when ``timeouts`` gives them (Feast
    hands every option to ``redis.Redis``)."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise UserError(f"GETIT_ML_REDIS_URL must start with redis:// or rediss:// (got {url!r})")
    options = [f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"]
    database = parts.path.lstrip("/")
    if database:
        options.append(f"db={database}")
    if parts.password:
        options.append(f"password={unquote(parts.password)}")
    if parts.scheme == "rediss":
        options.append("ssl=true")
    if timeouts is not None and timeouts.connect_s is not None:
        options.append(f"socket_connect_timeout={timeouts.connect_s:g}")
    if timeouts is not None and timeouts.read_s is not None:
        options.append(f"socket_timeout={timeouts.read_s:g}")
    return ",".join(options)


def sqlalchemy_url(dsn: str) -> str:
    """A psycopg-3 SQLAlchemy URL from a ``postgresql://`` DSN."""
    if not dsn.startswith(("postgresql://", "postgres://", "postgresql+")):
        raise UserError(f"GETIT_ML_POSTGRES_DSN must be a postgresql:// URL (got {dsn!r})")
    return sqlalchemy_postgres_url(dsn)


def repo_config(
    repo_dir: Path,
    layout: StoreLayout,
    profile: Profile,
    settings: PlatformSettings,
    project: str | None = None,
    redis_timeouts: RedisTimeouts | None = None,
) -> RepoConfig:
    """The store's configuration: the repository's YAML with paths and backends filled in.

    ``redis_timeouts`` (production profile): the Redis socket timeouts; by default connecting
    is bounded by ``GETIT_ML_SERVICE_TIMEOUT_S`` and replies are not."""
    yaml_path = repo_dir / FEATURE_STORE_YAML
    if not yaml_path.is_file():
        raise UserError(f"no {FEATURE_STORE_YAML} in {repo_dir}: is GETIT_ML_FEATURE_REPO right?")
    raw: dict[str, Any] = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    if project is not None:
        raw["project"] = project
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    if profile is Profile.EMBEDDED:
        raw["registry"] = str(layout.data_dir / Path(str(raw["registry"])).name)
        online = dict(raw["online_store"])
        online["path"] = str(layout.data_dir / Path(str(online["path"])).name)
        raw["online_store"] = online
    else:
        raw["registry"] = {
            "registry_type": "sql",
            "path": sqlalchemy_url(settings.postgres_dsn),
            "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        }
        raw["online_store"] = {
            "type": "redis",
            "connection_string": redis_connection_string(
                settings.redis_url,
                redis_timeouts or RedisTimeouts(connect_s=settings.service_timeout_s),
            ),
        }
    return RepoConfig(repo_path=layout.root, **raw)


def open_store(
    settings: PlatformSettings,
    root: Path,
    profile: Profile = Profile.EMBEDDED,
    project: str | None = None,
    redis_timeouts: RedisTimeouts | None = None,
) -> FeatureStore:
    """A FeatureStore whose files live under ``root`` (``GETIT_ML_HOME/features`` by default)."""
    layout = StoreLayout(root.resolve())  # Feast resolves relative paths against the root
    layout.offline_dir.mkdir(parents=True, exist_ok=True)
    config = repo_config(settings.feature_repo, layout, profile, settings, project, redis_timeouts)
    return FeatureStore(config=config)


# ------------------------------------------------------------------------------- definitions
FeastDefinition = DataSource | Entity | FeatureView | OnDemandFeatureView | FeatureService


def _import_file(path: Path) -> ModuleType:
    name = f"getit_feature_repo_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import feature definitions from {path}")
    module = importlib.util.module_from_spec(spec)
    # Not registered in sys.modules: a second load (another store, a re-apply) must not meet a
    # stale copy of the same file, which confuses dill's source lookup of the view bodies.
    spec.loader.exec_module(module)
    return module


def load_definitions(repo_dir: Path) -> list[FeastDefinition]:
    """Every Feast object defined at module level in the repository's Python files.

    Like ``feast apply``'s discovery, without changing the working directory: files are
    imported by path, objects are collected once each (by identity), data sources of push
    sources and feature views included.
    """
    found: list[FeastDefinition] = []

    def add(obj: Any) -> None:
        if isinstance(obj, FeastDefinition) and not any(obj is seen for seen in found):
            found.append(obj)

    files = sorted(p for p in repo_dir.glob("*.py") if p.name != "__init__.py")
    if not files:
        raise UserError(f"no feature definitions (*.py) in {repo_dir}")
    for path in files:
        module = _import_file(path)
        for value in vars(module).values():
            add(value)
            batch_source = getattr(value, "batch_source", None)
            if isinstance(value, DataSource | FeatureView) and batch_source is not None:
                add(batch_source)
    return found


def apply_definitions(store: FeatureStore, repo_dir: Path) -> list[FeastDefinition]:
    """Register (or update) the repository's objects and create the online tables."""
    definitions = load_definitions(repo_dir)
    store.apply(cast(list[Any], definitions))
    logger.info("applied %d feature definitions from %s", len(definitions), repo_dir)
    return definitions


# ------------------------------------------------------------------------------ materialize
def materialized_views(store: FeatureStore, views: Sequence[str] | None = None) -> list[str]:
    """The views a materialization of ``views`` loads: those named, else every enabled online
    feature view (stream feature views included), as Feast chooses them."""
    if views:
        return list(views)
    return [name for name, view in _batch_views(store).items() if view.online]


def _batch_views(store: FeatureStore) -> dict[str, FeatureView]:
    found = [*store.list_feature_views(), *store.list_stream_feature_views()]
    return {view.name: view for view in found if getattr(view, "enabled", True)}


def _advance_watermarks(store: FeatureStore, marks: Mapping[str, datetime]) -> None:
    backend = watermarks_for(store.config)
    try:
        backend.advance(marks)
    finally:
        backend.close()
    logger.info("watermarks advanced: %s", {v: m.isoformat() for v, m in marks.items()})


def materialize(
    store: FeatureStore,
    start: datetime,
    end: datetime,
    views: Sequence[str] | None = None,
) -> None:
    """Load the latest value per entity in ``[start, end]`` into the online store, then
    advance the loaded views' watermarks (:mod:`getit_ml.features.watermark`) to ``end``.

    Safe to repeat and to backfill: the online stores keep the newest value per entity (Redis by
    design, SQLite through the guarded store), and a watermark never moves back.
    """
    if end <= start:
        raise UserError(
            f"materialize: end {end.isoformat()} is not after start {start.isoformat()}"
        )
    store.materialize(start_date=start, end_date=end, feature_views=list(views) if views else None)
    _advance_watermarks(store, dict.fromkeys(materialized_views(store, views), end))


def materialize_incremental(
    store: FeatureStore, end: datetime, views: Sequence[str] | None = None
) -> None:
    """Materialize each view from where its last run stopped up to ``end``, then advance the
    views' watermarks to ``end``.

    Feast takes "where the last run stopped" from its registry, which survives an online store
    that lost its data (a Redis restarted empty): an incremental run would then load only the
    last hours and the store would stay mostly empty. A view without a watermark is therefore
    reloaded over its whole time-to-live (``end - ttl`` to ``end``; a year without a ttl), the
    window Feast itself loads on a view's first incremental run — so the chart's re-materialize
    job after a Redis restart really refills the store.
    """
    names = materialized_views(store, views)
    backend = watermarks_for(store.config)
    try:
        marks = backend.read(names)
    finally:
        backend.close()
    lost = [name for name in names if marks.get(name) is None]
    kept = [name for name in names if name not in lost]
    if kept:
        store.materialize_incremental(end_date=end, feature_views=kept)
    known = _batch_views(store) if lost else {}
    for name in lost:
        if name not in known:
            raise UserError(f"materialize: no feature view {name!r} in the registry")
        ttl = known[name].ttl
        window = ttl if ttl is not None and ttl > timedelta(0) else timedelta(weeks=52)
        logger.warning(
            "%s has no watermark (a new or emptied online store): loading %s back from %s",
            name,
            window,
            end.isoformat(),
        )
        store.materialize(start_date=end - window, end_date=end, feature_views=[name])
    _advance_watermarks(store, dict.fromkeys(names, end))


def build_feature_store(
    settings: PlatformSettings, data_dir: Path, root: Path
) -> tuple[FeatureStore, dict[str, int]]:
    """Stand up a complete embedded store under ``root`` from a marketplace folder.

    Computes the offline sources, applies the feature repository and materializes the whole
    time range of the data's payments (a day of margin each side). Returns the store and the
    offline rows written per file.
    """
    import pyarrow.dataset as ds

    from getit_ml.features.engineering import build_offline_features

    rows = build_offline_features(data_dir, StoreLayout(root).offline_dir)
    store = open_store(settings, root)
    apply_definitions(store, settings.feature_repo)
    stamps = (
        ds.dataset(data_dir / "payments", partitioning="hive")
        .to_table(columns=["payment_ts"])["payment_ts"]
        .to_pandas()
    )
    if stamps.empty:
        raise UserError(f"{data_dir} has no payments: nothing to materialize")
    margin = timedelta(days=1)
    materialize(store, stamps.min().to_pydatetime() - margin, stamps.max().to_pydatetime() + margin)
    return store, rows


def pushed_views(store: FeatureStore, push_source: str) -> list[str]:
    """The feature views a push to ``push_source`` writes (those it is the stream source of)."""
    return [
        view.name
        for view in store.list_feature_views(allow_cache=True)
        if view.stream_source is not None and view.stream_source.name == push_source
    ]


def push_online(
    store: FeatureStore, push_source: str, rows: pd.DataFrame, timestamp_field: str
) -> None:
    """Push ``rows`` to the online store through ``push_source``, then advance the watermarks
    of the views it feeds to the newest ``timestamp_field`` pushed."""
    store.push(push_source, rows, to=PushMode.ONLINE)
    if rows.empty:
        return
    newest = pd.Timestamp(rows[timestamp_field].max())
    newest = newest.tz_localize("UTC") if newest.tzinfo is None else newest.tz_convert("UTC")
    _advance_watermarks(store, dict.fromkeys(pushed_views(store, push_source), newest))


def push_velocity(store: FeatureStore, rows: pd.DataFrame) -> None:
    """Write fresh velocity rows (from the streaming job) to the online store, advancing
    ``customer_velocity``'s watermark to their newest event time."""
    push_online(store, "customer_velocity_push", rows, "event_timestamp")


# ---------------------------------------------------------------------------- online reads
#: How long a resolved feature service is reused before the registry is asked again.
SERVICE_CACHE_TTL_S: Final = 60.0
_services: weakref.WeakKeyDictionary[FeatureStore, dict[str, tuple[float, FeatureService]]] = (
    weakref.WeakKeyDictionary()
)


def _cached_service(store: FeatureStore, service: str) -> FeatureService:
    """The feature service, resolved at most once a minute per store.

    Feast turns the registry's protobuf into Python objects on every ``get_feature_service``
    (and, uncached, also re-reads the registry and drops its resolved-feature cache): tens of
    milliseconds, more than the online read itself.
    """
    now = time.monotonic()
    known = _services.setdefault(store, {})
    hit = known.get(service)
    if hit is not None and now - hit[0] < SERVICE_CACHE_TTL_S:
        return hit[1]
    try:
        resolved = store.get_feature_service(service, allow_cache=True)
    except FeastError as error:
        raise UserError(f"unknown feature service {service!r}: {error}") from None
    known[service] = (now, resolved)
    return resolved


@dataclass(frozen=True)
class OnlineFeatures:
    """Online values plus, per value, whether the store had it.

    ``columns`` maps every name (entity keys first, then features) to one value per entity row;
    ``missing_columns`` maps every feature to flags: True where the store returned no value
    (unknown entity, expired, or null), so a model server can treat it as it was trained to.
    Plain lists because a checkout reads one row; ``values`` / ``missing`` give DataFrames.
    """

    columns: dict[str, list[Any]]
    missing_columns: dict[str, list[bool]]

    @property
    def values(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)

    @property
    def missing(self) -> pd.DataFrame:
        return pd.DataFrame(self.missing_columns)

    @property
    def missing_share(self) -> float:
        flags = [flag for column in self.missing_columns.values() for flag in column]
        return sum(flags) / len(flags) if flags else 0.0


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def online_features(
    store: FeatureStore,
    service: str,
    entity_rows: Sequence[Mapping[str, Any]],
) -> OnlineFeatures:
    """Read a feature service for ``entity_rows``; unknown entities come back as missing."""
    if not entity_rows:
        raise UserError("online features: no entity rows given")
    feature_service = _cached_service(store, service)
    try:
        response = store.get_online_features(
            features=feature_service, entity_rows=[dict(r) for r in entity_rows]
        )
    except (FeastError, KeyError, ValueError, TypeError) as error:
        raise UserError(f"bad online feature request for {service!r}: {error}") from None
    names = list(response.proto.metadata.feature_names.val)
    as_dict = response.to_dict()
    columns = {name: list(as_dict[name]) for name in names}
    keys = set().union(*(row.keys() for row in entity_rows))
    # A value counts as missing when the store says so or when it is null: Feast's Redis store
    # reports an unknown entity as PRESENT with a null value, its SQLite store as NOT_FOUND.
    missing = {
        name: [
            status != FieldStatus.PRESENT or _is_null(value)
            for status, value in zip(result.statuses, columns[name], strict=True)
        ]
        for name, result in zip(names, response.proto.results, strict=True)
        if name not in keys
    }
    return OnlineFeatures(columns=columns, missing_columns=missing)


#: Column that carries each entity row's position through Feast's join.
_ROW = "_getit_row"


def historical_features(store: FeatureStore, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
    """A point-in-time correct training frame: one row per entity row, in the same order.

    Each feature view is joined on its own, then the on-demand views are computed from the
    joined frame with their registered transformations. Why not one Feast call for the whole
    service: Feast's file (dask) offline store drops an entity row outright when one view's stored
    values all lie after the row's timestamp or outside its ttl — a label would vanish, and with
    it the other views' perfectly good values. Joined view by view, such a row only misses that
    view's features.
    """
    if "event_timestamp" not in entity_df.columns:
        raise UserError("historical features: the entity frame needs an event_timestamp column")
    try:
        feature_service = store.get_feature_service(service)
    except FeastError as error:
        raise UserError(f"unknown feature service {service!r}: {error}") from None
    rows = entity_df.reset_index(drop=True).assign(**{_ROW: range(len(entity_df))})
    frame = rows.copy()
    on_demand = {view.name: view for view in store.list_on_demand_feature_views()}
    projections = feature_service.feature_view_projections
    for projection in projections:
        if projection.name in on_demand:
            continue
        names = [feature.name for feature in projection.features]
        try:
            job = store.get_historical_features(
                entity_df=rows, features=[f"{projection.name}:{name}" for name in names]
            )
            joined: pd.DataFrame = job.to_df()
        except (FeastError, KeyError, ValueError) as error:
            raise UserError(f"bad historical request for {projection.name}: {error}") from None
        unmatched = len(rows) - joined[_ROW].nunique()
        if unmatched:
            logger.info("%s: %d of %d rows have no value in the ttl window", projection.name,
                        unmatched, len(rows))  # fmt: skip
        frame = frame.merge(joined[[_ROW, *names]], on=_ROW, how="left")
    for projection in projections:
        view = on_demand.get(projection.name)
        if view is not None:
            if view.feature_transformation is None:
                raise UserError(f"on-demand feature view {view.name} has no transformation")
            inputs = frame.astype(object).where(frame.notna(), None).to_dict("list")
            computed = view.feature_transformation.transform(inputs)
            for feature in projection.features:
                frame[feature.name] = computed[feature.name]
    return frame.drop(columns=[_ROW])
