"""The synthetic GetIt marketplace: deterministic, streamed, with known ground truth.

``generate(config, out_dir)`` writes every table of :data:`contracts.MARKETPLACE_TABLES` as Parquet
in exactly its contract's schema. The simulation runs one Bangladesh business day at a time:

* **Customers** sign up over the two years before the start and during the run, mostly in Dhaka
  and Chattogram; each has an activity rate, category preferences that drift slowly from one
  Dirichlet draw towards another, and a regional tilt (groceries and phones weigh more outside
  Dhaka).
* **Sessions** per customer and day are Poisson with rate activity x weekly x festival x growth
  (Friday is the weekend peak, with a dip at Jumu'ah); their start hour follows an evening-heavy
  profile. A session is an optional search, a geometric number of views, cart adds (more likely
  for good and discounted products), removals and, with a fixed probability, the purchase of what
  is left in the cart.
* **Products** are chosen by category preference, popularity and price: on festival days some
  products carry campaign discounts, and demand responds with a per-category elasticity. Because
  every step is an explicit probability, ``daily_demand.expected_units`` is the exact expectation
  of ``units_sold`` under the model (trend x weekly x festival x price effects): forecasting
  models can be scored against it.
* **Orders and payments**: payment mix by region (cash on delivery dominates outside Dhaka),
  vouchers (more on festival days), COD refusals (more for new accounts) and returns (more for
  poor products).
* **Fraud**, labelled with its pattern: account takeover after a SIM swap (new device, new wallet,
  an order 10-30x the victim's usual basket, at night), mule rings (accounts sharing devices,
  phone numbers, addresses and wallets), promo abuse (fresh accounts on one device farming the new
  user voucher), velocity bursts (many payments in minutes) and card testing (many tiny card
  attempts, mostly declined). About 0.7% of payments.
* **Reviews** in Bengali, English and Banglish whose rating and sentiment follow the product's
  latent quality.

Determinism: every day draws from its own random stream ``(seed, day, purpose)``, and ids are
assigned in a fixed order, so the same seed gives byte-identical files (with the same pyarrow).
Memory stays bounded: only the customer and product tables are held; each day's events, orders,
payments, reviews and demand rows are written before the next day is simulated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from getit_ml.data import catalogue as cat
from getit_ml.data import reference as ref
from getit_ml.data.calendar import build_calendar
from getit_ml.data.contracts import CONTRACTS, MARKETPLACE_TABLES
from getit_ml.errors import UserError

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

US_PER_S: Final = 1_000_000
DAY_S: Final = 86_400
#: Bangladesh Standard Time is UTC+6 all year.
DHAKA_UTC_OFFSET: Final = timedelta(hours=6)

# ----------------------------------------------------------------------------- model parameters
# Every number below is a modelling assumption, stated once here.
DIVISION_WEIGHTS: Final = {
    "Dhaka": 0.42, "Chattogram": 0.20, "Rajshahi": 0.08, "Khulna": 0.08, "Barishal": 0.04,
    "Sylhet": 0.07, "Rangpur": 0.06, "Mymensingh": 0.05,
}  # fmt: skip
#: Share of a division's customers living in its capital district.
CAPITAL_SHARE: Final = {"Dhaka": 0.60, "Chattogram": 0.50}
DEFAULT_CAPITAL_SHARE: Final = 0.35
#: Monday..Sunday; Friday (index 4) is the weekend peak.
WEEKLY_MULTIPLIER: Final = np.array([1.00, 0.98, 0.97, 1.05, 1.18, 1.08, 0.95])
#: Relative session starts per local hour, 00..23: late-evening heavy.
HOURLY_PROFILE: Final = np.array(
    [0.5, 0.3, 0.2, 0.15, 0.15, 0.3, 0.6, 1.0, 1.5, 2.0, 2.4, 2.6,
     2.7, 2.8, 2.6, 2.5, 2.6, 2.8, 3.0, 3.4, 4.0, 4.4, 4.0, 2.0]
)  # fmt: skip
#: Friday: prayers at midday.
FRIDAY_PROFILE: Final = HOURLY_PROFILE * np.where(np.isin(np.arange(24), [12, 13]), 0.4, 1.0)
MEAN_SESSIONS_PER_CUSTOMER_DAY: Final = 0.075
ANNUAL_GROWTH: Final = 0.30
SEARCH_PROBABILITY: Final = 0.40
VIEW_CONTINUE: Final = 0.62  # views per session ~ geometric with success 1 - VIEW_CONTINUE
BASE_CART_PROBABILITY: Final = 0.055
REMOVE_PROBABILITY: Final = 0.15
PURCHASE_PROBABILITY: Final = 0.32
SECOND_UNIT_PROBABILITY: Final = 0.10
MEAN_QUANTITY: Final = 1.0 + SECOND_UNIT_PROBABILITY
#: Price elasticity of demand per category (fashion and beauty most price-sensitive).
ELASTICITY: Final = {
    "fashion": 2.0, "electronics": 1.4, "groceries": 0.8, "beauty": 1.8, "home": 1.3,
    "books": 1.1, "mobile": 1.6, "sports": 1.5,
}  # fmt: skip
#: Category demand trend per year.
CATEGORY_TREND: Final = {
    "fashion": 0.10, "electronics": 0.20, "groceries": 0.35, "beauty": 0.15, "home": 0.05,
    "books": -0.05, "mobile": 0.25, "sports": 0.0,
}  # fmt: skip
#: Category taste outside Dhaka, relative to Dhaka.
RURAL_TILT: Final = {"groceries": 1.5, "mobile": 1.4, "fashion": 0.9, "electronics": 0.7}
#: Payment mix (bkash, nagad, rocket, card, cod): urban Dhaka versus everywhere else.
PAYMENT_MIX_DHAKA_URBAN: Final = np.array([0.34, 0.12, 0.04, 0.17, 0.33])
PAYMENT_MIX_ELSEWHERE: Final = np.array([0.26, 0.11, 0.06, 0.02, 0.55])
VOUCHER_PROBABILITY: Final = 0.10
FESTIVAL_VOUCHER_PROBABILITY: Final = 0.28
DELIVERY_FEE_DHAKA: Final = 60.0
DELIVERY_FEE_ELSEWHERE: Final = 120.0
#: Fraud incidents per genuine payment of the day, by pattern.
#: Together about 0.8% of payments: ATO 0.2%, mules 0.2%, promo 0.15%, bursts (x8.5) 0.17%,
#: card testing (x20) 0.16%.
ATO_RATE: Final = 0.002
MULE_RATE: Final = 0.002
VELOCITY_RATE: Final = 0.0002
CARD_TESTING_RATE: Final = 0.00008
PROMO_RATE: Final = 0.0015
PROMO_GROUP_SIZE: Final = 4
MULE_SHARE: Final = 0.003
PROMO_ABUSER_SHARE: Final = 0.004
REVIEW_PROBABILITY: Final = 0.10

#: Large ids for things created by fraudsters (fresh devices, wallets, cards, addresses), so they
#: never collide with a genuine customer's.
FRESH_ID_BASE: Final = 10**12


@dataclass(frozen=True)
class MarketplaceConfig:
    """What to generate. The defaults are the demo's: small enough to finish in seconds, and the
    dates cover the end of Ramadan and Eid-ul-Fitr 2025."""

    customers: int = 2_000
    days: int = 30
    seed: int = 7
    start: date = date(2025, 3, 10)

    def __post_init__(self) -> None:
        if self.customers < 100:
            raise UserError(f"--customers must be at least 100 (got {self.customers})")
        if not 1 <= self.days <= 3_650:
            raise UserError(f"--days must be between 1 and 3650 (got {self.days})")
        if self.seed < 0:
            raise UserError(f"--seed must be a non-negative integer (got {self.seed})")

    @property
    def products(self) -> int:
        return max(100, self.customers // 10)

    @property
    def sellers(self) -> int:
        return max(10, self.products // 25)

    @property
    def end(self) -> date:
        """The last simulated day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)


