"""Optuna tuning: resuming from an RDB study, pruning through the XGBoost callback."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from getit_ml.errors import UserError
from getit_ml.training import tuning
from getit_ml.training.dataset import FeatureMatrix
from tests.getit_ml.training.support import noisy_matrix

TRAIN = noisy_matrix(2_000, seed=1)
VALID = noisy_matrix(800, seed=2)


def _tune(
    storage_url: str | None,
    study_name: str,
    n_trials: int,
    *,
    seed: int = 7,
    train: FeatureMatrix = TRAIN,
    pruner_startup_trials: int = 5,
    pruner_warmup_steps: int = 20,
    report_every: int = 5,
) -> tuning.TuningResult:
    """A small budget: at most 40 rounds per trial, one thread."""
    return tuning.tune_xgboost(
        train, VALID, n_trials=n_trials, timeout_s=None, storage_url=storage_url,
        study_name=study_name, seed=seed, max_rounds=40, early_stopping_rounds=10, nthread=1,
        pruner_startup_trials=pruner_startup_trials, pruner_warmup_steps=pruner_warmup_steps,
        report_every=report_every,
    )  # fmt: skip


def test_an_interrupted_study_resumes_from_its_database(tmp_path: Path) -> None:
    url = tuning.sqlite_url(tmp_path / "optuna.db")
    first = _tune(url, "fraud", n_trials=3)
    assert (first.trials, first.trials_this_run) == (3, 3)
    second = _tune(url, "fraud", n_trials=3)
    assert (second.trials, second.trials_this_run) == (6, 3)
    assert second.best_value >= first.best_value
    study = optuna.load_study(study_name="fraud", storage=url)
    assert len(study.trials) == 6
    # The resumed run proposes new points, not the first run's again.
    proposals = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(proposals) == 6
    assert 0.0 < second.best_value <= 1.0
    assert "scale_pos_weight" in second.best_params
    assert second.best_rounds >= 1


def test_resuming_with_other_data_is_refused(tmp_path: Path) -> None:
    url = tuning.sqlite_url(tmp_path / "optuna.db")
    _tune(url, "s", n_trials=1)
    with pytest.raises(UserError, match="run on other data"):
        _tune(url, "s", n_trials=1, train=noisy_matrix(500, seed=9))


def test_weak_trials_are_pruned() -> None:
    # In memory, judged every round from the third trial on: TPE's random start-up proposals
    # include some clearly worse than the median, which the pruner stops.
    result = _tune(None, "prune", n_trials=12, seed=3, pruner_startup_trials=2,
                   pruner_warmup_steps=0, report_every=1)  # fmt: skip
    assert result.pruned >= 1
    assert result.complete + result.pruned == 12


class _Trial:
    """The two calls the callback makes, recorded; prunes once ``prune_from`` is reported."""

    def __init__(self, prune_from: int) -> None:
        self.reports: list[tuple[int, float]] = []
        self.prune_from = prune_from

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.reports[-1][0] >= self.prune_from


def test_the_callback_reports_every_nth_round_and_raises_when_told() -> None:
    trial = _Trial(prune_from=4)
    callback = tuning.XGBoostPruningCallback(trial, report_every=2)  # type: ignore[arg-type]
    log = {"validation": {"aucpr": [0.1, 0.2, 0.3, 0.4, 0.5]}}
    for epoch in range(4):
        assert callback.after_iteration(None, epoch, log) is False  # type: ignore[arg-type]
    with pytest.raises(optuna.TrialPruned):
        callback.after_iteration(None, 4, log)  # type: ignore[arg-type]
    assert [step for step, _ in trial.reports] == [0, 2, 4]
    with pytest.raises(UserError, match="no validation-aucpr"):
        callback.after_iteration(None, 0, {"train": {"aucpr": [0.5]}})  # type: ignore[arg-type]
