"""Data contracts: the declared schema of every marketplace table.

One contract per table says, for each column, its Arrow type, whether it may be null, its allowed
values or range, and whether it is unique; for the table, its primary key, its event-time column,
the foreign keys it holds and the order its timestamps must respect. The same contracts are used
by the generator (which writes exactly these schemas), by the importers of public data sets, and by
validation, which reports every violation and quarantines the offending rows.

Timestamps are UTC (``timestamp[us, tz=UTC]``); Bangladesh time is UTC+6 and is derived where a
feature needs local hour or weekday.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa

from getit_ml.data import reference as ref

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
#: Types an extra column may have where a contract sets ``allow_extra_columns``.
EXTRA_COLUMN_TYPES: Final[tuple[pa.DataType, ...]] = (
    pa.float64(),
    pa.int64(),
    pa.bool_(),
    pa.string(),
)


@dataclass(frozen=True)
class Column:
    """One column of a table contract."""

    name: str
    dtype: pa.DataType
    description: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    unique: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """``column`` refers to ``table.target`` (checked when a whole data set is validated)."""

    column: str
    table: str
    target: str


@dataclass(frozen=True)
class TableContract:
    """The declared shape of one table."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    time_column: str | None = None
    #: ``(group column, time column)``: within a group, rows appear in non-decreasing time.
    ordered_within: tuple[str, str] | None = None
    foreign_keys: tuple[ForeignKey, ...] = field(default_factory=tuple)
    #: Large tables are written as Hive partitions ``date=YYYY-MM-DD/``.
    partitioned_by_date: bool = False
    #: Columns beyond the declared ones are kept if they are numeric (e.g. the anonymised
    #: V1..V28 of the card-fraud set); otherwise an undeclared column is a violation.
    allow_extra_numeric_columns: bool = False
    #: Columns beyond the declared ones are kept, as they are, if their type is one of
    #: :data:`EXTRA_COLUMN_TYPES` (float64, int64, bool or string: the features of a user's own
    #: labelled table); an extra column of any other type is a violation. Where
    #: ``allow_extra_numeric_columns`` is set too, a column of those types is kept as it is and
    #: any other numeric column is kept as well.
    allow_extra_columns: bool = False

    def schema(self) -> pa.Schema:
        """The Arrow schema the generator writes and the loaders cast to."""
        return pa.schema([pa.field(c.name, c.dtype, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _id(name: str, description: str, *, unique: bool = False, nullable: bool = False) -> Column:
    return Column(name, pa.int64(), description, nullable=nullable, unique=unique, min_value=0)


def _money(name: str, description: str, *, nullable: bool = False) -> Column:
    return Column(name, pa.float64(), description, nullable=nullable, min_value=0.0)


def _ts(name: str, description: str, *, nullable: bool = False) -> Column:
    return Column(name, TIMESTAMP, description, nullable=nullable)


def _choice(
    name: str, allowed: tuple[str, ...], description: str, *, nullable: bool = False
) -> Column:
    return Column(name, pa.string(), description, allowed=allowed, nullable=nullable)


CUSTOMERS = TableContract(
    name="customers",
    description="One row per registered customer.",
    primary_key="customer_id",
    time_column="signup_ts",
    columns=(
        _id("customer_id", "Customer id.", unique=True),
        _ts("signup_ts", "When the account was created."),
        _choice("division", ref.DIVISIONS, "Home division."),
        _choice("district", ref.DISTRICTS, "Home district (one of the 64)."),
        Column("is_urban", pa.bool_(), "Lives in a city corporation or municipality."),
        _choice("age_band", ref.AGE_BANDS, "Age band."),
        _choice("gender", ref.GENDERS, "Gender as self-declared."),
        _choice("preferred_language", ref.LANGUAGES, "App language: Bengali or English."),
        _choice("device_type", ref.DEVICE_TYPES, "Device the account was created on."),
        _choice("acquisition_channel", ref.ACQUISITION_CHANNELS, "How the customer came."),
        _id("phone_id", "Hashed phone number; shared phones are a mule-ring signal."),
        _id("address_id", "Hashed default delivery address."),
    ),
)

SELLERS = TableContract(
    name="sellers",
    description="Marketplace sellers.",
    primary_key="seller_id",
    time_column="joined_ts",
    columns=(
        _id("seller_id", "Seller id.", unique=True),
        Column("name", pa.string(), "Shop name."),
        _choice("division", ref.DIVISIONS, "Where the seller ships from."),
        Column("seller_rating", pa.float64(), "Average rating, 1-5.", min_value=1, max_value=5),
        _ts("joined_ts", "When the seller joined."),
    ),
)

PRODUCTS = TableContract(
    name="products",
    description="The catalogue, with Bengali and English text.",
    primary_key="product_id",
    time_column="listed_ts",
    foreign_keys=(ForeignKey("seller_id", "sellers", "seller_id"),),
    columns=(
        _id("product_id", "Product id.", unique=True),
        _id("seller_id", "Seller offering the product."),
        _choice("category", ref.CATEGORIES, "Top-level category."),
        Column("subcategory", pa.string(), "Second level of the category tree."),
        Column("brand", pa.string(), "Brand."),
        Column("title_en", pa.string(), "Title in English."),
        Column("title_bn", pa.string(), "Title in Bengali."),
        Column("description_en", pa.string(), "Description in English."),
        Column("description_bn", pa.string(), "Description in Bengali."),
        _money("price_bdt", "List price in taka; must be positive."),
        Column(
            "rating", pa.float64(), "Average rating, 1-5.", nullable=True, min_value=1, max_value=5
        ),
        Column("stock", pa.int64(), "Units in stock.", min_value=0),
        Column(
            "true_quality",
            pa.float64(),
            "Ground truth: latent quality 0-1 that drives ratings and review sentiment.",
            min_value=0,
            max_value=1,
        ),
        _ts("listed_ts", "When the product was listed."),
    ),
)

EVENTS = TableContract(
    name="events",
    description="Clickstream: views, searches, cart changes and purchases, by session.",
    primary_key="event_id",
    time_column="event_ts",
    ordered_within=("session_id", "event_ts"),
    partitioned_by_date=True,
    foreign_keys=(
        ForeignKey("customer_id", "customers", "customer_id"),
        ForeignKey("product_id", "products", "product_id"),
    ),
    columns=(
        _id("event_id", "Event id.", unique=True),
        _id("session_id", "Session id."),
        _id("customer_id", "Logged-in customer; null for a guest session.", nullable=True),
        _ts("event_ts", "When it happened."),
        _choice("event_type", ref.EVENT_TYPES, "What happened."),
        _id("product_id", "Product concerned; null for a search.", nullable=True),
        Column(
            "query",
            pa.string(),
            "Search text (Bengali, English or Banglish); searches only.",
            nullable=True,
        ),
        _choice("device_type", ref.DEVICE_TYPES, "Device of the session."),
    ),
)

ORDERS = TableContract(
    name="orders",
    description="Orders with delivery, discount and outcome.",
    primary_key="order_id",
    time_column="order_ts",
    partitioned_by_date=True,
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    columns=(
        _id("order_id", "Order id.", unique=True),
        _id("customer_id", "Customer."),
        _id("session_id", "Session the order was placed in."),
        _ts("order_ts", "When the order was placed."),
        _choice("delivery_division", ref.DIVISIONS, "Delivery division."),
        _choice("delivery_district", ref.DISTRICTS, "Delivery district."),
        _id("address_id", "Hashed delivery address."),
        Column("n_items", pa.int64(), "Units in the order.", min_value=1),
        _money("subtotal_bdt", "Sum of item prices."),
        _money("discount_bdt", "Discount from vouchers and campaigns."),
        Column("voucher_code", pa.string(), "Voucher used, if any.", nullable=True),
        _money("total_bdt", "Amount to pay: subtotal minus discount plus delivery."),
        _choice("payment_method", ref.PAYMENT_METHODS, "How the customer paid."),
        _choice("status", ref.ORDER_STATUSES, "Outcome of the order."),
    ),
)

ORDER_ITEMS = TableContract(
    name="order_items",
    description="Lines of each order.",
    time_column="order_ts",
    partitioned_by_date=True,
    foreign_keys=(
        ForeignKey("order_id", "orders", "order_id"),
        ForeignKey("product_id", "products", "product_id"),
    ),
    columns=(
        _id("order_id", "Order."),
        _id("product_id", "Product."),
        _ts("order_ts", "When the order was placed (copied for partitioning)."),
        Column("quantity", pa.int64(), "Units.", min_value=1),
        _money("unit_price_bdt", "Price paid per unit after campaign discounts."),
    ),
)

PAYMENTS = TableContract(
    name="payments",
    description="Payment attempts with fraud ground truth.",
    primary_key="payment_id",
    time_column="payment_ts",
    ordered_within=("customer_id", "payment_ts"),
    partitioned_by_date=True,
    foreign_keys=(
        ForeignKey("customer_id", "customers", "customer_id"),
        ForeignKey("order_id", "orders", "order_id"),
    ),
    columns=(
        _id("payment_id", "Payment attempt id.", unique=True),
        _id("order_id", "Order paid; null for attempts that never became an order.", nullable=True),
        _id("customer_id", "Paying account."),
        _ts("payment_ts", "When the attempt was made."),
        _choice("payment_method", ref.PAYMENT_METHODS, "Rail used."),
        _money("amount_bdt", "Amount in taka."),
        _id("device_id", "Device fingerprint."),
        _id(
            "wallet_account_id",
            "Wallet account (bKash/Nagad/Rocket); null otherwise.",
            nullable=True,
        ),
        _id("card_id", "Card token; null unless paid by card.", nullable=True),
        _choice("status", ref.PAYMENT_STATUSES, "Outcome of the attempt."),
        Column("is_fraud", pa.bool_(), "Ground truth label."),
        _choice(
            "fraud_pattern",
            ref.FRAUD_PATTERNS,
            "Ground truth pattern; null if genuine.",
            nullable=True,
        ),
    ),
)

REVIEWS = TableContract(
    name="reviews",
    description="Product reviews in Bengali, English and Banglish.",
    primary_key="review_id",
    time_column="review_ts",
    foreign_keys=(
        ForeignKey("product_id", "products", "product_id"),
        ForeignKey("customer_id", "customers", "customer_id"),
    ),
    columns=(
        _id("review_id", "Review id.", unique=True),
        _id("product_id", "Product reviewed."),
        _id("customer_id", "Reviewer."),
        _ts("review_ts", "When it was written."),
        Column("rating", pa.int64(), "Stars, 1-5.", min_value=1, max_value=5),
        _choice("language", ref.REVIEW_LANGUAGES, "Language of the text."),
        Column("text", pa.string(), "Review text."),
        _choice("sentiment", ref.SENTIMENTS, "Ground truth sentiment."),
    ),
)

CALENDAR = TableContract(
    name="calendar",
    description="One row per day: festivals (Hijri and Bangla calendars), Ramadan, payday and "
    "the ground-truth demand multiplier they cause.",
    primary_key="date",
    columns=(
        Column("date", pa.date32(), "Gregorian date (Asia/Dhaka).", unique=True),
        Column("festival", pa.string(), "Festival on or around this day, if any.", nullable=True),
        Column("is_ramadan", pa.bool_(), "Inside the month of Ramadan."),
        Column("hijri_year", pa.int64(), "Hijri year.", min_value=1),
        Column("hijri_month", pa.int64(), "Hijri month, 1-12.", min_value=1, max_value=12),
        Column("hijri_day", pa.int64(), "Hijri day, 1-30.", min_value=1, max_value=30),
        Column(
            "bangla_month",
            pa.int64(),
            "Month of the Bangla calendar (1 = Boishakh).",
            min_value=1,
            max_value=12,
        ),
        Column("is_payday", pa.bool_(), "Salary days (month end and the first days after)."),
        Column(
            "demand_multiplier",
            pa.float64(),
            "Ground truth: festival and payday effect on demand (1 = an ordinary day).",
            min_value=0,
        ),
    ),
)

DAILY_DEMAND = TableContract(
    name="daily_demand",
    description="Ground truth for forecasting: expected and sold units per product per day.",
    time_column="date",
    partitioned_by_date=False,
    foreign_keys=(ForeignKey("product_id", "products", "product_id"),),
    columns=(
        _id("product_id", "Product."),
        Column("date", pa.date32(), "Day."),
        Column(
            "expected_units",
            pa.float64(),
            "Ground truth intensity: trend x weekly x festival x price effect.",
            min_value=0,
        ),
        Column("units_sold", pa.int64(), "Units sold in delivered or pending orders.", min_value=0),
        _money("avg_price_bdt", "Average price offered that day."),
    ),
)

# ----------------------------------------------------------------------------------------------
# Model-facing tables. The generated marketplace can be projected onto them, and the importers of
# public data sets write them directly, so the same pipelines train on either.

INTERACTIONS = TableContract(
    name="interactions",
    description="Customer-product feedback for recommenders (explicit ratings or implicit events).",
    time_column="interaction_ts",
    ordered_within=None,
    columns=(
        _id("customer_id", "Customer (or user of an imported set)."),
        _id("product_id", "Product (or item of an imported set)."),
        _ts("interaction_ts", "When it happened."),
        Column(
            "rating",
            pa.float64(),
            "Explicit rating; null for implicit feedback.",
            nullable=True,
            min_value=0,
        ),
        _choice("event_type", (*ref.EVENT_TYPES, "rating"), "Kind of feedback."),
    ),
)

CARD_TRANSACTIONS = TableContract(
    name="card_transactions",
    description="Labelled card transactions whose features are given, not derived (e.g. the ULB "
    "credit-card set's anonymised V1..V28, kept as extra numeric columns).",
    primary_key="transaction_id",
    time_column="transaction_ts",
    allow_extra_numeric_columns=True,
    columns=(
        _id("transaction_id", "Transaction id.", unique=True),
        _ts("transaction_ts", "When it happened."),
        _money("amount", "Amount in the set's own currency."),
        Column("is_fraud", pa.bool_(), "Ground truth label."),
    ),
)

SESSION_SEQUENCES = TableContract(
    name="session_sequences",
    description="Ordered items viewed in a session, for next-item prediction.",
    primary_key="session_id",
    columns=(
        _id("session_id", "Session id.", unique=True),
        Column("product_ids", pa.list_(pa.int64()), "Items in the order they were viewed."),
        _id("target_product_id", "The next item to predict (test sessions).", nullable=True),
        _choice("split", ("train", "test"), "Which side of the published split."),
    ),
)

DEMAND_SERIES = TableContract(
    name="demand_series",
    description="A demand time series per product or store, daily or weekly; extra numeric "
    "covariates (temperature, CPI...) are kept.",
    time_column="period_start",
    ordered_within=("series_id", "period_start"),
    allow_extra_numeric_columns=True,
    columns=(
        Column("series_id", pa.string(), "Product or store the series belongs to."),
        Column("period_start", pa.date32(), "First day of the period."),
        _choice("frequency", ("D", "W"), "Daily or weekly periods."),
        Column("value", pa.float64(), "Units or sales in the period.", min_value=0),
        Column("is_holiday", pa.bool_(), "A festival or holiday falls in the period."),
    ),
)

ORDER_HISTORY = TableContract(
    name="order_history",
    description="One row per order, for churn and lifetime-value models.",
    time_column="order_ts",
    ordered_within=("customer_id", "order_ts"),
    columns=(
        _id("customer_id", "Customer."),
        _ts("order_ts", "When the order was placed."),
        Column("n_items", pa.int64(), "Units.", min_value=1),
        _money("amount", "Order value."),
    ),
)

LABELLED_EXAMPLES = TableContract(
    name="labelled_examples",
    description="A user's own labelled table for any binary model family (fraud, churn...): an "
    "id, an optional time and a true/false label, then every other source column as a feature "
    "(float64, int64, bool or string, in source order).",
    primary_key="example_id",
    time_column="example_ts",
    allow_extra_columns=True,
    columns=(
        Column(
            "example_id",
            pa.string(),
            "The source's id column as text, or the 0-based source row number as text.",
            unique=True,
        ),
        _ts(
            "example_ts",
            "The example's time when the source names a time column; null otherwise.",
            nullable=True,
        ),
        Column("label", pa.bool_(), "The binary label: True for the positive class."),
    ),
)

CONTRACTS: Final[dict[str, TableContract]] = {
    c.name: c
    for c in (
        CUSTOMERS,
        SELLERS,
        PRODUCTS,
        EVENTS,
        ORDERS,
        ORDER_ITEMS,
        PAYMENTS,
        REVIEWS,
        CALENDAR,
        DAILY_DEMAND,
        INTERACTIONS,
        CARD_TRANSACTIONS,
        SESSION_SEQUENCES,
        DEMAND_SERIES,
        ORDER_HISTORY,
        LABELLED_EXAMPLES,
    )
}

#: The tables ``getit-ml data generate`` writes.
MARKETPLACE_TABLES: Final[tuple[str, ...]] = (
    "customers",
    "sellers",
    "products",
    "events",
    "orders",
    "order_items",
    "payments",
    "reviews",
    "calendar",
    "daily_demand",
)


def contract(name: str) -> TableContract:
    """The contract of table ``name``; a clear error for an unknown table."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; tables: {', '.join(CONTRACTS)}") from None
