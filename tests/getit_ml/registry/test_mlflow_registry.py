"""The MLflow registry on the embedded default: a temporary SQLite store and artefact folder."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import mlflow.xgboost
import numpy as np
import pytest
import xgboost as xgb
from mlflow.models import infer_signature

from getit_ml.errors import UserError
from getit_ml.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    TAG_CHAMPION_HISTORY,
    TAG_CODE_VERSION,
    TAG_DATA_SNAPSHOT,
    TAG_DEMOTION_REASON,
    TAG_FEATURE_SERVICE,
    TAG_PIPELINE_RUN_ID,
    TAG_PROMOTION,
    TAG_PROMOTION_DETAIL,
    TAG_PROMOTION_REASON,
    TAG_SHA256,
    TAG_SIGNATURE,
    ArtifactMismatchError,
    Lineage,
    NoPreviousChampionError,
    RegisteredVersion,
    RegistryConfig,
    UnknownModelError,
    UnknownVersionError,
    artifact_sha256,
    client,
    decide_promotion,
    list_versions,
    parse_model_reference,
    promote,
    promote_if_better,
    register_model_version,
    resolve,
    rollback,
    rollback_target,
    tracking_uri_for,
    verify_artifact,
)
from getit_ml.services import sqlalchemy_postgres_url

LINEAGE = Lineage(
    data_snapshot="snap-3f2a9c",
    feature_service="fraud_v1",
    pipeline_run_id="local-0001",
    code_version="4ae5222",
)
NAME = "fraud"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow SQLite database: creating one takes seconds, copying it none."""
    home = tmp_path_factory.mktemp("template")
    config = RegistryConfig.embedded(home)
    client(config).search_experiments()
    assert config.sqlite_path is not None
    return config.sqlite_path


@pytest.fixture
def config(tmp_path: Path, template_db: Path) -> RegistryConfig:
    config = RegistryConfig.embedded(tmp_path / "home")
    assert config.sqlite_path is not None
    config.sqlite_path.parent.mkdir(parents=True)
    shutil.copyfile(template_db, config.sqlite_path)
    return config


