"""Online retrieval latency, materialization and stream ingest of the Feast feature store.

One run, all in a temporary folder and on loopback: generate a marketplace, build the offline
features, apply the feature repository and materialize it into

* the embedded store (Feast's SQLite store behind our newest-value-wins guard), with Feast's stock
  SQLite store beside it as the materialization peer, and
* the production store (Redis online store, PostgreSQL SQL registry) under a unique project that
  is torn down at the end,

then time online reads of the fraud feature service ``fraud_scoring_v1`` for random known
customers (their device and a realistic checkout request), one entity and 100 entities per call:

* ours: :func:`getit_ml.features.store.online_features` (the full service, on-demand views
  included, plus the missing-value flags);
* peer: stock Feast, ``store.get_online_features(features=<the service's feature refs without
  the on-demand views>)`` for the same entities, timed interleaved with ours;
* a breakdown row: Feast's ``get_online_features(features=<the FeatureService>)`` without our
  wrapper (what the on-demand views cost, apart from the wrapper);
* over HTTP: ``getit-ml features serve`` (Feast's Python feature server, one worker), one
  keep-alive client posting to ``/get-online-features`` by feature service (ours) and by the
  same refs (peer).

Last, stream ingest: events of the marketplace (repeated, shifted in time, until there are
``--events``) are published to a fresh Redis Stream and consumed with
:class:`~getit_ml.features.streaming.StreamConsumer` three times (one consumer group each):
pushing to the embedded store, pushing to the Redis store, and with a no-op push (the ceiling).

Anchors (measured on this kind of machine, Feast 0.67, 20 features): in-process p99 0.40 ms
(SQLite) / 0.47 ms (Redis); ``feast serve`` p99 1.4-1.7 ms at ~650 req/s per worker; Feast's Go
server p99 1.8-4.3 ms (50 features). Goals (one entity, the full fraud service): p99 <= 1.5 ms in
process, <= 3 ms over HTTP; 100 entities p99 <= 10 ms; ingest >= 100k events/s.

Prints the load average (``os.getloadavg()``) at the start and at the end, a table
(measurement: ours, peer, anchor, goal) and ends with

    RESULT online_p99_ms_sqlite=<x> online_p99_ms_redis=<x> http_p99_ms=<x>
           materialize_rows_per_s=<x> stream_events_per_s=<x>

(on one line; one entity, the fraud feature service, our wrapper; materialization into the
embedded store; ingest pushing to the embedded store). Needs Redis and PostgreSQL
(``GETIT_ML_REDIS_URL``, ``GETIT_ML_POSTGRES_DSN``). Usage:

    .venv/bin/python benchmarks/feature_store.py --customers 20000 --days 30
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import redis
from feast import FeatureStore

from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.families import get_family
from getit_ml.features import schemas
from getit_ml.features.context import CHECKOUT_REQUEST_FIELDS
from getit_ml.features.engineering import build_offline_features
from getit_ml.features.store import (
    FEATURE_STORE_YAML,
    Profile,
    StoreLayout,
    apply_definitions,
    materialize,
    online_features,
    open_store,
    push_velocity,
)
from getit_ml.features.streaming import StreamConsumer, events_from_marketplace, publish_events
from getit_ml.processes import ManagedProcess
from getit_ml.services import free_port
from getit_ml.settings import PlatformSettings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The fraud family's feature service and the checkout request fields it reads.
SERVICE = get_family("fraud").feature_service
REQUEST_FIELDS = tuple(CHECKOUT_REQUEST_FIELDS)
ENTITY_KEYS = ("customer_id", "device_id")
HOUR_US = 3_600_000_000

ANCHOR_P99_MS_SQLITE = "0.40"
ANCHOR_P99_MS_REDIS = "0.47"
ANCHOR_HTTP_P99_MS = "1.4-1.7"
ANCHOR_HTTP_RPS = "~650"
GOAL_P99_MS_ONE = 1.5
GOAL_P99_MS_HTTP = 3.0
GOAL_P99_MS_BATCH = 10.0
GOAL_EVENTS_PER_S = 100_000.0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def log(message: str) -> None:
    """Progress on stderr: stdout holds only the table and the RESULT line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Requests:
    """Request rows of real checkouts: ours (keys + request fields) and the peer's (keys)."""

    ours: list[list[dict[str, Any]]]
    peer: list[list[dict[str, Any]]]


