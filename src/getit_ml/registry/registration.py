"""The training pipeline's last step: register the trained model and decide on ``champion``.

A new version always becomes ``challenger``. It replaces ``champion`` only if it beats it on the
promotion metric by the margin, and the comparison is fair: both models are scored on the
challenger's held-out test set. The champion was evaluated on an older snapshot's test set, whose
figures are not comparable (a different month, a different mix), so its recorded metric is only
the fallback when it cannot be re-scored (another feature schema, a missing artefact).

Nothing here knows a model family: the evaluation folder says which metrics there are, which way
each is better and which one promotion decides on (``evaluation.json``), and the family's
trainer is handed in as a :data:`Rescorer` that scores a champion's model folder on this run's
test set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
from getit_ml.training.family import read_evaluation

logger = logging.getLogger(__name__)

#: (a champion's model folder, the promotion metric) -> its value on this run's test set, or
#: None when the metric cannot be recomputed. A :class:`UserError` means the champion cannot
#: be scored on this test set (another schema): its recorded value is used.
Rescorer = Callable[[Path, str], float | None]


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
    config: RegistryConfig, name: str, metric: str, rescore: Rescorer
) -> ChampionScore | None:
    """Score the current champion with ``rescore`` (None when there is no champion)."""
    version = alias_version(config, name, CHAMPION)
    if version is None:
        return None
    try:
        resolved = resolve(config, f"models:/{name}/{version}")
        value = rescore(resolved.path, metric)
    except (UserError, UnknownVersionError, KeyError) as error:
        return ChampionScore(version, None, f"could not re-score version {version}: {error}")
    if value is None:
        return ChampionScore(version, None, f"{metric} cannot be re-scored: its record is used")
    return ChampionScore(version, float(value), f"version {version} re-scored on this test set")


def metric_is_higher_better(evaluation: Mapping[str, object], metric: str) -> bool:
    """The direction the evaluation declared for ``metric``; a clear error when it declared
    none (a metric without a direction cannot decide a promotion)."""
    directions = evaluation.get("directions")
    if not isinstance(directions, Mapping) or metric not in directions:
        raise UserError(
            f"the evaluation declares no direction for {metric!r}: it cannot decide promotion"
        )
    direction = directions[metric]
    if direction not in ("maximize", "minimize"):
        raise UserError(f"direction of {metric!r} is {direction!r}, not maximize or minimize")
    return bool(direction == "maximize")


def register_and_promote(
    config: RegistryConfig,
    *,
    name: str,
    model_dir: Path,
    evaluation_dir: Path,
    lineage: Lineage,
    params: Mapping[str, object],
    experiment: str,
    rescore: Rescorer,
    margin: float,
    metric: str | None = None,
    run_name: str | None = None,
) -> RegistrationResult:
    """Register ``model_dir`` with the evaluation's metrics and plots, point ``challenger`` at
    it, and promote it to ``champion`` if it beats the champion (re-scored on this test set)
    on ``metric`` (default: the promotion metric the evaluation names)."""
    evaluation = read_evaluation(evaluation_dir)
    metrics = {str(k): float(v) for k, v in evaluation["metrics"].items()}
    chosen = metric or evaluation.get("promotion_metric")
    if not isinstance(chosen, str) or not chosen:
        raise UserError("no promotion metric: the evaluation names none and none was given")
    if chosen not in metrics:
        raise UserError(
            f"promotion metric {chosen!r} is not among the evaluation's metrics "
            f"({', '.join(sorted(metrics)[:8])}, ...)"
        )
    higher_is_better = metric_is_higher_better(evaluation, chosen)
    champion = rescore_champion(config, name, chosen, rescore)
    if champion is not None:
        logger.info("%s champion: %s", name, champion.note)
    registered = register_model_version(
        config,
        name=name,
        model_dir=model_dir,
        metrics=metrics,
        params={**params, "promotion_metric": chosen},
        lineage=lineage,
        experiment=experiment,
        run_name=run_name,
        extra_artifacts={"evaluation": evaluation_dir},
    )
    decision = promote_if_better(
        config,
        name,
        registered.version,
        metric=chosen,
        margin=margin,
        higher_is_better=higher_is_better,
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
    lines += [
        f"| {k} | {v:.4f} |" for k, v in sorted(result.metrics.items()) if k.startswith("test_")
    ]
    return "\n".join(lines) + "\n"
