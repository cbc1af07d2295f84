"""The production registry backend for real: MLflow on PostgreSQL, in a fresh database per run."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from getit_ml.registry.mlflow_registry import (
    CHAMPION,
    Lineage,
    RegistryConfig,
    artifact_sha256,
    client,
    list_versions,
    promote_if_better,
    register_model_version,
    resolve,
    rollback,
)

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)
LINEAGE = Lineage("snap-pg", "fraud_v1", "kfp-run-42", "4ae5222")
THREADS, PER_THREAD = 32, 10


@pytest.fixture(scope="module")
def mlflow_dsn(postgres_dsn: str) -> Iterator[str]:
    """A new, empty database for MLflow on the test server, dropped afterwards."""
    database = f"getit_mlflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield urlunsplit(urlsplit(postgres_dsn)._replace(path=f"/{database}"))
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            # FORCE: MLflow's engines keep pooled connections open for the life of the process.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


@pytest.fixture(scope="module")
def config(mlflow_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> RegistryConfig:
    artifacts = tmp_path_factory.mktemp("pg-artifacts")
    config = RegistryConfig.postgres(mlflow_dsn, str(artifacts))
    # Create the schema once, before any concurrency: MLflow migrates an empty database on the
    # first client that touches it.
    client(config).search_experiments()
    return config


def _model(root: Path, content: str) -> Path:
    model_dir = root / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "model.json").write_text(content)
    return model_dir


def test_lifecycle_on_postgres(config: RegistryConfig, tmp_path: Path) -> None:
    first = register_model_version(
        config, name="fraud-pg", model_dir=_model(tmp_path / "a", '{"trees": 5}'),
        metrics={"test_auprc": 0.90}, params={"n_estimators": 5}, lineage=LINEAGE,
        experiment="fraud-pg",
    )  # fmt: skip
    second = register_model_version(
        config, name="fraud-pg", model_dir=_model(tmp_path / "b", '{"trees": 7}'),
        metrics={"test_auprc": 0.93}, params={"n_estimators": 7}, lineage=LINEAGE,
        experiment="fraud-pg",
    )  # fmt: skip
    assert promote_if_better(config, "fraud-pg", first.version).promoted
    assert promote_if_better(config, "fraud-pg", second.version).promoted

    resolved = resolve(config, "models:/fraud-pg@champion")
    assert resolved.info.version == second.version
    assert artifact_sha256(resolved.path) == second.sha256

    assert rollback(config, "fraud-pg").version == first.version
    versions = list_versions(config, "fraud-pg")
    assert [v.version for v in versions] == [second.version, first.version]
    assert CHAMPION in versions[1].aliases
    assert versions[1].tags["getit.pipeline_run_id"] == "kfp-run-42"


def test_concurrent_registrations_get_unique_versions(
    config: RegistryConfig, tmp_path: Path
) -> None:
    model_dir = _model(tmp_path, '{"trees": 5}')

    def worker(thread: int) -> list[str]:
        return [
            register_model_version(
                config, name="fraud-concurrent", model_dir=model_dir,
                metrics={"test_auprc": 0.9}, params={"thread": thread, "call": call},
                lineage=LINEAGE, experiment="fraud-concurrent",
            ).version
            for call in range(PER_THREAD)
        ]  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(worker, thread) for thread in range(THREADS)]
        errors = [f.exception() for f in futures if f.exception() is not None]
        assert errors == []
        versions = [version for future in futures for version in future.result()]
    seconds = time.perf_counter() - started
    logger.info("%d x %d registrations on PostgreSQL in %.1fs", THREADS, PER_THREAD, seconds)

    total = THREADS * PER_THREAD
    assert len(versions) == total
    assert sorted(int(v) for v in versions) == list(range(1, total + 1))
    stored = list_versions(config, "fraud-concurrent", metric="test_auprc")
    assert len(stored) == total
    assert {v.sha256 for v in stored} == {artifact_sha256(model_dir)}
    assert len({v.run_id for v in stored}) == total
    assert stored[0].aliases == ("challenger",)  # the newest, whoever set the alias last
