"""Cold start and cross-sell on the synthetic marketplace, each beside its baseline.

The marketplace (``--market DIR``; generated there with ``--customers`` / ``--days`` when absent)
is cut in time: interactions (views, cart adds and purchases of logged-in customers) before the
last ``--test-fraction`` of the run train, the rest test; a test item is relevant to a customer
when they added it to a cart or bought it.

* **New items**: the last ``--new-fraction`` of products by ``listed_ts`` lose every interaction
  in training (they were "not there yet"). Warm customers who carted or bought new items in the
  test window rank the new items only (the new-arrivals shelf), k = 10. Baseline: popularity —
  a new item has none, so each is scored by the mean training popularity of its subcategory's
  warm items. Ours: :class:`NewItems` over the catalogue's E5 text embedding + category + price
  band, ``projection`` (the default, and the RESULT's) and ``neighbours``.
* **New customers**: the last ``--new-fraction`` of customers by ``signup_ts`` lose every
  interaction in training. Those with a cart add or purchase after their first session rank
  every warm item, k = 10 (relevant: what they carted or bought after the first session; new
  items among it are counted and left out: neither side can recommend them). Baselines:
  popularity, and popularity by segment (district, device, age band; ``session_weight=0``).
  Ours: segments blended with the first session's views.
* **Cross-sell**: orders before the cut train; each held-out order with two or more distinct
  products is queried once per product; its other products are relevant. Precision@10 and
  hit rate@10 of bought together (baskets = orders; and baskets = sessions' cart adds, a denser
  definition), of bought together filled up with the most bought products, of raw co-purchase
  with no floors (what the floors protect against), and of "most bought" alone.
* **Up-sell**: held-out sessions that viewed a product and bought one of its up-sell candidates
  (same subcategory, higher price band): the bought one's rank among the candidates ordered by
  :class:`UpSell`'s predicted acceptance, against the same candidates ordered by sales.

Figures are nDCG@10 and Recall@10 as in :mod:`getit_ml.training.recs_metrics` (Recommenders'
definitions). The catalogue is embedded once per run (``--embedding-cache FILE`` keeps it across
runs; it is keyed by the texts' sha256). The load average is printed at the start and the end.
Ends with one line:

    RESULT new_items_ndcg_at_10=<x> new_items_recall_at_10=<x> new_items_popularity_ndcg_at_10=<x>
    new_customers_ndcg_at_10=<x> new_customers_recall_at_10=<x>
    new_customers_popularity_ndcg_at_10=<x> new_customers_segment_ndcg_at_10=<x>
    cross_sell_precision_at_10=<x> most_bought_precision_at_10=<x> up_sell_hit_at_5=<x>
    up_sell_most_bought_hit_at_5=<x>

Usage: ``.venv/bin/python benchmarks/recs_cold_start.py --market /tmp/recs-market-d365``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import scipy.sparse as sp

from getit_ml.data.generator import MarketplaceConfig, generate
from getit_ml.log import configure_logging
from getit_ml.training.interactions import FloatMatrix, InteractionMatrix
from getit_ml.training.recommenders.cold_start import (
    CatalogueEmbedding,
    E5Embedder,
    NewCustomers,
    NewItems,
    product_texts,
)
from getit_ml.training.recommenders.cross_sell import BoughtTogether, UpSell
from getit_ml.training.recs_metrics import RankingAccumulator, top_k

K = 10
RELEVANT = ("add_to_cart", "purchase")
INTERACTIONS = ("view", "add_to_cart", "purchase")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def read(root: Path, name: str, columns: Sequence[str]) -> pd.DataFrame:
    path = root / f"{name}.parquet"
    source = path if path.exists() else root / name
    table = ds.dataset(source, format="parquet", partitioning="hive").to_table(columns=columns)
    return table.to_pandas()


class CachedEmbedder:
    """E5, with the catalogue's vectors kept in a file between runs (keyed by the texts)."""

    def __init__(self, cache: Path | None) -> None:
        self.cache = cache
        self.inner = E5Embedder(threads=1)
        self.seconds = 0.0

    def passage(self, texts: Sequence[str]) -> FloatMatrix:
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()
        if self.cache is not None and self.cache.exists():
            stored = np.load(self.cache)
            if str(stored["key"]) == key:
                return np.asarray(stored["vectors"], dtype=np.float32)
        started = time.perf_counter()
        vectors = self.inner.passage(texts)
        self.seconds = time.perf_counter() - started
        if self.cache is not None:
            np.savez(self.cache, key=np.array(key), vectors=vectors)
        return vectors