def checkout_rows(data_dir: Path) -> list[dict[str, Any]]:
    """One request row per payment of the marketplace: the customer, their device, the checkout."""
    columns = ["customer_id", "device_id", "payment_ts", "amount_bdt", "payment_method"]
    payments = ds.dataset(data_dir / "payments", partitioning="hive").to_table(
        columns=[*columns, "wallet_account_id"]
    )
    frame = payments.to_pandas()
    ts_us = frame["payment_ts"].astype("int64") // 1_000  # ns -> us
    wallet = frame["wallet_account_id"].fillna(-1).astype("int64")
    return [
        {
            "customer_id": int(c),
            "device_id": int(d),
            "request_ts_us": int(t),
            "amount_bdt": float(a),
            "payment_method": str(m),
            "checkout_device_id": int(d),
            "checkout_wallet_account_id": int(w),
        }
        for c, d, t, a, m, w in zip(
            frame["customer_id"],
            frame["device_id"],
            ts_us,
            frame["amount_bdt"],
            frame["payment_method"],
            wallet,
            strict=True,
        )
    ]


def sample_requests(
    rows: Sequence[dict[str, Any]], count: int, size: int, rng: np.random.Generator
) -> Requests:
    picks = rng.integers(0, len(rows), size=(count, size))
    ours = [[dict(rows[i]) for i in line] for line in picks.tolist()]
    peer = [[{k: row[k] for k in ENTITY_KEYS} for row in request] for request in ours]
    return Requests(ours, peer)


# ---------------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class Latency:
    """Milliseconds of each timed call."""

    ms: np.ndarray

    @property
    def n(self) -> int:
        return int(self.ms.size)

    @property
    def p50(self) -> float:
        return float(np.percentile(self.ms, 50))

    @property
    def p99(self) -> float:
        return float(np.percentile(self.ms, 99))

    @property
    def mean(self) -> float:
        return float(self.ms.mean())


def time_calls(
    call: Callable[[int], object], n: int, warmup: int, budget_s: float, label: str
) -> Latency:
    """Time ``call(i)`` for request indexes ``0..n-1`` after ``warmup`` untimed calls (indexes
    ``n..``); stops early once ``budget_s`` seconds of timed calls have passed.

    Series run one after another rather than interleaved: Feast keeps process-wide caches (the
    registry, resolved feature refs) that one kind of call may invalidate for the next.
    """
    for i in range(warmup):
        call(n + i)
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for i in range(n):
        started = time.perf_counter()
        call(i)
        finished = time.perf_counter()
        samples.append(finished - started)
        if finished > deadline:
            log(f"  {label}: time budget of {budget_s:g}s reached after {i + 1} of {n} requests")
            break
    return Latency(np.asarray(samples) * 1_000)


def non_on_demand_refs(store: FeatureStore) -> list[str]:
    """The fraud service's feature refs without its on-demand views: stock Feast's request."""
    on_demand = {view.name for view in store.list_on_demand_feature_views()}
    service = store.get_feature_service(SERVICE)
    return [
        f"{projection.name}:{feature.name}"
        for projection in service.feature_view_projections
        if projection.name not in on_demand
        for feature in projection.features
    ]


def service_feature_count(store: FeatureStore) -> int:
    service = store.get_feature_service(SERVICE)
    return sum(len(projection.features) for projection in service.feature_view_projections)


def check_online(store: FeatureStore, requests: Requests, label: str) -> float:
    """Fail loudly unless a read returns the whole service with values present; the share of
    present values over a few requests (known customers, so most should be there)."""
    expected = service_feature_count(store)
    present = []
    for request in requests.ours[:20]:
        result = online_features(store, SERVICE, request)
        if result.missing.shape[1] != expected:
            raise SystemExit(
                f"{label}: {result.missing.shape[1]} features back, expected {expected}"
            )
        present.append(1 - result.missing_share)
    share = float(np.mean(present))
    if share < 0.5:
        raise SystemExit(f"{label}: only {share:.0%} of the values present: not materialized?")
    return share


@dataclass
class OnlineResult:
    one: dict[str, Latency]
    batch: dict[str, Latency]
    present_share: float


