"""The synthetic marketplace: deterministic, in contract, and with the promised behaviour."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from getit_ml.data.contracts import CONTRACTS, MARKETPLACE_TABLES
from getit_ml.data.generator import FRESH_ID_BASE, MarketplaceConfig, generate
from getit_ml.data.reference import FRAUD_PATTERNS
from getit_ml.errors import UserError


def _read(root: Path, name: str) -> pa.Table:
    path = root / name
    if path.is_dir():
        return ds.dataset(path, format="parquet", partitioning="hive").to_table(
            columns=list(CONTRACTS[name].column_names)
        )
    return pq.read_table(root / f"{name}.parquet")


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two months around Eid-ul-Fitr 2025 for 60,000 customers (about 1M events)."""
    out = tmp_path_factory.mktemp("market") / "data"
    generate(MarketplaceConfig(customers=60_000, days=60, seed=11, start=date(2025, 3, 1)), out)
    return out


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    config = MarketplaceConfig(customers=300, days=5, seed=3)
    generate(config, tmp_path / "a")
    generate(config, tmp_path / "b")
    first, second = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert first == second
    assert len(first) >= len(MARKETPLACE_TABLES)
    generate(MarketplaceConfig(customers=300, days=5, seed=4), tmp_path / "c")
    assert _digest(tmp_path / "c") != first


def test_every_table_has_its_contract_schema(market: Path) -> None:
    for name in MARKETPLACE_TABLES:
        table = _read(market, name)
        assert table.schema.equals(CONTRACTS[name].schema()), name
        assert table.num_rows > 0, name


def test_large_tables_are_partitioned_by_day(market: Path) -> None:
    for name in ("events", "orders", "order_items", "payments"):
        partitions = sorted(p.name for p in (market / name).iterdir())
        assert partitions[0] == "date=2025-03-01"
        assert len(partitions) == 60


def test_ids_are_unique_and_references_resolve(market: Path) -> None:
    for name in ("events", "orders", "payments", "reviews", "customers", "products"):
        key = CONTRACTS[name].primary_key
        assert key is not None
        column = _read(market, name)[key]
        assert pc.count_distinct(column).as_py() == len(column), name
    customers = _read(market, "customers")["customer_id"]
    orders = _read(market, "orders")
    assert pc.all(pc.is_in(orders["customer_id"], customers)).as_py()
    items = _read(market, "order_items")
    assert pc.all(pc.is_in(items["order_id"], orders["order_id"])).as_py()
    paid = pc.drop_null(_read(market, "payments")["order_id"])
    assert pc.all(pc.is_in(paid, orders["order_id"])).as_py()


def test_funnel_rates(market: Path) -> None:
    events = _read(market, "events").to_pandas()
    counts = events["event_type"].value_counts()
    view_to_cart = counts["add_to_cart"] / counts["view"]
    cart_to_purchase = counts["purchase"] / counts["add_to_cart"]
    sessions = events["session_id"].nunique()
    buying = events.loc[events["event_type"] == "purchase", "session_id"].nunique()
    assert 0.04 < view_to_cart < 0.09
    assert 0.18 < cart_to_purchase < 0.40
    assert 0.015 < buying / sessions < 0.06
    searches = events[events["event_type"] == "search"]
    assert searches["query"].notna().all()
    assert events.loc[events["event_type"] != "search", "query"].isna().all()


def test_events_are_in_time_order_within_sessions(market: Path) -> None:
    events = _read(market, "events").to_pandas()
    out_of_order = events.groupby("session_id")["event_ts"].diff().dt.total_seconds() < 0
    assert not out_of_order.any()


def test_friday_is_the_busiest_weekday(market: Path) -> None:
    events = _read(market, "events").to_pandas()
    local = events["event_ts"].dt.tz_convert("Asia/Dhaka")
    calendar = _read(market, "calendar").to_pandas().set_index("date")
    ordinary_days = set(calendar.index[calendar["demand_multiplier"].between(0.99, 1.01)])
    sessions = events.assign(day=local.dt.date)[lambda f: f["day"].isin(ordinary_days)]
    per_day = sessions.groupby("day")["session_id"].nunique()
    weekday = per_day.groupby([d.weekday() for d in per_day.index]).mean()
    assert weekday.idxmax() == 4  # Friday


def test_cash_on_delivery_dominates_outside_dhaka(market: Path) -> None:
    orders = _read(market, "orders").to_pandas()
    customers = _read(market, "customers").to_pandas().set_index("customer_id")
    region = customers.loc[orders["customer_id"], "division"].to_numpy()
    cod = orders["payment_method"].eq("cod")
    outside = region != "Dhaka"
    assert cod[outside].mean() > 0.45
    assert cod[outside].mean() > cod[~outside].mean() + 0.08
    mix = orders["payment_method"].value_counts(normalize=True)
    assert set(mix.index) == {"bkash", "nagad", "rocket", "card", "cod"}
    assert mix["bkash"] > mix["nagad"] > mix["rocket"]


def test_festival_days_sell_more(market: Path) -> None:
    demand = _read(market, "daily_demand").to_pandas()
    calendar = _read(market, "calendar").to_pandas()
    per_day = demand.groupby("date")["units_sold"].sum().rename("units").reset_index()
    per_day = per_day.merge(calendar, on="date")
    festive = per_day[per_day["demand_multiplier"] >= 1.5]["units"].mean()
    ordinary = per_day[per_day["demand_multiplier"].between(0.99, 1.01)]["units"].mean()
    assert festive > 1.3 * ordinary


