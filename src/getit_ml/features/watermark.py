"""Materialization watermarks: up to when each feature view's online values are complete.

Feast records materialization intervals in its *registry* (PostgreSQL in production). That record
survives when the *online store* loses its data — a Redis restarted without persistence, a
flushed database, a deleted SQLite file — so a server reading the registry would believe the
store is full while every lookup comes back empty and the model scores blind. The watermark
therefore lives **in the online store itself**, next to the values it describes: whatever empties
the store empties the watermarks with it, and "no watermark" means "do not trust this view".

A view's watermark is the newest point in time its online values are known to cover:

* ``materialize(start, end)`` and ``materialize_incremental(end)`` advance every view they
  loaded to ``end`` (:mod:`getit_ml.features.store` writes it after each successful run);
* a push (the streaming job's velocity rows) advances the views fed by the push source to the
  newest event time pushed.

Watermarks only move forward: a backfill of an older window leaves a newer watermark in place,
as the online stores keep the newer values.

Two backends, picked from the store's configuration by :func:`watermarks_for`:

* Redis: one key per project and view, ``getit_ml:watermark:<project>:<view>``, holding epoch
  microseconds (Feast's own keys are binary entity keys, so the names cannot collide); advanced
  by a small Lua script, so concurrent writers never move a watermark back;
* SQLite (the embedded and the guarded store): a table ``getit_ml_watermarks`` in the online
  store's own database file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from getit_ml.errors import UserError

if TYPE_CHECKING:
    import redis
    from feast import RepoConfig

KEY_PREFIX: Final = "getit_ml:watermark"
SQLITE_TABLE: Final = "getit_ml_watermarks"

# Moves each KEYS[i] to ARGV[i] unless it already holds a newer value: one round trip, atomic.
_ADVANCE_SCRIPT: Final = """
for i, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key))
  local proposed = tonumber(ARGV[i])
  if current == nil or current < proposed then
    redis.call('SET', key, ARGV[i])
  end
end
return #KEYS
"""


def to_micros(moment: datetime) -> int:
    """Epoch microseconds of ``moment`` (a naive datetime is taken as UTC, as Feast does)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000)


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


class Watermarks(Protocol):
    """The watermarks of one Feast project in one online store."""

    def read(self, views: Sequence[str]) -> dict[str, datetime | None]:
        """Each view's watermark; ``None`` where the store has none (empty or never loaded)."""
        ...

    def advance(self, marks: Mapping[str, datetime]) -> None:
        """Move each view's watermark forward to its mark (never back)."""
        ...

    def ping(self) -> None:
        """Raise (``redis.RedisError``, ``sqlite3.Error``, ``OSError``) unless the store answers."""
        ...

    def close(self) -> None: ...


class RedisWatermarks:
    """Watermarks as Redis keys of the online store's database (see the module docstring)."""

    def __init__(self, client: redis.Redis, project: str) -> None:
        self.client = client
        self.project = project
        self._advance = client.register_script(_ADVANCE_SCRIPT)

    def key(self, view: str) -> str:
        return f"{KEY_PREFIX}:{self.project}:{view}"

    def read(self, views: Sequence[str]) -> dict[str, datetime | None]:
        if not views:
            return {}
        values = cast(list[bytes | None], self.client.mget([self.key(view) for view in views]))
        return {
            view: None if value is None else from_micros(int(value))
            for view, value in zip(views, values, strict=True)
        }

    def advance(self, marks: Mapping[str, datetime]) -> None:
        if marks:
            views = list(marks)
            self._advance(
                keys=[self.key(view) for view in views],
                args=[to_micros(marks[view]) for view in views],
            )

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


