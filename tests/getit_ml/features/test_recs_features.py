"""Customer x product ranking features on a hand-made marketplace whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from getit_ml.errors import UserError
from getit_ml.features.recs_features import (
    FEATURES,
    US_PER_DAY,
    MarketHistory,
    as_of_micros,
    candidate_features,
    festival_category_lift,
)

AS_OF = as_of_micros("2025-06-20")  # an ordinary day (no festival window)
FESTIVE = as_of_micros("2025-03-26")  # inside Eid-ul-Fitr's window


def _history() -> MarketHistory:
    products = pd.DataFrame(
        {
            "product_id": [1, 2, 3, 4],
            "category": ["fashion", "fashion", "books", "mobile"],
            "subcategory": ["Saree", "Panjabi", "Novel", "Smartphone"],
            "brand": ["Aarong", "Aarong", "Prothoma", "Walton"],
            "price_bdt": [1000.0, 2000.0, 500.0, 20000.0],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": [10, 20],
            "district": ["Dhaka", "Sylhet"],
            "division": ["Dhaka", "Sylhet"],
            "is_urban": [True, False],
        }
    )
    day = US_PER_DAY
    events = pd.DataFrame(
        [
            # customer 10: two fashion views (products 1, 2), a cart add of 1, a books view.
            (10, 1, AS_OF - 10 * day, "view"),
            (10, 2, AS_OF - 2 * day, "view"),
            (10, 1, AS_OF - 1 * day, "add_to_cart"),
            (10, 3, AS_OF - 40 * day, "view"),
            (10, 3, AS_OF - 1 * day, "remove_from_cart"),  # weight 0: ignored
            # customer 20: a phone purchase.
            (20, 4, AS_OF - 3 * day, "view"),
            (20, 4, AS_OF - 3 * day + 1, "purchase"),
            # at and after the request time: must not count.
            (10, 4, AS_OF, "purchase"),
            (10, 3, AS_OF + day, "view"),
        ],
        columns=["customer_id", "product_id", "ts_us", "event_type"],
    )
    return MarketHistory(events, products, customers)


def _features(pairs: list[tuple[int, int]], as_of: int = AS_OF) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=["customer_id", "product_id"])
    return candidate_features(_history(), frame, as_of)


def test_affinities_are_weighted_shares_of_past_interactions() -> None:
    f = _features([(10, 1), (10, 3), (10, 4), (20, 4)])
    # customer 10 before AS_OF: views of 1, 2, 3 (1 each) and a cart add of 1 (3): total 6.
    assert f["category_affinity"].tolist() == pytest.approx([5 / 6, 1 / 6, 0.0, 1.0])
    assert f["brand_affinity"].tolist() == pytest.approx([5 / 6, 1 / 6, 0.0, 1.0])
    assert f["subcategory_affinity"].tolist() == pytest.approx([4 / 6, 1 / 6, 0.0, 1.0])
    # 30 days: the books view (40 days ago) drops out: 5 fashion of 5.
    assert f["category_affinity_30d"].tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0])


def test_point_in_time_excludes_the_request_moment_and_later() -> None:
    f = _features([(10, 4), (10, 3)])
    assert f["customer_product_purchases"].tolist() == [0.0, 0.0]
    assert f["days_since_product_view"].iloc[1] == pytest.approx(40.0)
    # The purchase at AS_OF counts once the request is a day later.
    later = _features([(10, 4)], AS_OF + US_PER_DAY)
    assert later["customer_product_purchases"].tolist() == [1.0]


def test_recency_counts_and_price_against_usual_spend() -> None:
    f = _features([(10, 1), (10, 2), (10, 4), (20, 1)])
    assert f["days_since_product_view"].iloc[0] == pytest.approx(10.0)
    assert f["days_since_product_view"].iloc[1] == pytest.approx(2.0)
    assert math.isnan(f["days_since_product_view"].iloc[2])  # never viewed: missing, not 0
    assert f["days_since_category_view"].iloc[0] == pytest.approx(2.0)  # fashion's last view
    assert f["customer_product_views"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert f["customer_product_carts"].tolist() == [1.0, 0.0, 0.0, 0.0]
    # customer 10 viewed prices 1000, 2000, 500: median 1000.
    assert f["price_vs_usual"].iloc[1] == pytest.approx(math.log(2.0))
    assert f["price_vs_usual"].iloc[3] == pytest.approx(math.log(1000 / 20000))


def test_popularity_overall_and_in_the_customers_district() -> None:
    f = _features([(10, 1), (20, 1), (20, 4), (10, 4)])
    # product 1 within 7 days: the cart add (3); the view 10 days ago counts in 30 days only.
    assert f["product_popularity_7d"].iloc[0] == pytest.approx(math.log1p(3.0))
    assert f["product_popularity_30d"].iloc[0] == pytest.approx(math.log1p(4.0))
    assert f["district_popularity_30d"].tolist() == pytest.approx(
        [math.log1p(4.0), 0.0, math.log1p(6.0), 0.0]
    )
    # product 4 is Sylhet's: its lift is higher for the Sylhet customer than for Dhaka's.
    assert f["district_lift"].iloc[2] > 1.0 > f["district_lift"].iloc[3]
    assert f["is_urban"].tolist() == [1.0, 0.0, 0.0, 1.0]


def test_festival_context_at_the_request_time() -> None:
    ordinary = _features([(10, 1)])
    festive = _features([(10, 1)], FESTIVE)
    assert ordinary["in_festival"].tolist() == [0.0]
    assert festive["in_festival"].tolist() == [1.0]
    assert festive["festival_demand_multiplier"].iloc[0] > 2.0  # Eid-ul-Fitr's build-up
    assert ordinary["festival_x_category_lift"].tolist() == [1.0]
    assert list(festive.columns) == list(FEATURES)


def test_festival_lift_is_the_festival_share_over_the_ordinary_share() -> None:
    day = US_PER_DAY
    events = pd.DataFrame(
        [
            (10, 1, FESTIVE, "purchase"),  # festival: fashion 2 of 2
            (10, 2, FESTIVE + 1, "add_to_cart"),
            (10, 1, AS_OF - day, "purchase"),  # ordinary: fashion 1 of 2
            (10, 3, AS_OF - day, "purchase"),
        ],
        columns=["customer_id", "product_id", "ts_us", "event_type"],
    )
    lift = festival_category_lift(events, _history().products)
    assert lift["fashion"] == pytest.approx(2.0)
    assert lift["books"] == pytest.approx(0.0)
    assert lift["sports"] == pytest.approx(1.0)  # no sports on either side: no evidence, no lift


def test_unknown_candidates_and_bad_tables_are_user_errors() -> None:
    with pytest.raises(UserError, match="not in products"):
        _features([(10, 99)])
    with pytest.raises(UserError, match="customers not in customers"):
        _features([(99, 1)])
    history = _history()
    with pytest.raises(UserError, match="lacks column"):
        MarketHistory(history.events.drop(columns="ts_us"), history.products, history.customers)
    with pytest.raises(UserError, match="YYYY-MM-DD"):
        as_of_micros("20 June")
    assert np.isfinite(_features([(20, 4)])["category_code"]).all()
