"""What the transformer reads from the feature store for a request, and how it survives the store.

:class:`FeastLookup` resolves a feature service once, from the Feast registry: the feature views
it reads (the on-demand views' source views included), their join keys, the request fields the
on-demand views take and the bodies of those views. Per request it reads the views online for
the rows' entity keys with :mod:`getit_ml.serving.feature_reader` (what ``get_online_features``
returns, faster), never on the event loop's time and never for long:

* the read has a **deadline** (``GETIT_ML_FEATURE_READ_DEADLINE_S``, 0.2 s): past it, 503 with
  ``Retry-After``; the Redis client's own socket timeouts (``GETIT_ML_ONLINE_STORE_*``) bound
  what is left behind;
* a **circuit breaker** opens after ``GETIT_ML_STORE_BREAKER_FAILURES`` consecutive failures:
  a dead store then costs a request microseconds, not a deadline; one probe read after
  ``GETIT_ML_STORE_BREAKER_RESET_S`` closes it again when the store is back;
* a blocking store (SQLite) is read in a bounded thread pool
  (``GETIT_ML_FEATURE_READ_WORKERS``); when all its slots are taken the request is shed (503);
* every failure of the store — Feast's errors, redis-py's ``ConnectionError`` / ``TimeoutError``,
  SQLite's, the socket's — is a 503, never a 500 (:mod:`getit_ml.serving.resilience`).

It also says which views to watch (:meth:`FeastLookup.watched_views`) and opens the watermark
backend of its store for the transformer's monitor (:meth:`FeastLookup.watermarks`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from getit_ml.errors import UserError
from getit_ml.features.context import ON_DEMAND_FUNCTIONS
from getit_ml.serving.dependency_monitor import WatchedView, view_ttls
from getit_ml.serving.resilience import BoundedThreads, CircuitBreaker, GuardedDependency

if TYPE_CHECKING:
    from feast import FeatureStore

    from getit_ml.features.watermark import Watermarks
    from getit_ml.serving.feature_reader import ViewReader
    from getit_ml.settings import PlatformSettings

#: An on-demand view's body: columns in (dicts of lists), its features out.
OnDemand = Callable[[dict[str, Any]], dict[str, Any]]
_DEF: Final = re.compile(r"def\s+(\w+)\s*\(")


@dataclass(frozen=True)
class ReadOptions:
    """How the lookup bounds its reads (the defaults are the settings' defaults; see
    :class:`~getit_ml.settings.PlatformSettings` for each)."""

    deadline_s: float = 0.2
    read_timeout_s: float = 0.25
    connect_timeout_s: float = 0.25
    workers: int = 8
    breaker_failures: int = 5
    breaker_reset_s: float = 0.5

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> ReadOptions:
        return cls(
            deadline_s=settings.feature_read_deadline_s,
            read_timeout_s=settings.online_store_read_timeout_s,
            connect_timeout_s=settings.online_store_connect_timeout_s,
            workers=settings.feature_read_workers,
            breaker_failures=settings.store_breaker_failures,
            breaker_reset_s=settings.store_breaker_reset_s,
        )


def _on_demand_body(service: str, view: Any) -> OnDemand:
    """Our function that computes on-demand view ``view``, found by its body's name."""
    transformation = getattr(view, "feature_transformation", None)
    function = getattr(transformation, "udf", None)
    name = getattr(function, "__name__", None)
    if name not in ON_DEMAND_FUNCTIONS:
        found = _DEF.search(str(getattr(transformation, "udf_string", "") or ""))
        name = found.group(1) if found else name
    if name not in ON_DEMAND_FUNCTIONS:
        raise UserError(
            f"{service}: no serving code for on-demand view {view.name} (body {name!r}; add it "
            "to getit_ml.features.context.ON_DEMAND_FUNCTIONS)"
        )
    return ON_DEMAND_FUNCTIONS[str(name)]


class FeatureLookup(Protocol):
    """Online feature values for entity rows: column name -> one value per row (None: missing).

    ``entity_keys`` are the join keys a row needs, ``request_fields`` what the on-demand views
    read from the request, ``on_demand`` the bodies of the on-demand views to compute,
    ``store_features`` the features the views hold (what "missing from the store" counts)."""

    entity_keys: tuple[str, ...]
    request_fields: tuple[str, ...]
    on_demand: list[OnDemand]

    @property
    def store_features(self) -> set[str]: ...

    async def aread(self, entity_rows: Sequence[Mapping[str, int]]) -> dict[str, list[Any]]: ...


