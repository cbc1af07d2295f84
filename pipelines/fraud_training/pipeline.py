"""fraud-training: marketplace snapshot → validated → features → training set → tuned → trained →
evaluated → registered (champion only if better), with reference data for the monitoring sidecars.

Compile with ``getit-ml pipeline compile`` (writes ``pipelines/compiled/fraud_training.yaml`` for
the Kubeflow UI), run on one machine with ``getit-ml pipeline run fraud --local``.

Why there is no ``dsl.If`` here: whether a version becomes champion is decided inside
``register_model`` (in the registry, against the re-scored champion) rather than by a condition
on a float in the DAG. A DAG condition would be visible in the UI, but kfp 2.17's local runner
compares float conditions wrongly (kfp PR #13313), so the same pipeline would promote differently
on a laptop and on the cluster. The decision and its reason are the step's Markdown output.
"""

from kfp import dsl

from components.build_training_set.component import build_training_set
from components.engineer_features.component import engineer_features
from components.evaluate_model.component import evaluate_model
from components.export_reference_data.component import export_reference_data
from components.register_model.component import register_model
from components.train_model.component import train_model
from components.tune_hyperparameters.component import tune_hyperparameters
from components.validate_data.component import validate_data


@dsl.pipeline(
    name="fraud-training",
    description="Payment fraud scoring (bKash, Nagad, Rocket, card, COD): features from Feast, "
    "Optuna-tuned XGBoost, evaluation in taka, MLflow registration with champion gating.",
)
def fraud_training(
    data_dir: str,
    snapshot_id: str,
    code_version: str = "",
    feature_service: str = "fraud_scoring_v1",
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    n_trials: int = 20,
    tuning_timeout_s: float = 900.0,
    optuna_storage_url: str = "",
    seed: int = 0,
    review_rate: float = 0.01,
    false_alarm_cost_bdt: float = 100.0,
    model_name: str = "fraud",
    experiment: str = "fraud-training",
    tracking_uri: str = "",
    promotion_metric: str = "test_auprc",
    promotion_margin: float = 0.005,
    reference_rows: int = 5000,
) -> str:
    """``data_dir`` is the marketplace folder and ``snapshot_id`` its content id (``getit-ml
    pipeline run`` takes it): every step that reads the data takes the id as an input, so a
    cached step is reused only for the same data. Returns the registered model version."""
    validated = validate_data(data_dir=data_dir, snapshot_id=snapshot_id)
    validated.set_display_name("validate data")

    features = engineer_features(data_dir=data_dir, snapshot_id=snapshot_id).after(validated)
    features.set_display_name("engineer features")

    training = build_training_set(
        data_dir=data_dir,
        snapshot_id=snapshot_id,
        feature_store=features.outputs["feature_store"],
        feature_service=feature_service,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
    training.set_display_name("build training set")

    tuned = tune_hyperparameters(
        training_set=training.outputs["training_set"],
        snapshot_id=snapshot_id,
        n_trials=n_trials,
        timeout_s=tuning_timeout_s,
        seed=seed,
        storage_url=optuna_storage_url,
    )
    tuned.set_display_name("tune hyperparameters")

    trained = train_model(
        training_set=training.outputs["training_set"],
        tuning=tuned.outputs["tuning"],
        seed=seed,
    )
    trained.set_display_name("train model")

    evaluated = evaluate_model(
        training_set=training.outputs["training_set"],
        model=trained.outputs["model"],
        review_rate=review_rate,
        false_alarm_cost_bdt=false_alarm_cost_bdt,
    )
    evaluated.set_display_name("evaluate model")

    reference = export_reference_data(
        training_set=training.outputs["training_set"], rows=reference_rows, seed=seed
    )
    reference.set_display_name("export reference data")

    registered = register_model(
        model=trained.outputs["model"],
        evaluation=evaluated.outputs["evaluation"],
        training_set=training.outputs["training_set"],
        snapshot_id=snapshot_id,
        pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        model_name=model_name,
        experiment=experiment,
        feature_service=feature_service,
        code_version=code_version,
        tracking_uri=tracking_uri,
        promotion_metric=promotion_metric,
        promotion_margin=promotion_margin,
    ).after(reference)
    registered.set_display_name("register model")
    # Registration writes to the registry: never replay it from the cache.
    registered.set_caching_options(False)
    return registered.outputs["Output"]
