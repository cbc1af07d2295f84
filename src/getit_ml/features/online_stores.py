"""A SQLite online store that never lets an older value overwrite a newer one.

Feast's Redis online store compares event timestamps before writing; its SQLite store does not:
``materialize`` of an older window after a newer one (a backfill) upserts whatever it reads, so the
online store would go back in time. This store is Feast's SQLite store plus one guard, at the
database itself: every feature-view table gets a ``BEFORE UPDATE`` trigger that ignores an update
whose ``event_ts`` is older than the stored one. Writes of the same or a newer timestamp behave as
before, so re-running a materialization window is idempotent.

Select it in ``feature_store.yaml`` with
``online_store: {type: getit_ml.features.online_stores.GuardedSqliteOnlineStore, path: ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from feast import Entity, FeatureView
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.repo_config import RepoConfig


class GuardedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Configuration of :class:`GuardedSqliteOnlineStore` (the same fields as Feast's SQLite)."""

    # Feast finds this class from the store's type name; the Literal must be that name.
    type: Literal["getit_ml.features.online_stores.GuardedSqliteOnlineStore"] = (
        "getit_ml.features.online_stores.GuardedSqliteOnlineStore"  # type: ignore[assignment]
    )


class GuardedSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store with newest-value-wins writes."""

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
