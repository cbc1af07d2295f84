"""The streaming consumer against the real Redis: consumer groups, batches, crashes, rejects."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis

from getit_ml.features.streaming import (
    FEATURE_NAMES,
    MINUTE_US,
    StreamConsumer,
    StreamStats,
    VelocityState,
    encode_event,
    publish_events,
)

pytestmark = pytest.mark.integration

T0 = 1_741_600_000_000_000  # 2025-03-10 09:46:40 UTC, in microseconds
HOUR_US = 60 * MINUTE_US


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def stream(client: redis.Redis) -> Iterator[str]:
    key = f"getit-ml:test:events:{uuid.uuid4().hex}"
    yield key
    client.delete(key)


class Recorder:
    """A ``push`` that keeps every frame; optionally fails on chosen calls."""

    def __init__(self, fail_on: Sequence[int] = ()) -> None:
        self.frames: list[pd.DataFrame] = []
        self.calls = 0
        self.fail_on = set(fail_on)

    def __call__(self, frame: pd.DataFrame) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ConnectionError("online store unavailable")
        self.frames.append(frame.copy())

    def rows(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True)


def make_events(n: int, seed: int, customers: int = 60) -> list[dict[str, Any]]:
    """A stream with whole-minute times (window boundaries are hit exactly), out-of-order events
    within the hour, and some events more than an hour behind (late)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    clock = T0
    for _ in range(n):
        clock += rng.randrange(0, 3) * MINUTE_US // 4
        behind = rng.choice([0] * 12 + [1, 9, 10, 11, 59, 60, 61, 120]) * MINUTE_US
        ts = (clock - behind) // MINUTE_US * MINUTE_US
        customer = rng.randrange(customers)
        if rng.random() < 0.35:
            status = rng.choice(["succeeded", "succeeded", "failed", "pending_cod"])
            amount = rng.randrange(100, 500_000) / 100
            events.append(
                {
                    "kind": "payment",
                    "customer_id": customer,
                    "ts": ts,
                    "amount_bdt": amount,
                    "status": status,
                }
            )
        else:
            events.append({"kind": "click", "customer_id": customer, "ts": ts})
    return events


