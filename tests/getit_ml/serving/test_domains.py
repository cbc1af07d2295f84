"""Business domains of request inputs: each rule, its one-line 400, and the transformer's answer.

The unit tests check :func:`validate_request` on columns, the way the transformer's
``request_rows`` hands them over (defaults filled in); the last ones send the issue's bad
checkouts through a real transformer (embedded Feast store, real scorer) over REST and gRPC and
expect a JSON 400 naming the field, where they were all scored with 200 before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from feast import FeatureStore

from getit_ml.errors import UserError
from getit_ml.families import get_family
from getit_ml.features.store import StoreLayout, apply_definitions, materialize, open_store
from getit_ml.serving.domains import (
    DEFAULT_MAX_LENGTH,
    FLOAT32_MAX,
    FieldDomain,
    RequestColumns,
    TimeWindow,
    baseline_domain,
    validate_request,
)
from getit_ml.serving.predictor import predictor_client
from getit_ml.serving.protocol import ProtocolError, decode_document
from getit_ml.serving.repository import ModelRepository
from getit_ml.serving.runtime import RequestDefault, RequestInput
from getit_ml.serving.scorer import load_scorer
from getit_ml.serving.server import ServerThread
from getit_ml.serving.transformer import FeastLookup, FeatureTransformer, request_rows
from getit_ml.settings import load_settings
from tests.getit_ml.features.offline_fixtures import write_offline
from tests.getit_ml.serving.conftest import local_options
from tests.getit_ml.serving.support import FRAUD_SERVICE, build_service_model, family_feature_types

CHECKOUT = get_family("fraud").serving.request
#: The request's arrival in the unit tests: 2026-05-28T20:26:40Z.
NOW_US = 1_780_000_000_000_000
T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
REQUEST_TS_US = int((T0 + 9 * DAY).timestamp() * 1_000_000)


def _checkout(rows: int = 1, /, **changes: list[Any]) -> dict[str, list[Any]]:
    """Fraud's checkout columns as ``request_rows`` hands them over (defaults filled in)."""
    columns: dict[str, list[Any]] = {
        "customer_id": [3] * rows,
        "device_id": [3] * rows,
        "request_ts_us": [REQUEST_TS_US] * rows,
        "amount_bdt": [2500.0] * rows,
        "payment_method": ["bkash"] * rows,
        "checkout_device_id": [3] * rows,
        "checkout_wallet_account_id": [-1] * rows,
    }
    return columns | changes


def _refusal(columns: dict[str, list[Any]], spec: Any = CHECKOUT, now_us: int = NOW_US) -> str:
    with pytest.raises(ProtocolError) as caught:
        validate_request(columns, spec, now_us=now_us)
    assert caught.value.status == 400
    message = caught.value.message
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------- validate_request
def test_a_valid_checkout_passes_unchanged() -> None:
    columns = _checkout(3)
    checked = validate_request(columns, CHECKOUT, now_us=NOW_US)
    assert isinstance(checked, RequestColumns)
    assert checked == columns
    assert checked.unknown_categories == 0
    assert checked.unknown_by_input == {}