def measure_online(
    store: FeatureStore,
    one: Requests,
    batch: Requests,
    warmups: tuple[int, int],
    budget_s: float,
    label: str,
) -> OnlineResult:
    """Latencies of ours, the peer and (one entity) Feast's own service call; ``warmups`` are
    the untimed calls before the one-entity and the batched series."""
    refs = non_on_demand_refs(store)
    service = store.get_feature_service(SERVICE)
    present = check_online(store, one, label)

    def calls(requests: Requests, breakdown: bool) -> dict[str, Callable[[int], object]]:
        chosen: dict[str, Callable[[int], object]] = {
            "ours": lambda i: online_features(store, SERVICE, requests.ours[i]),
            "peer": lambda i: store.get_online_features(
                features=refs, entity_rows=requests.peer[i]
            ).to_dict(),
        }
        if breakdown:
            chosen["feast_service"] = lambda i: store.get_online_features(
                features=service, entity_rows=requests.ours[i]
            ).to_dict()
        return chosen

    results: list[dict[str, Latency]] = []
    for requests, breakdown, warmup in ((one, True, warmups[0]), (batch, False, warmups[1])):
        n = len(requests.ours) - warmup
        size = len(requests.ours[0])
        log(f"{label}: {n} requests of {size} entities ({len(refs)} refs for the peer)")
        results.append(
            {
                name: time_calls(call, n, warmup, budget_s, f"{label} {name} x{size}")
                for name, call in calls(requests, breakdown).items()
            }
        )
    return OnlineResult(results[0], results[1], present)


# --------------------------------------------------------------------------- materialization
@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    offline_rows: int
    online_rows: int


def materialization_window(offline_dir: Path) -> Window:
    """The window covering every offline row, the rows in it, and how many of them reach the
    online store (the newest row per entity of each view)."""
    tables = {
        name: pq.read_table(
            offline_dir / file, columns=[schemas.SOURCES[name][0], schemas.TIMESTAMP_FIELD]
        ).to_pandas()
        for name, file in schemas.OFFLINE_FILES.items()
    }
    stamps = pd.concat([t[schemas.TIMESTAMP_FIELD] for t in tables.values()])
    start = stamps.min().to_pydatetime() - timedelta(seconds=1)
    end = stamps.max().to_pydatetime() + timedelta(seconds=1)
    offline_rows = 0
    online_rows = 0
    for name, table in tables.items():
        inside = table[table[schemas.TIMESTAMP_FIELD].between(start, end)]
        offline_rows += len(inside)
        online_rows += inside[schemas.SOURCES[name][0]].nunique()
    return Window(start, end, offline_rows, int(online_rows))


def timed_materialize(store: FeatureStore, window: Window) -> float:
    """Seconds to materialize every view over the window (Feast's chatter goes to stderr).

    An untimed run over an empty second before the window comes first, so that imports and
    first-use setup (the offline store's readers, the online store's connection) are not timed.
    """
    with contextlib.redirect_stdout(sys.stderr):
        empty = window.start - timedelta(seconds=1)
        materialize(store, empty - timedelta(seconds=1), empty)
        started = time.perf_counter()
        materialize(store, window.start, window.end)
        return time.perf_counter() - started


def stock_sqlite_repo(source: Path, target: Path) -> Path:
    """A copy of the feature repository whose online store is Feast's plain SQLite store."""
    target.mkdir(parents=True)
    for path in source.glob("*.py"):
        shutil.copy(path, target / path.name)
    text = (source / FEATURE_STORE_YAML).read_text(encoding="utf-8")
    guarded = "type: getit_ml.features.online_stores.GuardedSqliteOnlineStore"
    if guarded not in text:
        raise SystemExit(f"{source / FEATURE_STORE_YAML} no longer names the guarded store")
    (target / FEATURE_STORE_YAML).write_text(text.replace(guarded, "type: sqlite"), "utf-8")
    return target


# ------------------------------------------------------------------------------------- HTTP


@contextlib.contextmanager
def feature_server(
    settings: PlatformSettings, root: Path, home: Path, log_path: Path
) -> Iterator[str]:
    """``getit-ml features serve`` on a free loopback port; yields its base URL."""
    executable = Path(sys.executable).parent / "getit-ml"
    command = [str(executable) if executable.exists() else "getit-ml"]
    port = free_port()
    command += ["features", "serve", "--workdir", str(root), "--port", str(port)]
    env = {
        "GETIT_ML_HOME": str(home),
        "GETIT_ML_FEATURE_REPO": str(settings.feature_repo),
        "GETIT_ML_REDIS_URL": settings.redis_url,
        "GETIT_ML_POSTGRES_DSN": settings.postgres_dsn,
    }
    url = f"http://127.0.0.1:{port}"
    server = ManagedProcess(
        command,
        name="feature server",
        ready_url=f"{url}/health",
        env=env,
        cwd=REPO_ROOT,
        log=log_path,
        start_timeout_s=180.0,
        stop_timeout_s=30.0,
    )
    with server:
        yield url


