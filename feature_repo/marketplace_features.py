"""GetIt's feature repository: what the shop knows about customers, products, devices and time.

Read top to bottom, this file is a tour of Feast's building blocks:

  Entity            the thing a feature describes, with its join key (customer_id, ...)
  FileSource        where the offline history lives (Parquet from getit_ml.features.engineering)
  PushSource        a door for fresh values pushed by a streaming job
  FeatureView       a named group of features of one entity, with a time-to-live
  RequestSource     values that arrive with the request (the checkout's amount, device, time)
  OnDemandFeatureView  features computed at request time, identically online and offline
  FeatureService    the exact feature list one model consumes

Feature names and types come from getit_ml.features.schemas, the same module the feature
engineering writes with, so the two can never disagree. Paths are relative to the repository
path Feast is given (GETIT_ML_HOME/features when `getit-ml features` runs it).
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, FileSource, PushSource, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.value_type import ValueType

from getit_ml.features import context, schemas
from getit_ml.features.feast_support import feast_fields, udf_copy

# --------------------------------------------------------------------------------- entities
# An entity is a join key. A feature view keyed by `customer` joins on customer_id, both in a
# point-in-time training query and in an online lookup.
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A registered GetIt customer.",
)
product = Entity(
    name="product",
    join_keys=["product_id"],
    value_type=ValueType.INT64,
    description="A catalogue product.",
)
device = Entity(
    name="device",
    join_keys=["device_id"],
    value_type=ValueType.INT64,
    description="A device fingerprint seen at payment; shared devices betray mule rings.",
)


# ---------------------------------------------------------------------------- offline sources
# Each source is a Parquet file with an event timestamp (when the value became true) and a
# created timestamp (when it was computed: the tie-breaker if a value is recomputed).
def _offline(name: str) -> FileSource:
    return FileSource(
        name=f"{name}_source",
        path=f"offline/{schemas.OFFLINE_FILES[name]}",
        timestamp_field=schemas.TIMESTAMP_FIELD,
        created_timestamp_column=schemas.CREATED_FIELD,
    )


customer_features_source = _offline("customer_features")
product_features_source = _offline("product_features")
device_features_source = _offline("device_features")
customer_risk_source = _offline("customer_risk")
customer_velocity_source = _offline("customer_velocity")

# A push source has a batch source for history (training, backfills) and accepts pushes of
# fresh rows: `getit-ml features stream` pushes payments-in-the-last-10-minutes here.
customer_velocity_push = PushSource(
    name="customer_velocity_push",
    batch_source=customer_velocity_source,
)

# ------------------------------------------------------------------------------ feature views
# The ttl bounds how old a value may be in a point-in-time join: a customer snapshot older than
# 90 days is "unknown", not "zero".
customer_features = FeatureView(
    name="customer_features",
    entities=[customer],
    ttl=timedelta(days=90),
    schema=feast_fields(schemas.CUSTOMER_FEATURES),
    source=customer_features_source,
    online=True,
    description="Customer behaviour at the end of each active day: RFM over 7/30/90 days, "
    "category affinities, payment mix, refusals and returns, sessions, region.",
    tags={"team": "customer", "pii": "false"},
)
product_features = FeatureView(
    name="product_features",
    entities=[product],
    ttl=timedelta(days=30),
    schema=feast_fields(schemas.PRODUCT_FEATURES),
    source=product_features_source,
    online=True,
    description="Price, discount, popularity and conversion, ratings and review sentiment.",
    tags={"team": "catalogue"},
)
device_features = FeatureView(
    name="device_features",
    entities=[device],
    ttl=timedelta(days=30),
    schema=feast_fields(schemas.DEVICE_FEATURES),
    source=device_features_source,
    online=True,
    description="How many customers pay from this device: the mule-ring signal.",
    tags={"team": "risk"},
)
customer_risk = FeatureView(
    name="customer_risk",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=feast_fields(schemas.CUSTOMER_RISK_FEATURES),
    source=customer_risk_source,
    online=True,
    description="Slow-moving risk: shared phones and addresses, device and wallet changes, "
    "payment amounts of the last 30 days, the last device and wallet used.",
    tags={"team": "risk"},
)
# Fed by the push source: online values are as fresh as the stream; offline history comes from
# the push source's batch source, so training sees what serving saw.
customer_velocity = FeatureView(
    name="customer_velocity",
    entities=[customer],
    ttl=timedelta(hours=1),
    schema=feast_fields(schemas.VELOCITY_FEATURES),
    source=customer_velocity_push,
    online=True,
    description="Payments, amounts, failures and clicks in the last 10 minutes / hour.",
    tags={"team": "risk", "freshness": "streaming"},
)

# --------------------------------------------------------------------------- request-time data
# What the checkout service knows when it asks for a fraud score. Training rows carry the same
# fields (taken from the payments table), so on-demand features are computed the same way.
checkout_request = RequestSource(
    name="checkout_request",
    schema=feast_fields(context.CHECKOUT_REQUEST_FIELDS),
)

# What a service asking about a customer (not a checkout) knows: the moment it asks. The churn
# model's training rows carry it too (the snapshot's time), so the calendar is computed alike.
scoring_request = RequestSource(
    name="scoring_request",
    schema=feast_fields({"request_ts_us": "int64"}),
)

# ----------------------------------------------------------------------- on-demand features
# Computed at request time from the request and other views. The bodies live in
# getit_ml.features.context so that the KServe transformer runs the very same code; python mode
# (dicts of lists) because pandas costs milliseconds per single-row request.
calendar_context = on_demand_feature_view(
    name="calendar_context",
    sources=[checkout_request],
    schema=feast_fields(context.CALENDAR_CONTEXT_FEATURES),
    mode="python",
    description="Local hour and weekday, Ramadan, payday, days to Eid / Pohela Boishakh / Puja.",
)(udf_copy(context.calendar_context_view))

transaction_context = on_demand_feature_view(
    name="transaction_context",
    sources=[
        checkout_request,
        customer_risk[
            [
                "avg_payment_amount_30d",
                "max_payment_amount_30d",
                "last_device_id",
                "last_wallet_account_id",
            ]
        ],
    ],
    schema=feast_fields(context.TRANSACTION_CONTEXT_FEATURES),
    mode="python",
    description="Amount against the customer's history, new device, wallet change, rail.",
)(udf_copy(context.transaction_context_view))

# The same calendar body, fed by the scoring request instead of a checkout: festival proximity
# for models that score customers. The transformer finds the body by its function's name.
scoring_calendar = on_demand_feature_view(
    name="scoring_calendar",
    sources=[scoring_request],
    schema=feast_fields(context.CALENDAR_CONTEXT_FEATURES),
    mode="python",
    description="Days to Eid / Pohela Boishakh / Puja and payday at the moment of scoring.",
)(udf_copy(context.calendar_context_view))

# ------------------------------------------------------------------------- feature services
# A feature service is a model's contract with the store: the fraud model asks for exactly this
# list, in training (get_historical_features) and in serving (get_online_features).
fraud_scoring_v1 = FeatureService(
    name="fraud_scoring_v1",
    features=[
        customer_features,
        customer_risk,
        device_features,
        customer_velocity,
        calendar_context,
        transaction_context,
    ],
    description="Real-time payment fraud scoring for bKash, Nagad, Rocket, card and COD.",
    tags={"model": "fraud", "version": "1"},
)

# The churn model: who the customer is and how they have behaved (RFM, sessions, payment mix,
# refusals and returns, category affinities), and how far the next festival is.
churn_prediction_v1 = FeatureService(
    name="churn_prediction_v1",
    features=[customer_features, scoring_calendar],
    description="Will an active customer place no order in the next 60 days?",
    tags={"model": "churn", "version": "1"},
)
