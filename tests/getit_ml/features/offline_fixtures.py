"""Hand-made offline feature tables, in the exact schemas, for feature-store tests.

Every feature gets a value derived from (entity, version) so a test can tell which row the store
served: ``value_of(entity_id, version)`` for numbers, the same as a string for text features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from getit_ml.features import schemas

ARROW_TYPES = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
}

VIEWS: dict[str, tuple[str, Mapping[str, str]]] = {
    "customer_features": ("customer_id", schemas.CUSTOMER_FEATURES),
    "product_features": ("product_id", schemas.PRODUCT_FEATURES),
    "device_features": ("device_id", schemas.DEVICE_FEATURES),
    "customer_risk": ("customer_id", schemas.CUSTOMER_RISK_FEATURES),
    "customer_velocity": ("customer_id", schemas.VELOCITY_FEATURES),
}


def value_of(entity_id: int, version: int) -> int:
    """The number every numeric feature of ``entity_id`` holds in row ``version``."""
    return entity_id * 1000 + version


def _cell(kind: str, entity_id: int, version: int) -> object:
    number = value_of(entity_id, version)
    if kind == "string":
        return str(number)
    if kind == "bool":
        return version % 2 == 1
    if kind == "float64":
        return float(number)
    return number


def offline_table(view: str, rows: Sequence[tuple[int, datetime, int]]) -> pa.Table:
    """``rows`` of ``(entity_id, event_timestamp, version)`` for one view, in its schema."""
    key, features = VIEWS[view]
    columns: dict[str, list[object]] = {
        key: [r[0] for r in rows],
        schemas.TIMESTAMP_FIELD: [r[1] for r in rows],
        schemas.CREATED_FIELD: [r[1] for r in rows],
    }
    for name, kind in features.items():
        columns[name] = [_cell(kind, r[0], r[2]) for r in rows]
    fields = [
        pa.field(key, pa.int64()),
        pa.field(schemas.TIMESTAMP_FIELD, pa.timestamp("us", tz="UTC")),
        pa.field(schemas.CREATED_FIELD, pa.timestamp("us", tz="UTC")),
        *(pa.field(n, ARROW_TYPES[k]) for n, k in features.items()),
    ]
    return pa.Table.from_pydict(columns, schema=pa.schema(fields))


def write_offline(
    offline_dir: Path, rows: Mapping[str, Sequence[tuple[int, datetime, int]]]
) -> None:
    """Write every view's file (views not in ``rows`` get an empty table)."""
    offline_dir.mkdir(parents=True, exist_ok=True)
    for view in VIEWS:
        table = offline_table(view, rows.get(view, []))
        pq.write_table(table, offline_dir / schemas.OFFLINE_FILES[view])