def columns_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def check_http_response(response: Any, entities: int, expected_features: int) -> None:
    """Fail loudly on an error status or an unexpected body."""
    if response.status_code != 200:
        raise SystemExit(f"feature server answered {response.status_code}: {response.text[:2000]}")
    body = response.json()
    names = body.get("metadata", {}).get("feature_names")
    results = body.get("results")
    if not isinstance(names, list) or not isinstance(results, list) or len(names) != len(results):
        raise SystemExit(f"unexpected response shape: {str(body)[:2000]}")
    missing = set(ENTITY_KEYS) | set(REQUEST_FIELDS)
    features = [name for name in names if name not in missing]
    if len(features) < expected_features:
        raise SystemExit(f"{len(features)} features over HTTP, expected {expected_features}")
    for result in results:
        if len(result.get("values", [])) != entities or len(result.get("statuses", [])) != entities:
            raise SystemExit(f"unexpected result shape: {str(result)[:500]}")


def measure_http(
    url: str,
    refs: list[str],
    requests: Requests,
    expected_features: int,
    warmup: int,
    budget_s: float,
) -> dict[str, Latency]:
    import httpx

    ours = [{"feature_service": SERVICE, "entities": columns_of(r)} for r in requests.ours]
    peer = [{"features": refs, "entities": columns_of(r)} for r in requests.peer]
    with httpx.Client(base_url=url, timeout=30.0) as client:
        endpoint = "/get-online-features"
        check_http_response(client.post(endpoint, json=ours[0]), 1, expected_features)
        check_http_response(client.post(endpoint, json=peer[0]), 1, len(refs))

        def post(body: dict[str, Any]) -> None:
            response = client.post(endpoint, json=body)
            if response.status_code != 200:
                raise SystemExit(f"feature server answered {response.status_code}: {response.text}")

        n = len(ours) - warmup
        log(f"HTTP: {n} single-entity requests")
        return {
            "ours": time_calls(lambda i: post(ours[i]), n, warmup, budget_s, "HTTP ours"),
            "peer": time_calls(lambda i: post(peer[i]), n, warmup, budget_s, "HTTP peer"),
        }