@dataclass
class GenerationSummary:
    """What was written, for the CLI's summary and the tests."""

    out_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    events_by_type: dict[str, int] = field(default_factory=dict)
    payments_by_method: dict[str, int] = field(default_factory=dict)
    fraud_by_pattern: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def fraud_rate(self) -> float:
        payments = self.rows.get("payments", 0)
        return sum(self.fraud_by_pattern.values()) / payments if payments else 0.0

    def add_counts(self, target: dict[str, int], values: pa.Array) -> None:
        for item in values.value_counts().to_pylist():
            key = item["values"]
            if key is not None:
                target[key] = target.get(key, 0) + int(item["counts"])


def _stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream per (seed, day, purpose): chunking never changes results."""
    return np.random.default_rng([seed, *keys])


def _local_midnight_us(day: date) -> int:
    """Microseconds since the epoch (UTC) of 00:00 in Dhaka on ``day``."""
    midnight = datetime(day.year, day.month, day.day) - DHAKA_UTC_OFFSET
    return int((midnight - datetime(1970, 1, 1)).total_seconds()) * US_PER_S


def _choice_by_rows(rng: np.random.Generator, probabilities: FloatArray) -> IntArray:
    """One categorical draw per row of a (rows x k) probability matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    draws = rng.random(len(probabilities))[:, None]
    chosen: IntArray = np.minimum((draws > cumulative).sum(axis=1), probabilities.shape[1] - 1)
    return chosen


def _segment_positions(counts: IntArray) -> IntArray:
    """For groups of the given sizes laid end to end, each element's position in its group."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts


def _timestamps(us: IntArray) -> pa.Array:
    return pa.array(us, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _take(values: tuple[str, ...], index: IntArray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[index], type=pa.string())


def _table(name: str, columns: dict[str, Any]) -> pa.Table:
    """Build a table in exactly the contract's schema (column order and types)."""
    schema = CONTRACTS[name].schema()
    arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class _Population:
    """Customers: the public table plus the latent traits that drive behaviour."""

    table: pa.Table
    signup_day: IntArray  # day index of signup (negative: before the run)
    division: IntArray
    district: IntArray
    dhaka_urban: BoolArray
    language: IntArray  # index into reference.LANGUAGES
    activity: FloatArray
    preferences_start: FloatArray  # customers x categories
    preferences_end: FloatArray
    typical_basket: FloatArray
    device_id: IntArray
    second_device_id: IntArray
    wallet_ids: IntArray  # customers x 3 wallets
    card_id: IntArray
    address_id: IntArray
    role: IntArray  # 0 genuine, 1 mule, 2 promo abuser
    group: IntArray  # mule ring or promo-abuse group, -1 otherwise


@dataclass
class _Catalogue:
    products: pa.Table
    sellers: pa.Table
    category: IntArray
    subcategory: IntArray
    brand: IntArray  # index into the subcategory's brands
    base_price: FloatArray
    quality: FloatArray
    popularity: FloatArray


ROLE_GENUINE, ROLE_MULE, ROLE_PROMO = 0, 1, 2
CATEGORY_INDEX: Final = {c: i for i, c in enumerate(ref.CATEGORIES)}


def _make_population(config: MarketplaceConfig) -> _Population:
    rng = _stream(config.seed, 0, 1)
    n = config.customers
    divisions = list(ref.DIVISIONS)
    division = rng.choice(len(divisions), size=n, p=[DIVISION_WEIGHTS[d] for d in divisions])
    district_names = list(ref.DISTRICTS)
    district = np.empty(n, dtype=np.int64)
    for d_index, name in enumerate(divisions):
        members = np.flatnonzero(division == d_index)
        districts = ref.DISTRICTS_BY_DIVISION[name]
        capital = districts.index(name) if name in districts else 0
        share = CAPITAL_SHARE.get(name, DEFAULT_CAPITAL_SHARE)
        weights = np.full(len(districts), (1 - share) / (len(districts) - 1))
        weights[capital] = share
        local = rng.choice(len(districts), size=len(members), p=weights)
        district[members] = [district_names.index(districts[i]) for i in local]
    capital_district = np.array(
        [ref.DIVISION_OF_DISTRICT[d] == d for d in district_names], dtype=bool
    )[district]
    is_urban = rng.random(n) < np.where(capital_district, 0.85, 0.40)
    dhaka_urban = (division == divisions.index("Dhaka")) & is_urban
    age_band = rng.choice(5, size=n, p=[0.30, 0.38, 0.18, 0.09, 0.05])
    gender = rng.choice(3, size=n, p=[0.37, 0.62, 0.01])
    english = rng.random(n) < np.where(dhaka_urban, 0.45, 0.15)
    language = english.astype(np.int64)  # 0 bn, 1 en
    device = rng.choice(3, size=n, p=[0.78, 0.07, 0.15])
    channel = rng.choice(6, size=n, p=[0.30, 0.32, 0.15, 0.10, 0.08, 0.05])

    # 75% signed up in the two years before the run, the rest during it.
    before = rng.random(n) < 0.75
    signup_offset_s = np.where(
        before,
        -rng.integers(1, 730 * DAY_S, size=n),
        rng.integers(0, config.days * DAY_S, size=n),
    )
    signup_day = np.floor_divide(signup_offset_s, DAY_S)
    signup_us = _local_midnight_us(config.start) + signup_offset_s * US_PER_S

    role = np.zeros(n, dtype=np.int64)
    group = np.full(n, -1, dtype=np.int64)
    phone_id = np.arange(n, dtype=np.int64) + 1
    address_id = np.arange(n, dtype=np.int64) + 1
    device_id = np.arange(n, dtype=np.int64) + 1
    # Mule rings: 4-8 accounts sharing two phones, one address and two devices.
    mules = rng.choice(n, size=max(4, int(n * MULE_SHARE)), replace=False)
    ring_sizes = rng.integers(4, 9, size=len(mules))
    ring_of = np.repeat(np.arange(len(mules)), ring_sizes)[: len(mules)]
    role[mules], group[mules] = ROLE_MULE, ring_of
    ring_leader = mules[np.searchsorted(ring_of, ring_of)]
    phone_id[mules] = phone_id[ring_leader] + rng.integers(0, 2, size=len(mules))
    address_id[mules] = address_id[ring_leader]
    device_id[mules] = device_id[ring_leader] + rng.integers(0, 2, size=len(mules))
    district[mules] = district[ring_leader]
    division[mules] = division[ring_leader]
    # Promo abusers: fresh accounts (signed up during the run) in groups of 3-5 on one device.
    fresh = np.flatnonzero((signup_day >= 0) & (role == ROLE_GENUINE) & (signup_day < config.days))
    n_promo = min(len(fresh), max(3, int(n * PROMO_ABUSER_SHARE)))
    promo = np.sort(rng.choice(fresh, size=n_promo, replace=False)) if n_promo else fresh[:0]
    group_of = np.arange(len(promo)) // PROMO_GROUP_SIZE
    role[promo], group[promo] = ROLE_PROMO, group_of
    promo_leader = promo[np.searchsorted(group_of, group_of)]
    device_id[promo] = device_id[promo_leader]
    signup_day[promo] = signup_day[promo_leader]
    signup_us[promo] = signup_us[promo_leader] + rng.integers(0, 3600, size=len(promo)) * US_PER_S

    categories = len(ref.CATEGORIES)
    tilt = np.ones((n, categories))
    for name, factor in RURAL_TILT.items():
        tilt[~dhaka_urban, CATEGORY_INDEX[name]] = factor
    preferences_start = rng.dirichlet(np.full(categories, 0.8), size=n) * tilt
    preferences_start /= preferences_start.sum(axis=1, keepdims=True)
    preferences_end = rng.dirichlet(np.full(categories, 0.8), size=n) * tilt
    preferences_end /= preferences_end.sum(axis=1, keepdims=True)
    activity = rng.lognormal(mean=0.0, sigma=0.9, size=n)
    activity *= MEAN_SESSIONS_PER_CUSTOMER_DAY / activity.mean()
    activity[role != ROLE_GENUINE] = 0.0  # fraud accounts act only through the fraud model

    table = _table(
        "customers",
        {
            "customer_id": np.arange(n, dtype=np.int64) + 1,
            "signup_ts": _timestamps(signup_us),
            "division": _take(ref.DIVISIONS, division),
            "district": _take(ref.DISTRICTS, district),
            "is_urban": is_urban,
            "age_band": _take(ref.AGE_BANDS, age_band),
            "gender": _take(ref.GENDERS, gender),
            "preferred_language": _take(ref.LANGUAGES, language),
            "device_type": _take(ref.DEVICE_TYPES, device),
            "acquisition_channel": _take(ref.ACQUISITION_CHANNELS, channel),
            "phone_id": phone_id,
            "address_id": address_id,
        },
    )
    wallet_ids = (np.arange(n, dtype=np.int64)[:, None] + 1) * 10 + np.arange(3)
    ring_wallet = (ring_leader + 1) * 10
    wallet_ids[mules] = ring_wallet[:, None] + np.arange(3)
    return _Population(
        table=table,
        signup_day=signup_day,
        division=division,
        district=district,
        dhaka_urban=dhaka_urban,
        language=language,
        activity=activity,
        preferences_start=preferences_start,
        preferences_end=preferences_end,
        typical_basket=rng.lognormal(np.log(1_400), 0.5, size=n),
        device_id=device_id,
        second_device_id=device_id + n + 1,
        wallet_ids=wallet_ids,
        card_id=np.where(rng.random(n) < 0.25, np.arange(n) + 1, -1),
        address_id=address_id,
        role=role,
        group=group,
    )


