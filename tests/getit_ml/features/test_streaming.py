"""The velocity window state, the event format and its decoding, without Redis."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.features.streaming import (
    FEATURE_NAMES,
    MINUTE_US,
    WINDOW_1H_US,
    WINDOW_10M_US,
    EventBatch,
    StreamStats,
    VelocityState,
    decode_entries,
    empty_feature_frame,
    encode_event,
    events_from_marketplace,
)

T0 = 1_741_600_000_000_000  # 2025-03-10 09:46:40 UTC, in microseconds


def click(customer: int, ts: int) -> dict[str, Any]:
    return {"kind": "click", "customer_id": customer, "ts": ts}


def payment(
    customer: int, ts: int, amount: float = 100.0, status: str = "succeeded"
) -> dict[str, Any]:
    return {
        "kind": "payment",
        "customer_id": customer,
        "ts": ts,
        "amount_bdt": amount,
        "status": status,
    }


def as_redis(fields: Mapping[str, str]) -> dict[bytes, bytes]:
    """Fields as redis-py returns them (bytes keys and values)."""
    return {k.encode(): v.encode() for k, v in fields.items()}


def entries(events: Iterable[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    return [(f"{i}-0".encode(), as_redis(encode_event(e))) for i, e in enumerate(events)]


def batch_of(events: Iterable[Mapping[str, Any]]) -> EventBatch:
    decoded = decode_entries(entries(events))
    assert not decoded.rejected
    return decoded.batch


def features(state: VelocityState, customer: int) -> dict[str, Any]:
    result = state.features_for(customer)
    assert result is not None
    return result


class Reference:
    """Independent, per-event formulation of the documented semantics: an event is late if it is
    at least an hour behind the latest event time seen before or with it; a customer's features
    are taken at its latest on-time event, over its on-time events with ``t - W < ts <= t``."""

    def __init__(self, events: Iterable[Mapping[str, Any]] = ()) -> None:
        self.watermark: int | None = None
        self.accepted: dict[int, list[Mapping[str, Any]]] = {}
        self.late = 0
        self.add(events)

    def add(self, events: Iterable[Mapping[str, Any]]) -> set[int]:
        """Add events in arrival order; returns the customers they touched (on time)."""
        touched = set()
        for event in events:
            ts = int(event["ts"])
            self.watermark = ts if self.watermark is None else max(self.watermark, ts)
            if ts <= self.watermark - WINDOW_1H_US:
                self.late += 1
            else:
                self.accepted.setdefault(int(event["customer_id"]), []).append(event)
                touched.add(int(event["customer_id"]))
        return touched

    def __getitem__(self, customer: int) -> dict[str, Any]:
        own = self.accepted[customer]
        t = max(int(e["ts"]) for e in own)
        in10 = [e for e in own if t - WINDOW_10M_US < int(e["ts"]) <= t]
        in1h = [e for e in own if t - WINDOW_1H_US < int(e["ts"]) <= t]
        pay10 = [e for e in in10 if e["kind"] == "payment"]
        pay1h = [e for e in in1h if e["kind"] == "payment"]
        return {
            "ts": t,
            "payments_10m": len(pay10),
            "amount_10m_bdt": sum(float(e["amount_bdt"]) for e in pay10),
            "failed_payments_10m": sum(e["status"] == "failed" for e in pay10),
            "payments_1h": len(pay1h),
            "amount_1h_bdt": sum(float(e["amount_bdt"]) for e in pay1h),
            "clicks_10m": sum(e["kind"] == "click" for e in in10),
        }

    def customers(self) -> list[int]:
        return sorted(self.accepted)


def assert_matches(frame: pd.DataFrame, expected: Reference) -> None:
    for row in frame.to_dict("records"):
        want = expected[int(row["customer_id"])]
        assert row["event_timestamp"] == pd.Timestamp(want["ts"], unit="us", tz="UTC")
        for name in FEATURE_NAMES:
            assert row[name] == pytest.approx(want[name], rel=1e-12), (row["customer_id"], name)


# ---------------------------------------------------------------------------- event format
def test_encode_event_writes_epoch_microseconds_and_payment_fields() -> None:
    when = datetime(2025, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)
    assert encode_event(payment(7, when, 250.5, "failed")) == {  # type: ignore[arg-type]
        "kind": "payment",
        "customer_id": "7",
        "ts": str(int(when.timestamp()) * 1_000_000 + 123456),
        "amount_bdt": "250.5",
        "status": "failed",
    }
    assert encode_event(click(7, "2025-03-10T18:00:00+06:00")) == {  # type: ignore[arg-type]
        "kind": "click",
        "customer_id": "7",
        "ts": str(int(datetime(2025, 3, 10, 12, tzinfo=UTC).timestamp()) * 1_000_000),
    }
    with pytest.raises(ValueError, match="no time zone"):
        encode_event(click(7, datetime(2025, 3, 10)))  # type: ignore[arg-type]


def test_decode_accepts_mappings_flat_lists_and_str_values() -> None:
    events = [
        payment(1, T0, 99.25, "pending_cod"),
        click(2, T0 + 5),
        payment(3, T0 + 9, 0.0, "failed"),
    ]
    as_maps = decode_entries(entries(events)).batch
    flat = [(eid, [x for pair in fields.items() for x in pair]) for eid, fields in entries(events)]
    as_lists = decode_entries(flat).batch
    as_str = decode_entries([(f"{i}-0", encode_event(e)) for i, e in enumerate(events)]).batch
    # Fields in another order than publish_events writes are decoded by name.
    shuffled = [
        (eid, list(reversed([x for p in f.items() for x in reversed(p)])))
        for eid, f in entries(events)
    ]
    as_shuffled = decode_entries(shuffled).batch
    for batch in (as_maps, as_lists, as_str, as_shuffled):
        assert batch.customer_id.tolist() == [1, 2, 3]
        assert batch.ts_us.tolist() == [T0, T0 + 5, T0 + 9]
        assert batch.is_payment.tolist() == [True, False, True]
        assert batch.amount_bdt.tolist() == [99.25, 0.0, 0.0]
        assert batch.failed.tolist() == [False, False, True]


def test_malformed_entries_are_counted_by_reason_and_the_rest_kept() -> None:
    good = encode_event(payment(1, T0, 10.0))
    bad: list[dict[str, str] | None] = [
        {k: v for k, v in good.items() if k != "kind"},
        {k: v for k, v in good.items() if k != "customer_id"},
        {k: v for k, v in good.items() if k != "ts"},
        {k: v for k, v in good.items() if k != "amount_bdt"},
        {k: v for k, v in good.items() if k != "status"},
        {**good, "kind": "refund"},
        {**good, "customer_id": "abc"},
        {**good, "customer_id": "-4"},
        {**good, "customer_id": "1.5"},
        {**good, "ts": "2025-03-10T00:00:00Z"},
        {**good, "ts": str(2**70)},
        {**good, "amount_bdt": "nan"},
        {**good, "amount_bdt": "-3"},
        {**good, "amount_bdt": "৳100"},
        {**good, "status": "maybe"},
        {},
        None,
    ]
    raw = [(f"{i}-1".encode(), None if f is None else as_redis(f)) for i, f in enumerate(bad)]
    raw.insert(3, (b"100-0", as_redis(good)))
    raw.append((b"101-0", as_redis(encode_event(click(2, T0 + 1)))))
    decoded = decode_entries(raw)
    assert decoded.batch.customer_id.tolist() == [1, 2]
    assert dict(decoded.rejected) == {
        "missing:kind": 1,
        "missing:customer_id": 1,
        "missing:ts": 1,
        "missing:amount_bdt": 1,
        "missing:status": 1,
        "bad:kind": 1,
        "bad:customer_id": 3,
        "bad:ts": 2,
        "bad:amount_bdt": 3,
        "bad:status": 1,
        "deleted": 2,
    }
    assert decoded.examples["missing:kind"] == "0-1"
    assert decoded.examples["deleted"] == "15-1"


def test_a_click_needs_no_amount_or_status() -> None:
    decoded = decode_entries([(b"1-0", {b"kind": b"click", b"customer_id": b"5", b"ts": b"10"})])
    assert not decoded.rejected
    assert decoded.batch.customer_id.tolist() == [5]


# ---------------------------------------------------------------------------- windows
def test_ten_minute_and_one_hour_boundaries_are_exact() -> None:
    t = T0 + 2 * WINDOW_1H_US
    state = VelocityState()
    rows = state.update(
        batch_of(
            [
                payment(1, t - WINDOW_1H_US, 1.0),  # exactly an hour before: out of both
                payment(1, t - WINDOW_1H_US + 1, 2.0),  # 1 us inside the hour
                payment(1, t - WINDOW_10M_US, 4.0),  # exactly 10 minutes before: hour only
                payment(1, t - WINDOW_10M_US + 1, 8.0),  # inside both
                click(1, t - WINDOW_10M_US),
                click(1, t - WINDOW_10M_US + 1),
                payment(1, t, 16.0),  # the latest event itself counts
                click(1, t),
            ]
        )
    )
    assert rows.to_dict("records") == [
        {
            "customer_id": 1,
            "event_timestamp": pd.Timestamp(t, unit="us", tz="UTC"),
            "created_timestamp": pd.Timestamp(t, unit="us", tz="UTC"),
            "payments_10m": 2,
            "amount_10m_bdt": 24.0,
            "failed_payments_10m": 0,
            "payments_1h": 4,
            "amount_1h_bdt": 30.0,
            "clicks_10m": 2,
        }
    ]


def test_windows_slide_as_the_customer_moves_on() -> None:
    state = VelocityState()
    state.update(batch_of([payment(1, T0, 10.0), payment(1, T0 + MINUTE_US, 20.0)]))
    assert features(state, 1)["payments_10m"] == 2
    # Ten minutes after the first payment it leaves the 10-minute window, not the hour.
    state.update(batch_of([click(1, T0 + WINDOW_10M_US)]))
    got = features(state, 1)
    assert (got["payments_10m"], got["amount_10m_bdt"]) == (1, 20.0)
    assert (got["payments_1h"], got["amount_1h_bdt"], got["clicks_10m"]) == (2, 30.0, 1)
    state.update(batch_of([click(1, T0 + WINDOW_1H_US)]))
    got = features(state, 1)
    assert (got["payments_1h"], got["amount_1h_bdt"], got["payments_10m"]) == (1, 20.0, 0)
    assert got["clicks_10m"] == 1


def test_failed_payments_and_statuses() -> None:
    state = VelocityState()
    rows = state.update(
        batch_of(
            [
                payment(1, T0, 5.0, "failed"),
                payment(1, T0 + 1, 7.0, "failed"),
                payment(1, T0 + 2, 11.0, "pending_cod"),
                payment(1, T0 + 3, 13.0, "succeeded"),
                payment(2, T0 + 4, 17.0, "succeeded"),
            ]
        )
    ).set_index("customer_id")
    assert rows.loc[1, "failed_payments_10m"] == 2
    assert rows.loc[1, "payments_10m"] == 4
    assert rows.loc[1, "amount_10m_bdt"] == 36.0  # every attempt counts, whatever its outcome
    assert rows.loc[2, "failed_payments_10m"] == 0


def test_one_row_per_touched_customer_with_pushed_dtypes() -> None:
    state = VelocityState()
    state.update(batch_of([click(1, T0), click(2, T0)]))
    rows = state.update(batch_of([click(3, T0 + 5), click(2, T0 + 9), click(3, T0 + 7)]))
    assert rows["customer_id"].tolist() == [2, 3]
    assert rows["clicks_10m"].tolist() == [2, 2]
    assert rows["event_timestamp"].tolist() == [
        pd.Timestamp(T0 + 9, unit="us", tz="UTC"),
        pd.Timestamp(T0 + 7, unit="us", tz="UTC"),
    ]
    assert list(rows.columns) == list(empty_feature_frame().columns)
    assert rows.dtypes.to_dict() == empty_feature_frame().dtypes.to_dict()
    assert str(rows["event_timestamp"].dt.tz) == "UTC"


def test_out_of_order_events_within_the_hour_count_as_if_in_order() -> None:
    events = [
        payment(1, T0 + 50 * MINUTE_US, 3.0),
        click(1, T0 + 45 * MINUTE_US),
        payment(1, T0 + 5 * MINUTE_US, 5.0, "failed"),  # 45 minutes behind: within the hour
        payment(1, T0 + 42 * MINUTE_US, 7.0, "failed"),
        click(1, T0 + 55 * MINUTE_US),
    ]
    in_order = VelocityState()
    expected = in_order.update(batch_of(sorted(events, key=lambda e: e["ts"])))
    shuffled = VelocityState()
    for event in events:  # one at a time, in arrival order
        last = shuffled.update(batch_of([event]))
    pd.testing.assert_frame_equal(last, expected)
    assert shuffled.late_events == 0
    row = expected.iloc[0]
    assert row["event_timestamp"] == pd.Timestamp(T0 + 55 * MINUTE_US, unit="us", tz="UTC")
    # The 10-minute window is (45, 55] minutes: the payment at 50 and the click at 55.
    assert (row["payments_10m"], row["amount_10m_bdt"], row["clicks_10m"]) == (1, 3.0, 1)
    assert (row["payments_1h"], row["amount_1h_bdt"], row["failed_payments_10m"]) == (3, 15.0, 0)


def test_late_events_are_counted_and_ignored() -> None:
    state = VelocityState()
    state.update(batch_of([click(2, T0), payment(1, T0 + WINDOW_1H_US, 10.0)]))
    assert state.late_events == 0  # the click came first, so it was not behind anything
    rows = state.update(
        batch_of(
            [
                payment(1, T0 + 1, 99.0),  # 1 us more than an hour behind the watermark: on time
                payment(3, T0, 50.0),  # exactly an hour behind: late
                click(2, T0 - MINUTE_US),  # late
            ]
        )
    )
    assert state.late_events == 2
    assert rows["customer_id"].tolist() == [1]  # late events touch nobody
    got = features(state, 1)
    # T0 + 1 is in the hour of customer 1's latest event (T0 + 1h), and counts.
    assert (got["payments_1h"], got["amount_1h_bdt"], got["payments_10m"]) == (2, 109.0, 1)
    assert state.features_for(3) is None


def test_an_event_an_hour_behind_within_one_batch_is_late() -> None:
    state = VelocityState()
    rows = state.update(batch_of([click(1, T0 + WINDOW_1H_US), click(1, T0), click(2, T0 + 1)]))
    assert state.late_events == 1
    assert rows["clicks_10m"].tolist() == [1, 1]


def test_rollback_forgets_the_batch_and_commit_keeps_it() -> None:
    state = VelocityState()
    state.update(batch_of([payment(1, T0, 10.0)]))
    batch = batch_of([payment(1, T0 + 1, 20.0), click(2, T0 + 2), click(9, T0 - 2 * WINDOW_1H_US)])
    first = state.update(batch)
    assert state.late_events == 1
    state.rollback()
    assert state.late_events == 0
    assert state.watermark_us == T0
    assert features(state, 1)["payments_10m"] == 1
    assert state.features_for(2) is None
    again = state.update(batch)  # no double counting after a rollback
    pd.testing.assert_frame_equal(again, first)
    state.commit()
    state.rollback()  # nothing left to undo
    assert features(state, 1)["amount_10m_bdt"] == 30.0


def test_per_customer_cap_keeps_the_newest_events() -> None:
    state = VelocityState(max_events_per_customer=3)
    rows = state.update(batch_of([payment(1, T0 + i, float(2**i)) for i in range(5)]))
    assert state.capped_events == 2
    assert rows.iloc[0]["payments_10m"] == 3
    assert rows.iloc[0]["amount_10m_bdt"] == 4.0 + 8.0 + 16.0
    state.update(batch_of([payment(1, T0 + 10, 32.0)]))
    assert state.capped_events == 3
    assert features(state, 1)["amount_10m_bdt"] == 8.0 + 16.0 + 32.0


def test_memory_is_bounded_and_results_stay_exact_after_sweeps() -> None:
    rng = random.Random(3)
    state = VelocityState(initial_capacity=16)
    events = []
    # 48 hours of traffic, 5 events a minute over 40 customers.
    for minute in range(48 * 60):
        for _ in range(5):
            ts = T0 + minute * MINUTE_US + rng.randrange(MINUTE_US)
            customer = rng.randrange(40)
            events.append(
                payment(customer, ts, rng.randrange(1, 1000) / 4)
                if rng.random() < 0.3
                else click(customer, ts)
            )
    peak = 0
    for start in range(0, len(events), 250):
        state.update(batch_of(events[start : start + 250]))
        peak = max(peak, state.rows_held)
    # Two hours of events are 600; the buffer may hold up to about twice that before a sweep.
    assert peak < 4 * 600
    assert_matches(state.features(range(40)), Reference(events))


@pytest.mark.parametrize("batch_size", [1, 7, 100, 10_000])
def test_random_streams_match_the_reference_after_every_batch(batch_size: int) -> None:
    rng = random.Random(batch_size)
    events = []
    base = T0
    for _ in range(600 if batch_size == 1 else 3_000):
        base += rng.randrange(0, 20_000_000)  # up to 20 s between events
        # Coarse times make exact window boundaries common; some events are far behind.
        jitter = rng.choice([0, 0, 0, 1, 10, 50, 59, 60, 61, 90]) * MINUTE_US
        ts = (base - jitter) // 1_000_000 * 1_000_000
        customer = rng.randrange(25)
        if rng.random() < 0.4:
            status = rng.choice(["succeeded", "failed", "pending_cod"])
            events.append(payment(customer, ts, rng.randrange(1, 10_000) / 100, status))
        else:
            events.append(click(customer, ts))
    state = VelocityState(initial_capacity=16)
    expected = Reference()
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        rows = state.update(batch_of(batch))
        touched = expected.add(batch)
        assert rows["customer_id"].tolist() == sorted(touched)
        assert_matches(rows, expected)
    assert expected.late > 0
    assert state.late_events == expected.late
    final = state.features(expected.customers())
    assert final["customer_id"].tolist() == expected.customers()
    assert_matches(final, expected)


def test_inactive_customers_are_forgotten() -> None:
    state = VelocityState(initial_capacity=16)
    state.update(batch_of([payment(1, T0, 5.0), payment(1, T0 + 30 * MINUTE_US, 7.0)]))
    # Other customers move the watermark two and a half hours on; sweeps run as the buffer fills.
    for minute in range(31, 151):
        state.update(batch_of([click(2 + minute % 3, T0 + minute * MINUTE_US)] * 10))
    assert state.customers_held in (3, 4)  # swept as the buffer fills, or now:
    state.expire()
    assert state.customers_held == 3
    assert state.features_for(1) is None
    rows = state.update(batch_of([payment(1, T0 + 100 * MINUTE_US, 11.0)]))
    assert (rows.iloc[0]["payments_1h"], rows.iloc[0]["amount_1h_bdt"]) == (1, 11.0)


def test_an_empty_batch_touches_nobody() -> None:
    state = VelocityState()
    assert state.update(EventBatch.empty()).empty
    assert state.watermark_us is None


# ---------------------------------------------------------------------------- marketplace
def _write_day(root: Path, table: str, day: str, columns: dict[str, pa.Array]) -> None:
    folder = root / table / f"date={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), folder / "part-0.parquet")


def test_events_from_marketplace_merges_days_in_time_order(tmp_path: Path) -> None:
    def us(hour: int, minute: int = 0) -> datetime:
        base = datetime(2025, 3, 10, tzinfo=UTC)
        return base + timedelta(hours=hour, minutes=minute)

    stamp = pa.timestamp("us", tz="UTC")
    _write_day(
        tmp_path,
        "payments",
        "2025-03-10",
        {
            "customer_id": pa.array([1, 2], pa.int64()),
            "payment_ts": pa.array([us(20), us(5)], stamp),
            "amount_bdt": pa.array([120.0, 80.5]),
            "status": pa.array(["failed", "succeeded"]),
        },
    )
    _write_day(
        tmp_path,
        "events",
        "2025-03-10",
        {
            "customer_id": pa.array([1, None, 2, 3, 4], pa.int64()),
            "event_ts": pa.array([us(4), us(6), us(5), us(7), us(19)], stamp),
            "event_type": pa.array(["view", "view", "add_to_cart", "search", "purchase"]),
        },
    )
    # The next day starts before the last payment of the first (a session across midnight).
    _write_day(
        tmp_path,
        "events",
        "2025-03-11",
        {
            "customer_id": pa.array([5, 6], pa.int64()),
            "event_ts": pa.array([us(19), us(21)], stamp),
            "event_type": pa.array(["view", "add_to_cart"]),
        },
    )

    def micro(hour: int) -> int:
        return int(us(hour).timestamp()) * 1_000_000

    got = list(events_from_marketplace(tmp_path))
    assert got == [
        {"kind": "click", "customer_id": 1, "ts": micro(4)},
        {
            "kind": "payment",
            "customer_id": 2,
            "ts": micro(5),
            "amount_bdt": 80.5,
            "status": "succeeded",
        },
        {"kind": "click", "customer_id": 2, "ts": micro(5)},  # ties: payments first
        {"kind": "click", "customer_id": 5, "ts": micro(19)},
        {
            "kind": "payment",
            "customer_id": 1,
            "ts": micro(20),
            "amount_bdt": 120.0,
            "status": "failed",
        },
        {"kind": "click", "customer_id": 6, "ts": micro(21)},
    ]


def test_events_from_a_generated_marketplace(tmp_path: Path) -> None:
    summary = generate(MarketplaceConfig(customers=300, days=3, seed=5), tmp_path / "m")
    got = list(events_from_marketplace(tmp_path / "m"))
    events = pq.read_table(tmp_path / "m" / "events").to_pandas()
    clicks = events[
        events["event_type"].isin(["view", "add_to_cart"]) & events["customer_id"].notna()
    ]
    assert sum(e["kind"] == "payment" for e in got) == summary.rows["payments"]
    assert sum(e["kind"] == "click" for e in got) == len(clicks) > 0
    times = [e["ts"] for e in got]
    assert times == sorted(times)
    decoded = decode_entries(entries(got))
    assert not decoded.rejected
    assert len(decoded.batch) == len(got)


def test_a_folder_without_payments_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="generated marketplace"):
        list(events_from_marketplace(tmp_path))


def test_pushed_frame_agrees_with_the_feature_contract() -> None:
    from getit_ml.features import schemas

    columns = empty_feature_frame().dtypes.astype(str).to_dict()
    assert list(columns) == [
        schemas.ENTITY_KEYS["customer"],
        schemas.TIMESTAMP_FIELD,
        schemas.CREATED_FIELD,
        *schemas.VELOCITY_FEATURES,
    ]
    assert {name: columns[name] for name in FEATURE_NAMES} == schemas.VELOCITY_FEATURES


def test_stats_report_throughput_and_reasons() -> None:
    stats = StreamStats(events_read=1_000, busy_seconds=0.5, rejected={"bad:ts": 2, "deleted": 1})
    assert stats.events_per_s == 2_000
    assert stats.rejected_total == 3
    assert "bad:ts=2" in str(stats)
    assert stats.as_dict()["events_per_s"] == 2_000
    assert StreamStats().events_per_s == 0.0