class SqliteWatermarks:
    """Watermarks in a table of the SQLite online store's database file."""

    def __init__(self, path: Path, project: str, *, timeout_s: float = 5.0) -> None:
        self.path = path
        self.project = project
        self.timeout_s = timeout_s

    def _read_only(self) -> sqlite3.Connection:
        # Read-only: a reader must never create the database it was asked about (a missing
        # file is a missing store, not an empty one to make up).
        return sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout_s, check_same_thread=False
        )

    def read(self, views: Sequence[str]) -> dict[str, datetime | None]:
        found: dict[str, datetime | None] = dict.fromkeys(views)
        if not views:
            return found
        connection = self._read_only()
        try:
            marks = ",".join("?" * len(views))
            rows = connection.execute(
                f"SELECT view, watermark_us FROM {SQLITE_TABLE} "
                f"WHERE project = ? AND view IN ({marks})",
                (self.project, *views),
            ).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return found  # never written: no watermark for any view
            raise
        finally:
            connection.close()
        for view, micros in rows:
            found[str(view)] = from_micros(int(micros))
        return found

    def advance(self, marks: Mapping[str, datetime]) -> None:
        if not marks:
            return
        with sqlite3.connect(self.path, timeout=self.timeout_s) as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} (project TEXT NOT NULL, "
                "view TEXT NOT NULL, watermark_us INTEGER NOT NULL, PRIMARY KEY (project, view))"
            )
            connection.executemany(
                f"INSERT INTO {SQLITE_TABLE} (project, view, watermark_us) VALUES (?, ?, ?) "
                "ON CONFLICT (project, view) DO UPDATE SET "
                "watermark_us = max(watermark_us, excluded.watermark_us)",
                [(self.project, view, to_micros(mark)) for view, mark in marks.items()],
            )
        connection.close()

    def ping(self) -> None:
        connection = self._read_only()
        try:
            connection.execute("SELECT 1").fetchone()
        finally:
            connection.close()

    def close(self) -> None:
        """Nothing to close: each call opens and closes its own connection."""


def parse_redis_connection_string(connection_string: str) -> tuple[str, int, dict[str, Any]]:
    """Host, port and options of Feast's Redis ``connection_string`` (``host:port,db=0,...``),
    read the way Feast reads it: options are JSON-decoded where they parse as JSON."""
    nodes = [part for part in connection_string.split(",") if part and "=" not in part]
    if len(nodes) != 1:
        raise UserError(
            f"a Redis online store needs exactly one host:port (got {len(nodes)}): cluster and "
            "sentinel connection strings are not supported here"
        )
    host, _, port = nodes[0].rpartition(":")
    options: dict[str, Any] = {}
    for part in connection_string.split(","):
        if "=" in part:
            name, _, raw = part.partition("=")
            try:
                options[name] = json.loads(raw)
            except json.JSONDecodeError:
                options[name] = raw
    try:
        return host or "localhost", int(port or 6379), options
    except ValueError:
        raise UserError(f"bad Redis address {nodes[0]!r} in the online store's config") from None


def redis_client(
    connection_string: str,
    *,
    socket_timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
    fail_fast: bool = False,
    max_connections: int | None = None,
) -> redis.Redis:
    """A redis-py client for Feast's Redis ``connection_string``; given timeouts replace the
    string's own.

    ``fail_fast``: no retry with back-off (redis-py's default retries three times, sleeping up
    to seconds between tries — a dead store then costs each caller seconds), only one
    immediate retry after a connection error, which replaces a stale pooled connection (the
    server restarted) by a fresh one; a timeout is never retried."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, port, options = parse_redis_connection_string(connection_string)
    if socket_timeout_s is not None:
        options["socket_timeout"] = socket_timeout_s
    if connect_timeout_s is not None:
        options["socket_connect_timeout"] = connect_timeout_s
    if fail_fast:
        options["retry"] = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    if max_connections is not None:
        options["max_connections"] = max_connections
    return redis.Redis(host=host, port=port, **options)


def sqlite_path(config: RepoConfig) -> Path:
    """The SQLite online store's database file, resolved as Feast resolves it."""
    path = Path(str(config.online_store.path))
    if not path.is_absolute() and config.repo_path is not None:
        path = Path(config.repo_path) / path
    return path


def watermarks_for(config: RepoConfig, *, timeout_s: float | None = None) -> Watermarks:
    """The watermark backend of the store ``config`` describes. ``timeout_s`` bounds each
    Redis call (connect and reply) and fails fast (for servers); ``None``: the connection
    string's own timeouts and redis-py's retries (for batch jobs)."""
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig, RedisType
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

    online = config.online_store
    if isinstance(online, RedisOnlineStoreConfig):
        if online.redis_type != RedisType.redis:
            raise UserError(f"watermarks: Redis type {online.redis_type.value} is not supported")
        client = redis_client(
            online.connection_string,
            socket_timeout_s=timeout_s,
            connect_timeout_s=timeout_s,
            fail_fast=timeout_s is not None,
        )
        return RedisWatermarks(client, config.project)
    if isinstance(online, SqliteOnlineStoreConfig):
        return SqliteWatermarks(sqlite_path(config), config.project, timeout_s=timeout_s or 5.0)
    raise UserError(
        f"watermarks: no backend for online store type {getattr(online, 'type', online)!r} "
        "(Redis and SQLite are supported)"
    )