@pytest.mark.parametrize(
    ("name", "value", "rule", "shown"),
    [
        ("amount_bdt", -5000.0, "must be > 0 and <= 10,000,000 BDT", "-5000.0"),
        ("amount_bdt", 0.0, "must be > 0 and <= 10,000,000 BDT", "0.0"),
        ("amount_bdt", 10_000_000.5, "must be > 0 and <= 10,000,000 BDT", "10000000.5"),
        ("amount_bdt", 1e308, "must be a finite number within float32", "1e+308"),
        ("payment_method", "paypal", "must be one of bkash, nagad, rocket, card, cod", "'paypal'"),
        ("payment_method", "BKASH", "unknown categories are rejected", "'BKASH'"),
        ("payment_method", "", "must be non-empty", "''"),
        (
            "payment_method",
            "x" * 1_048_576,
            "must be at most 64 characters",
            "1,048,576 characters",
        ),
        ("request_ts_us", 2**62, "must be epoch microseconds from 2015-01-01", "beyond year 9999"),
        ("request_ts_us", 0, "from 2015-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("customer_id", -1, "must be >= 0", "-1"),
        ("checkout_device_id", -7, "must be >= 0", "-7"),
        ("checkout_wallet_account_id", -2, "must be >= -1", "-2"),
    ],
)
def test_the_issues_bad_values_are_a_field_level_400(
    name: str, value: Any, rule: str, shown: str
) -> None:
    message = _refusal(_checkout(**{name: [value]}))
    assert message.startswith(f"input {name!r} must be")
    assert rule in message
    assert "row 0 is" in message
    assert shown in message
    assert len(message) < 300  # a megabyte of text is truncated, not echoed


def test_the_first_bad_rows_are_listed_with_their_count() -> None:
    methods = ["bkash", "paypal", "cod", "venmo", "a", "b", "c", "d"]
    message = _refusal(_checkout(8, payment_method=methods))
    assert "row 1 is 'paypal'" in message
    assert message.endswith("; 6 of 8 rows fail (rows 1, 3, 4, 5, 6, ...)")
    single = _refusal(_checkout(4, amount_bdt=[10.0, 20.0, 30.0, -1.0]))
    assert single.endswith("row 3 is -1.0")


def test_a_copied_default_is_reported_under_the_name_the_caller_sent() -> None:
    # device_id defaults to a copy of checkout_device_id, and comes first in the request.
    message = _refusal(_checkout(device_id=[-4], checkout_device_id=[-4]))
    assert message.startswith("input 'checkout_device_id'")


SPEC = (
    RequestInput("open", "FP64", domain=FieldDomain(gt=0, lt=1)),
    RequestInput("closed", "INT64", domain=FieldDomain(ge=-1, le=5)),
)


@pytest.mark.parametrize(
    ("column", "value", "admitted"),
    [
        ("open", 0.0, False),
        ("open", 1e-12, True),
        ("open", 1.0, False),
        ("closed", -1, True),
        ("closed", 5, True),
        ("closed", 6, False),
        ("closed", -2, False),
    ],
)
def test_open_and_closed_bounds(column: str, value: float, admitted: bool) -> None:
    columns: dict[str, list[Any]] = {"open": [0.5], "closed": [0], column: [value]}
    if admitted:
        assert validate_request(columns, SPEC, now_us=NOW_US) == columns
    else:
        assert _refusal(columns, SPEC).startswith(f"input {column!r} must be")


def test_nan_is_refused_even_between_valid_values() -> None:
    # The codec refuses NaN in requests; a default or an internal caller must not slip one in.
    message = _refusal({"open": [0.5, float("nan"), 0.25], "closed": [0, 0, 0]}, SPEC)
    assert "row 1 is nan" in message


def test_an_integer_beyond_int64_is_refused() -> None:
    # A UINT64 tensor decodes to Python ints; INT64 inputs take integer tensors of any width.
    message = _refusal({"open": [0.5], "closed": [2**64 - 1]}, SPEC)
    assert "must be an integer that fits INT64" in message


def test_missing_values_skip_the_rules() -> None:
    # A default of "no value" (None) is the missing mask's business, not a domain violation.
    spec = (RequestInput("amount", "FP64", RequestDefault.constant(None), FieldDomain(gt=0)),)
    assert validate_request({"amount": [None, 3.0]}, spec, now_us=NOW_US) == {"amount": [None, 3.0]}
    assert "row 1 is -3.0" in _refusal({"amount": [None, -3.0]}, spec)


RAIL = RequestInput(
    "rail",
    "BYTES",
    domain=FieldDomain(categories=("bkash", "cod"), unknown="missing", min_length=1, max_length=8),
)


def test_unknown_categories_become_missing_and_are_counted_when_the_family_says_so() -> None:
    checked = validate_request({"rail": ["bkash", "paypal", "cod", "venmo"]}, (RAIL,))
    assert checked["rail"] == ["bkash", None, "cod", None]
    assert checked.unknown_categories == 2
    assert checked.unknown_by_input == {"rail": 2}


def test_length_rules_hold_under_the_missing_policy_too() -> None:
    assert "must be at most 8 characters" in _refusal({"rail": ["bkash", "x" * 9]}, (RAIL,))
    assert "must be non-empty" in _refusal({"rail": [""]}, (RAIL,))


WINDOW = (
    RequestInput(
        "ts_us",
        "INT64",
        domain=FieldDomain(
            window=TimeWindow(max_age=timedelta(days=1), max_ahead=timedelta(minutes=5))
        ),
    ),
)


@pytest.mark.parametrize(
    ("offset", "admitted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, microseconds=1), False),
        (-timedelta(days=1), True),
        (-timedelta(days=1, microseconds=1), False),
    ],
)
def test_a_time_window_is_relative_to_the_arrival(offset: timedelta, admitted: bool) -> None:
    stamp = NOW_US + offset // timedelta(microseconds=1)
    if admitted:
        validate_request({"ts_us": [stamp]}, WINDOW, now_us=NOW_US)
    else:
        message = _refusal({"ts_us": [stamp]}, WINDOW)
        assert "(1 day before arrival) to 2026-05-28T20:31:40Z (5 minutes after arrival)" in message


@pytest.mark.parametrize(
    ("stamp", "unit"),
    [
        (NOW_US // 1_000_000, "seconds"),
        (NOW_US // 1_000, "milliseconds"),
        (NOW_US * 1_000, "nanoseconds"),
    ],
)
def test_a_stamp_in_another_unit_is_named(stamp: int, unit: str) -> None:
    message = _refusal(_checkout(request_ts_us=[stamp]))
    assert message.endswith(f"it looks like {unit}, the request takes microseconds")


def test_the_now_default_passes_the_window() -> None:
    # request_ts_us defaults to the arrival; validation without now_us uses the clock.
    columns = _checkout()
    columns["request_ts_us"] = RequestDefault.now_us().fill(columns, 1)
    validate_request(columns, CHECKOUT)


def test_an_input_without_a_domain_gets_its_datatypes_baseline() -> None:
    spec = (
        RequestInput("amount", "FP64"),
        RequestInput("note", "BYTES"),
        RequestInput("count", "INT64"),
    )
    fine: dict[str, list[Any]] = {
        "amount": [FLOAT32_MAX],
        "note": ["x" * DEFAULT_MAX_LENGTH],
        "count": [-(2**63)],
    }
    assert validate_request(fine, spec, now_us=NOW_US) == fine
    assert "float32" in _refusal({**fine, "amount": [-1e39]}, spec)
    assert "at most 256 characters" in _refusal({**fine, "note": ["x" * 257]}, spec)
    assert baseline_domain("BOOL") == FieldDomain()


@pytest.mark.parametrize(
    "declare",
    [
        lambda: FieldDomain(gt=0, ge=0),
        lambda: FieldDomain(lt=1, le=1),
        lambda: FieldDomain(gt=1, lt=1),
        lambda: FieldDomain(ge=2, le=1),
        lambda: FieldDomain(le=float("inf")),
        lambda: FieldDomain(unknown="missing"),
        lambda: FieldDomain(categories=()),
        lambda: FieldDomain(categories=["a"]),  # type: ignore[arg-type]
        lambda: FieldDomain(categories=("a", "a")),
        lambda: FieldDomain(categories=("a",), unknown="guess"),  # type: ignore[arg-type]
        lambda: FieldDomain(min_length=5, max_length=4),
        lambda: FieldDomain(max_length=0),
        lambda: TimeWindow(),
        lambda: TimeWindow(not_before=datetime(2015, 1, 1)),
        lambda: TimeWindow(max_ahead=-timedelta(seconds=1)),
        lambda: TimeWindow(not_before=T0, not_after=T0),
        lambda: RequestInput("x", "INT64", domain=FieldDomain(categories=("a",))),
        lambda: RequestInput("x", "BYTES", domain=FieldDomain(ge=0)),
        lambda: RequestInput("x", "FP64", domain=FieldDomain(window=TimeWindow(max_age=DAY))),
        lambda: RequestInput("x", "BOOL", domain=FieldDomain(le=1)),
    ],
)
def test_a_wrong_declaration_fails_when_declared(declare: Callable[[], object]) -> None:
    with pytest.raises(UserError):
        declare()


# ---------------------------------------------------------------------- the transformer's path
def _document(**changes: list[Any]) -> dict[str, Any]:
    datatypes = {"amount_bdt": "FP64", "payment_method": "BYTES"}
    values: dict[str, list[Any]] = {
        "customer_id": [3],
        "request_ts_us": [REQUEST_TS_US],
        "amount_bdt": [2500.0],
        "payment_method": ["bkash"],
        "checkout_device_id": [3],
    }
    values.update(changes)
    return {
        "id": "checkout-1",
        "inputs": [
            {"name": n, "datatype": datatypes.get(n, "INT64"), "shape": [len(v)], "data": v}
            for n, v in values.items()
        ],
    }


def test_request_rows_checks_the_domains_after_filling_defaults() -> None:
    columns = request_rows(decode_document(_document()), CHECKOUT)
    assert isinstance(columns, RequestColumns)
    assert columns["checkout_wallet_account_id"] == [-1]  # the default, inside its domain
    with pytest.raises(ProtocolError, match="input 'amount_bdt' must be > 0"):
        request_rows(decode_document(_document(amount_bdt=[-5000.0])), CHECKOUT)


def test_request_rows_hands_the_unknown_category_count_to_the_transformer() -> None:
    spec = (RequestInput("customer_id", "INT64", domain=FieldDomain(ge=0)), RAIL)
    document = {
        "inputs": [
            {"name": "customer_id", "datatype": "INT64", "shape": [2], "data": [1, 2]},
            {"name": "rail", "datatype": "BYTES", "shape": [2], "data": ["cod", "paypal"]},
        ]
    }
    columns = request_rows(decode_document(document), spec)
    assert isinstance(columns, RequestColumns)
    assert columns["rail"] == ["cod", None]
    assert columns.unknown_categories == 1


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    root = tmp_path_factory.mktemp("domains-store") / "features"
    rows = [(c, T0 + DAY, 1) for c in range(1, 6)]
    write_offline(
        StoreLayout(root).offline_dir,
        {"customer_features": rows, "customer_risk": rows, "device_features": rows},
    )
    settings = load_settings()
    feature_store = open_store(settings, root)
    apply_definitions(feature_store, settings.feature_repo)
    materialize(feature_store, T0, T0 + 10 * DAY)
    return feature_store


@pytest.fixture(scope="module")
def transformer_server(
    store: FeatureStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    model_dir = build_service_model(
        family_feature_types(store), tmp_path_factory.mktemp("domains-model") / "model"
    )
    scorer = ModelRepository([load_scorer(model_dir=model_dir)])
    with ServerThread(scorer, local_options()) as scoring:
        transformer = FeatureTransformer(
            FeastLookup(store, FRAUD_SERVICE),
            predictor_client(scoring.http_url, "v2"),
            CHECKOUT,
            name="fraud",
        )
        transformer.connect(timeout_s=10)
        with ServerThread(ModelRepository([transformer]), local_options()) as running:
            yield running


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("amount_bdt", -5000.0),
        ("amount_bdt", 0.0),
        ("amount_bdt", 1e308),
        ("payment_method", "paypal"),
        ("payment_method", ""),
        ("payment_method", "x" * 40_000),  # under the tests' 64 KiB body limit
        ("request_ts_us", 2**62),
        ("customer_id", -3),
    ],
)
def test_the_transformer_answers_a_json_400_naming_the_field(
    transformer_server: ServerThread, name: str, value: Any
) -> None:
    url = f"{transformer_server.http_url}/v2/models/fraud/infer"
    response = httpx.post(url, json=_document(**{name: [value]}), timeout=30)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error.startswith(f"input {name!r} must be")
    assert "row 0" in error
    assert "Traceback" not in response.text


def test_the_transformer_still_scores_a_valid_checkout(transformer_server: ServerThread) -> None:
    url = f"{transformer_server.http_url}/v2/models/fraud/infer"
    response = httpx.post(url, json=_document(), timeout=30)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert 0.0 <= outputs["fraud_probability"][0] <= 1.0


def test_grpc_answers_invalid_argument_naming_the_field(transformer_server: ServerThread) -> None:
    import grpc  # type: ignore[import-untyped]
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # type: ignore[import-untyped]

    from getit_ml.serving.grpc_server import request_message

    message = request_message("fraud", _document(payment_method=["paypal"]))
    with grpc.insecure_channel(transformer_server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(message, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("input 'payment_method' must be one of")