def expected_features(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The documented features with pandas, from scratch: drop late events (an hour or more
    behind the running maximum time), then per customer, as of its latest event."""
    frame = pd.DataFrame(list(events))
    frame = frame[frame["ts"] > frame["ts"].cummax() - HOUR_US]
    frame = frame.assign(
        latest=frame.groupby("customer_id")["ts"].transform("max"),
        is_payment=frame["kind"] == "payment",
        is_click=frame["kind"] == "click",
        is_failed=frame.get("status", pd.Series(index=frame.index, dtype=object)) == "failed",
        amount=frame.get("amount_bdt", pd.Series(0.0, index=frame.index)).fillna(0.0),
    )
    age = frame["latest"] - frame["ts"]
    in10 = age < 10 * MINUTE_US
    in1h = age < HOUR_US
    pay10 = frame["is_payment"] & in10
    pay1h = frame["is_payment"] & in1h
    grouped = pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "latest": frame["latest"],
            "payments_10m": pay10.astype("int64"),
            "amount_10m_bdt": frame["amount"].where(pay10, 0.0),
            "failed_payments_10m": (pay10 & frame["is_failed"]).astype("int64"),
            "payments_1h": pay1h.astype("int64"),
            "amount_1h_bdt": frame["amount"].where(pay1h, 0.0),
            "clicks_10m": (frame["is_click"] & in10).astype("int64"),
        }
    ).groupby("customer_id")
    result = grouped[list(FEATURE_NAMES)].sum()
    result["event_timestamp"] = pd.to_datetime(grouped["latest"].max(), unit="us", utc=True)
    return result.sort_index()


def assert_rows_match(rows: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert not rows.empty
    got = rows.set_index("customer_id").sort_index()
    assert got.index.tolist() == [c for c in got.index if c in expected.index]
    want = expected.loc[got.index]
    assert (got["event_timestamp"] == want["event_timestamp"]).all()
    for name in FEATURE_NAMES:
        if name.startswith("amount"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-9, err_msg=name)
        else:
            assert got[name].tolist() == want[name].tolist(), name


def assert_every_batch(frames: Sequence[pd.DataFrame], events: Sequence[Any], size: int) -> None:
    """Frame k came from entries [size*k, size*(k+1)): its rows are the features as of that
    prefix of the stream, for the customers of that batch."""
    assert len(frames) == -(-len(events) // size)
    for k, frame in enumerate(frames):
        batch_customers = {e["customer_id"] for e in events[size * k : size * (k + 1)]}
        assert set(frame["customer_id"]) <= batch_customers
        assert frame["customer_id"].is_unique
        assert_rows_match(frame, expected_features(events[: size * (k + 1)]))


def pending(client: redis.Redis, stream: str, group: str) -> int:
    summary: Any = client.xpending(stream, group)
    return int(summary["pending"])


# ---------------------------------------------------------------------------- tests
def test_pushed_rows_match_pandas_after_every_batch(client: redis.Redis, stream: str) -> None:
    events = make_events(12_000, seed=1)
    assert publish_events(client, stream, events, batch_size=997) == len(events)
    recorder = Recorder()
    consumer = StreamConsumer(client, stream, "velocity", "c1", recorder, batch_size=1_000)
    stats = consumer.run(idle_timeout_s=0.3)

    assert stats.events_read == len(events)
    assert stats.batches == 12
    assert recorder.calls == stats.pushes == 12  # ONE push per batch
    assert_every_batch(recorder.frames, events, 1_000)
    for frame in recorder.frames:
        assert str(frame["event_timestamp"].dt.tz) == "UTC"
        assert frame["customer_id"].dtype == "int64"
    final = recorder.rows().groupby("customer_id").tail(1)
    assert_rows_match(final, expected_features(events))
    assert set(final["customer_id"]) == set(expected_features(events).index)

    late = len(events) - len(
        pd.Series([e["ts"] for e in events]).pipe(lambda s: s[s > s.cummax() - HOUR_US])
    )
    assert late > 0
    assert stats.late_events == late
    assert stats.events_accepted == len(events) - late
    assert stats.rows_pushed == sum(len(f) for f in recorder.frames)
    assert stats.rejected == {}
    assert pending(client, stream, "velocity") == 0
    assert stats.events_per_s > 0
    logging.getLogger(__name__).info("streaming integration: %s", stats)


def test_a_failed_push_leaves_the_batch_pending_for_the_next_run(
    client: redis.Redis, stream: str
) -> None:
    events = make_events(3_000, seed=2)
    publish_events(client, stream, events)
    crashing = Recorder(fail_on=[1])
    first = StreamConsumer(client, stream, "velocity", "c1", crashing, batch_size=500)
    with pytest.raises(ConnectionError, match="online store unavailable"):
        first.run(idle_timeout_s=0.3)
    assert crashing.frames == []
    # The failed batch was never acknowledged (the next one, read ahead, is pending too).
    assert pending(client, stream, "velocity") == 1_000
    oldest: Any = client.xrange(stream, count=1)
    first_id = oldest[0][0]
    oldest_pending: Any = client.xpending_range(stream, "velocity", "-", "+", 1)
    assert oldest_pending[0]["message_id"] == first_id

    # A restarted consumer (same group and name) gets the pending entries first, then the rest.
    recorder = Recorder()
    restarted = StreamConsumer(client, stream, "velocity", "c1", recorder, batch_size=500)
    stats = restarted.run(idle_timeout_s=0.3)
    assert stats.events_read == len(events)
    assert pending(client, stream, "velocity") == 0
    assert_every_batch(recorder.frames, events, 500)


def test_the_same_consumer_resumes_without_double_counting(
    client: redis.Redis, stream: str
) -> None:
    events = make_events(2_000, seed=3, customers=5)
    publish_events(client, stream, events)
    recorder = Recorder(fail_on=[2])
    consumer = StreamConsumer(client, stream, "velocity", "c1", recorder, batch_size=400)
    with pytest.raises(ConnectionError):
        consumer.run(idle_timeout_s=0.3)
    # The state kept batch 1 and rolled batch 2 back; batch 2 comes again from the pending list.
    stats = consumer.run(idle_timeout_s=0.3)
    assert stats.events_read == len(events) - 400
    assert_every_batch(recorder.frames, events, 400)


def test_another_consumer_claims_entries_left_pending(client: redis.Redis, stream: str) -> None:
    events = make_events(1_500, seed=4)
    publish_events(client, stream, events)
    crashed = StreamConsumer(client, stream, "velocity", "a", Recorder(fail_on=[1]), batch_size=300)
    with pytest.raises(ConnectionError):
        crashed.run(max_events=300)
    assert pending(client, stream, "velocity") == 300

    recorder = Recorder()
    other = StreamConsumer(
        client, stream, "velocity", "b", recorder, batch_size=300, claim_idle_ms=0
    )
    stats = other.run(idle_timeout_s=0.3)
    assert stats.events_read == len(events)
    assert pending(client, stream, "velocity") == 0
    assert_every_batch(recorder.frames, events, 300)


def test_malformed_entries_are_rejected_counted_and_acknowledged(
    client: redis.Redis, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = encode_event({"kind": "click", "customer_id": 7, "ts": T0})
    malformed: list[dict[str, str]] = [
        {"kind": "click", "ts": str(T0)},
        {**good, "customer_id": "seven"},
        {**good, "ts": "yesterday"},
        {**good, "kind": "refund"},
        {
            "kind": "payment",
            "customer_id": "7",
            "ts": str(T0),
            "amount_bdt": "x",
            "status": "failed",
        },
        {"kind": "payment", "customer_id": "7", "ts": str(T0), "amount_bdt": "5"},
    ]
    for fields in malformed:
        client.xadd(stream, fields)  # type: ignore[arg-type]
    client.xadd(stream, good)  # type: ignore[arg-type]
    recorder = Recorder()
    consumer = StreamConsumer(client, stream, "velocity", "c1", recorder, batch_size=4)
    with caplog.at_level(logging.WARNING, logger="getit_ml.features.streaming"):
        stats = consumer.run(idle_timeout_s=0.2)
    assert stats.events_read == 7
    assert stats.rejected == {
        "missing:customer_id": 1,
        "bad:customer_id": 1,
        "bad:ts": 1,
        "bad:kind": 1,
        "bad:amount_bdt": 1,
        "missing:status": 1,
    }
    assert stats.events_accepted == 1
    assert stats.batches == 2
    assert recorder.calls == stats.pushes == 1  # the all-rejected first batch pushes nothing
    assert recorder.frames[0]["clicks_10m"].tolist() == [1]
    assert pending(client, stream, "velocity") == 0
    assert "rejected" in caplog.text


def test_an_entry_deleted_while_pending_is_counted(client: redis.Redis, stream: str) -> None:
    events = make_events(10, seed=5)
    publish_events(client, stream, events)
    crashed = StreamConsumer(client, stream, "velocity", "c1", Recorder(fail_on=[1]))
    with pytest.raises(ConnectionError):
        crashed.run(max_events=10)
    first: Any = client.xrange(stream, count=1)
    first_id = first[0][0]
    client.xdel(stream, first_id)
    stats = StreamConsumer(client, stream, "velocity", "c1", Recorder()).run(idle_timeout_s=0.2)
    assert stats.rejected == {"deleted": 1}
    assert stats.events_read == 10
    assert pending(client, stream, "velocity") == 0


def test_max_events_stops_exactly_and_the_group_remembers(client: redis.Redis, stream: str) -> None:
    events = make_events(1_000, seed=6)
    publish_events(client, stream, events, batch_size=128)
    first = StreamConsumer(client, stream, "velocity", "c1", Recorder(), batch_size=300)
    assert first.run(max_events=450).events_read == 450
    assert pending(client, stream, "velocity") == 0
    assert first.run(max_events=0).events_read == 0
    rest = StreamConsumer(client, stream, "velocity", "c2", Recorder(), batch_size=300)
    assert rest.run(idle_timeout_s=0.2).events_read == 550
    # A fresh group starts from the beginning of the stream.
    again = StreamConsumer(client, stream, "replay", "c1", Recorder(), batch_size=300)
    assert again.run(idle_timeout_s=0.2).events_read == 1_000


def test_an_empty_stream_is_created_and_idles_out(client: redis.Redis, stream: str) -> None:
    recorder = Recorder()
    stats = StreamConsumer(client, stream, "velocity", "c1", recorder, block_ms=50).run(
        idle_timeout_s=0.2
    )
    assert stats == StreamStats(seconds=stats.seconds)
    assert stats.seconds >= 0.19  # waited for the idle timeout
    assert client.exists(stream) == 1  # MKSTREAM
    assert recorder.calls == 0


def test_a_decoding_client_and_a_shared_state(redis_url: str, stream: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        events = make_events(900, seed=7)
        publish_events(client, stream, events)
        state = VelocityState()
        recorder = Recorder()
        consumer = StreamConsumer(client, stream, "velocity", "c1", recorder, state=state)
        assert consumer.run(idle_timeout_s=0.2).events_read == 900
        expected = expected_features(events)
        assert_rows_match(state.features(expected.index.tolist()), expected)
        assert_rows_match(recorder.rows().groupby("customer_id").tail(1), expected)
    finally:
        client.close()