def _make_catalogue(config: MarketplaceConfig) -> _Catalogue:
    rng = _stream(config.seed, 0, 2)
    n_products, n_sellers = config.products, config.sellers
    leaves = cat.SUBCATEGORIES
    subcategory = rng.choice(len(leaves), size=n_products)
    category = np.array([CATEGORY_INDEX[leaf.category] for leaf in leaves])[subcategory]
    brand = rng.integers(0, 3, size=n_products)
    variant = rng.integers(0, len(cat.TITLE_VARIANTS), size=n_products)
    medians = np.array([leaf.median_price_bdt for leaf in leaves])[subcategory]
    sigmas = np.array([leaf.price_sigma for leaf in leaves])[subcategory]
    base_price = np.round(medians * rng.lognormal(0.0, sigmas), -1).clip(min=20.0)
    quality = rng.beta(4, 2, size=n_products)
    popularity = rng.lognormal(0.0, 1.0, size=n_products)
    seller = rng.integers(1, n_sellers + 1, size=n_products)
    rating = np.clip(1 + 4 * quality + rng.normal(0, 0.3, size=n_products), 1, 5).round(1)
    has_rating = rng.random(n_products) > 0.15
    brand_names = np.array([[*leaf.brands] for leaf in leaves], dtype=object)[subcategory, brand]
    noun_en = np.array([leaf.name_en for leaf in leaves], dtype=object)[subcategory]
    noun_bn = np.array([leaf.name_bn for leaf in leaves], dtype=object)[subcategory]
    variants = np.array(cat.TITLE_VARIANTS, dtype=object)[variant]
    title_en = [
        f"{b} {n.title()} {v}" for b, n, v in zip(brand_names, noun_en, variants[:, 0], strict=True)
    ]
    title_bn = [
        f"{b} {n} {v}" for b, n, v in zip(brand_names, noun_bn, variants[:, 1], strict=True)
    ]
    description_en = [
        cat.DESCRIPTION_PATTERNS["en"].format(brand=b, noun=n)
        for b, n in zip(brand_names, noun_en, strict=True)
    ]
    description_bn = [
        cat.DESCRIPTION_PATTERNS["bn"].format(brand=b, noun=n)
        for b, n in zip(brand_names, noun_bn, strict=True)
    ]
    start_us = _local_midnight_us(config.start)
    products = _table(
        "products",
        {
            "product_id": np.arange(n_products, dtype=np.int64) + 1,
            "seller_id": seller,
            "category": _take(ref.CATEGORIES, category),
            "subcategory": pa.array(noun_en.tolist(), type=pa.string()),
            "brand": pa.array(brand_names.tolist(), type=pa.string()),
            "title_en": title_en,
            "title_bn": title_bn,
            "description_en": description_en,
            "description_bn": description_bn,
            "price_bdt": base_price,
            "rating": pa.array(rating, mask=~has_rating, type=pa.float64()),
            "stock": rng.integers(0, 500, size=n_products),
            "true_quality": quality,
            "listed_ts": _timestamps(
                start_us - rng.integers(1, 400, size=n_products) * DAY_S * US_PER_S
            ),
        },
    )
    seller_division = rng.choice(
        len(ref.DIVISIONS), size=n_sellers, p=[DIVISION_WEIGHTS[d] for d in ref.DIVISIONS]
    )
    sellers = _table(
        "sellers",
        {
            "seller_id": np.arange(n_sellers, dtype=np.int64) + 1,
            "name": [f"GetIt Shop {i + 1:05d}" for i in range(n_sellers)],
            "division": _take(ref.DIVISIONS, seller_division),
            "seller_rating": np.clip(rng.normal(4.2, 0.5, size=n_sellers), 1, 5).round(2),
            "joined_ts": _timestamps(
                start_us - rng.integers(400, 2000, size=n_sellers) * DAY_S * US_PER_S
            ),
        },
    )
    return _Catalogue(
        products=products,
        sellers=sellers,
        category=category,
        subcategory=subcategory,
        brand=brand,
        base_price=base_price,
        quality=quality,
        popularity=popularity,
    )


@dataclass
class _TextTables:
    """Every search query and review sentence, built once, then picked by index."""

    queries: npt.NDArray[np.object_]  # subcategory x brand x language(3) x pattern(4)
    reviews: npt.NDArray[np.object_]  # language(3) x sentiment(3) x subcategory x pattern(3)

    @classmethod
    def build(cls) -> _TextTables:
        leaves = cat.SUBCATEGORIES
        languages = ref.REVIEW_LANGUAGES  # bn, en, banglish
        nouns = {
            "en": [leaf.name_en for leaf in leaves],
            "bn": [leaf.name_bn for leaf in leaves],
            "banglish": [cat.BANGLISH_NOUNS[leaf.name_en] for leaf in leaves],
        }
        queries = np.empty((len(leaves), 3, 3, 4), dtype=object)
        for s, leaf in enumerate(leaves):
            for b, brand in enumerate(leaf.brands):
                for li, language in enumerate(languages):
                    for pi, pattern in enumerate(cat.QUERY_PATTERNS[language]):
                        text = pattern.format(noun=nouns[language][s], brand=brand)
                        queries[s, b, li, pi] = text.lower() if language != "bn" else text
        reviews = np.empty((3, 3, len(leaves), 3), dtype=object)
        for li, language in enumerate(languages):
            for si, sentiment in enumerate(ref.SENTIMENTS):
                for s in range(len(leaves)):
                    for pi, pattern in enumerate(cat.REVIEW_PATTERNS[(language, sentiment)]):
                        reviews[li, si, s, pi] = pattern.format(noun=nouns[language][s])
        return cls(queries=queries, reviews=reviews)


