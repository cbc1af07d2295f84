"""The ``interactions`` importer: a user's own user-item table → the ``interactions`` contract.

Every file is written here by hand, a few rows each, so each test states exactly what it expects
(times are worked out by hand: 1_700_000_000 unix seconds is 2023-11-14T22:13:20Z); the real
MovieLens-100k ratings are imported when ``../shared/datasets`` holds them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from getit_ml.data.contracts import CONTRACTS
from getit_ml.data.importers import (
    IMPORTERS,
    REASON_COLUMN,
    SOURCE_ROW_COLUMN,
    ImportResult,
    import_dataset,
)
from getit_ml.data.interactions_import import (
    CONTRACT_EVENT_TYPES,
    EVENT_WORDS,
    ITEM_ID_MAP_FILE,
    USER_ID_MAP_FILE,
    import_interactions,
)
from getit_ml.data.interactions_time import NO_TIMESTAMP
from getit_ml.data.validation import validate_table
from getit_ml.errors import UserError

MOVIELENS = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "movielens-100k"
CONTRACT = CONTRACTS["interactions"]
#: 1_700_000_000 unix seconds.
T0 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _check(result: ImportResult) -> ImportResult:
    """What every import must satisfy: counts add up, exactly the contract, every row valid."""
    assert result.table_name == "interactions"
    assert result.table.num_rows + result.rejected.num_rows == result.rows_read
    assert result.table.schema.equals(CONTRACT.schema())
    assert validate_table(result.table, CONTRACT).ok
    return result


def _rejected(result: ImportResult) -> list[tuple[int, str]]:
    return list(
        zip(
            result.rejected.column(SOURCE_ROW_COLUMN).to_pylist(),
            result.rejected.column(REASON_COLUMN).to_pylist(),
            strict=True,
        )
    )


def _col(result: ImportResult, name: str) -> list[object]:
    return list(result.table.column(name).to_pylist())


# ----------------------------------------------------------------------------------------------
# Ids


def test_text_ids_are_mapped_to_dense_integers_with_the_mapping(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "user,item,ts\nA17,sku-9,1700000000\nB2,sku-1,1700000001\nA17,sku-1,1700000002\n",
    )
    result = _check(import_interactions(source))
    # Sorted order of the text: A17 < B2, sku-1 < sku-9.
    assert _col(result, "customer_id") == [0, 1, 0]
    assert _col(result, "product_id") == [1, 0, 0]
    users = result.sidecars[USER_ID_MAP_FILE]
    items = result.sidecars[ITEM_ID_MAP_FILE]
    assert users is not None
    assert items is not None
    assert users.to_pylist() == [
        {"original_id": "A17", "customer_id": 0},
        {"original_id": "B2", "customer_id": 1},
    ]
    assert items.to_pylist() == [
        {"original_id": "sku-1", "product_id": 0},
        {"original_id": "sku-9", "product_id": 1},
    ]
    assert result.details["user_ids"] == "mapped"
    assert result.details["user_id_map"] == USER_ID_MAP_FILE
    assert (result.details["n_users"], result.details["n_items"]) == (2, 2)


def test_integer_ids_are_kept_and_no_mapping_is_written(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "user_id,item_id\n42,7\n0,123456789012\n")
    result = _check(import_interactions(source))
    assert _col(result, "customer_id") == [42, 0]
    assert _col(result, "product_id") == [7, 123456789012]
    assert result.sidecars == {USER_ID_MAP_FILE: None, ITEM_ID_MAP_FILE: None}
    assert result.details["user_ids"] == result.details["item_ids"] == "as_is"


def test_ids_with_leading_zeros_or_signs_are_mapped_not_merged(tmp_path: Path) -> None:
    # 007 and 7 are different SKUs; as integers they would collide.
    source = _csv(tmp_path / "e.csv", "user_id,item_id\n1,007\n1,7\n-3,7\n")
    result = _check(import_interactions(source))
    assert _col(result, "product_id") == [0, 1, 1]
    assert result.details["item_ids"] == "mapped"
    assert result.details["user_ids"] == "mapped"  # -3 is not a valid contract id
    users = result.sidecars[USER_ID_MAP_FILE]
    assert users is not None
    assert users.column("original_id").to_pylist() == ["-3", "1"]


def test_ids_are_decided_over_the_rows_written(tmp_path: Path) -> None:
    # The only non-integer user is on a rejected row: the rest stay as they are.
    source = _csv(tmp_path / "e.csv", "user_id,item_id,rating\n5,1,4\nX,1,bad\n")
    result = _check(import_interactions(source))
    assert _col(result, "customer_id") == [5]
    assert result.details["user_ids"] == "as_is"


def test_parquet_ids_whole_floats_and_missing(tmp_path: Path) -> None:
    source = tmp_path / "e.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array([1.0, None, 3.0, float("nan")]),
                "product_id": pa.array([10, 11, None, 12], pa.int32()),
            }
        ),
        source,
    )
    result = _check(import_interactions(source))
    assert _col(result, "customer_id") == [1]
    assert _col(result, "product_id") == [10]
    assert _rejected(result) == [
        (1, "customer_id (the user) is missing"),
        (2, "product_id (the item) is missing"),
        (3, "customer_id (the user) is missing"),
    ]


def test_missing_ids_in_a_csv_are_rejected(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "user_id,item_id\n1,\n,2\n 3 , 4 \n")
    result = _check(import_interactions(source))
    assert _col(result, "customer_id") == [3]
    assert _col(result, "product_id") == [4]
    assert _rejected(result) == [
        (0, "item_id (the item) is missing"),
        (1, "user_id (the user) is missing"),
    ]


# ----------------------------------------------------------------------------------------------
# Columns


def test_columns_are_found_by_name_in_any_spelling(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "User ID,Product-Id,Event_Time,Stars,Action,note\n1,2,1700000000,4,rate,hi\n",
    )
    result = _check(import_interactions(source))
    details = result.details
    assert (details["user_column"], details["item_column"]) == ("User ID", "Product-Id")
    assert (details["timestamp_column"], details["rating_column"]) == ("Event_Time", "Stars")
    assert details["event_column"] == "Action"
    assert details["columns_found_by_name"] == ["user", "item", "timestamp", "rating", "event"]
    assert details["ignored_columns"] == ["note"]
    assert result.table.to_pylist() == [
        {
            "customer_id": 1,
            "product_id": 2,
            "interaction_ts": T0,
            "rating": 4.0,
            "event_type": "rating",
        }
    ]


def test_flags_name_the_columns(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "who,what,when,kind\n1,2,1700000000,buy\n")
    result = _check(
        import_interactions(
            source,
            user_column="who",
            item_column="what",
            timestamp_column="when",
            event_column="kind",
        )
    )
    assert result.table.to_pylist()[0]["event_type"] == "purchase"
    assert result.details["columns_found_by_name"] == []


def test_missing_columns_are_clear_errors(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "who,item_id\n1,2\n")
    with pytest.raises(UserError, match=r"no user column.*who, item_id.*--user COLUMN"):
        import_interactions(source)
    with pytest.raises(UserError, match=r"no column Who for --user \(did you mean who\?\)"):
        import_interactions(source, user_column="Who")
    with pytest.raises(UserError, match=r"no column ts for --timestamp"):
        import_interactions(source, user_column="who", timestamp_column="ts")
    only_users = _csv(tmp_path / "u.csv", "user_id,rating\n1,2\n")
    with pytest.raises(UserError, match=r"no item column"):
        import_interactions(only_users)


def test_two_candidate_columns_or_one_column_twice_are_errors(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "user_id,customer,item_id\n1,2,3\n")
    with pytest.raises(UserError, match=r"columns user_id, customer could each be the user"):
        import_interactions(source)
    assert _col(import_interactions(source, user_column="customer"), "customer_id") == [2]
    with pytest.raises(UserError, match=r"--user and --item are the same column user_id"):
        import_interactions(source, user_column="user_id", item_column="user_id")


# ----------------------------------------------------------------------------------------------
# Timestamps


@pytest.mark.parametrize(
    ("values", "expected_format", "expected"),
    [
        (["1700000000", "1700000000.5"], "unix_seconds", [T0, T0.replace(microsecond=500_000)]),
        (
            ["1700000000123", "1700000000000"],
            "unix_milliseconds",
            [T0.replace(microsecond=123_000), T0],
        ),
        (["1700000000123456", "1700000000000001"], "unix_microseconds", [
            T0.replace(microsecond=123_456), T0.replace(microsecond=1)]),
        (
            ["1700000000123456789", "1700000000000000999"],
            "unix_nanoseconds",  # 19 digits; below a microsecond is cut
            [T0.replace(microsecond=123_456), T0],
        ),
        (
            ["20240131", "19991231"],
            "yyyymmdd",
            [datetime(2024, 1, 31, tzinfo=UTC), datetime(1999, 12, 31, tzinfo=UTC)],
        ),
        (
            ["2024-01-31T10:00:00+06:00", "2024-01-31"],
            "iso8601",
            [datetime(2024, 1, 31, 4, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC)],
        ),
    ],
)  # fmt: skip
def test_text_timestamps_are_detected(
    tmp_path: Path, values: list[str], expected_format: str, expected: list[datetime]
) -> None:
    rows = "".join(f"1,{i},{value}\n" for i, value in enumerate(values))
    source = _csv(tmp_path / "e.csv", "user_id,item_id,timestamp\n" + rows)
    result = _check(import_interactions(source))
    assert result.details["timestamp_format"] == expected_format
    assert _col(result, "interaction_ts") == expected
    assert result.details["timestamp_constant"] is None


def test_iso_times_without_a_zone_are_utc_and_counted(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv", "user_id,item_id,date\n1,2,2024-01-31 10:00:00\n1,3,2024-02-01Z\n"
    )
    result = _check(import_interactions(source))
    assert _col(result, "interaction_ts")[0] == datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert result.details["time_values_without_zone"] >= 1


def test_bad_timestamps_reject_their_rows_only(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "user_id,item_id,timestamp\n"
        "1,1,1700000000\n"
        "1,2,\n"  # missing
        "1,3,yesterday\n"  # not a number in a unix column
        "1,4,-5\n"  # before 1970
        "1,5,1700000000000000\n"  # a stray microsecond value among seconds: year 53 million
        "1,6,1700000001\n",
    )
    result = _check(import_interactions(source))
    assert result.details["timestamp_format"] == "unix_seconds"
    assert _col(result, "product_id") == [1, 6]
    assert _rejected(result) == [
        (1, "timestamp (the timestamp) is missing"),
        (2, "timestamp (the timestamp) is not a number (the column holds unix seconds)"),
        (3, "timestamp (the timestamp) is negative (before 1970)"),
        (4, "timestamp (the timestamp) is after 9999-12-31 as unix seconds"),
    ]


def test_unparseable_iso_times_are_rejected(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "user_id,item_id,time\n1,1,2024-01-31T10:00:00Z\n1,2,31/01/2024\n1,3,2024-02-30\n",
    )
    result = _check(import_interactions(source))
    assert result.details["timestamp_format"] == "iso8601"
    reason = "time (the timestamp) is not an ISO 8601 time (the column's format)"
    assert _rejected(result) == [(1, reason), (2, reason)]


def test_parquet_timestamps_dates_and_numbers(tmp_path: Path) -> None:
    def imported(times: pa.Array) -> ImportResult:
        path = tmp_path / "e.parquet"
        table = pa.table({"user_id": [1, 2], "item_id": [3, 4], "ts": times})
        pq.write_table(table, path)
        return _check(import_interactions(path))

    naive = imported(pa.array([datetime(2024, 1, 31, 10), None], pa.timestamp("ms")))
    assert naive.details["timestamp_format"] == "parquet_timestamp"
    assert _col(naive, "interaction_ts") == [datetime(2024, 1, 31, 10, tzinfo=UTC)]
    assert _rejected(naive) == [(1, "ts (the timestamp) is missing")]
    days = imported(pa.array([date(2024, 1, 31), date(2024, 2, 1)]))
    assert days.details["timestamp_format"] == "parquet_date"
    assert _col(days, "interaction_ts")[1] == datetime(2024, 2, 1, tzinfo=UTC)
    millis = imported(pa.array([1_700_000_000_123, 1_700_000_000_000], pa.int64()))
    assert millis.details["timestamp_format"] == "unix_milliseconds"
    assert _col(millis, "interaction_ts") == [T0.replace(microsecond=123_000), T0]
    seconds = imported(pa.array([1_700_000_000.25, float("inf")]))
    assert _col(seconds, "interaction_ts") == [T0.replace(microsecond=250_000)]
    assert _rejected(seconds) == [
        (1, "ts (the timestamp) is not a number (the column holds unix seconds)")
    ]
    with pytest.raises(UserError, match="holds booleans, not times"):
        imported(pa.array([True, False]))


def test_no_timestamp_column_uses_the_documented_constant(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "user_id,item_id\n1,2\n3,4\n")
    result = _check(import_interactions(source))
    assert datetime(1970, 1, 1, tzinfo=UTC) == NO_TIMESTAMP
    assert _col(result, "interaction_ts") == [NO_TIMESTAMP, NO_TIMESTAMP]
    assert result.details["timestamp_column"] is None
    assert result.details["timestamp_format"] is None
    assert result.details["timestamp_constant"] == "1970-01-01T00:00:00+00:00"


# ----------------------------------------------------------------------------------------------
# Ratings and event types


def test_bad_ratings_reject_their_rows(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "user_id,item_id,rating\n1,1,4.5\n1,2,five\n1,3,-1\n1,4,\n1,5,0\n1,6,inf\n",
    )
    result = _check(import_interactions(source))
    # A rating column without an event column: every row is a rating event.
    assert result.details["event_type_default"] == "rating"
    assert _col(result, "rating") == [4.5, 0.0]
    assert _col(result, "event_type") == ["rating", "rating"]
    assert _rejected(result) == [
        (1, "rating (the rating) is not a number"),
        (2, "rating (the rating) is negative"),
        (3, "rating (the rating) is missing for a rating event"),
        (5, "rating (the rating) is not a number"),
    ]


def test_ratings_may_be_missing_on_implicit_events(tmp_path: Path) -> None:
    source = tmp_path / "e.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": [1, 1, 1],
                "item_id": [1, 2, 3],
                "score": pa.array([None, float("nan"), 3.0]),
                "event_type": ["view", "purchase", "rating"],
            }
        ),
        source,
    )
    result = _check(import_interactions(source))
    assert _col(result, "rating") == [None, None, 3.0]
    assert _col(result, "event_type") == ["view", "purchase", "rating"]
    pq.write_table(pa.table({"user_id": [1], "item_id": [2], "score": [True]}), source)
    with pytest.raises(UserError, match="rating column score is bool"):
        import_interactions(source)


def test_event_words_are_mapped_and_returns_and_unknowns_rejected(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "user_id,item_id,event\n"
        "1,1,click\n1,2,Add to Cart\n1,3,addtocart\n1,4,transaction\n1,5,ORDER\n"
        "1,6,remove-from-basket\n1,7,search\n1,8,return\n1,9,Refund\n1,10,like\n1,11,\n",
    )
    result = _check(import_interactions(source))
    assert _col(result, "event_type") == [
        "view",
        "add_to_cart",
        "add_to_cart",
        "purchase",
        "purchase",
        "remove_from_cart",
        "search",
    ]
    returned = (
        "event (the event type) is a return or refund: negative feedback, which the contract "
        "has no type for"
    )
    assert _rejected(result) == [
        (7, returned),
        (8, returned),
        (
            9,
            "event (the event type) is not one of view, search, add_to_cart, remove_from_cart, "
            "purchase, rating or a common word for one (click, cart, buy...)",
        ),
        (10, "event (the event type) is missing"),
    ]
    assert result.details["event_values"]["Refund"] == "rejected: return or refund"
    assert result.details["event_values"]["like"] == "rejected: unknown"
    assert result.details["event_values"]["ORDER"] == "purchase"
    assert result.details["event_types"] == {
        "add_to_cart": 2,
        "purchase": 2,
        "view": 1,
        "remove_from_cart": 1,
        "search": 1,
    }


def test_every_event_word_means_a_contract_type() -> None:
    assert set(EVENT_WORDS.values()) <= set(CONTRACT_EVENT_TYPES)
    allowed = next(c.allowed for c in CONTRACT.columns if c.name == "event_type")
    assert set(CONTRACT_EVENT_TYPES) == set(allowed or ())


def test_without_event_or_rating_every_row_is_a_view(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "user_id,item_id\n1,2\n")
    result = _check(import_interactions(source))
    assert _col(result, "event_type") == ["view"]
    assert _col(result, "rating") == [None]
    assert result.details["event_type_default"] == "view"


def test_a_rating_event_without_a_rating_column_is_rejected(tmp_path: Path) -> None:
    source = _csv(tmp_path / "e.csv", "user_id,item_id,event_type\n1,2,rating\n1,3,view\n")
    result = _check(import_interactions(source))
    assert _rejected(result) == [
        (0, "a rating event, but the file has no rating column (name it with --rating)")
    ]


def test_duplicate_rows_are_kept_as_repeated_feedback(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv",
        "user_id,item_id,timestamp,event\n"
        "1,2,1700000000,view\n1,2,1700000000,view\n1,2,1700000000,view\n1,2,1700000001,view\n",
    )
    result = _check(import_interactions(source))
    assert result.rows_written == 4
    assert result.details["duplicate_rows"] == 2


# ----------------------------------------------------------------------------------------------
# Files


def test_empty_file_and_header_only_are_errors(tmp_path: Path) -> None:
    empty = _csv(tmp_path / "empty.csv", "")
    with pytest.raises(UserError, match=r"empty\.csv is empty"):
        import_interactions(empty)
    header = _csv(tmp_path / "header.csv", "user_id,item_id\n")
    with pytest.raises(UserError, match="has no data rows"):
        import_interactions(header)
    parquet = tmp_path / "none.parquet"
    pq.write_table(pa.table({"user_id": pa.array([], pa.int64()), "item": pa.array([])}), parquet)
    with pytest.raises(UserError, match=r"none\.parquet has no data rows"):
        import_interactions(parquet)


def test_a_folder_must_hold_exactly_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with pytest.raises(UserError, match=r"there is no \.csv or \.parquet file"):
        import_interactions(folder)
    _csv(folder / "a.csv", "user_id,item_id\n1,2\n")
    assert _check(import_interactions(folder)).rows_written == 1
    _csv(folder / "b.csv", "user_id,item_id\n1,2\n")
    with pytest.raises(UserError, match=r"it holds 2 \(a\.csv, b\.csv\): give the file itself"):
        import_interactions(folder)
    with pytest.raises(UserError, match="does not exist"):
        import_interactions(tmp_path / "nowhere.csv")
    with pytest.raises(UserError, match=r"neither \.csv nor \.parquet"):
        import_interactions(_csv(tmp_path / "e.tsv", "user_id\titem_id\n"))


def test_import_dataset_writes_the_table_mappings_and_summary(tmp_path: Path) -> None:
    source = _csv(
        tmp_path / "e.csv", "user,item,rating\nA,x,5\nB,y,oops\nA,y,3\n"
    )  # fmt: skip
    out = tmp_path / "out"
    result = import_dataset("interactions", source, out, {"rating_column": "rating"})
    assert pq.read_table(out / "interactions.parquet").equals(result.table)
    assert pq.read_table(out / USER_ID_MAP_FILE).column("original_id").to_pylist() == ["A"]
    assert pq.read_table(out / ITEM_ID_MAP_FILE).column("original_id").to_pylist() == ["x", "y"]
    rejected = pq.read_table(out / "rejected" / "interactions.parquet")
    assert rejected.column("rating").to_pylist() == ["oops"]
    summary = json.loads((out / "import.json").read_text())
    assert summary["format"] == summary["table"] == "interactions"
    assert (summary["rows_read"], summary["rows_written"], summary["rows_rejected"]) == (3, 2, 1)
    assert summary["rejected_reasons"] == {"rating (the rating) is not a number": 1}
    assert summary["user_id_map"] == USER_ID_MAP_FILE
    assert summary["timestamp_constant"] == "1970-01-01T00:00:00+00:00"

    # Imported again with integer ids: the old mappings must not be left to mislead.
    _csv(source, "user,item\n1,2\n")
    import_dataset("interactions", source, out)
    assert not (out / USER_ID_MAP_FILE).exists()
    assert not (out / ITEM_ID_MAP_FILE).exists()
    assert json.loads((out / "import.json").read_text())["user_id_map"] is None


def test_options_are_checked_by_the_registry(tmp_path: Path) -> None:
    importer = IMPORTERS["interactions"]
    assert importer.table_name == "interactions"
    source = _csv(tmp_path / "e.csv", "a,b\n1,2\n")
    result = importer(source, {"user_column": "a", "item_column": "b"})
    assert _col(result, "customer_id") == [1]
    with pytest.raises(UserError, match=r"no option label \(--label\).*only tabular does"):
        importer(source, {"label": "a"})
    with pytest.raises(UserError, match=r"no option user_column \(--user\).*only interactions"):
        IMPORTERS["movielens"](source, {"user_column": "a"})


def test_movielens_ratings_import_like_the_movielens_format() -> None:
    ratings = MOVIELENS / "ratings.csv"
    if not ratings.is_file():
        pytest.skip(f"real data set {ratings} is absent (it is optional)")
    result = _check(import_interactions(ratings))
    assert result.rows_read == result.rows_written == 100_000
    assert result.details["timestamp_format"] == "unix_seconds"
    assert result.details["user_ids"] == result.details["item_ids"] == "as_is"
    assert (result.details["n_users"], result.details["n_items"]) == (943, 1_682)
    assert result.table.equals(IMPORTERS["movielens"](MOVIELENS).table)
