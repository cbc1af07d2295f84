"""Bought together and up-sell, on hand-made baskets and sessions whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from getit_ml.errors import UserError
from getit_ml.training.recommenders.cross_sell import BoughtTogether, UpSell


def baskets() -> tuple[list[int], list[int]]:
    """20 baskets. Products 1 and 2 meet in baskets 0-3 (and are alone nowhere else); product 9
    is in every basket (a best seller); products 5 and 6 meet once (basket 4); 7 and 8 meet in
    baskets 5-7 and 8 also sits in baskets 8-15."""
    lines: list[tuple[int, int]] = []
    for b in range(20):
        lines.append((b, 9))
    for b in range(4):
        lines += [(b, 1), (b, 2)]
    lines += [(4, 5), (4, 6)]
    for b in range(5, 8):
        lines += [(b, 7), (b, 8)]
    for b in range(8, 16):
        lines.append((b, 8))
    lines.append((0, 1))  # a repeated line: the same product twice in one basket counts once
    ids, products = zip(*lines, strict=True)
    return list(ids), list(products)


def test_pair_statistics_match_a_hand_computation() -> None:
    model = BoughtTogether(min_support=3, min_lift=1.5, alpha=0.05).fit(*baskets())
    [pair] = model.for_product(1)
    # n = 20, n_1 = n_2 = 4, n_12 = 4: lift = 4 * 20 / 16 = 5; confidence = 4 / 4 = 1;
    # p = P(Binomial(4, 4/20) >= 4) = 0.2 ** 4.
    assert pair.product_id == 2
    assert pair.support == 4
    assert pair.lift == pytest.approx(5.0)
    assert pair.score == pytest.approx(1.0)
    assert pair.p_value == pytest.approx(0.2**4)
    assert model.n_baskets == 20


def test_best_seller_is_not_bought_together_with_everything() -> None:
    # 9 is in every basket: lift exactly 1 with anything, so the lift floor removes it although
    # its raw co-purchase count with 1 (4) is as high as 2's.
    model = BoughtTogether(min_support=1, min_lift=1.01, alpha=1.0).fit(*baskets())
    suggested = [s.product_id for s in model.for_product(1)]
    assert 9 not in suggested
    assert suggested == [2]


def test_one_shared_basket_is_not_enough() -> None:
    # 5 and 6 meet once with lift 20: the support floor stops it; without the floor it passes.
    strict = BoughtTogether(min_support=2, min_lift=1.5, alpha=0.05).fit(*baskets())
    assert strict.for_product(5) == []
    loose = BoughtTogether(min_support=1, min_lift=1.5, alpha=0.05).fit(*baskets())
    [pair] = loose.for_product(5)
    assert pair.product_id == 6
    assert pair.lift == pytest.approx(20.0)


def test_significance_floor_uses_the_one_sided_binomial_test() -> None:
    # 7 -> 8: n_7 = 3, n_8 = 11, n_78 = 3: lift = 3 * 20 / 33 = 1.818; p = (11/20) ** 3 = 0.166.
    expected = scipy.stats.binom.sf(2, 3, 11 / 20)
    assert expected == pytest.approx((11 / 20) ** 3)
    tight = BoughtTogether(min_support=3, min_lift=1.5, alpha=0.1).fit(*baskets())
    assert tight.for_product(7) == []
    lax = BoughtTogether(min_support=3, min_lift=1.5, alpha=0.2).fit(*baskets())
    [pair] = lax.for_product(7)
    assert pair.product_id == 8
    assert pair.p_value == pytest.approx(expected)
    assert pair.lift == pytest.approx(60 / 33)


def test_basket_sums_confidences_and_excludes_its_own_items() -> None:
    model = BoughtTogether(min_support=3, min_lift=1.5, alpha=0.2).fit(*baskets())
    # Basket {1, 7}: 2 via 1 (confidence 1), 8 via 7 (confidence 1); 1 and 7 themselves excluded.
    result = model.for_basket([1, 7])
    assert {s.product_id for s in result} == {2, 8}
    assert all(s.product_id not in (1, 7) for s in result)
    # Basket {1, 2}: each other's only partner, and both are in the basket: nothing left.
    assert model.for_basket([1, 2]) == []
    # Products never bought contribute nothing; k truncates.
    assert [s.product_id for s in model.for_basket([1, 7, 999], k=1)] == [2]


def test_a_candidate_with_several_partners_ranks_first() -> None:
    # a with c (3 baskets), b with c (3 baskets), a with d (3 baskets), plus 11 fillers.
    lines = []
    for basket in range(3):
        lines += [(basket, 100), (basket, 300)]
    for basket in range(3, 6):
        lines += [(basket, 200), (basket, 300)]
    for basket in range(6, 9):
        lines += [(basket, 100), (basket, 400)]
    lines += [(basket, 500) for basket in range(9, 20)]
    ids, products = zip(*lines, strict=True)
    model = BoughtTogether(min_support=3, min_lift=1.0, alpha=1.0).fit(ids, products)
    ranked = model.for_basket([100, 200])
    assert [s.product_id for s in ranked] == [300, 400]
    # 300: 3/6 from 100 + 3/3 from 200; 400: 3/6 from 100.
    assert ranked[0].score == pytest.approx(1.5)
    assert ranked[1].score == pytest.approx(0.5)


def test_bad_input_is_a_user_error() -> None:
    with pytest.raises(UserError, match="min_lift"):
        BoughtTogether(min_lift=0.5)
    with pytest.raises(UserError, match="alpha"):
        BoughtTogether(alpha=0.0)
    with pytest.raises(UserError, match="same length"):
        BoughtTogether().fit([1, 2], [3])
    with pytest.raises(UserError, match="no basket lines"):
        BoughtTogether().fit([], [])
    with pytest.raises(UserError, match="fit the model"):
        BoughtTogether().for_product(1)
    with pytest.raises(UserError, match="integer ids"):
        BoughtTogether().fit([1.5], [2])


def catalogue() -> pd.DataFrame:
    """Kettles (four, prices 1000-4000) and a fan; bands of 4 within the subcategory."""
    return pd.DataFrame(
        {
            "product_id": [1, 2, 3, 4, 5],
            "subcategory": ["kettle", "kettle", "kettle", "kettle", "fan"],
            "price_bdt": [1000.0, 2000.0, 3000.0, 4000.0, 2500.0],
        }
    )


def sessions() -> pd.DataFrame:
    """Ten sessions view kettles 1 and 2 (two buy 2); ten view 1 and 3 (eight buy 3); product
    4 is viewed by itself in ten sessions, one of which buys it; the fan is co-viewed too."""
    rows: list[tuple[int, str, int]] = []
    session = 0
    for n in range(10):
        rows += [(session, "view", 1), (session, "view", 2), (session, "view", 5)]
        if n < 2:
            rows.append((session, "purchase", 2))
        session += 1
    for n in range(10):
        rows += [(session, "view", 1), (session, "view", 3), (session, "add_to_cart", 3)]
        if n < 8:
            rows.append((session, "purchase", 3))
        session += 1
    for n in range(10):
        rows.append((session, "view", 4))
        if n < 1:
            rows.append((session, "purchase", 4))
        session += 1
    return pd.DataFrame(rows, columns=["session_id", "event_type", "product_id"])


def test_up_sell_ranks_higher_bands_of_the_subcategory_by_acceptance() -> None:
    model = UpSell(bands=4, max_price_ratio=10.0, prior_views=10.0).fit(catalogue(), sessions())
    assert [model.band(p) for p in (1, 2, 3, 4)] == [0, 1, 2, 3]
    result = model.for_product(1)
    # The fan (another subcategory) and product 1 itself never appear.
    assert [s.product_id for s in result] == [3, 2, 4]
    # 30 sessions viewed a kettle; 2, 3 and 4 were bought in 2, 8 and 1 of them: q = b / 30.
    # 20 sessions viewed product 1; of them 2 bought product 2, 8 bought 3, none bought 4.
    q = {2: 2 / 30, 3: 8 / 30, 4: 1 / 30}
    buys_after_1 = {2: 2, 3: 8, 4: 0}
    expected = {p: (buys_after_1[p] + 10 * q[p]) / (20 + 10) for p in q}
    for s in result:
        assert s.score == pytest.approx(expected[s.product_id])
    assert {s.product_id: s.support for s in result} == {3: 10, 2: 10, 4: 0}


def test_up_sell_respects_the_price_ratio_and_the_top_band() -> None:
    model = UpSell(bands=4, max_price_ratio=2.5).fit(catalogue(), sessions())
    assert [s.product_id for s in model.for_product(1)] == [2]  # 3000 > 2.5 x 1000
    assert model.for_product(4) == []  # already the dearest kettle
    assert model.for_product(5) == []  # the only fan
    assert model.for_product(999) == []
    assert math.isnan(model.for_product(1)[0].lift)


def test_up_sell_bad_input() -> None:
    products = catalogue()
    with pytest.raises(UserError, match="missing column"):
        UpSell().fit(products.drop(columns="price_bdt"), sessions())
    bad = products.assign(price_bdt=np.where(products["product_id"] == 1, 0.0, 1.0))
    with pytest.raises(UserError, match="positive"):
        UpSell().fit(bad, sessions())
    with pytest.raises(UserError, match="max_price_ratio"):
        UpSell(max_price_ratio=1.0)
    with pytest.raises(UserError, match="fit the model"):
        UpSell().for_product(1)