class _PartitionedWriter:
    """Writes a table as ``<out>/<name>/date=YYYY-MM-DD/part-0.parquet`` (Hive partitions)."""

    def __init__(self, out_dir: Path, name: str) -> None:
        self.root = out_dir / name
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, day: date, table: pa.Table) -> None:
        folder = self.root / f"date={day.isoformat()}"
        folder.mkdir(exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet")


class _StreamWriter:
    """Writes a single Parquet file one row group per day."""

    def __init__(self, out_dir: Path, name: str) -> None:
        self.schema = CONTRACTS[name].schema()
        self.writer = pq.ParquetWriter(out_dir / f"{name}.parquet", self.schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Counters:
    """Running ids, so ids stay unique across days."""

    session: int = 0
    event: int = 0
    order: int = 0
    payment: int = 0
    review: int = 0
    fresh: int = FRESH_ID_BASE

    def take(self, name: str, count: int) -> IntArray:
        first = getattr(self, name)
        setattr(self, name, first + count)
        return np.arange(first + 1, first + count + 1, dtype=np.int64)


@dataclass
class _DayContext:
    index: int
    day: date
    midnight_us: int
    multiplier: float
    festival: bool
    rng: np.random.Generator


@dataclass
class _Orders:
    """Orders of one day before ids are given, one row per order; items as parallel arrays."""

    customer: IntArray
    session: IntArray
    ts_us: IntArray
    method: IntArray
    item_order: IntArray  # index into the order arrays
    item_product: IntArray
    item_quantity: IntArray
    item_price: FloatArray
    discount: FloatArray
    voucher: npt.NDArray[np.object_]
    status: IntArray
    district: IntArray
    address: IntArray
    device: IntArray
    wallet: IntArray
    card: IntArray
    payment_status: IntArray
    fraud_pattern: IntArray  # -1 genuine


class MarketplaceSimulator:
    """Simulates the marketplace day by day; :func:`generate` drives it."""

    def __init__(self, config: MarketplaceConfig) -> None:
        self.config = config
        self.population = _make_population(config)
        self.catalogue = _make_catalogue(config)
        self.calendar = build_calendar(config.start, config.end)
        self.text = _TextTables.build()
        self.counters = _Counters()
        categories = self.catalogue.category
        self.elasticity = np.array([ELASTICITY[c] for c in ref.CATEGORIES])[categories]
        self.trend = np.array([CATEGORY_TREND[c] for c in ref.CATEGORIES])
        self.products_by_category = [
            np.flatnonzero(categories == k) for k in range(len(ref.CATEGORIES))
        ]
        self.signup_device = np.array(
            [ref.DEVICE_TYPES.index(v) for v in self.population.table["device_type"].to_pylist()]
        )
        self.leaf_is_expensive = np.array(
            [leaf.category in ("electronics", "mobile") for leaf in cat.SUBCATEGORIES]
        )[self.catalogue.subcategory]

    # ------------------------------------------------------------------ one day
    def day_context(self, index: int) -> _DayContext:
        day = self.config.start + timedelta(days=index)
        multiplier = float(self.calendar["demand_multiplier"][index].as_py())
        festival = self.calendar["festival"][index].as_py() is not None
        return _DayContext(
            index=index,
            day=day,
            midnight_us=_local_midnight_us(day),
            multiplier=multiplier,
            festival=festival,
            rng=_stream(self.config.seed, index + 1, 0),
        )

    def prices(self, ctx: _DayContext) -> tuple[FloatArray, FloatArray]:
        """Today's price and discount per product: campaigns on festival days, flash sales."""
        rng = _stream(self.config.seed, ctx.index + 1, 1)
        n = len(self.catalogue.base_price)
        on_campaign = rng.random(n) < (0.35 if ctx.festival else 0.03)
        discount = np.where(on_campaign, rng.uniform(0.10, 0.30, size=n), 0.0)
        return np.round(self.catalogue.base_price * (1 - discount), 0), discount

    def product_weights(self, ctx: _DayContext, discount: FloatArray) -> FloatArray:
        years = ctx.index / 365.0
        trend = (1 + self.trend[self.catalogue.category]) ** years
        price_effect = (1 - discount) ** (-self.elasticity)
        weights: FloatArray = self.catalogue.popularity * trend * price_effect
        return weights

    def cart_probability(self, discount: FloatArray) -> FloatArray:
        quality_effect = 1 + 0.8 * (self.catalogue.quality - 0.5)
        result: FloatArray = np.clip(
            BASE_CART_PROBABILITY * quality_effect * (1 + 1.5 * discount), 0, 1
        )
        return result

    def customer_rates(self, ctx: _DayContext) -> tuple[IntArray, FloatArray, FloatArray]:
        """Active customers, their session rate today, and their category preferences today."""
        pop = self.population
        active = np.flatnonzero((pop.signup_day < ctx.index) & (pop.activity > 0))
        weekday = ctx.day.weekday()
        growth = (1 + ANNUAL_GROWTH) ** (ctx.index / 365.0)
        rate = pop.activity[active] * ctx.multiplier * WEEKLY_MULTIPLIER[weekday] * growth
        drift = ctx.index / max(1, self.config.days - 1) * 0.5
        preferences = (1 - drift) * pop.preferences_start[active] + drift * pop.preferences_end[
            active
        ]
        return active, rate, preferences

    def simulate_day(self, index: int) -> dict[str, pa.Table]:
        ctx = self.day_context(index)
        rng = ctx.rng
        pop, catalogue = self.population, self.catalogue
        price, discount = self.prices(ctx)
        weights = self.product_weights(ctx, discount)
        cart_probability = self.cart_probability(discount)
        active, rate, preferences = self.customer_rates(ctx)

        # Sessions.
        sessions_per_customer = rng.poisson(rate)
        session_customer_row = np.repeat(np.arange(len(active)), sessions_per_customer)
        session_customer = active[session_customer_row]
        n_sessions = len(session_customer)
        profile = FRIDAY_PROFILE if ctx.day.weekday() == 4 else HOURLY_PROFILE
        hour = rng.choice(24, size=n_sessions, p=profile / profile.sum())
        start_s = hour * 3600 + rng.integers(0, 3600, size=n_sessions)
        session_ids = self.counters.take("session", n_sessions)
        web = ref.DEVICE_TYPES.index("web")
        session_device = np.where(
            rng.random(n_sessions) < 0.15, web, self.signup_device[session_customer]
        )

        # Views: a geometric number per session, each a category then a product.
        views_per_session = rng.geometric(1 - VIEW_CONTINUE, size=n_sessions)
        has_search = rng.random(n_sessions) < SEARCH_PROBABILITY
        view_session = np.repeat(np.arange(n_sessions), views_per_session)
        n_views = len(view_session)
        view_category = _choice_by_rows(rng, preferences[session_customer_row[view_session]])
        view_product = np.empty(n_views, dtype=np.int64)
        draws = rng.random(n_views)
        for k, members in enumerate(self.products_by_category):
            in_k = np.flatnonzero(view_category == k)
            cumulative = np.cumsum(weights[members])
            cumulative /= cumulative[-1]
            view_product[in_k] = members[np.searchsorted(cumulative, draws[in_k])]
        gaps = rng.exponential(45.0, size=n_views)
        view_offset = _within_group_cumsum(gaps, views_per_session) + np.where(
            has_search[view_session], 20.0, 0.0
        )
        last_view_offset = view_offset[np.cumsum(views_per_session) - 1]

        # Cart adds, removals and purchases.
        added = rng.random(n_views) < cart_probability[view_product]
        add_rows = np.flatnonzero(added)
        add_offset = view_offset[add_rows] + rng.exponential(20.0, size=len(add_rows))
        removed = rng.random(len(add_rows)) < REMOVE_PROBABILITY
        remove_rows = add_rows[removed]
        remove_offset = last_view_offset[view_session[remove_rows]] + rng.exponential(
            30.0, size=len(remove_rows)
        )
        kept_rows = add_rows[~removed]
        kept_per_session = np.bincount(view_session[kept_rows], minlength=n_sessions)
        buys = (kept_per_session > 0) & (rng.random(n_sessions) < PURCHASE_PROBABILITY)
        bought_rows = kept_rows[buys[view_session[kept_rows]]]
        session_end = last_view_offset + 60.0 + rng.exponential(60.0, size=n_sessions)
        purchase_offset = session_end[view_session[bought_rows]]

        # Events of the day, in time order.
        search_sessions = np.flatnonzero(has_search)
        first_view_row = np.cumsum(views_per_session) - views_per_session
        search_product = view_product[first_view_row[search_sessions]]
        search_language = _search_language(rng, pop.language[session_customer[search_sessions]])
        query_index = (
            catalogue.subcategory[search_product],
            catalogue.brand[search_product],
            search_language,
            rng.integers(0, 4, size=len(search_sessions)),
        )
        queries = self.text.queries[query_index]
        kinds = (
            (search_sessions, np.zeros(len(search_sessions)), 1, None, queries),
            (view_session, view_offset, 0, view_product, None),
            (view_session[add_rows], add_offset, 2, view_product[add_rows], None),
            (view_session[remove_rows], remove_offset, 3, view_product[remove_rows], None),
            (view_session[bought_rows], purchase_offset, 4, view_product[bought_rows], None),
        )
        ev_session = np.concatenate([k[0] for k in kinds])
        ev_offset = np.concatenate([k[1] for k in kinds])
        ev_type = np.concatenate([np.full(len(k[0]), k[2]) for k in kinds])
        ev_product = np.concatenate(
            [k[3] + 1 if k[3] is not None else np.full(len(k[0]), -1) for k in kinds]
        )
        ev_query = np.concatenate(
            [k[4] if k[4] is not None else np.full(len(k[0]), None, dtype=object) for k in kinds]
        )
        ev_seconds = np.minimum(start_s[ev_session] + ev_offset, DAY_S - 1e-6)
        ev_us = ctx.midnight_us + (ev_seconds * US_PER_S).astype(np.int64)
        # Genuine orders: one per buying session.
        buying_sessions = np.flatnonzero(buys)
        order_of_session = np.full(n_sessions, -1)
        order_of_session[buying_sessions] = np.arange(len(buying_sessions))
        item_order = order_of_session[view_session[bought_rows]]
        item_product = view_product[bought_rows]
        quantity = 1 + (rng.random(len(bought_rows)) < SECOND_UNIT_PROBABILITY).astype(np.int64)
        customers = session_customer[buying_sessions]
        order_us = ctx.midnight_us + (
            np.minimum(start_s[buying_sessions] + session_end[buying_sessions], DAY_S - 1)
            * US_PER_S
        ).astype(np.int64)
        genuine = self.genuine_orders(
            ctx, customers, session_ids[buying_sessions], order_us, item_order, item_product,
            quantity, price,
        )  # fmt: skip
        fraud = self.fraud_orders(ctx, len(buying_sessions), price)
        tables, fraud_sessions = self.finish_orders(ctx, [genuine, fraud])
        tables["events"] = self.events_table(
            ctx,
            genuine={
                "session_id": session_ids[ev_session],
                "customer_id": session_customer[ev_session] + 1,
                "us": ev_us,
                "type": ev_type,
                "product_id": ev_product,
                "query": ev_query,
                "device": session_device[ev_session],
            },
            fraud_sessions=fraud_sessions,
        )
        tables["reviews"] = self.reviews(ctx, genuine)
        tables["daily_demand"] = self.daily_demand(
            ctx, rate, preferences, weights, cart_probability, price, genuine
        )
        return tables

    def genuine_orders(
        self,
        ctx: _DayContext,
        customers: IntArray,
        sessions: IntArray,
        order_us: IntArray,
        item_order: IntArray,
        item_product: IntArray,
        quantity: IntArray,
        price: FloatArray,
    ) -> _Orders:
        rng = _stream(self.config.seed, ctx.index + 1, 2)
        pop = self.population
        n = len(customers)
        item_price = price[item_product]
        subtotal = np.bincount(item_order, weights=item_price * quantity, minlength=n)
        voucher_p = FESTIVAL_VOUCHER_PROBABILITY if ctx.festival else VOUCHER_PROBABILITY
        has_voucher = rng.random(n) < voucher_p
        discount = np.where(has_voucher, np.minimum(0.12 * subtotal, 300.0), 0.0).round(0)
        voucher_code = "EID25" if ctx.festival else "GETIT10"
        voucher = np.full(n, None, dtype=object)
        voucher[has_voucher] = voucher_code
        mix = np.where(
            pop.dhaka_urban[customers][:, None], PAYMENT_MIX_DHAKA_URBAN, PAYMENT_MIX_ELSEWHERE
        )
        method = _choice_by_rows(rng, mix)
        cod = method == ref.PAYMENT_METHODS.index("cod")
        account_age_days = ctx.index - pop.signup_day[customers]
        item_quality = np.bincount(
            item_order, weights=self.catalogue.quality[item_product], minlength=n
        )
        mean_quality = item_quality / np.maximum(np.bincount(item_order, minlength=n), 1)
        draw = rng.random(n)
        refused = cod & (draw < 0.07 + 0.08 * (account_age_days < 30))
        returned = ~cod & (draw < 0.03 + 0.08 * (1 - mean_quality))
        cancelled = ~refused & ~returned & (rng.random(n) < 0.02)
        status = np.select(
            [refused, returned, cancelled],
            [ref.ORDER_STATUSES.index(s) for s in ("cod_refused", "returned", "cancelled")],
            default=ref.ORDER_STATUSES.index("delivered"),
        )
        moved = rng.random(n) < 0.05
        district = np.where(
            moved, rng.integers(0, len(ref.DISTRICTS), size=n), pop.district[customers]
        )
        address = np.where(moved, FRESH_ID_BASE * 2 + rng.integers(0, 10**9, size=n),
                           pop.address_id[customers])  # fmt: skip
        device = np.where(
            rng.random(n) < 0.08, pop.second_device_id[customers], pop.device_id[customers]
        )
        wallet = np.where(method < 3, pop.wallet_ids[customers, np.minimum(method, 2)], -1)
        card = np.where(method == 3, pop.card_id[customers], -1)
        card = np.where((method == 3) & (card < 0), pop.device_id[customers] + 5 * 10**11, card)
        payment_status = np.where(
            cod, ref.PAYMENT_STATUSES.index("pending_cod"), ref.PAYMENT_STATUSES.index("succeeded")
        )
        return _Orders(
            customer=customers, session=sessions, ts_us=order_us, method=method,
            item_order=item_order, item_product=item_product, item_quantity=quantity,
            item_price=item_price, discount=discount, voucher=voucher, status=status,
            district=district, address=address, device=device, wallet=wallet, card=card,
            payment_status=payment_status, fraud_pattern=np.full(n, -1),
        )  # fmt: skip

    def fraud_orders(self, ctx: _DayContext, genuine_payments: int, price: FloatArray) -> _Orders:
        """Today's fraud, pattern by pattern, as orders (card testing: attempts without one)."""
        rng = _stream(self.config.seed, ctx.index + 1, 3)
        pop = self.population
        parts: list[dict[str, Any]] = []
        established = np.flatnonzero((pop.role == ROLE_GENUINE) & (pop.signup_day < ctx.index - 30))
        expensive = np.flatnonzero(self.leaf_is_expensive)
        everything = np.arange(len(price))
        wallets = [ref.PAYMENT_METHODS.index(m) for m in ref.WALLETS]

        def fresh(count: int) -> IntArray:
            return self.counters.take("fresh", count)

        def part(
            pattern: str, customers: IntArray, seconds: FloatArray, method: IntArray,
            products: IntArray, **overrides: Any,
        ) -> None:  # fmt: skip
            n = len(customers)
            if n == 0:
                return
            parts.append(
                {
                    "customer": customers,
                    "ts_us": ctx.midnight_us
                    + (np.clip(seconds, 0, DAY_S - 1) * US_PER_S).astype(np.int64),
                    "method": method,
                    "product": products,
                    "device": overrides.get("device", pop.device_id[customers]),
                    "wallet": overrides.get(
                        "wallet",
                        np.where(method < 3, pop.wallet_ids[customers, np.minimum(method, 2)], -1),
                    ),
                    "card": overrides.get("card", np.full(n, -1)),
                    "address": overrides.get("address", pop.address_id[customers]),
                    "district": overrides.get("district", pop.district[customers]),
                    "discount_share": overrides.get("discount_share", np.zeros(n)),
                    "voucher": overrides.get("voucher", np.full(n, None, dtype=object)),
                    "status": overrides.get(
                        "status", np.full(n, ref.ORDER_STATUSES.index("delivered"))
                    ),
                    "payment_status": overrides.get(
                        "payment_status",
                        np.where(
                            method == ref.PAYMENT_METHODS.index("cod"),
                            ref.PAYMENT_STATUSES.index("pending_cod"),
                            ref.PAYMENT_STATUSES.index("succeeded"),
                        ),
                    ),
                    "has_order": overrides.get("has_order", np.ones(n, dtype=bool)),
                    "pattern": np.full(n, ref.FRAUD_PATTERNS.index(pattern)),
                }
            )

        # Account takeover after a SIM swap: the victim's wallet is re-registered on a new
        # device at night and spent on expensive goods delivered elsewhere.
        n_ato = rng.poisson(ATO_RATE * genuine_payments)
        if n_ato and len(established):
            victims = rng.choice(established, size=n_ato)
            method = rng.choice(wallets[:2], size=n_ato)
            part(
                "account_takeover", victims, rng.uniform(0, 5 * 3600, size=n_ato), method,
                rng.choice(expensive, size=n_ato), device=fresh(n_ato), wallet=fresh(n_ato),
                address=fresh(n_ato), district=rng.integers(0, len(ref.DISTRICTS), size=n_ato),
            )  # fmt: skip
        # Mule rings: ring members share devices, phones, wallets and an address.
        mules = np.flatnonzero(pop.role == ROLE_MULE)
        n_mule = rng.poisson(MULE_RATE * genuine_payments)
        if n_mule and len(mules):
            members = rng.choice(mules, size=n_mule)
            method = rng.choice([*wallets[:2], ref.PAYMENT_METHODS.index("cod")], size=n_mule)
            part(
                "mule_ring", members, rng.uniform(0, DAY_S, size=n_mule), method,
                rng.choice(expensive, size=n_mule),
            )  # fmt: skip
        # Promo abuse: a group of accounts created yesterday on one shared device all use the
        # new-user voucher. Unused groups stay dormant, as fake accounts do.
        n_groups = rng.poisson(PROMO_RATE * genuine_payments / PROMO_GROUP_SIZE)
        ready = np.flatnonzero((pop.role == ROLE_PROMO) & (pop.signup_day == ctx.index - 1))
        ready_groups = np.unique(pop.group[ready])
        if n_groups and len(ready_groups):
            chosen = rng.choice(ready_groups, size=min(n_groups, len(ready_groups)), replace=False)
            abusers = ready[np.isin(pop.group[ready], chosen)]
            n = len(abusers)
            method = np.where(rng.random(n) < 0.6, ref.PAYMENT_METHODS.index("cod"), wallets[0])
            refused = (method == ref.PAYMENT_METHODS.index("cod")) & (rng.random(n) < 0.4)
            part(
                "promo_abuse",
                abusers,
                rng.uniform(8 * 3600, DAY_S, size=n),
                method,
                rng.choice(everything, size=n),
                discount_share=rng.uniform(0.4, 0.6, size=n),
                voucher=np.full(n, "NEWUSER50", dtype=object),
                status=np.where(
                    refused,
                    ref.ORDER_STATUSES.index("cod_refused"),
                    ref.ORDER_STATUSES.index("delivered"),
                ),
            )
        # Velocity bursts: one account pays many times within ten minutes.
        n_burst = rng.poisson(VELOCITY_RATE * genuine_payments)
        if n_burst and len(established):
            sizes = rng.integers(5, 13, size=n_burst)
            owners = np.repeat(rng.choice(established, size=n_burst), sizes)
            starts = np.repeat(rng.uniform(0, DAY_S - 600, size=n_burst), sizes)
            seconds = starts + np.sort(rng.uniform(0, 600, size=len(owners)))
            method = np.repeat(rng.choice(wallets, size=n_burst), sizes)
            part(
                "velocity_burst", owners, seconds, method, rng.choice(everything, size=len(owners))
            )
        # Card testing: many tiny card attempts on fresh cards, mostly declined, no order.
        n_test = rng.poisson(CARD_TESTING_RATE * genuine_payments)
        if n_test and len(established):
            sizes = rng.integers(10, 31, size=n_test)
            owners = np.repeat(rng.choice(established, size=n_test), sizes)
            starts = np.repeat(rng.uniform(0, DAY_S - 3600, size=n_test), sizes)
            seconds = starts + rng.uniform(0, 3600, size=len(owners))
            n = len(owners)
            part(
                "card_testing", owners, seconds, np.full(n, ref.PAYMENT_METHODS.index("card")),
                np.zeros(n, dtype=np.int64), card=fresh(n), has_order=np.zeros(n, dtype=bool),
                payment_status=np.where(rng.random(n) < 0.85, ref.PAYMENT_STATUSES.index("failed"),
                                        ref.PAYMENT_STATUSES.index("succeeded")),
            )  # fmt: skip
        return self._fraud_as_orders(parts, price, rng)

    def _fraud_as_orders(
        self, parts: list[dict[str, Any]], price: FloatArray, rng: np.random.Generator
    ) -> _Orders:
        def col(name: str, dtype: Any = np.int64) -> Any:
            if not parts:
                return np.zeros(0, dtype=dtype)
            return np.concatenate([p[name] for p in parts])

        customer = col("customer")
        n = len(customer)
        has_order = col("has_order", bool)
        product = col("product")
        item_price = np.where(has_order, price[product], rng.uniform(10, 150, size=n).round(0))
        discount = (item_price * col("discount_share", float)).round(0)
        return _Orders(
            customer=customer,
            # 0: a session is made for the order (fraudsters browse too); -1: card-testing
            # scripts call the payment API directly and leave no clickstream.
            session=np.where(has_order, 0, -1),
            ts_us=col("ts_us"),
            method=col("method"),
            item_order=np.arange(n),
            item_product=product,
            item_quantity=np.ones(n, dtype=np.int64),
            item_price=item_price,
            discount=discount,
            voucher=col("voucher", object),
            status=col("status"),
            district=col("district"),
            address=col("address"),
            device=col("device"),
            wallet=col("wallet"),
            card=col("card"),
            payment_status=col("payment_status"),
            fraud_pattern=col("pattern"),
        )

    def finish_orders(
        self, ctx: _DayContext, batches: list[_Orders]
    ) -> tuple[dict[str, pa.Table], dict[str, IntArray]]:
        """Merge genuine and fraud orders, give ids in time order, build the three tables.

        Also returns the fraud orders' fresh sessions (session, customer, product, order time),
        from which :meth:`events_table` makes their clickstream.
        """
        rng = _stream(self.config.seed, ctx.index + 1, 4)
        offsets = np.cumsum([0] + [len(b.customer) for b in batches])
        merged = {
            name: np.concatenate([getattr(b, name) for b in batches])
            for name in _Orders.__dataclass_fields__
            if not name.startswith("item_")
        }
        items = {
            name: np.concatenate(
                [getattr(b, name) + (offsets[i] if name == "item_order" else 0)
                 for i, b in enumerate(batches)]
            )
            for name in ("item_order", "item_product", "item_quantity", "item_price")
        }  # fmt: skip
        n = len(merged["customer"])
        pay_us = merged["ts_us"] + rng.integers(5, 90, size=n) * US_PER_S
        pay_us = np.minimum(pay_us, ctx.midnight_us + DAY_S * US_PER_S - 1)
        by_time = np.argsort(pay_us, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[by_time] = np.arange(n)
        is_order = merged["session"] >= 0
        # Orders get ids in time order; fraud orders get fresh sessions (their events are made
        # in events_table).
        order_rows = by_time[is_order[by_time]]
        order_ids = np.full(n, -1, dtype=np.int64)
        order_ids[order_rows] = self.counters.take("order", len(order_rows))
        bot_sessions = order_rows[merged["session"][order_rows] == 0]
        merged["session"][bot_sessions] = self.counters.take("session", len(bot_sessions))
        subtotal = np.bincount(
            items["item_order"], weights=items["item_price"] * items["item_quantity"], minlength=n
        )
        n_items = np.bincount(items["item_order"], weights=items["item_quantity"], minlength=n)
        district_names = np.asarray(ref.DISTRICTS, dtype=object)[merged["district"]]
        division = [ref.DIVISION_OF_DISTRICT[d] for d in district_names[order_rows]]
        in_dhaka = np.array([d == "Dhaka" for d in division], dtype=bool)
        fee = np.where(in_dhaka, DELIVERY_FEE_DHAKA, DELIVERY_FEE_ELSEWHERE)
        discount = np.minimum(merged["discount"], subtotal)
        total = subtotal - discount
        orders = _table(
            "orders",
            {
                "order_id": order_ids[order_rows],
                "customer_id": merged["customer"][order_rows] + 1,
                "session_id": merged["session"][order_rows],
                "order_ts": _timestamps(merged["ts_us"][order_rows]),
                "delivery_division": pa.array(division, type=pa.string()),
                "delivery_district": pa.array(district_names[order_rows], type=pa.string()),
                "address_id": merged["address"][order_rows],
                "n_items": n_items[order_rows].astype(np.int64),
                "subtotal_bdt": subtotal[order_rows],
                "discount_bdt": discount[order_rows],
                "voucher_code": pa.array(merged["voucher"][order_rows], type=pa.string()),
                "total_bdt": total[order_rows] + fee,
                "payment_method": _take(ref.PAYMENT_METHODS, merged["method"][order_rows]),
                "status": _take(ref.ORDER_STATUSES, merged["status"][order_rows]),
            },
        )
        item_rows = np.argsort(rank[items["item_order"]], kind="stable")
        item_rows = item_rows[is_order[items["item_order"][item_rows]]]
        owner = items["item_order"][item_rows]
        order_items = _table(
            "order_items",
            {
                "order_id": order_ids[owner],
                "product_id": items["item_product"][item_rows] + 1,
                "order_ts": _timestamps(merged["ts_us"][owner]),
                "quantity": items["item_quantity"][item_rows],
                "unit_price_bdt": items["item_price"][item_rows],
            },
        )
        # An order's payment is its total with delivery; a card-testing attempt is its amount.
        amount = subtotal.copy()
        amount[order_rows] = total[order_rows] + fee
        pattern = merged["fraud_pattern"][by_time]
        payments = _table(
            "payments",
            {
                "payment_id": self.counters.take("payment", n),
                "order_id": pa.array(order_ids[by_time], mask=order_ids[by_time] < 0,
                                     type=pa.int64()),
                "customer_id": merged["customer"][by_time] + 1,
                "payment_ts": _timestamps(pay_us[by_time]),
                "payment_method": _take(ref.PAYMENT_METHODS, merged["method"][by_time]),
                "amount_bdt": amount[by_time],
                "device_id": merged["device"][by_time],
                "wallet_account_id": pa.array(merged["wallet"][by_time],
                                              mask=merged["wallet"][by_time] < 0, type=pa.int64()),
                "card_id": pa.array(merged["card"][by_time], mask=merged["card"][by_time] < 0,
                                    type=pa.int64()),
                "status": _take(ref.PAYMENT_STATUSES, merged["payment_status"][by_time]),
                "is_fraud": pattern >= 0,
                "fraud_pattern": pa.array(
                    np.asarray(ref.FRAUD_PATTERNS, dtype=object)[np.maximum(pattern, 0)],
                    mask=pattern < 0, type=pa.string(),
                ),
            },
        )  # fmt: skip
        first_item = np.full(n, -1, dtype=np.int64)
        first_item[items["item_order"][::-1]] = np.arange(len(items["item_order"]))[::-1]
        fraud_sessions = {
            "session_id": merged["session"][bot_sessions],
            "customer_id": merged["customer"][bot_sessions] + 1,
            "product_id": items["item_product"][first_item[bot_sessions]] + 1,
            "order_us": merged["ts_us"][bot_sessions],
        }
        return {"orders": orders, "order_items": order_items, "payments": payments}, fraud_sessions

    def events_table(
        self,
        ctx: _DayContext,
        genuine: dict[str, Any],
        fraud_sessions: dict[str, IntArray],
    ) -> pa.Table:
        """The day's clickstream in time order: genuine sessions plus a short session per fraud
        order (a view, an add to cart and the purchase in the minutes before it)."""
        rng = _stream(self.config.seed, ctx.index + 1, 6)
        n = len(fraud_sessions["session_id"])
        view_gap = rng.uniform(60, 600, size=n)
        cart_gap = rng.uniform(5, 55, size=n)
        offsets_s = np.stack([view_gap + cart_gap + 5, cart_gap + 5, np.full(n, 5.0)], axis=1)
        fraud_us = fraud_sessions["order_us"][:, None] - (offsets_s * US_PER_S).astype(np.int64)
        fraud_us = np.maximum(fraud_us, ctx.midnight_us)
        kinds = np.array([0, 2, 4])  # view, add_to_cart, purchase
        android = ref.DEVICE_TYPES.index("android")
        columns = {
            "session_id": np.concatenate(
                [genuine["session_id"], np.repeat(fraud_sessions["session_id"], 3)]
            ),
            "customer_id": np.concatenate(
                [genuine["customer_id"], np.repeat(fraud_sessions["customer_id"], 3)]
            ),
            "us": np.concatenate([genuine["us"], fraud_us.reshape(-1)]),
            "type": np.concatenate([genuine["type"], np.tile(kinds, n)]),
            "product_id": np.concatenate(
                [genuine["product_id"], np.repeat(fraud_sessions["product_id"], 3)]
            ),
            "query": np.concatenate([genuine["query"], np.full(3 * n, None, dtype=object)]),
            "device": np.concatenate([genuine["device"], np.full(3 * n, android)]),
        }
        order = np.lexsort((columns["type"], columns["us"]))
        ordered = {name: values[order] for name, values in columns.items()}
        return _table(
            "events",
            {
                "event_id": self.counters.take("event", len(order)),
                "session_id": ordered["session_id"],
                "customer_id": ordered["customer_id"],
                "event_ts": _timestamps(ordered["us"]),
                "event_type": _take(ref.EVENT_TYPES, ordered["type"]),
                "product_id": pa.array(
                    ordered["product_id"], mask=ordered["product_id"] < 0, type=pa.int64()
                ),
                "query": pa.array(ordered["query"], type=pa.string()),
                "device_type": _take(ref.DEVICE_TYPES, ordered["device"]),
            },
        )

    def reviews(self, ctx: _DayContext, genuine: _Orders) -> pa.Table:
        rng = _stream(self.config.seed, ctx.index + 1, 5)
        pop, catalogue = self.population, self.catalogue
        delivered = genuine.status[genuine.item_order] == ref.ORDER_STATUSES.index("delivered")
        chosen = np.flatnonzero(delivered & (rng.random(len(delivered)) < REVIEW_PROBABILITY))
        delay_s = rng.integers(2 * DAY_S, 10 * DAY_S, size=len(chosen))
        review_us = genuine.ts_us[genuine.item_order[chosen]] + delay_s * US_PER_S
        within = review_us < _local_midnight_us(self.config.end + timedelta(days=1))
        chosen, review_us = chosen[within], review_us[within]
        product = genuine.item_product[chosen]
        customer = genuine.customer[genuine.item_order[chosen]]
        n = len(chosen)
        quality = catalogue.quality[product]
        rating = np.clip(np.rint(1 + 4 * quality + rng.normal(0, 0.8, size=n)), 1, 5).astype(
            np.int64
        )
        sentiment = np.select([rating <= 2, rating == 3], [0, 1], default=2)
        english = pop.language[customer] == 1
        draw = rng.random(n)
        # bn speakers: 55% Bengali, 35% Banglish, 10% English; en speakers: 80% English.
        language = np.where(
            english,
            np.where(draw < 0.8, 1, 2),
            np.select([draw < 0.55, draw < 0.90], [0, 2], default=1),
        )
        text = self.text.reviews[
            language, sentiment, catalogue.subcategory[product], rng.integers(0, 3, size=n)
        ]
        return _table(
            "reviews",
            {
                "review_id": self.counters.take("review", n),
                "product_id": product + 1,
                "customer_id": customer + 1,
                "review_ts": _timestamps(review_us),
                "rating": rating,
                "language": _take(ref.REVIEW_LANGUAGES, language),
                "text": pa.array(text, type=pa.string()),
                "sentiment": _take(ref.SENTIMENTS, sentiment),
            },
        )

    def daily_demand(
        self,
        ctx: _DayContext,
        rate: FloatArray,
        preferences: FloatArray,
        weights: FloatArray,
        cart_probability: FloatArray,
        price: FloatArray,
        genuine: _Orders,
    ) -> pa.Table:
        """Expected units per product under the model, beside the units genuinely sold."""
        expected_sessions = rate.sum()
        views_per_session = 1.0 / (1 - VIEW_CONTINUE)
        category_share = rate @ preferences / max(expected_sessions, 1e-12)
        category = self.catalogue.category
        within = np.zeros_like(weights)
        for members in self.products_by_category:
            within[members] = weights[members] / weights[members].sum()
        expected_views = expected_sessions * views_per_session * category_share[category] * within
        expected_units = (
            expected_views
            * cart_probability
            * (1 - REMOVE_PROBABILITY)
            * PURCHASE_PROBABILITY
            * MEAN_QUANTITY
        )
        sold = np.bincount(
            genuine.item_product, weights=genuine.item_quantity, minlength=len(weights)
        ).astype(np.int64)
        n = len(weights)
        return _table(
            "daily_demand",
            {
                "product_id": np.arange(n, dtype=np.int64) + 1,
                "date": pa.array([ctx.day] * n, type=pa.date32()),
                "expected_units": expected_units,
                "units_sold": sold,
                "avg_price_bdt": price,
            },
        )


def _within_group_cumsum(values: FloatArray, counts: IntArray) -> FloatArray:
    """Cumulative sum restarting at each group of ``counts`` consecutive values."""
    total = np.cumsum(values)
    group_start = np.cumsum(counts) - counts
    before_group = np.where(group_start > 0, total[np.maximum(group_start - 1, 0)], 0.0)
    result: FloatArray = total - np.repeat(before_group, counts)
    return result


def _search_language(rng: np.random.Generator, customer_language: IntArray) -> IntArray:
    """Index into REVIEW_LANGUAGES (bn, en, banglish) for a search query."""
    draw = rng.random(len(customer_language))
    english = customer_language == 1
    result: IntArray = np.where(
        english,
        np.where(draw < 0.85, 1, 2),
        np.select([draw < 0.55, draw < 0.85], [0, 2], default=1),
    )
    return result


ProgressCallback = Callable[[int, int], None]


def generate(
    config: MarketplaceConfig, out_dir: Path, progress: ProgressCallback | None = None
) -> GenerationSummary:
    """Simulate ``config.days`` days and write every marketplace table under ``out_dir``.

    ``progress(done_days, total_days)`` is called after each day. An existing non-empty output
    folder is refused rather than mixed with new files.
    """
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir} is not empty: choose a new --out folder or delete it first")
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    simulator = MarketplaceSimulator(config)
    summary = GenerationSummary(out_dir=out_dir)
    static = {
        "customers": simulator.population.table,
        "sellers": simulator.catalogue.sellers,
        "products": simulator.catalogue.products,
        "calendar": simulator.calendar,
    }
    for name, table in static.items():
        pq.write_table(table, out_dir / f"{name}.parquet")
        summary.rows[name] = table.num_rows
    partitioned = {
        name: _PartitionedWriter(out_dir, name)
        for name in MARKETPLACE_TABLES
        if CONTRACTS[name].partitioned_by_date
    }
    streamed = {name: _StreamWriter(out_dir, name) for name in ("reviews", "daily_demand")}
    try:
        for index in range(config.days):
            tables = simulator.simulate_day(index)
            day = config.start + timedelta(days=index)
            for name, table in tables.items():
                if name in partitioned:
                    partitioned[name].write(day, table)
                else:
                    streamed[name].write(table)
                summary.rows[name] = summary.rows.get(name, 0) + table.num_rows
            summary.add_counts(summary.events_by_type, tables["events"]["event_type"])
            summary.add_counts(summary.payments_by_method, tables["payments"]["payment_method"])
            summary.add_counts(summary.fraud_by_pattern, tables["payments"]["fraud_pattern"])
            if progress is not None:
                progress(index + 1, config.days)
    finally:
        for writer in streamed.values():
            writer.close()
    summary.seconds = time.perf_counter() - started
    logger.info("generated %s in %.1fs", summary.rows, summary.seconds)
    return summary