# ---------------------------------------------------------------------------------- stream
def repeated_events(base: Sequence[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
    """The marketplace's events over and over, each pass shifted past the previous one (plus two
    hours, so no window spans passes and nothing is late), until ``total``."""
    span = base[-1]["ts"] - base[0]["ts"] + 2 * HOUR_US
    passes = (total + len(base) - 1) // len(base)
    shifted = (
        event if shift == 0 else {**event, "ts": event["ts"] + shift}
        for shift in (p * span for p in range(passes))
        for event in base
    )
    return islice(shifted, total)


@dataclass(frozen=True)
class IngestResult:
    published: int
    publish_s: float
    rates: dict[str, float]
    rows_pushed: dict[str, int]


def measure_ingest(
    client: redis.Redis,
    data_dir: Path,
    total: int,
    pushes: Mapping[str, Callable[[pd.DataFrame], None]],
) -> IngestResult:
    """Publish ``total`` events once; one consumer group per push reads them all."""
    base = list(events_from_marketplace(data_dir))
    if not base:
        raise SystemExit("the marketplace has no payment or click events")
    stream = f"getit-ml:bench:events:{uuid.uuid4().hex}"
    try:
        log(f"stream: publishing {total:,} events to {stream}")
        started = time.perf_counter()
        published = publish_events(client, stream, repeated_events(base, total))
        publish_s = time.perf_counter() - started
        rates: dict[str, float] = {}
        rows: dict[str, int] = {}
        for name, push in pushes.items():
            consumer = StreamConsumer(client, stream, f"bench-{name}", "bench", push)
            stats = consumer.run(max_events=published, idle_timeout_s=10)
            if stats.events_read != published:
                raise SystemExit(f"consumer {name} read {stats.events_read} of {published}")
            log(f"stream: {name}: {stats}")
            rates[name] = stats.events_per_s
            rows[name] = stats.rows_pushed
        return IngestResult(published, publish_s, rates, rows)
    finally:
        client.delete(stream)


# ----------------------------------------------------------------------------------- table
def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def goal_ms(value: float) -> str:
    return f"<= {value:g}"


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    header = ("measurement", "ours", "peer", "anchor", "goal")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        values = (f"{cell:>{width}}" for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([f"{first:<{widths[0]}}", *values])

    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line(row))


def counts(series: Mapping[str, Latency]) -> str:
    """Timed calls of ours/peer (they differ when a series hit its time budget)."""
    return f"{series['ours'].n}/{series['peer'].n}"


def online_rows(
    label: str, result: OnlineResult, batch_size: int, anchor: str
) -> list[tuple[str, str, str, str, str]]:
    one, batch = result.one, result.batch
    n1, nb = counts(one), counts(batch)
    return [
        (f"{label} 1 entity p50 ms (n={n1})", ms(one["ours"].p50), ms(one["peer"].p50), "", ""),
        (
            f"{label} 1 entity p99 ms (n={n1})",
            ms(one["ours"].p99),
            ms(one["peer"].p99),
            anchor,
            goal_ms(GOAL_P99_MS_ONE),
        ),
        (
            f"{label} 1 entity p99 ms, Feast service call, no wrapper",
            ms(one["feast_service"].p99),
            "",
            "",
            "",
        ),
        (
            f"{label} {batch_size} entities p50 ms (n={nb})",
            ms(batch["ours"].p50),
            ms(batch["peer"].p50),
            "",
            "",
        ),
        (
            f"{label} {batch_size} entities p99 ms (n={nb})",
            ms(batch["ours"].p99),
            ms(batch["peer"].p99),
            "",
            goal_ms(GOAL_P99_MS_BATCH),
        ),
        (f"{label} values present (known customers)", f"{result.present_share:.0%}", "", "", ""),
    ]


# ------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000, help="marketplace customers")
    parser.add_argument("--days", type=int, default=30, help="marketplace days")
    parser.add_argument("--requests", type=int, default=2_000, help="single-entity requests (N)")
    parser.add_argument("--batch-requests", type=int, default=200, help="batched requests (M)")
    parser.add_argument("--batch-size", type=int, default=100, help="entities per batched request")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests first")
    parser.add_argument("--events", type=int, default=500_000, help="stream events (K)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=12.0,
        help="stop a latency series after this many seconds (the table gives the n done)",
    )
    parser.add_argument("--seed", type=int, default=1, help="request sampling seed")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (temp)")
    args = parser.parse_args()
    for name in ("requests", "batch_requests", "batch_size", "events"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")

    print(f"start: {load_average()}", flush=True)
    settings = load_settings()
    repo = settings.feature_repo
    settings = load_settings(feature_repo=repo if repo.is_absolute() else REPO_ROOT / repo)
    rng = np.random.default_rng(args.seed)
    warmup = args.warmup
    batch_warmup = min(warmup, 10)  # a batched call costs ~100 one-entity calls

    with tempfile.TemporaryDirectory(prefix="getit-bench-fs-", dir=args.workdir) as tmp:
        work = Path(tmp)
        data_dir, root = work / "marketplace", work / "features"

        log(f"generating {args.customers:,} customers x {args.days} days")
        generate(MarketplaceConfig(customers=args.customers, days=args.days), data_dir)
        offline = build_offline_features(data_dir, StoreLayout(root).offline_dir)
        log(f"offline features: {offline}")
        window = materialization_window(StoreLayout(root).offline_dir)
        rows = checkout_rows(data_dir)
        one = sample_requests(rows, args.requests + warmup, 1, rng)
        batch = sample_requests(rows, args.batch_requests + batch_warmup, args.batch_size, rng)

        # Embedded: our guarded SQLite store; Feast's stock SQLite store as materialization peer.
        embedded = open_store(settings, root, Profile.EMBEDDED)
        apply_definitions(embedded, settings.feature_repo)
        log(f"materializing {window.online_rows:,} online rows into SQLite (guarded)")
        mat_sqlite_s = timed_materialize(embedded, window)
        stock_root = work / "stock-features"
        shutil.copytree(StoreLayout(root).offline_dir, StoreLayout(stock_root).offline_dir)
        stock_settings = load_settings(
            feature_repo=stock_sqlite_repo(settings.feature_repo, work / "stock-repo"),
            redis_url=settings.redis_url,
            postgres_dsn=settings.postgres_dsn,
        )
        stock = open_store(stock_settings, stock_root, Profile.EMBEDDED)
        apply_definitions(stock, stock_settings.feature_repo)
        log("materializing into Feast's stock SQLite store (peer)")
        mat_stock_s = timed_materialize(stock, window)
        n_features = service_feature_count(embedded)
        refs = non_on_demand_refs(embedded)

        sqlite_result = measure_online(
            embedded, one, batch, (warmup, batch_warmup), args.budget_s, "SQLite"
        )

        # Production: Redis online store + PostgreSQL registry, a project of its own.
        project = f"getit_bench_{uuid.uuid4().hex[:10]}"
        client = redis.Redis.from_url(settings.redis_url)
        production = open_store(settings, root, Profile.PRODUCTION, project=project)
        try:
            apply_definitions(production, settings.feature_repo)
            log(f"materializing into Redis (project {project})")
            mat_redis_s = timed_materialize(production, window)
            redis_result = measure_online(
                production, one, batch, (warmup, batch_warmup), args.budget_s, "Redis"
            )
            ingest = measure_ingest(
                client,
                data_dir,
                args.events,
                {
                    "sqlite": lambda frame: push_velocity(embedded, frame),
                    "redis": lambda frame: push_velocity(production, frame),
                    "noop": lambda frame: None,
                },
            )
        finally:
            log(f"tearing down project {project}")
            production.teardown()
            client.close()

        # HTTP: Feast's Python feature server over the embedded store.
        with feature_server(settings, root, work / "home", work / "server.log") as url:
            http = measure_http(url, refs, one, n_features, warmup, args.budget_s)

    mat_sqlite = window.online_rows / mat_sqlite_s
    mat_stock = window.online_rows / mat_stock_s
    mat_redis = window.online_rows / mat_redis_s
    http_rps = 1_000 / http["ours"].mean
    http_rps_peer = 1_000 / http["peer"].mean
    stream_rate = ingest.rates["sqlite"]

    print(
        f"fraud_scoring_v1: {n_features} features ({n_features - len(refs)} on demand); "
        f"peer = stock Feast get_online_features for the {len(refs)} stored refs, same entities; "
        f"{args.customers:,} customers x {args.days} days"
    )
    table: list[tuple[str, str, str, str, str]] = [
        (
            f"materialize rows/s, SQLite ({window.online_rows:,} rows, {mat_sqlite_s:.1f}s) "
            "| peer: stock SQLite",
            rate(mat_sqlite),
            rate(mat_stock),
            "",
            "",
        ),
        (f"materialize rows/s, Redis ({mat_redis_s:.1f}s)", rate(mat_redis), "", "", ""),
        (
            f"materialize offline rows read/s, SQLite ({window.offline_rows:,} rows)",
            rate(window.offline_rows / mat_sqlite_s),
            rate(window.offline_rows / mat_stock_s),
            "",
            "",
        ),
        *online_rows("in-process SQLite", sqlite_result, args.batch_size, ANCHOR_P99_MS_SQLITE),
        *online_rows("in-process Redis", redis_result, args.batch_size, ANCHOR_P99_MS_REDIS),
        (
            f"HTTP 1 entity p50 ms (n={counts(http)})",
            ms(http["ours"].p50),
            ms(http["peer"].p50),
            "",
            "",
        ),
        (
            f"HTTP 1 entity p99 ms (n={counts(http)}) | anchor: feast serve; Go 1.8-4.3",
            ms(http["ours"].p99),
            ms(http["peer"].p99),
            ANCHOR_HTTP_P99_MS,
            goal_ms(GOAL_P99_MS_HTTP),
        ),
        (
            "HTTP req/s, one sequential client",
            rate(http_rps),
            rate(http_rps_peer),
            ANCHOR_HTTP_RPS,
            "",
        ),
        (
            f"stream publish events/s ({ingest.published:,} events, pipelined XADD)",
            rate(ingest.published / ingest.publish_s),
            "",
            "",
            "",
        ),
        (
            "stream ingest events/s, push to SQLite | peer: no-op push",
            rate(stream_rate),
            rate(ingest.rates["noop"]),
            "",
            f">= {GOAL_EVENTS_PER_S:,.0f}",
        ),
        (
            "stream ingest events/s, push to Redis | peer: no-op push",
            rate(ingest.rates["redis"]),
            rate(ingest.rates["noop"]),
            "",
            f">= {GOAL_EVENTS_PER_S:,.0f}",
        ),
    ]
    print_table(table)
    print(f"end: {load_average()}")
    print(
        f"RESULT online_p99_ms_sqlite={sqlite_result.one['ours'].p99:.3f} "
        f"online_p99_ms_redis={redis_result.one['ours'].p99:.3f} "
        f"http_p99_ms={http['ours'].p99:.3f} "
        f"materialize_rows_per_s={mat_sqlite:.0f} "
        f"stream_events_per_s={stream_rate:.0f}"
    )


if __name__ == "__main__":
    main()
