"""Churn: will an active customer place no order in the next 60 days?

Examples are active customers at weekly snapshots (:mod:`.entities`); features the
``churn_prediction_v1`` service (the customer's behaviour and the festival calendar at the
snapshot); the split is by time with a 60-day purge between the parts, so no training label
peeks into the validation or test period. XGBoost early-stops on validation ROC-AUC and Optuna
tunes for it; promotion decides on the test ROC-AUC. A retention team calls the top 10% of
risk; a missed churner costs 500 BDT of margin, a voucher sent to a customer who would have
stayed 50 BDT. The served head is ``churn_probability`` and ``decision``.
"""

from __future__ import annotations

from typing import Final

from getit_ml.data.generator import MarketplaceConfig
from getit_ml.families.base import DemoSpec, ModelFamily
from getit_ml.families.churn import entities
from getit_ml.features.context import CALENDAR_CONTEXT_FEATURES
from getit_ml.features.feature_schema import MonitoringHints, ReasonPhrase
from getit_ml.monitoring.traffic import TrafficShift
from getit_ml.serving.runtime import BinaryHead, DegradedPolicy, ServingSpec
from getit_ml.training.dataset import SplitSpec
from getit_ml.training.table_evaluation import CostModel
from getit_ml.training.tabular import BinaryTabularTrainer, BinaryTask

SERVICE: Final = "churn_prediction_v1"
HEAD: Final = BinaryHead(probability="churn_probability")
REASONS: Final = tuple(
    ReasonPhrase(feature, direction, code, text)
    for feature, direction, code, text in (
        ("days_since_last_order", "high", "LONG_SINCE_LAST_ORDER", "no order for a long time"),
        ("days_since_last_session", "high", "NOT_SEEN_RECENTLY", "has not visited recently"),
        ("orders_90d", "low", "FEW_RECENT_ORDERS", "few orders in the last 90 days"),
        ("orders_lifetime", "low", "FEW_ORDERS_EVER", "few orders ever"),
        ("sessions_30d", "low", "FEW_VISITS", "few visits this month"),
        ("active_days_30d", "low", "FEW_ACTIVE_DAYS", "active on few days this month"),
        ("spend_90d_bdt", "low", "LOW_RECENT_SPEND", "spends little recently"),
        ("cod_refusal_rate", "high", "COD_REFUSALS", "refused cash-on-delivery orders"),
        ("return_rate", "high", "MANY_RETURNS", "returns many orders"),
        ("cancel_rate", "high", "MANY_CANCELLATIONS", "cancels many orders"),
        ("avg_review_rating_given_90d", "low", "POOR_RATINGS", "gave poor ratings recently"),
        ("days_to_next_festival", "high", "NO_FESTIVAL_SOON", "no festival in the coming weeks"),
    )
)
#: A month when a competitor's campaign halves visits and orders: what drift must catch.
COMPETITOR_CAMPAIGN: Final = TrafficShift(
    scale={"sessions_7d": 0.5, "sessions_30d": 0.5, "views_30d": 0.5, "orders_30d": 0.5,
           "spend_30d_bdt": 0.5, "active_days_30d": 0.5},
    add={"days_since_last_session": 10.0, "days_since_last_order": 14.0},
)  # fmt: skip

#: Churn scores feed a retention campaign, not a decision at a till: a row scored on too little
#: is *flagged* (scored, ``decision_status`` ``flagged``), for the campaign to leave out or
#: check, rather than sent to review or refused. Its one store view is customer_features (65
#: store-fed inputs). Measured on the demo's churn population (8,000 customers, 420 days): at
#: most 0.077 of them missing point in time over 80,518 weekly snapshot rows, at most 0.246
#: against the materialized online store for the customers active at the last snapshot; an
#: unknown customer misses all of them (1.0). Flagged above half: well above the normal maximum,
#: well below a blind score.
DEGRADED: Final = DegradedPolicy(max_missing_share=0.5, action="flag")

TASK: Final = BinaryTask(
    family="churn",
    feature_service=SERVICE,
    label=entities.LABEL,
    entity_rows=entities.entity_rows,
    monitoring=MonitoringHints(
        output=HEAD.probability,
        positive_class="churn",
        negative_class="stay",
        # One scoring run happens at one moment: the calendar is constant within a window.
        drift_ignored=tuple(CALENDAR_CONTEXT_FEATURES),
        reasons=REASONS,
    ),
    identifiers=entities.IDENTIFIERS,
    split=SplitSpec("time", (0.5, 0.3, 0.2), gap=entities.HORIZON),
    ranking_metric="auc",
    tuning_objective="roc_auc",
    promotion_metric="test_roc_auc",
    cost=CostModel(miss_cost_bdt=500.0, false_alarm_cost_bdt=50.0, review_rate=0.10),
    # Calibrated probabilities for the retention decision: no class re-weighting.
    params={"scale_pos_weight": 1.0},
    selection="cv",
)

FAMILY: Final = ModelFamily(
    name="churn",
    description="Customer churn (no order in the next 60 days) for retention campaigns: Feast "
    "customer features and festival calendar, Optuna-tuned XGBoost, ROC-AUC gating in MLflow.",
    trainer=BinaryTabularTrainer(TASK),
    serving=ServingSpec("xgboost-binary", SERVICE, entities.REQUEST, HEAD, degraded=DEGRADED),
    demo=DemoSpec(
        population="churn",
        # 420 days: 48 weekly snapshots, enough for three time-ordered parts with the purge.
        marketplace=MarketplaceConfig(customers=8_000, days=420, seed=5),
        trials=4,
        sample_requests=entities.sample_customers,
        describe_request=entities.describe_customer,
        shift=COMPETITOR_CAMPAIGN,
        shift_name="competitor's campaign month",
        labels=("stays", "churns"),
    ),
    pipeline_defaults={
        "validation_fraction": 0.3,
        "test_fraction": 0.2,
        "evaluation_options": {"review_rate": 0.10, "false_alarm_cost_bdt": 50.0},
    },
)