@pytest.fixture(scope="module")
def xgb_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-tree XGBoost classifier saved as an MLflow model with signature and input example."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4)).astype("float32")
    labels = (features[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(features, labels)
    path = tmp_path_factory.mktemp("xgb") / "model"
    mlflow.xgboost.save_model(
        model,
        str(path),
        signature=infer_signature(features, model.predict_proba(features)[:, 1]),
        input_example=features[:2],
        pip_requirements=["xgboost"],  # skip MLflow's slow requirement inference
    )
    return path


def _plain_model(root: Path, content: bytes = b"weights") -> Path:
    path = root / "plain-model"
    (path / "sub").mkdir(parents=True)
    (path / "weights.bin").write_bytes(content)
    (path / "sub" / "meta.json").write_text('{"kind": "plain"}')
    return path


def _register(config: RegistryConfig, model_dir: Path, auprc: float | None) -> RegisteredVersion:
    metrics = {} if auprc is None else {"test_auprc": auprc, "test_auc": 0.97}
    return register_model_version(
        config,
        name=NAME,
        model_dir=model_dir,
        metrics=metrics,
        params={"n_estimators": 5, "max_depth": 2},
        lineage=LINEAGE,
        experiment="fraud-training",
    )


def _champion(config: RegistryConfig) -> str:
    return str(client(config).get_model_version_by_alias(NAME, CHAMPION).version)


def _version_tags(config: RegistryConfig, version: str) -> dict[str, str]:
    return dict(client(config).get_model_version(NAME, version).tags)


# ----------------------------------------------------------------------------- configuration


def test_embedded_config_lives_under_home(tmp_path: Path) -> None:
    config = RegistryConfig.embedded(tmp_path)
    assert config.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    assert config.tracking_uri == tracking_uri_for(tmp_path)
    assert config.artifact_location == str(tmp_path.resolve() / "mlflow" / "artifacts")
    assert config.sqlite_path == tmp_path.resolve() / "mlflow" / "mlflow.db"


def test_postgres_config_uses_psycopg_and_masks_password() -> None:
    config = RegistryConfig.postgres("postgresql://ml:secret@db:5432/mlflow", "s3://models/mlflow")
    assert config.tracking_uri == "postgresql+psycopg://ml:secret@db:5432/mlflow"
    assert config.artifact_location == "s3://models/mlflow"
    assert "secret" not in config.display_uri
    assert config.sqlite_path is None
    assert sqlalchemy_postgres_url("postgres://db/x") == "postgresql+psycopg://db/x"
    assert sqlalchemy_postgres_url("postgresql+psycopg2://db/x") == "postgresql+psycopg2://db/x"
    assert sqlalchemy_postgres_url("http://mlflow:5000") == "http://mlflow:5000"
    with pytest.raises(UserError, match="not a PostgreSQL DSN"):
        RegistryConfig.postgres("sqlite:///x.db", "s3://models")


# ----------------------------------------------------------------------------- registration


def test_registration_records_run_tags_checksum_and_challenger(
    config: RegistryConfig, xgb_model_dir: Path
) -> None:
    global_uri = mlflow.get_tracking_uri()
    registered = _register(config, xgb_model_dir, 0.91)

    assert registered.version == "1"
    assert registered.aliases == (CHALLENGER,)
    assert registered.sha256 == artifact_sha256(xgb_model_dir)
    mlflow_client = client(config)
    version = mlflow_client.get_model_version(NAME, "1")
    assert version.tags[TAG_SHA256] == registered.sha256
    assert version.tags[TAG_DATA_SNAPSHOT] == "snap-3f2a9c"
    assert version.tags[TAG_FEATURE_SERVICE] == "fraud_v1"
    assert version.tags[TAG_PIPELINE_RUN_ID] == "local-0001"
    assert version.tags[TAG_CODE_VERSION] == "4ae5222"
    assert version.tags[TAG_SIGNATURE] == "present"
    assert str(mlflow_client.get_model_version_by_alias(NAME, CHALLENGER).version) == "1"

    run = mlflow_client.get_run(registered.run_id or "")
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"test_auprc": 0.91, "test_auc": 0.97}
    assert run.data.params == {"n_estimators": "5", "max_depth": "2"}
    assert run.data.tags[TAG_SHA256] == registered.sha256
    # The artefact landed under the home folder, byte for byte, signature and example included.
    assert config.artifact_location is not None
    assert registered.source.startswith(config.artifact_location)
    stored = Path(registered.source)
    assert {"MLmodel", "input_example.json"} <= {p.name for p in stored.iterdir()}
    assert artifact_sha256(stored) == registered.sha256
    # MLflow's process-wide tracking URI was neither used nor changed.
    assert mlflow.get_tracking_uri() == global_uri


def test_registry_does_not_care_what_the_folder_holds(
    config: RegistryConfig, tmp_path: Path
) -> None:
    first = _register(config, _plain_model(tmp_path), 0.8)
    second = _register(config, _plain_model(tmp_path / "again", b"other weights"), 0.8)
    assert (first.version, second.version) == ("1", "2")
    assert first.sha256 != second.sha256
    assert _version_tags(config, "2")[TAG_SIGNATURE] == "not an MLflow model"
    # challenger follows the newest registration
    assert str(client(config).get_model_version_by_alias(NAME, CHALLENGER).version) == "2"


def test_registration_refuses_bad_input(config: RegistryConfig, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="does not exist"):
        _register(config, tmp_path / "missing", 0.9)
    with pytest.raises(UserError, match="is empty"):
        _register(config, tmp_path / "empty", 0.9)
    with pytest.raises(UserError, match="code_version"):
        register_model_version(
            config, name=NAME, model_dir=_plain_model(tmp_path), metrics={}, params={},
            lineage=Lineage("snap", "fraud_v1", "run-1", " "), experiment="x",
        )  # fmt: skip
    with pytest.raises(UserError, match="invalid model name"):
        register_model_version(
            config, name="fraud model'", model_dir=_plain_model(tmp_path / "b"), metrics={},
            params={}, lineage=LINEAGE, experiment="x",
        )  # fmt: skip


def test_new_experiment_on_a_database_needs_an_artifact_location(
    config: RegistryConfig, tmp_path: Path
) -> None:
    without = RegistryConfig(config.tracking_uri, None)
    with pytest.raises(UserError, match="no artefact location"):
        _register(without, _plain_model(tmp_path), 0.9)


def test_concurrent_registrations_on_sqlite_get_unique_versions(
    config: RegistryConfig, tmp_path: Path
) -> None:
    model_dir = _plain_model(tmp_path)
    threads, per_thread = 8, 5

    def worker(_: int) -> list[str]:
        return [_register(config, model_dir, 0.9).version for _ in range(per_thread)]

    with ThreadPoolExecutor(threads) as pool:
        versions = [v for batch in pool.map(worker, range(threads)) for v in batch]
    assert sorted(int(v) for v in versions) == list(range(1, threads * per_thread + 1))
    newest = client(config).get_model_version_by_alias(NAME, CHALLENGER)
    assert str(newest.version) == str(threads * per_thread)


# ----------------------------------------------------------------------------- promotion


def test_decide_promotion_rules() -> None:
    def decide(
        challenger: float | None,
        champion: float | None,
        *,
        margin: float = 0.005,
        higher_is_better: bool = True,
        champion_version: str | None = "1",
    ) -> bool:
        promoted, reason = decide_promotion(
            challenger_value=challenger,
            champion_value=champion,
            margin=margin,
            higher_is_better=higher_is_better,
            metric="test_auprc",
            champion_version=champion_version,
        )
        assert reason
        return promoted

    assert decide(0.5, None, champion_version=None)  # nothing to beat
    assert decide(None, None, champion_version=None)
    assert decide(0.906, 0.9)
    assert decide(0.905, 0.9)  # exactly the margin counts, despite binary floating point
    assert not decide(0.904, 0.9)
    assert not decide(0.8, 0.9)
    assert not decide(None, 0.9)  # nothing to compare: keep the champion
    assert not decide(0.99, None)
    assert decide(0.10, 0.2, higher_is_better=False)  # a loss: lower wins
    assert not decide(0.198, 0.2, higher_is_better=False)
    assert decide(0.9, 0.9, margin=0.0)


def test_first_version_becomes_champion(config: RegistryConfig, tmp_path: Path) -> None:
    _register(config, _plain_model(tmp_path), 0.90)
    decision = promote_if_better(config, NAME, "1")
    assert decision.promoted
    assert decision.champion_version is None
    assert "no current champion" in decision.reason
    assert _champion(config) == "1"
    tags = _version_tags(config, "1")
    assert tags[TAG_PROMOTION] == "promoted"
    assert tags[TAG_PROMOTION_REASON] == decision.reason
    again = promote_if_better(config, NAME, 1)
    assert not again.promoted
    assert "already the champion" in again.reason


def test_worse_or_within_margin_is_not_promoted_and_says_why(
    config: RegistryConfig, tmp_path: Path
) -> None:
    model_dir = _plain_model(tmp_path)
    _register(config, model_dir, 0.90)
    promote_if_better(config, NAME, "1")
    _register(config, model_dir, 0.903)  # better, but by less than the margin
    _register(config, model_dir, 0.85)  # worse

    within = promote_if_better(config, NAME, "2", margin=0.005)
    worse = promote_if_better(config, NAME, "3")

    assert not within.promoted
    assert not worse.promoted
    assert _champion(config) == "1"
    assert (within.challenger_value, within.champion_value) == (0.903, 0.90)
    assert within.champion_version == "1"
    tags = _version_tags(config, "2")
    assert tags[TAG_PROMOTION] == "rejected"
    reason = tags[TAG_PROMOTION_REASON]
    assert "0.9030" in reason
    assert "0.9000" in reason
    assert "below the margin 0.005" in reason
    assert '"champion_value": 0.9' in tags[TAG_PROMOTION_DETAIL]
    assert "-0.0500" in _version_tags(config, "3")[TAG_PROMOTION_REASON]


def test_better_challenger_is_promoted(config: RegistryConfig, tmp_path: Path) -> None:
    model_dir = _plain_model(tmp_path)
    _register(config, model_dir, 0.90)
    promote_if_better(config, NAME, "1")
    _register(config, model_dir, 0.92)
    decision = promote_if_better(config, NAME, "2")
    assert decision.promoted
    assert "meets the margin" in decision.reason
    assert _champion(config) == "2"
    model = client(config).get_registered_model(NAME)
    assert model.tags[TAG_CHAMPION_HISTORY] == '["1", "2"]'


def test_champion_value_override_and_missing_metric(config: RegistryConfig, tmp_path: Path) -> None:
    model_dir = _plain_model(tmp_path)
    _register(config, model_dir, 0.90)
    promote_if_better(config, NAME, "1")
    _register(config, model_dir, 0.92)
    _register(config, model_dir, None)
    # The champion re-scored on the challenger's test set does better than it did on its own.
    held = promote_if_better(config, NAME, "2", champion_value=0.93)
    assert not held.promoted
    assert held.champion_value == 0.93
    missing = promote_if_better(config, NAME, "3")
    assert not missing.promoted
    assert "no test_auprc recorded" in missing.reason


def test_manual_promotion_is_unconditional_and_recorded(
    config: RegistryConfig, tmp_path: Path
) -> None:
    model_dir = _plain_model(tmp_path)
    _register(config, model_dir, 0.95)
    promote_if_better(config, NAME, "1")
    _register(config, model_dir, 0.50)
    decision = promote(config, NAME, "2", reason="hotfix for a feature outage")
    assert decision.promoted
    assert _champion(config) == "2"
    tags = _version_tags(config, "2")
    assert tags[TAG_PROMOTION] == "manual"
    assert "previous champion: 1" in tags[TAG_PROMOTION_REASON]
    assert "hotfix" in tags[TAG_PROMOTION_REASON]


def test_rollback_moves_champion_back_one_step_at_a_time(
    config: RegistryConfig, tmp_path: Path
) -> None:
    model_dir = _plain_model(tmp_path)
    for auprc in (0.90, 0.92, 0.94):
        _register(config, model_dir, auprc)
    for version in ("1", "2", "3"):
        assert promote_if_better(config, NAME, version).promoted

    restored = rollback(config, NAME, reason="latency regression")
    assert restored.version == "2"
    assert CHAMPION in restored.aliases
    assert _champion(config) == "2"
    assert _version_tags(config, "2")[TAG_PROMOTION] == "rollback"
    assert "from version 3 to version 2" in _version_tags(config, "2")[TAG_PROMOTION_REASON]
    assert "latency regression" in _version_tags(config, "3")[TAG_DEMOTION_REASON]

    assert rollback(config, NAME).version == "1"
    with pytest.raises(NoPreviousChampionError, match="no previous champion"):
        rollback(config, NAME)
    assert _champion(config) == "1"

    # After a rollback, a new promotion and a rollback return to where we were.
    promote(config, NAME, "3")
    assert TAG_DEMOTION_REASON not in _version_tags(config, "3")  # back in service
    assert rollback(config, NAME).version == "1"


def test_rollback_without_any_champion(config: RegistryConfig, tmp_path: Path) -> None:
    _register(config, _plain_model(tmp_path), 0.9)
    with pytest.raises(NoPreviousChampionError, match="no champion"):
        rollback(config, NAME)


def test_rollback_target_skips_deleted_and_repeated_versions() -> None:
    def everything(_: str) -> bool:
        return True

    assert rollback_target(["1", "2", "3"], "3", everything) == ("2", ["1", "2"])
    assert rollback_target(["1", "2", "1", "2"], "2", everything) == ("1", ["1", "2", "1"])
    assert rollback_target(["3"], "3", everything) == (None, [])
    assert rollback_target([], "3", everything) == (None, [])
    # champion moved outside this module (not in the history): go back to the last recorded
    assert rollback_target(["1", "2"], "5", everything) == ("2", ["1", "2"])
    assert rollback_target(["1", "2", "3"], "3", lambda v: v != "2") == ("1", ["1"])


def test_unknown_model_and_version_are_user_errors(config: RegistryConfig, tmp_path: Path) -> None:
    _register(config, _plain_model(tmp_path), 0.9)
    with pytest.raises(UnknownModelError, match="no registered model named 'churn'"):
        promote(config, "churn", "1")
    with pytest.raises(UnknownVersionError, match="has no version 7"):
        promote_if_better(config, NAME, "7")
    with pytest.raises(UnknownVersionError, match="positive integers"):
        promote(config, NAME, "latest")
    with pytest.raises(UnknownModelError):
        list_versions(config, "churn")
    with pytest.raises(UnknownModelError, match="no MLflow registry"):
        list_versions(RegistryConfig.embedded(tmp_path / "nowhere"), NAME)
    assert not (tmp_path / "nowhere").exists()  # looking did not create an empty registry


# ----------------------------------------------------------------------------- reading


def test_list_versions_newest_first(config: RegistryConfig, tmp_path: Path) -> None:
    model_dir = _plain_model(tmp_path)
    first = _register(config, model_dir, 0.90)
    _register(config, model_dir, 0.80)
    promote_if_better(config, NAME, "1")
    promote_if_better(config, NAME, "2")

    versions = list_versions(config, NAME)
    assert [v.version for v in versions] == ["2", "1"]
    newest, oldest = versions
    assert newest.aliases == (CHALLENGER,)
    assert oldest.aliases == (CHAMPION,)
    assert (newest.metric, oldest.metric) == (0.80, 0.90)
    assert oldest.sha256 == first.sha256
    assert newest.promotion == "rejected"
    assert "below the margin" in (newest.promotion_reason or "")
    assert newest.created >= oldest.created
    assert [v.version for v in list_versions(config, NAME, limit=1)] == ["2"]
    assert list_versions(config, NAME, metric="test_auc")[0].metric == 0.97


def test_parse_model_reference() -> None:
    assert parse_model_reference("models:/fraud@champion") == ("fraud", None, "champion")
    assert parse_model_reference("models:/fraud/3") == ("fraud", "3", None)
    assert parse_model_reference("fraud@challenger") == ("fraud", None, "challenger")
    assert parse_model_reference("fraud") == ("fraud", None, CHAMPION)
    with pytest.raises(UserError, match="stages are gone"):
        parse_model_reference("models:/fraud/Production")
    with pytest.raises(UserError, match="NAME@ALIAS"):
        parse_model_reference("models:/fraud@")


def test_resolve_and_verify_the_champion(
    config: RegistryConfig, xgb_model_dir: Path, tmp_path: Path
) -> None:
    registered = _register(config, xgb_model_dir, 0.9)
    promote_if_better(config, NAME, registered.version)

    resolved = resolve(config, "models:/fraud@champion")
    assert resolved.info.version == "1"
    assert resolved.info.sha256 == registered.sha256
    assert CHAMPION in resolved.info.aliases
    assert artifact_sha256(resolved.path) == registered.sha256
    assert resolve(config, "models:/fraud/1").path == resolved.path
    copied = resolve(config, "fraud", dst_dir=tmp_path / "download")
    assert copied.path.is_relative_to(tmp_path / "download")
    # What was resolved is a loadable MLflow model.
    loaded = mlflow.pyfunc.load_model(str(copied.path))
    assert loaded.predict(np.zeros((1, 4), dtype="float32")).shape == (1,)

    # One changed byte in the stored artefact and the server must refuse it.
    weights = resolved.path / "model.ubj"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactMismatchError, match="refusing"):
        resolve(config, "models:/fraud@champion")
    assert resolve(config, "models:/fraud@champion", verify=False).path == resolved.path
    with pytest.raises(UnknownVersionError, match="no alias 'canary'"):
        resolve(config, "models:/fraud@canary")


# ----------------------------------------------------------------------------- checksums


def test_artifact_sha256_is_deterministic_and_sees_every_byte(tmp_path: Path) -> None:
    model_dir = _plain_model(tmp_path)
    digest = artifact_sha256(model_dir)
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    time.sleep(0.01)
    (copy / "weights.bin").touch()  # timestamps do not count
    assert artifact_sha256(copy) == digest
    assert verify_artifact(copy, digest.upper()) == digest

    (copy / "weights.bin").write_bytes(b"weightz")
    with pytest.raises(ArtifactMismatchError, match="changed after registration"):
        verify_artifact(copy, digest)

    renamed = tmp_path / "renamed"
    shutil.copytree(model_dir, renamed)
    (renamed / "weights.bin").rename(renamed / "weights2.bin")
    assert artifact_sha256(renamed) != digest  # names count, not only bytes

    single = tmp_path / "single"
    single.mkdir()
    (single / "weights.bin").write_bytes(b"weights")
    assert artifact_sha256(single / "weights.bin") == artifact_sha256(single)
    with pytest.raises(UserError, match="no artefact"):
        artifact_sha256(tmp_path / "absent")