def test_expected_units_are_the_expectation_of_units_sold(market: Path) -> None:
    demand = _read(market, "daily_demand").to_pandas()
    ratio = demand["units_sold"].sum() / demand["expected_units"].sum()
    assert 0.93 < ratio < 1.07
    by_category = (
        demand.merge(
            _read(market, "products").select(["product_id", "category"]).to_pandas(),
            on="product_id",
        )
        .groupby("category")[["units_sold", "expected_units"]]
        .sum()
    )
    relative = (by_category["units_sold"] / by_category["expected_units"]).to_numpy()
    assert ((relative > 0.75) & (relative < 1.25)).all()


def test_fraud_rate_and_pattern_mix(market: Path) -> None:
    payments = _read(market, "payments").to_pandas()
    rate = payments["is_fraud"].mean()
    assert 0.004 < rate < 0.012
    assert (payments["fraud_pattern"].notna() == payments["is_fraud"]).all()
    mix = payments.loc[payments["is_fraud"], "fraud_pattern"].value_counts(normalize=True)
    assert set(mix.index) == set(FRAUD_PATTERNS)
    assert mix.min() > 0.04


def test_fraud_patterns_carry_their_signatures(market: Path) -> None:
    payments = _read(market, "payments").to_pandas()
    genuine = payments[~payments["is_fraud"]]
    ato = payments[payments["fraud_pattern"] == "account_takeover"]
    assert (ato["device_id"] >= FRESH_ID_BASE).all()  # a device never seen before
    assert ato["amount_bdt"].median() > 5 * genuine["amount_bdt"].median()
    local_hour = ato["payment_ts"].dt.tz_convert("Asia/Dhaka").dt.hour
    assert (local_hour < 6).all()
    testing = payments[payments["fraud_pattern"] == "card_testing"]
    assert (testing["payment_method"] == "card").all()
    assert testing["order_id"].isna().all()
    assert testing["amount_bdt"].max() <= 150
    assert (testing["status"] == "failed").mean() > 0.7
    mules = payments[payments["fraud_pattern"] == "mule_ring"]
    accounts_per_device = mules.groupby("device_id")["customer_id"].nunique()
    assert accounts_per_device.max() > 1
    promo = payments[payments["fraud_pattern"] == "promo_abuse"]
    orders = _read(market, "orders").to_pandas().set_index("order_id")
    assert (orders.loc[promo["order_id"], "voucher_code"] == "NEWUSER50").all()
    burst = payments[payments["fraud_pattern"] == "velocity_burst"]
    per_account = burst.groupby("customer_id")["payment_id"].count()
    assert per_account.min() >= 5


def test_reviews_follow_quality_and_rating(market: Path) -> None:
    reviews = _read(market, "reviews").to_pandas()
    products = _read(market, "products").to_pandas().set_index("product_id")
    quality = products.loc[reviews["product_id"], "true_quality"].to_numpy()
    assert np.corrcoef(quality, reviews["rating"].to_numpy())[0, 1] > 0.4
    by_rating = reviews.groupby("rating")["sentiment"].agg(lambda s: s.mode()[0])
    assert by_rating.loc[1] == "negative"
    assert by_rating.loc[3] == "neutral"
    assert by_rating.loc[5] == "positive"
    assert set(reviews["language"]) == {"bn", "en", "banglish"}
    bengali = reviews[reviews["language"] == "bn"]["text"]
    assert bengali.str.contains("[\u0980-\u09ff]", regex=True).all()


def test_customers_are_dhaka_and_chattogram_heavy(market: Path) -> None:
    customers = _read(market, "customers").to_pandas()
    share = customers["division"].value_counts(normalize=True)
    assert len(share) == 8
    assert share.index[0] == "Dhaka"
    assert share.index[1] == "Chattogram"
    assert customers["district"].nunique() > 40


def test_bad_configuration_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--customers"):
        MarketplaceConfig(customers=5)
    with pytest.raises(UserError, match="--days"):
        MarketplaceConfig(days=0)
    (tmp_path / "keep.txt").write_text("do not overwrite")
    with pytest.raises(UserError, match="not empty"):
        generate(MarketplaceConfig(customers=200, days=1), tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "do not overwrite"


def test_fraud_orders_come_with_a_clickstream(market: Path) -> None:
    """Fraudsters browse before they buy: no fraud pattern is given away by a missing session."""
    payments = _read(market, "payments").to_pandas()
    orders = _read(market, "orders").to_pandas().set_index("order_id")
    events = _read(market, "events").to_pandas()
    fraud = payments[payments["is_fraud"] & payments["order_id"].notna()]
    assert len(fraud) > 0
    sessions = orders.loc[fraud["order_id"].astype("int64"), "session_id"]
    purchases = events[events["event_type"] == "purchase"]
    assert sessions.isin(purchases["session_id"]).all()
    per_session = events[events["session_id"].isin(sessions)].groupby("session_id")
    assert (per_session["event_type"].agg(set) == {"view", "add_to_cart", "purchase"}).all()
    first = per_session["event_ts"].min()
    order_ts = orders.loc[fraud["order_id"].astype("int64")].set_index("session_id")["order_ts"]
    assert (first.loc[order_ts.index] <= order_ts).all()
