"""The training pipeline template: one pipeline per model family, from the same components.

marketplace snapshot → validated → features → training set → tuned → trained → evaluated →
registered (champion only if better), with reference data for the monitoring sidecars.
:func:`training_pipeline` makes the pipeline of one family: its name, its description and its
parameter defaults come from the family (``getit_ml.families``), the family's name is a constant
of every step (each step asks the family's trainer to do its part), and nothing else differs.

Compile with ``getit-ml pipeline compile`` (writes ``pipelines/compiled/<family>_training.yaml``
for the Kubeflow UI), run on one machine with ``getit-ml pipeline run <family> --local``.

Why there is no ``dsl.If`` here: whether a version becomes champion is decided inside
``register_model`` (in the registry, against the re-scored champion) rather than by a condition
on a float in the DAG. A DAG condition would be visible in the UI, but kfp 2.17's local runner
compares float conditions wrongly (kfp PR #13313), so the same pipeline would promote differently
on a laptop and on the cluster. The decision and its reason are the step's Markdown output.
"""

from typing import Any

from kfp import dsl

from components.build_training_set.component import build_training_set
from components.engineer_features.component import engineer_features
from components.evaluate_model.component import evaluate_model
from components.export_reference_data.component import export_reference_data
from components.register_model.component import register_model
from components.train_model.component import train_model
from components.tune_hyperparameters.component import tune_hyperparameters
from components.validate_data.component import validate_data
from getit_ml.families.base import ModelFamily

#: The template's defaults; a family overrides some (``ModelFamily.pipeline_defaults``).
DEFAULTS: dict[str, Any] = {
    "validation_fraction": 0.15,
    "test_fraction": 0.15,
    "n_trials": 20,
    "tuning_timeout_s": 900.0,
    "evaluation_options": {},
    "promotion_margin": 0.005,
    "reference_rows": 5000,
}


def training_pipeline(family: ModelFamily) -> Any:
    """The ``@dsl.pipeline`` function of ``family``'s training run."""
    name = family.name
    d = {**DEFAULTS, **family.pipeline_defaults}

    @dsl.pipeline(name=f"{name}-training", description=family.description)
    def pipeline(
        data_dir: str,
        snapshot_id: str,
        code_version: str = "",
        validation_fraction: float = d["validation_fraction"],
        test_fraction: float = d["test_fraction"],
        n_trials: int = d["n_trials"],
        tuning_timeout_s: float = d["tuning_timeout_s"],
        optuna_storage_url: str = "",
        seed: int = 0,
        evaluation_options: dict = d["evaluation_options"],
        model_name: str = family.registered_model,
        experiment: str = f"{name}-training",
        tracking_uri: str = "",
        promotion_metric: str = "",
        promotion_margin: float = d["promotion_margin"],
        reference_rows: int = d["reference_rows"],
    ) -> str:
        """``data_dir`` is the marketplace folder and ``snapshot_id`` its content id (``getit-ml
        pipeline run`` takes it): every step that reads the data takes the id as an input, so a
        cached step is reused only for the same data. ``promotion_metric`` empty: the family's.
        Returns the registered model version."""
        validated = validate_data(data_dir=data_dir, snapshot_id=snapshot_id)
        validated.set_display_name("validate data")

        features = engineer_features(data_dir=data_dir, snapshot_id=snapshot_id).after(validated)
        features.set_display_name("engineer features")

        training = build_training_set(
            family=name,
            data_dir=data_dir,
            snapshot_id=snapshot_id,
            feature_store=features.outputs["feature_store"],
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
        )
        training.set_display_name("build training set")

        tuned = tune_hyperparameters(
            family=name,
            training_set=training.outputs["training_set"],
            snapshot_id=snapshot_id,
            n_trials=n_trials,
            timeout_s=tuning_timeout_s,
            seed=seed,
            storage_url=optuna_storage_url,
        )
        tuned.set_display_name("tune hyperparameters")

        trained = train_model(
            family=name,
            training_set=training.outputs["training_set"],
            tuning=tuned.outputs["tuning"],
            seed=seed,
        )
        trained.set_display_name("train model")

        evaluated = evaluate_model(
            family=name,
            training_set=training.outputs["training_set"],
            model=trained.outputs["model"],
            options=evaluation_options,
        )
        evaluated.set_display_name("evaluate model")

        reference = export_reference_data(
            family=name,
            training_set=training.outputs["training_set"],
            rows=reference_rows,
            seed=seed,
        )
        reference.set_display_name("export reference data")

        registered = register_model(
            family=name,
            model=trained.outputs["model"],
            evaluation=evaluated.outputs["evaluation"],
            training_set=training.outputs["training_set"],
            snapshot_id=snapshot_id,
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            model_name=model_name,
            experiment=experiment,
            code_version=code_version,
            tracking_uri=tracking_uri,
            promotion_metric=promotion_metric,
            promotion_margin=promotion_margin,
        ).after(reference)
        registered.set_display_name("register model")
        # Registration writes to the registry: never replay it from the cache.
        registered.set_caching_options(False)
        return registered.outputs["Output"]

    return pipeline
