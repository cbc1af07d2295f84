"""The families' request domains against the data they train on.

A domain too tight refuses real traffic; one too loose lets nonsense be scored. Both are checked
here against the demo's generated marketplaces (the same configurations ``getit-ml demo`` uses):
every payment, as a checkout request, passes fraud's domains; every churn snapshot row passes
churn's; the demo's sample requests pass the transformer's ``request_rows`` as sent. The rail
categories are the one list the generator, the contracts and feature engineering use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from getit_ml.data import contracts, reference
from getit_ml.data.generator import generate
from getit_ml.families import fraud as fraud_family
from getit_ml.families import get_family
from getit_ml.families.churn import entities as churn
from getit_ml.families.fraud import entities as fraud
from getit_ml.features import schemas
from getit_ml.serving.domains import RequestColumns, validate_request
from getit_ml.serving.protocol import ProtocolError, decode_document
from getit_ml.serving.transformer import request_rows
from getit_ml.training.steps import read_marketplace_table

DATASETS = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets"
#: A generous rate for the ULB set's euros (the taka traded at 115-140 per euro in 2023-25).
BDT_PER_EUR = 150.0


def _us(moment: pd.Timestamp) -> int:
    return int(moment.value // 1_000)


@pytest.fixture(scope="module")
def fraud_market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fraud-demo-market") / "market"
    generate(get_family("fraud").demo.marketplace, out)
    return out


@pytest.fixture(scope="module")
def churn_market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("churn-demo-market") / "market"
    generate(get_family("churn").demo.marketplace, out)
    return out


@pytest.mark.parametrize("family", ["fraud", "churn"])
def test_every_request_input_declares_its_domain(family: str) -> None:
    undeclared = [i.name for i in get_family(family).serving.request if i.domain is None]
    assert undeclared == []


def test_the_rails_are_the_marketplaces_one_list() -> None:
    domain = fraud.CHECKOUT_REQUEST[[i.name for i in fraud.CHECKOUT_REQUEST].index(
        "payment_method")].domain  # fmt: skip
    assert domain is not None
    assert domain.categories == reference.PAYMENT_METHODS
    assert domain.unknown == "reject"
    # Feature engineering's share features and the tables' contracts use the same rails.
    assert schemas.PAYMENT_METHODS == reference.PAYMENT_METHODS
    for table in (contracts.PAYMENTS, contracts.ORDERS):
        column = next(c for c in table.columns if c.name == "payment_method")
        assert column.allowed == reference.PAYMENT_METHODS
    # The festival-week shift's rail indicators cover every rail and nothing else.
    indicators = fraud_family.FESTIVAL_WEEK.indicators["payment_method"]
    assert {rail for rails in indicators.values() for rail in rails} == set(domain.categories)


def _checkout_columns(payments: pd.DataFrame) -> dict[str, list[Any]]:
    frame = fraud.fraud_entity_frame(payments)
    return {i.name: frame[i.name].tolist() for i in fraud.CHECKOUT_REQUEST}


def test_every_generated_payment_passes_the_checkout_domains(fraud_market: Path) -> None:
    payments = read_marketplace_table(fraud_market, "payments")
    columns = _checkout_columns(payments)
    assert len(columns["amount_bdt"]) > 10_000
    assert set(columns["payment_method"]) == set(reference.PAYMENT_METHODS)
    last = _us(pd.to_datetime(payments["payment_ts"], utc=True).max())
    # Scored live (the request arrives as the payment happens) and replayed later (the demo).
    validate_request(columns, fraud.CHECKOUT_REQUEST, now_us=last)
    validate_request(columns, fraud.CHECKOUT_REQUEST)


def test_the_amount_ceiling_leaves_room_and_stays_exact_in_float32(fraud_market: Path) -> None:
    amounts = read_marketplace_table(fraud_market, "payments")["amount_bdt"]
    assert amounts.min() > 0
    assert amounts.max() * 10 < fraud.MAX_CHECKOUT_BDT
    assert fraud.MAX_CHECKOUT_BDT <= 2**24  # every whole taka below it is a float32
    assert float(np.float32(fraud.MAX_CHECKOUT_BDT)) == fraud.MAX_CHECKOUT_BDT


def test_the_largest_real_card_transaction_is_under_the_ceiling() -> None:
    path = DATASETS / "creditcard-fraud" / "creditcard.parquet"
    if not path.is_file():
        pytest.skip(f"real data set {path} is absent (it is optional)")
    largest_eur = float(pd.read_parquet(path, columns=["Amount"])["Amount"].max())
    assert largest_eur * BDT_PER_EUR < fraud.MAX_CHECKOUT_BDT


def test_the_demos_sample_checkouts_pass_the_transformers_request_rows(
    fraud_market: Path,
) -> None:
    family = get_family("fraud")
    samples = fraud.sample_checkouts(fraud_market, 40)
    rows = [{k: v for k, v in s.items() if k in family.serving.inputs} for s in samples]
    document = family.serving.request_document(rows, "demo-1")
    columns = request_rows(decode_document(document), family.serving.request)
    assert isinstance(columns, RequestColumns)
    assert len(columns["customer_id"]) == 40
    assert columns.unknown_categories == 0
    # Without its time (the default: now) a sample passes too.
    rows = [{k: v for k, v in row.items() if k != "request_ts_us"} for row in rows]
    request_rows(decode_document(family.serving.request_document(rows)), family.serving.request)


def test_a_checkout_from_the_future_or_before_the_window_is_refused() -> None:
    now = datetime.now(UTC)
    for stamp in (now + timedelta(minutes=6), fraud.EARLIEST_REQUEST - timedelta(seconds=1)):
        columns: dict[str, list[Any]] = {
            "customer_id": [1], "device_id": [1], "amount_bdt": [100.0],
            "request_ts_us": [int(stamp.timestamp() * 1_000_000)], "payment_method": ["cod"],
            "checkout_device_id": [1], "checkout_wallet_account_id": [-1],
        }  # fmt: skip
        with pytest.raises(ProtocolError, match="input 'request_ts_us' must be epoch micro"):
            validate_request(columns, fraud.CHECKOUT_REQUEST)


def test_every_churn_snapshot_passes_the_scoring_domains(churn_market: Path) -> None:
    frame = churn.churn_frame(read_marketplace_table(churn_market, "orders"))
    columns = {i.name: frame[i.name].tolist() for i in churn.REQUEST}
    assert len(columns["customer_id"]) > 1_000
    validate_request(columns, churn.REQUEST)
    validate_request(columns, churn.REQUEST, now_us=max(columns["request_ts_us"]))


def test_the_demos_sample_customers_pass_the_transformers_request_rows(
    churn_market: Path,
) -> None:
    family = get_family("churn")
    samples = churn.sample_customers(churn_market, 20)
    rows = [{k: v for k, v in s.items() if k in family.serving.inputs} for s in samples]
    columns = request_rows(
        decode_document(family.serving.request_document(rows)), family.serving.request
    )
    assert len(columns["customer_id"]) == 20
    with pytest.raises(ProtocolError, match="input 'customer_id' must be >= 0: row 0 is -1"):
        validate_request({"customer_id": [-1], "request_ts_us": [columns["request_ts_us"][0]]},
                         churn.REQUEST)  # fmt: skip
