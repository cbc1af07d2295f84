"""The real backing services answer, through the same settings production uses."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import redis

pytestmark = pytest.mark.integration


def test_redis_round_trip(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"getit-ml:test:{uuid.uuid4().hex}"
    try:
        client.set(key, "ঈদ মোবারক", ex=30)  # Bengali text survives the round trip
        assert client.get(key) == "ঈদ মোবারক".encode()
    finally:
        client.delete(key)
        client.close()


def test_postgres_round_trip(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("CREATE TEMP TABLE probe (district text, orders int)")
        connection.execute("INSERT INTO probe VALUES (%s, %s)", ("চট্টগ্রাম", 7))
        row = connection.execute("SELECT district, orders FROM probe").fetchone()
    assert row == ("চট্টগ্রাম", 7)