def evaluate_lists(lists: np.ndarray, relevant: sp.csr_matrix, n_items: int) -> dict[str, float]:
    accumulator = RankingAccumulator(K, np.ones(n_items))
    accumulator.add(lists, relevant)
    return accumulator.result()


def relevance(
    frame: pd.DataFrame, users: np.ndarray, item_ids: np.ndarray
) -> tuple[sp.csr_matrix, int]:
    """Rows ``users`` (customer ids), columns ``item_ids``; relevant pairs off the axis counted."""
    on_axis = frame["product_id"].isin(item_ids)
    kept = frame[on_axis]
    row_of = pd.Series(np.arange(len(users)), index=users)
    col_of = pd.Series(np.arange(len(item_ids)), index=item_ids)
    matrix = sp.csr_matrix(
        (
            np.ones(len(kept)),
            (row_of[kept["customer_id"]].to_numpy(), col_of[kept["product_id"]].to_numpy()),
        ),
        shape=(len(users), len(item_ids)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix, int((~on_axis).sum())


def new_items_experiment(
    train: InteractionMatrix,
    test: pd.DataFrame,
    products: pd.DataFrame,
    embedding: CatalogueEmbedding,
    new_ids: np.ndarray,
) -> dict[str, dict[str, float]]:
    wanted = test[test["product_id"].isin(new_ids) & test["customer_id"].isin(train.user_ids)]
    users = np.sort(wanted["customer_id"].unique())
    truth, _ = relevance(wanted, users, new_ids)
    rows = np.searchsorted(train.user_ids, users)
    warm_features = embedding.of(train.item_ids)
    new_features = embedding.of(new_ids)
    results: dict[str, dict[str, float]] = {}
    # Baseline: a new item's subcategory's mean warm popularity (it has none of its own).
    counts = np.asarray(train.binary().matrix.sum(axis=0)).ravel()
    sub = products.set_index("product_id")["subcategory"]
    warm_sub = pd.Series(counts, index=sub.loc[train.item_ids].to_numpy())
    sub_pop = warm_sub.groupby(level=0).mean()
    baseline = sub.loc[new_ids].map(sub_pop).fillna(0.0).to_numpy(np.float32)
    scores = np.tile(baseline, (len(users), 1))
    results["popularity (of the subcategory)"] = evaluate_lists(
        top_k(scores, K), truth, len(new_ids)
    )
    for method in ("neighbours", "projection"):
        model = NewItems(method=method).fit(train, warm_features)
        scores = model.score(rows, new_features)
        results[f"ours: E5 + category + band, {method}"] = evaluate_lists(
            top_k(scores, K), truth, len(new_ids)
        )
    results["_users"] = {"users": float(len(users)), "items": float(len(new_ids))}
    return results


def new_customers_experiment(
    train: InteractionMatrix,
    events: pd.DataFrame,
    customers: pd.DataFrame,
    new_customer_ids: np.ndarray,
    session_weight: float,
) -> dict[str, dict[str, float]]:
    mine = events[events["customer_id"].isin(new_customer_ids)]
    first_session = (
        mine.sort_values(["event_ts", "event_id"]).groupby("customer_id")["session_id"].first()
    )
    later = mine[mine["session_id"] != mine["customer_id"].map(first_session)]
    later = later[later["event_type"].isin(RELEVANT)]
    users = np.sort(later["customer_id"].unique())
    truth, off_axis = relevance(later, users, train.item_ids)
    keep = np.diff(truth.indptr) > 0
    users, truth = users[keep], truth[np.flatnonzero(keep)]
    first = mine[mine["session_id"] == mine["customer_id"].map(first_session)]
    views = first[first["event_type"] == "view"].groupby("customer_id")["product_id"].apply(list)
    first_views = [views.get(u, []) for u in users]
    profiles = customers.set_index("customer_id").loc[users].reset_index()
    results: dict[str, dict[str, float]] = {}
    counts = np.asarray(train.binary().matrix.sum(axis=0)).ravel().astype(np.float32)
    results["popularity"] = evaluate_lists(
        top_k(np.tile(counts, (len(users), 1)), K), truth, train.n_items
    )
    segments = NewCustomers(session_weight=0.0).fit(train, customers)
    results["popularity by segment"] = evaluate_lists(
        top_k(segments.score(profiles), K), truth, train.n_items
    )
    district = NewCustomers(segments=("district",), session_weight=0.0).fit(train, customers)
    results["popularity by district alone"] = evaluate_lists(
        top_k(district.score(profiles), K), truth, train.n_items
    )
    # The generator's only regional effect is Dhaka-urban against the rest (groceries and phones
    # weigh more elsewhere): segments that name it directly, as a check that the method finds a
    # segment effect where there is one.
    urban = NewCustomers(segments=("division", "is_urban"), session_weight=0.0)
    results["popularity by division x urban (diagnostic)"] = evaluate_lists(
        top_k(urban.fit(train, customers).score(profiles), K), truth, train.n_items
    )
    ours = NewCustomers(session_weight=session_weight).fit(train, customers)
    results[f"ours: segments + first session (w={session_weight:g})"] = evaluate_lists(
        top_k(ours.score(profiles, first_views), K), truth, train.n_items
    )
    results["_users"] = {
        "users": float(len(users)),
        "with_first_views": float(sum(bool(v) for v in first_views)),
        "relevant_new_items_left_out": float(off_axis),
    }
    return results


def cross_sell_experiment(
    train_lines: pd.DataFrame, test_lines: pd.DataFrame, carts: pd.DataFrame
) -> dict[str, dict[str, float]]:
    test = test_lines.drop_duplicates(["order_id", "product_id"])
    sizes = test.groupby("order_id")["product_id"].transform("size")
    test = test[sizes >= 2]
    basket_of = test.groupby("order_id")["product_id"].apply(list)
    most_bought = (
        train_lines.drop_duplicates(["order_id", "product_id"])["product_id"]
        .value_counts()
        .sort_index()
        .sort_values(ascending=False, kind="stable")
        .index.to_numpy()
    )
    models = {
        "bought together (orders)": BoughtTogether().fit(
            train_lines["order_id"], train_lines["product_id"]
        ),
        "bought together (cart sessions)": BoughtTogether().fit(
            carts["session_id"], carts["product_id"]
        ),
        # What the floors protect against: every co-purchased pair, ranked by confidence.
        "raw co-purchase, no floors (orders)": BoughtTogether(
            min_support=1, min_lift=1.0, alpha=1.0
        ).fit(train_lines["order_id"], train_lines["product_id"]),
    }
    rows: dict[str, list[list[int]]] = {"most bought": []}
    for name in models:
        rows[name] = []
        rows[name + " + most bought"] = []
    relevant_sets: list[set[int]] = []
    for basket in basket_of:
        for query in basket:
            relevant_sets.append(set(basket) - {query})
            filler = [int(p) for p in most_bought[: K + 1] if p != query][:K]
            rows["most bought"].append(filler)
            for name, model in models.items():
                own = [s.product_id for s in model.for_product(int(query), K)]
                rows[name].append(own)
                padded = own + [p for p in filler if p not in own and p != query]
                rows[name + " + most bought"].append(padded[:K])
    results: dict[str, dict[str, float]] = {}
    for name, lists in rows.items():
        hits = [len(set(lst) & rel) for lst, rel in zip(lists, relevant_sets, strict=True)]
        results[name] = {
            "precision": float(np.mean(hits)) / K,
            "hit_rate": float(np.mean([h > 0 for h in hits])),
            "non_empty": float(np.mean([bool(lst) for lst in lists])),
        }
    for name, model in models.items():
        results[name]["pairs_kept"] = float(model.n_pairs_kept)
        results[name]["pairs_tested"] = float(model.n_pairs_tested)
    results["_queries"] = {"queries": float(len(relevant_sets)), "baskets": float(len(basket_of))}
    return results


def up_sell_experiment(
    products: pd.DataFrame, train_events: pd.DataFrame, test_events: pd.DataFrame
) -> dict[str, dict[str, float]]:
    """Held-out sessions that viewed ``a`` and bought ``b``, an up-sell candidate of ``a``: is
    ``b`` in the top 5 of ``a``'s candidates, ranked by predicted acceptance or by sales?"""
    model = UpSell().fit(products, train_events)
    sales = train_events[train_events["event_type"] == "purchase"]["product_id"].value_counts()
    viewed = test_events[test_events["event_type"] == "view"][["session_id", "product_id"]]
    bought = test_events[test_events["event_type"] == "purchase"][["session_id", "product_id"]]
    pairs = viewed.drop_duplicates().merge(
        bought.drop_duplicates(), on="session_id", suffixes=("", "_bought")
    )
    pairs = pairs[pairs["product_id"] != pairs["product_id_bought"]]
    ranks: dict[str, list[int]] = {"most bought among the candidates": [], "ours": []}
    cache: dict[int, list[int]] = {}
    for query, target in zip(pairs["product_id"], pairs["product_id_bought"], strict=True):
        if int(query) not in cache:
            cache[int(query)] = [s.product_id for s in model.for_product(int(query), 10_000)]
        candidates = cache[int(query)]
        if int(target) not in candidates:
            continue  # not an up-sell of the viewed product: another subcategory or band
        by_sales = sorted(candidates, key=lambda p: (-int(sales.get(p, 0)), p))
        ranks["ours"].append(candidates.index(int(target)) + 1)
        ranks["most bought among the candidates"].append(by_sales.index(int(target)) + 1)
    results: dict[str, dict[str, float]] = {}
    for name, found in ranks.items():
        rank = np.array(found, dtype=np.float64)
        results[name] = {
            "hit_at_5": float(np.mean(rank <= 5)) if len(rank) else float("nan"),
            "mrr": float(np.mean(1.0 / rank)) if len(rank) else float("nan"),
        }
    results["_cases"] = {"accepted_up_sells": float(len(ranks["ours"]))}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--market", type=Path, default=Path("/tmp/recs-market-d365"))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--new-fraction", type=float, default=0.10)
    parser.add_argument("--session-weight", type=float, default=0.5)
    parser.add_argument("--embedding-cache", type=Path, default=None)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    started = time.perf_counter()
    print(f"start: {load_average()}", flush=True)
    root: Path = args.market
    if not (root / "products.parquet").exists():
        print(f"generating {args.customers} customers x {args.days} days into {root}", flush=True)
        generate(MarketplaceConfig(customers=args.customers, days=args.days), root)

    products = pd.read_parquet(root / "products.parquet")
    customers = pd.read_parquet(root / "customers.parquet")
    events = read(
        root, "events",
        ["event_id", "session_id", "customer_id", "event_ts", "event_type", "product_id"],
    )  # fmt: skip
    events = events[events["event_type"].isin(INTERACTIONS) & events["customer_id"].notna()]
    events = events.astype({"customer_id": np.int64, "product_id": np.int64})
    lines = read(root, "order_items", ["order_id", "product_id", "order_ts"])

    first, last = events["event_ts"].min(), events["event_ts"].max()
    cut = first + (last - first) * (1 - args.test_fraction)
    n_new = max(1, int(len(products) * args.new_fraction))
    by_listing = products.sort_values(["listed_ts", "product_id"])
    new_items = np.sort(by_listing["product_id"].to_numpy()[-n_new:])
    n_new_c = max(1, int(len(customers) * args.new_fraction))
    by_signup = customers.sort_values(["signup_ts", "customer_id"])
    new_customers = np.sort(by_signup["customer_id"].to_numpy()[-n_new_c:])

    before = events[events["event_ts"] < cut]
    train_rows = before[
        ~before["product_id"].isin(new_items) & ~before["customer_id"].isin(new_customers)
    ]
    train = InteractionMatrix.from_triples(
        train_rows["customer_id"], train_rows["product_id"]
    ).binary()
    test = events[(events["event_ts"] >= cut) & events["event_type"].isin(RELEVANT)]
    print(
        f"marketplace {root}: {len(products)} products, {len(customers)} customers, "
        f"{len(events)} interactions; cut at {cut}; training matrix {train.n_users} x "
        f"{train.n_items} ({train.nnz} pairs); {n_new} new items, {n_new_c} new customers",
        flush=True,
    )

    embedder = CachedEmbedder(args.embedding_cache)
    t0 = time.perf_counter()
    embedding = CatalogueEmbedding.build(products, embedder)
    print(
        f"catalogue embedded once: {len(products)} texts in {time.perf_counter() - t0:.1f} s "
        f"(e.g. {product_texts(products.head(1))[0]!r})",
        flush=True,
    )

    items = new_items_experiment(train, test, products, embedding, new_items)
    people = new_customers_experiment(train, events, customers, new_customers, args.session_weight)
    carts = before[before["event_type"] == "add_to_cart"][["session_id", "product_id"]]
    cross = cross_sell_experiment(
        lines[lines["order_ts"] < cut], lines[lines["order_ts"] >= cut], carts
    )

    upsell = up_sell_experiment(products, before, events[events["event_ts"] >= cut])

    def table(title: str, results: dict[str, dict[str, float]]) -> None:
        print(f"\n{title}: {results.pop('_users')}")
        print(f"{'method':<50} {'nDCG@10':>8} {'R@10':>8} {'P@10':>8}")
        for name, r in results.items():
            print(f"{name:<50} {r['ndcg']:>8.4f} {r['recall']:>8.4f} {r['precision']:>8.4f}")

    table("New items (rank the new arrivals)", items)
    table("New customers (rank every warm item)", people)
    print(f"\nCross-sell on held-out baskets: {cross.pop('_queries')}")
    print(f"{'method':<50} {'P@10':>8} {'hit@10':>8} {'non-empty':>9} {'pairs kept':>14}")
    for name, r in cross.items():
        kept = f"{r['pairs_kept']:.0f}/{r['pairs_tested']:.0f}" if "pairs_kept" in r else ""
        print(
            f"{name:<50} {r['precision']:>8.4f} {r['hit_rate']:>8.4f} {r['non_empty']:>9.3f} "
            f"{kept:>14}"
        )
    print(f"\nUp-sell on held-out sessions (viewed a, bought an up-sell b): {upsell.pop('_cases')}")
    print(f"{'method':<50} {'hit@5':>8} {'MRR':>8}")
    for name, r in upsell.items():
        print(f"{name:<50} {r['hit_at_5']:>8.4f} {r['mrr']:>8.4f}")
    ours_items = items["ours: E5 + category + band, projection"]
    ours_people = people[f"ours: segments + first session (w={args.session_weight:g})"]
    print(f"\ntook {time.perf_counter() - started:.1f} s")
    print(f"end: {load_average()}")
    print(
        "RESULT "
        f"new_items_ndcg_at_10={ours_items['ndcg']:.4f} "
        f"new_items_recall_at_10={ours_items['recall']:.4f} "
        f"new_items_popularity_ndcg_at_10={items['popularity (of the subcategory)']['ndcg']:.4f} "
        f"new_customers_ndcg_at_10={ours_people['ndcg']:.4f} "
        f"new_customers_recall_at_10={ours_people['recall']:.4f} "
        f"new_customers_popularity_ndcg_at_10={people['popularity']['ndcg']:.4f} "
        f"new_customers_segment_ndcg_at_10={people['popularity by segment']['ndcg']:.4f} "
        f"cross_sell_precision_at_10="
        f"{cross['bought together (orders) + most bought']['precision']:.4f} "
        f"most_bought_precision_at_10={cross['most bought']['precision']:.4f} "
        f"up_sell_hit_at_5={upsell['ours']['hit_at_5']:.4f} "
        f"up_sell_most_bought_hit_at_5={upsell['most bought among the candidates']['hit_at_5']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
