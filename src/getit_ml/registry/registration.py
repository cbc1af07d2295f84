"""The training pipeline's last step: register the trained model and decide on ``champion``.

A new version always becomes ``challenger``. It replaces ``champion`` only if it beats it on the
promotion metric by the margin, and the comparison is fair: both models are scored on the
challenger's held-out test set. The champion was evaluated on an older snapshot's test set, whose
figures are not comparable (a different month, a different fraud mix), so its recorded metric is
only the fallback when it cannot be re-scored (another feature schema, a missing artefact).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from getit_ml.errors import UserError
from getit_ml.registry.mlflow_registry import (
    CHAMPION,
    Lineage,
    PromotionDecision,
    RegisteredVersion,
    RegistryConfig,
    UnknownVersionError,
    alias_version,
    promote_if_better,
    register_model_version,
    resolve,
)
from getit_ml.training.evaluation import average_precision, roc_auc
from getit_ml.training.steps import PART_FILES, read_evaluation

logger = logging.getLogger(__name__)

#: Metrics that can be recomputed for the champion on the challenger's test set.
RESCORABLE: Final[dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]]] = {
    "test_auprc": average_precision,
    "test_roc_auc": roc_auc,
}
#: Name fragments of metrics where lower is better; every other metric: higher is better.
_LOWER_IS_BETTER: Final = ("cost", "brier", "ece", "logloss")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is the better model."""
    return not any(fragment in metric for fragment in _LOWER_IS_BETTER)


@dataclass(frozen=True)
class ChampionScore:
    """The current champion scored on the challenger's test set (``value`` None: it could not
    be, and ``note`` says why)."""

    version: str
    value: float | None
    note: str


@dataclass(frozen=True)
class RegistrationResult:
    registered: RegisteredVersion
    decision: PromotionDecision
    champion_score: ChampionScore | None
    metrics: dict[str, float]


def rescore_champion(
    config: RegistryConfig, name: str, test_frame: pd.DataFrame, metric: str
) -> ChampionScore | None:
    """Score the current champion on ``test_frame`` (None when there is no champion)."""
    from getit_ml.training.xgb import load_model, predict_proba

    version = alias_version(config, name, CHAMPION)
    if version is None:
        return None
    score = RESCORABLE.get(metric)
    if score is None:
        return ChampionScore(version, None, f"{metric} cannot be re-scored: its record is used")
    try:
        resolved = resolve(config, f"models:/{name}/{version}")
        booster, schema = load_model(resolved.path)
        scores = predict_proba(booster, schema, test_frame)
        labels = test_frame[schema.label].astype(bool).to_numpy()
    except (UserError, UnknownVersionError, KeyError) as error:
        return ChampionScore(version, None, f"could not re-score version {version}: {error}")
    value = float(score(labels, np.asarray(scores)))
    return ChampionScore(version, value, f"version {version} re-scored on this test set")


def register_and_promote(
    config: RegistryConfig,
    *,
    name: str,
    model_dir: Path,
    evaluation_dir: Path,
    training_dir: Path,
    lineage: Lineage,
    params: Mapping[str, object],
    experiment: str,
    metric: str,
    margin: float,
    run_name: str | None = None,
) -> RegistrationResult:
    """Register ``model_dir`` with the evaluation's metrics and plots, point ``challenger`` at
    it, and promote it to ``champion`` if it beats the champion (re-scored on this test set)."""
    evaluation = read_evaluation(evaluation_dir)
    metrics = {str(k): float(v) for k, v in evaluation["metrics"].items()}
    if metric not in metrics:
        raise UserError(
            f"promotion metric {metric!r} is not among the evaluation's metrics "
            f"({', '.join(sorted(metrics)[:8])}, ...)"
        )
    test_file = training_dir / PART_FILES["test"]
    if not test_file.is_file():
        raise UserError(f"{training_dir} has no {PART_FILES['test']}: is it a training set?")
    champion = rescore_champion(config, name, pd.read_parquet(test_file), metric)
    if champion is not None:
        logger.info("%s champion: %s", name, champion.note)
    registered = register_model_version(
        config,
        name=name,
        model_dir=model_dir,
        metrics=metrics,
        params=params,
        lineage=lineage,
        experiment=experiment,
        run_name=run_name,
        extra_artifacts={"evaluation": evaluation_dir},
    )
    decision = promote_if_better(
        config,
        name,
        registered.version,
        metric=metric,
        margin=margin,
        higher_is_better=higher_is_better(metric),
        champion_value=None if champion is None else champion.value,
        champion_value_for=None if champion is None else champion.version,
    )
    return RegistrationResult(registered, decision, champion, metrics)


def render_decision(result: RegistrationResult) -> str:
    """The decision as Markdown, for the pipeline UI."""
    d = result.decision
    lines = [
        f"# {d.name} version {result.registered.version}",
        "",
        f"**{'Promoted to champion' if d.promoted else 'Not promoted'}**: {d.reason}",
        "",
        f"- registered as `models:/{d.name}/{result.registered.version}` (alias `challenger`)",
        f"- artefact sha256 `{result.registered.sha256}`",
    ]
    if result.champion_score is not None:
        lines.append(f"- champion: {result.champion_score.note}")
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(result.metrics.items())
              if k.startswith("test_")]  # fmt: skip
    return "\n".join(lines) + "\n"