def store_failure_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the online store failed" (503), whatever the backend."""
    import redis
    from feast.errors import FeastError
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    return (FeastError, redis.RedisError, sqlite3.Error, OSError, DecodeError)


class FeastLookup:
    """Reads a feature service's feature views from a Feast online store (its on-demand views
    are computed by the transformer, not by Feast: same functions, a millisecond less)."""

    def __init__(
        self, store: FeatureStore, service: str, options: ReadOptions | None = None
    ) -> None:
        from feast.errors import FeastError

        try:
            feature_service = store.get_feature_service(service, allow_cache=True)
            on_demand = {v.name: v for v in store.list_on_demand_feature_views(allow_cache=True)}
            views = {v.name: v for v in store.list_feature_views(allow_cache=True)}
        except FeastError as error:
            raise UserError(f"feature service {service!r}: {error}") from None
        refs: list[str] = []
        keys: list[str] = []
        request_fields: list[str] = []
        self.on_demand: list[OnDemand] = []
        self.on_demand_outputs: set[str] = set()
        for projection in feature_service.feature_view_projections:
            if projection.name in on_demand:
                view = on_demand[projection.name]
                self.on_demand.append(_on_demand_body(service, view))
                self.on_demand_outputs.update(f.name for f in view.features)
                for source in view.source_feature_view_projections.values():
                    refs.extend(f"{source.name}:{f.name}" for f in source.features)
                    keys.extend(self._join_keys(views, source.name))
                for request_source in view.source_request_sources.values():
                    request_fields.extend(f.name for f in request_source.schema)
            else:
                refs.extend(f"{projection.name}:{f.name}" for f in projection.features)
                keys.extend(self._join_keys(views, projection.name))
        self.refs = list(dict.fromkeys(refs))
        self.entity_keys = tuple(dict.fromkeys(keys))
        self.request_fields = tuple(dict.fromkeys(request_fields))
        self.store = store
        self.service = service
        self.options = options or ReadOptions()
        self._views = views
        self.guard = GuardedDependency(
            "online store",
            deadline_s=self.options.deadline_s,
            breaker=CircuitBreaker(self.options.breaker_failures, self.options.breaker_reset_s),
            failure_types=store_failure_types(),
        )
        self._reader: ViewReader | None = None
        self._reader_refs: list[str] = []

    @staticmethod
    def _join_keys(views: Mapping[str, Any], name: str) -> list[str]:
        view = views.get(name)
        if view is None:
            raise UserError(f"feature view {name!r} is not in the registry")
        return [column.name for column in view.entity_columns]

    @property
    def feature_names(self) -> set[str]:
        """Every column a read returns, and what the on-demand views add."""
        return self.store_features | self.on_demand_outputs

    @property
    def store_features(self) -> set[str]:
        """The features read from the store's views (not the on-demand ones, not the keys)."""
        return {ref.partition(":")[2] for ref in self.refs}

    def watched_views(self) -> list[WatchedView]:
        """The views this lookup reads, with their ttls: what the monitor watches."""
        names = dict.fromkeys(ref.partition(":")[0] for ref in self.refs)
        return view_ttls([self._views[name] for name in names])

    def watermarks(self, timeout_s: float) -> Watermarks:
        """The store's watermark backend, each call bounded by ``timeout_s``."""
        from getit_ml.features.watermark import watermarks_for

        return watermarks_for(self.store.config, timeout_s=timeout_s)

    @property
    def reader(self) -> ViewReader:
        if self._reader is None or self._reader_refs != self.refs:
            from getit_ml.serving.feature_reader import plan_views, view_reader

            options = self.options
            self._reader = view_reader(
                self.store,
                plan_views(self.store, self.refs),
                read_timeout_s=options.read_timeout_s,
                connect_timeout_s=options.connect_timeout_s,
                threads=BoundedThreads(options.workers, name=f"feature-read-{self.service}"),
            )
            self._reader_refs = list(self.refs)
        return self._reader

    def read(self, entity_rows: Sequence[Mapping[str, int]]) -> dict[str, list[Any]]:
        """The views' values for ``entity_rows``, blocking and unguarded (tools and tests; the
        transformer uses :meth:`aread`)."""
        return self.reader.read(entity_rows)

    async def aread(self, entity_rows: Sequence[Mapping[str, int]]) -> dict[str, list[Any]]:
        """The views' values for ``entity_rows`` within the deadline; 503 with ``Retry-After``
        when the store is slow, down, or its breaker is open."""
        reader = self.reader
        return await self.guard.call(lambda: reader.aread(entity_rows))

    async def aclose(self) -> None:
        if self._reader is not None:
            await self._reader.aclose()
            self._reader = None
