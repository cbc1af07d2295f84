"""Walkthrough traffic: the client-side payload logger and a traffic shift (fraud's festival
week)."""

from __future__ import annotations

import numpy as np
import pytest

from getit_ml.families.fraud import FESTIVAL_WEEK
from getit_ml.monitoring.events import REQUEST_TYPE, RESPONSE_TYPE
from getit_ml.monitoring.synthetic import FraudPopulation
from getit_ml.monitoring.traffic import PayloadLogger, shifted_traffic
from getit_ml.services import free_port
from tests.monitoring.support.servers import Receiver


def test_festival_week_moves_the_mix_and_the_amounts(population: FraudPopulation) -> None:
    schema = population.schema
    normal = population.sample(20_000, np.random.default_rng(1)).features
    festival = shifted_traffic(schema, normal, np.random.default_rng(2), FESTIVAL_WEEK)
    methods = schema.feature("payment_method").categories

    def share(rows: np.ndarray, method: str) -> float:
        return float(np.mean(rows[:, schema.index("payment_method")] == methods.index(method)))

    assert share(festival, "cod") - share(normal, "cod") == pytest.approx(-0.20, abs=0.015)
    assert share(festival, "bkash") - share(normal, "bkash") == pytest.approx(0.14, abs=0.015)
    wallet = np.isin(
        festival[:, schema.index("payment_method")],
        [methods.index(m) for m in ("bkash", "nagad", "rocket")],
    )
    assert (festival[:, schema.index("is_wallet")] == wallet).all()
    cod = festival[:, schema.index("payment_method")] == methods.index("cod")
    assert (festival[:, schema.index("is_cod")] == cod).all()
    amount = schema.index("amount_bdt")
    np.testing.assert_allclose(festival[:, amount], normal[:, amount] * 1.5)
    np.testing.assert_allclose(
        np.expm1(festival[:, schema.index("amount_log")]), normal[:, amount] * 1.5, rtol=1e-9
    )
    untouched = schema.index("orders_30d")
    np.testing.assert_array_equal(festival[:, untouched], normal[:, untouched])


def test_the_payload_logger_sends_what_kserve_sends() -> None:
    with Receiver() as receiver:
        payload_logger = PayloadLogger(receiver.url, "fraud", namespace="shop")
        identifier = payload_logger.log(b'{"inputs": []}', b'{"outputs": []}')
        received = receiver.wait(2)
    assert payload_logger.sent == 2
    assert [h["ce-type"] for h, _ in received] == [REQUEST_TYPE, RESPONSE_TYPE]
    assert {h["ce-id"] for h, _ in received} == {identifier}
    assert received[0][0]["ce-inferenceservicename"] == "fraud"
    assert received[0][0]["ce-namespace"] == "shop"
    assert received[1][1] == {"outputs": []}


def test_a_dead_logger_target_is_counted_not_raised() -> None:
    payload_logger = PayloadLogger(f"http://127.0.0.1:{free_port()}/", "fraud", timeout_s=2)
    payload_logger.log(b"{}", b"{}")
    assert (payload_logger.sent, payload_logger.failed) == (0, 2)
