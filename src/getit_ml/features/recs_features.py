"""Customer x product features for ranking retrieved candidates, computed point-in-time.

A ranker (:mod:`getit_ml.training.recs_ranker`) reorders each customer's retrieved candidates at
a request time ``as_of``; every feature here is computed from the marketplace's events strictly
before ``as_of`` (nothing the customer did at or after the request leaks in), plus the calendar
at ``as_of`` and the static customer and product attributes. Events weigh by intent: a view 1,
a cart add 3, a purchase 5 (removals and searches carry no product preference here).

The features, by group (:data:`FEATURE_GROUPS`: the ablations switch whole groups off):

* ``customer``: the customer's weighted share of interactions in the product's category (all
  history and the last 30 days: tastes drift), subcategory and brand; the product's price
  against the median price of what the customer viewed (log ratio); days since the customer
  last viewed the product and its category; the customer's views, cart adds and purchases of
  the product.
* ``product``: the product's weighted interactions overall (7 and 30 days, log1p), its cart
  adds per view (smoothed towards the catalogue rate: quality drives it), its category (a
  categorical code), log price, its share of its category's last 30 days, and
  ``expected_interest``: the customer's smoothed category affinity x that share x the
  product's conversion over the catalogue's (the three steps of a choice, multiplied here so
  that trees need not learn a product).
* ``region``: the product's interactions among customers of the same district (30 days, log1p)
  and its lift there (district share / overall share, smoothed); the customer's division (code)
  and urban flag.
* ``festival``: the calendar at ``as_of`` (:func:`getit_ml.features.context.calendar_features`:
  the demand multiplier, days to the next festival and to each tracked one, Ramadan), whether
  ``as_of`` falls in a festival window (:func:`getit_ml.data.calendar.festival_on`), the
  category's festival lift (its share of carts and purchases on past festival days over its
  share on other days) and that lift when a festival is on (1 otherwise): the festival x
  category interaction.

What the synthetic marketplace (:mod:`getit_ml.data.generator`) can teach these features: a
view picks a category by the customer's (slowly drifting, regionally tilted) preference, then a
product by popularity x trend x today's campaign discount; a cart add follows quality and
discount. Festivals raise how *much* everyone shops and put random products on campaign each
day; they do not shift the category mix (the measured festival lifts are 0.97-1.07), so the
festival group has little to find there; on real data it is where Eid fashion lives.

Missing values are NaN (a product the customer never viewed has no "days since"): the ranker
handles them natively, and a NaN never pretends to be a zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from getit_ml.data import calendar
from getit_ml.data import reference as ref
from getit_ml.data.contracts import CUSTOMERS, EVENTS, PRODUCTS
from getit_ml.data.validation import find_table, read_table
from getit_ml.errors import UserError
from getit_ml.features.context import calendar_features, local_time

logger = logging.getLogger(__name__)

US_PER_DAY: Final = 86_400 * 1_000_000
#: Weight of each event type as evidence of preference; other types are ignored.
EVENT_WEIGHTS: Final[dict[str, float]] = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
#: Pseudo-counts that pull small counts towards the catalogue's rate (conversion, district lift).
_CONVERSION_PRIOR_VIEWS: Final = 20.0
_LIFT_PRIOR: Final = 5.0
#: Pseudo-weight of the catalogue-wide category mix in a customer's smoothed affinity.
_AFFINITY_PRIOR: Final = 10.0

#: The request-time calendar columns (:func:`~getit_ml.features.context.calendar_features`) the
#: ranker takes, one value for every row of a request.
_CALENDAR_COLUMNS: Final = (
    "festival_demand_multiplier",
    "days_to_next_festival",
    "days_to_eid_ul_fitr",
    "days_to_eid_ul_adha",
    "days_to_pohela_boishakh",
    "is_ramadan",
)

FEATURE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "customer": (
        "category_affinity",
        "category_affinity_30d",
        "subcategory_affinity",
        "brand_affinity",
        "price_vs_usual",
        "days_since_product_view",
        "days_since_category_view",
        "customer_product_views",
        "customer_product_carts",
        "customer_product_purchases",
    ),
    "product": (
        "product_popularity_7d",
        "product_popularity_30d",
        "product_conversion",
        "category_code",
        "log_price",
        "category_share_30d",
        "expected_interest",
    ),
    "region": ("district_popularity_30d", "district_lift", "division_code", "is_urban"),
    "festival": (
        *_CALENDAR_COLUMNS,
        "in_festival",
        "category_festival_lift",
        "festival_x_category_lift",
    ),
}
FEATURES: Final[tuple[str, ...]] = tuple(f for group in FEATURE_GROUPS.values() for f in group)
#: Integer codes the ranker treats as categories, not numbers.
CATEGORICAL_FEATURES: Final[tuple[str, ...]] = ("category_code", "division_code")


@dataclass(frozen=True)
class MarketHistory:
    """The marketplace tables the features read, in plain columns.

    ``events``: customer_id, product_id, ts_us (int64 µs UTC), event_type (only rows with both a
    customer and a product); ``products``: product_id, category, subcategory, brand, price_bdt;
    ``customers``: customer_id, district, division, is_urban."""

    events: pd.DataFrame
    products: pd.DataFrame
    customers: pd.DataFrame

    def __post_init__(self) -> None:
        for name, frame, needed in (
            ("events", self.events, ("customer_id", "product_id", "ts_us", "event_type")),
            ("products", self.products, ("product_id", "category", "subcategory", "brand")),
            ("customers", self.customers, ("customer_id", "district", "division", "is_urban")),
        ):
            missing = sorted(set(needed) - set(frame.columns))
            if missing:
                raise UserError(f"{name} lacks column(s) {', '.join(missing)}")
        if "price_bdt" not in self.products.columns:
            raise UserError("products lacks column price_bdt")

    @classmethod
    def load(cls, directory: Path) -> MarketHistory:
        """Read a generated (or imported) marketplace folder: events, products, customers."""
        tables = {}
        for contract in (EVENTS, PRODUCTS, CUSTOMERS):
            path = find_table(Path(directory), contract.name)
            if path is None:
                raise UserError(f"{directory} has no {contract.name} table")
            tables[contract.name] = read_table(path, contract)
        events = tables["events"].select(["customer_id", "product_id", "event_ts", "event_type"])
        frame = events.to_pandas()
        frame = frame[frame["customer_id"].notna() & frame["product_id"].notna()]
        frame = pd.DataFrame(
            {
                "customer_id": frame["customer_id"].astype(np.int64),
                "product_id": frame["product_id"].astype(np.int64),
                "ts_us": _micros(frame["event_ts"]),
                "event_type": frame["event_type"].astype(str),
            }
        )
        products = tables["products"].to_pandas()[
            ["product_id", "category", "subcategory", "brand", "price_bdt"]
        ]
        customers = tables["customers"].to_pandas()[
            ["customer_id", "district", "division", "is_urban"]
        ]
        return cls(frame.reset_index(drop=True), products, customers)

    def before(self, as_of_us: int) -> pd.DataFrame:
        """The events strictly before ``as_of_us`` with their weights (the point-in-time view)."""
        past = self.events[self.events["ts_us"] < as_of_us]
        weight = past["event_type"].map(EVENT_WEIGHTS)
        out = past.assign(weight=weight)
        return out[out["weight"].notna()]


def _micros(stamps: pd.Series) -> pd.Series:
    """Epoch microseconds (int64) of a timezone-aware timestamp column."""
    values = pd.to_datetime(stamps, utc=True)
    return pd.Series(values.to_numpy(dtype="datetime64[us]").astype(np.int64), index=stamps.index)


def _share(past: pd.DataFrame, keys: list[str], pairs: pd.DataFrame) -> np.ndarray:
    """The customer's weighted share of interactions with the pair's value of ``keys``."""
    totals = past.groupby("customer_id")["weight"].sum()
    by_key = past.groupby(["customer_id", *keys])["weight"].sum().rename("w").reset_index()
    joined = pairs[["customer_id", *keys]].merge(by_key, on=["customer_id", *keys], how="left")
    total = pairs["customer_id"].map(totals).to_numpy(dtype=np.float64)
    weight = joined["w"].fillna(0.0).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weight / total, np.nan)


def _days_since(past: pd.DataFrame, keys: list[str], pairs: pd.DataFrame, as_of: int) -> np.ndarray:
    views = past[past["event_type"] == "view"]
    last = views.groupby(["customer_id", *keys])["ts_us"].max().rename("last").reset_index()
    joined = pairs[["customer_id", *keys]].merge(last, on=["customer_id", *keys], how="left")
    return ((as_of - joined["last"]) / US_PER_DAY).to_numpy(dtype=np.float64)


def _count(past: pd.DataFrame, kind: str, pairs: pd.DataFrame) -> np.ndarray:
    rows = past[past["event_type"] == kind]
    counts = rows.groupby(["customer_id", "product_id"]).size().rename("n").reset_index()
    joined = pairs[["customer_id", "product_id"]].merge(
        counts, on=["customer_id", "product_id"], how="left"
    )
    return joined["n"].fillna(0).to_numpy(dtype=np.float64)


def festival_category_lift(past: pd.DataFrame, products: pd.DataFrame) -> pd.Series:
    """Per category: its share of carts and purchases on festival days over its share on the
    other days (1 when either side has no such event: no evidence is no lift)."""
    strong = past[past["event_type"].isin(("add_to_cart", "purchase"))]
    if "category" not in strong.columns:
        strong = strong.merge(products[["product_id", "category"]], on="product_id", how="left")
    days = pd.to_datetime(strong["ts_us"] + 6 * 3_600_000_000, unit="us").dt.date
    # Few distinct days, many events: look each day up once.
    festive_day = {d: calendar.festival_on(d) is not None for d in days.unique()}
    festive = days.map(festive_day).astype(bool)
    lifts = {}
    on, off = strong[festive.to_numpy()], strong[~festive.to_numpy()]
    for category in ref.CATEGORIES:
        share_on = (on["category"] == category).mean() if len(on) else np.nan
        share_off = (off["category"] == category).mean() if len(off) else np.nan
        ok = np.isfinite(share_on) and np.isfinite(share_off) and share_off > 0
        lifts[category] = float(share_on / share_off) if ok else 1.0
    return pd.Series(lifts, dtype=np.float64)


def candidate_features(history: MarketHistory, pairs: pd.DataFrame, as_of_us: int) -> pd.DataFrame:
    """The features of :data:`FEATURES` for each (customer_id, product_id) row of ``pairs``, at
    request time ``as_of_us`` (µs UTC), in the order of ``pairs``.

    A product or customer missing from the catalogue or the customer table is a
    :class:`UserError` (a candidate the tables do not know cannot be described)."""
    if not {"customer_id", "product_id"} <= set(pairs.columns):
        raise UserError("pairs need customer_id and product_id columns")
    moment = local_time(as_of_us)
    if moment is None:
        raise UserError(f"as_of {as_of_us} is not a usable epoch-microsecond time")
    products = history.products.set_index("product_id")
    unknown = ~pairs["product_id"].isin(products.index)
    if unknown.any():
        raise UserError(
            f"{int(unknown.sum())} candidate(s) are not in products, e.g. "
            f"{pairs['product_id'][unknown].iloc[0]}"
        )
    customers = history.customers.set_index("customer_id")
    unknown = ~pairs["customer_id"].isin(customers.index)
    if unknown.any():
        raise UserError(
            f"{int(unknown.sum())} request(s) are for customers not in customers, "
            f"e.g. {pairs['customer_id'][unknown].iloc[0]}"
        )
    base = pairs[["customer_id", "product_id"]].reset_index(drop=True)
    prod = products.loc[base["product_id"]].reset_index(drop=True)
    cust = customers.loc[base["customer_id"]].reset_index(drop=True)
    base = base.assign(
        category=prod["category"].to_numpy(),
        subcategory=prod["subcategory"].to_numpy(),
        brand=prod["brand"].to_numpy(),
        district=cust["district"].to_numpy(),
    )
    price = prod["price_bdt"].to_numpy(dtype=np.float64)

    past = history.before(as_of_us).merge(
        history.products[["product_id", "category", "subcategory", "brand"]],
        on="product_id",
        how="left",
    )
    recent = past[past["ts_us"] >= as_of_us - 30 * US_PER_DAY]
    out: dict[str, np.ndarray] = {}
    out["category_affinity"] = _share(past, ["category"], base)
    out["category_affinity_30d"] = _share(recent, ["category"], base)
    out["subcategory_affinity"] = _share(past, ["subcategory"], base)
    out["brand_affinity"] = _share(past, ["brand"], base)
    viewed = past[past["event_type"] == "view"].merge(
        history.products[["product_id", "price_bdt"]], on="product_id", how="left"
    )
    usual = viewed.groupby("customer_id")["price_bdt"].median()
    usual_price = base["customer_id"].map(usual).to_numpy(dtype=np.float64)
    out["price_vs_usual"] = np.log(price / usual_price)
    out["days_since_product_view"] = _days_since(past, ["product_id"], base, as_of_us)
    out["days_since_category_view"] = _days_since(past, ["category"], base, as_of_us)
    out["customer_product_views"] = _count(past, "view", base)
    out["customer_product_carts"] = _count(past, "add_to_cart", base)
    out["customer_product_purchases"] = _count(past, "purchase", base)

    week = past[past["ts_us"] >= as_of_us - 7 * US_PER_DAY]
    for name, frame in (("product_popularity_7d", week), ("product_popularity_30d", recent)):
        popularity = frame.groupby("product_id")["weight"].sum()
        out[name] = np.log1p(base["product_id"].map(popularity).fillna(0.0).to_numpy(np.float64))
    views = past[past["event_type"] == "view"].groupby("product_id").size()
    carts = past[past["event_type"] == "add_to_cart"].groupby("product_id").size()
    rate = carts.sum() / max(views.sum(), 1)
    n_views = base["product_id"].map(views).fillna(0).to_numpy(np.float64)
    n_carts = base["product_id"].map(carts).fillna(0).to_numpy(np.float64)
    out["product_conversion"] = (n_carts + rate * _CONVERSION_PRIOR_VIEWS) / (
        n_views + _CONVERSION_PRIOR_VIEWS
    )
    out["category_code"] = (
        base["category"].map({c: i for i, c in enumerate(ref.CATEGORIES)}).to_numpy(np.float64)
    )
    out["log_price"] = np.log(price)
    # The product's share of its category's recent interactions (smoothed), and the product of
    # the three factors a customer's choice goes through — which category (the customer's
    # smoothed affinity), which product there (its share), whether to keep it (its conversion
    # against the catalogue's) — so the trees need not learn a product of features.
    by_product = recent.groupby("product_id")["weight"].sum()
    by_category = recent.groupby("category")["weight"].sum()
    in_category = base["category"].map(history.products.groupby("category").size())
    product_weight = base["product_id"].map(by_product).fillna(0.0).to_numpy(np.float64)
    category_weight = base["category"].map(by_category).fillna(0.0).to_numpy(np.float64)
    share = (product_weight + 1.0) / (category_weight + in_category.to_numpy(np.float64))
    out["category_share_30d"] = share
    overall_mix = past.groupby("category")["weight"].sum()
    overall_mix = overall_mix / max(overall_mix.sum(), 1e-12)
    prior = base["category"].map(overall_mix).fillna(0.0).to_numpy(np.float64)
    category_weight_c = np.nan_to_num(out["category_affinity"]) * base["customer_id"].map(
        past.groupby("customer_id")["weight"].sum()
    ).fillna(0.0).to_numpy(np.float64)
    total_c = base["customer_id"].map(past.groupby("customer_id")["weight"].sum()).fillna(0.0)
    smoothed = (category_weight_c + _AFFINITY_PRIOR * prior) / (
        total_c.to_numpy(np.float64) + _AFFINITY_PRIOR
    )
    out["expected_interest"] = smoothed * share * out["product_conversion"] / max(rate, 1e-12)

    located = recent.merge(history.customers[["customer_id", "district"]], on="customer_id")
    by_district = located.groupby(["district", "product_id"])["weight"].sum().rename("w")
    district_total = located.groupby("district")["weight"].sum()
    joined = base[["district", "product_id"]].merge(
        by_district.reset_index(), on=["district", "product_id"], how="left"
    )
    in_district = joined["w"].fillna(0.0).to_numpy(np.float64)
    out["district_popularity_30d"] = np.log1p(in_district)
    overall = base["product_id"].map(recent.groupby("product_id")["weight"].sum()).fillna(0.0)
    overall_share = (overall.to_numpy(np.float64) + _LIFT_PRIOR) / (
        recent["weight"].sum() + _LIFT_PRIOR * len(products)
    )
    district_share = (in_district + _LIFT_PRIOR) / (
        base["district"].map(district_total).fillna(0.0).to_numpy(np.float64)
        + _LIFT_PRIOR * len(products)
    )
    out["district_lift"] = district_share / overall_share
    out["division_code"] = (
        cust["division"].map({d: i for i, d in enumerate(ref.DIVISIONS)}).to_numpy(np.float64)
    )
    out["is_urban"] = cust["is_urban"].astype(np.float64).to_numpy()

    context = calendar_features([as_of_us])
    for name in _CALENDAR_COLUMNS:
        out[name] = np.full(len(base), float(context[name][0]))
    in_festival = calendar.festival_on(moment.date()) is not None
    out["in_festival"] = np.full(len(base), float(in_festival))
    lift = festival_category_lift(past, history.products)
    category_lift = base["category"].map(lift).fillna(1.0).to_numpy(np.float64)
    out["category_festival_lift"] = category_lift
    out["festival_x_category_lift"] = category_lift if in_festival else np.ones(len(base))
    frame = pd.DataFrame({name: out[name] for name in FEATURES})
    logger.debug("features of %d pairs at %s", len(frame), moment.isoformat())
    return frame


def as_of_micros(day: datetime | str) -> int:
    """Epoch µs of Dhaka local midnight of a date (``YYYY-MM-DD`` or a datetime's date)."""
    if isinstance(day, str):
        try:
            parsed = datetime.fromisoformat(day)
        except ValueError:
            raise UserError(f"a request date must be YYYY-MM-DD (got {day!r})") from None
    else:
        parsed = day
    midnight = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC) - timedelta(hours=6)
    return int((midnight - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
