"""A SQLite online store that never lets an older value overwrite a newer one.

Feast's Redis online store compares event timestamps before writing; its SQLite store does not:
``materialize`` of an older window after a newer one (a backfill) upserts whatever it reads, so the
online store would go back in time. This store is Feast's SQLite store plus one guard, at the
database itself: every feature-view table gets a ``BEFORE UPDATE`` trigger that ignores an update
whose ``event_ts`` is older than the stored one. Writes of the same or a newer timestamp behave as
before, so re-running a materialization window is idempotent.

It also pins the way timestamps travel through SQLite. Feast's store writes ``event_ts`` as epoch
seconds through *process-wide* ``sqlite3`` adapters and converters; pandas' SQL layer (and
nbformat) re-register them as ISO text the moment they touch SQLite in the same process, after
which Feast writes one format and reads another (``Invalid isoformat string``) and the newest-wins
comparison would compare text with integers. Every read and write here re-pins Feast's codecs.

Select it in ``feature_store.yaml`` with
``online_store: {type: getit_ml.features.online_stores.GuardedSqliteOnlineStore, path: ...}``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from feast import Entity, FeatureView
from feast.infra.online_stores import sqlite as feast_sqlite
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig


def pin_feast_sqlite_codecs() -> None:
    """Re-register the timestamp codecs Feast's SQLite store was written for (epoch seconds)."""
    sqlite3.register_adapter(datetime, feast_sqlite.adapt_datetime_epoch)
    sqlite3.register_converter("timestamp", feast_sqlite.convert_timestamp)


class GuardedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Configuration of :class:`GuardedSqliteOnlineStore` (the same fields as Feast's SQLite)."""

    # Feast finds this class from the store's type name; the Literal must be that name.
    type: Literal["getit_ml.features.online_stores.GuardedSqliteOnlineStore"] = (
        "getit_ml.features.online_stores.GuardedSqliteOnlineStore"  # type: ignore[assignment]
    )


class GuardedSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store with newest-value-wins writes."""

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        pin_feast_sqlite_codecs()
        super().online_write_batch(config, table, data, progress)

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        pin_feast_sqlite_codecs()
        rows: list[tuple[datetime | None, dict[str, ValueProto] | None]] = super().online_read(
            config, table, entity_keys, requested_features
        )
        return rows

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        super().update(
            config, tables_to_delete, tables_to_keep, entities_to_delete, entities_to_keep, partial
        )
        connection: Any = self._get_conn(config)
        versioning = config.registry.enable_online_feature_view_versioning
        for table in tables_to_keep:
            name = _table_id(config.project, table, versioning)
            # RAISE(IGNORE) skips this row's update and carries on with the statement, so an
            # upsert of an older value leaves the newer one in place.
            connection.execute(
                f"CREATE TRIGGER IF NOT EXISTS {_quote_id(name + '_keep_newest')} "
                f"BEFORE UPDATE ON {_quote_id(name)} "
                "WHEN NEW.event_ts < OLD.event_ts "
                "BEGIN SELECT RAISE(IGNORE); END;"
            )
        connection.commit()
