"""The KServe payload logger's CloudEvents."""

from __future__ import annotations

import base64
import json

import pytest

from getit_ml.monitoring.events import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    EventError,
    binary_headers,
    parse_event,
)

BODY = json.dumps({"instances": [[1, 2, 3]]}).encode()


def test_binary_mode_request_and_response() -> None:
    request = parse_event(binary_headers("request", "abc", "fraud", namespace="shop"), BODY)
    assert (request.kind, request.event_id, request.model) == ("request", "abc", "fraud")
    assert request.namespace == "shop"
    assert request.body == {"instances": [[1, 2, 3]]}
    response = parse_event(
        {"CE-Type": RESPONSE_TYPE, "Ce-Id": "abc", "ce-inferenceservicename": "fraud"},
        b'{"predictions": [0.2]}',
    )
    assert response.kind == "response"
    assert response.body == {"predictions": [0.2]}


def test_structured_mode_with_data_or_base64() -> None:
    headers = {"content-type": "application/cloudevents+json; charset=utf-8"}
    envelope = {
        "specversion": "1.0",
        "type": REQUEST_TYPE,
        "id": "1",
        "source": "x",
        "inferenceservicename": "fraud",
        "data": {"instances": [[1]]},
    }
    assert parse_event(headers, json.dumps(envelope).encode()).body == {"instances": [[1]]}
    encoded = {**envelope, "data_base64": base64.b64encode(BODY).decode()}
    del encoded["data"]
    assert parse_event(headers, json.dumps(encoded).encode()).body == {"instances": [[1, 2, 3]]}


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"content-type": "application/json"}, BODY, "not_cloudevent"),
        ({"ce-type": "com.example.other", "ce-id": "1"}, BODY, "unknown_type"),
        ({"ce-type": REQUEST_TYPE, "ce-inferenceservicename": "m"}, BODY, "no_id"),
        ({"ce-type": REQUEST_TYPE, "ce-id": "1"}, BODY, "no_model"),
        (
            {"ce-type": REQUEST_TYPE, "ce-id": "1", "ce-inferenceservicename": "m"},
            b"{x",
            "bad_json",
        ),
    ],
)
def test_unusable_events_say_why(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(headers, body)
    assert caught.value.reason == reason


def test_a_default_model_names_events_without_one() -> None:
    event = parse_event({"ce-type": REQUEST_TYPE, "ce-id": "1"}, BODY, default_model="fraud")
    assert event.model == "fraud"
