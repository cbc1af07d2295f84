"""Training: the steps every family's pipeline runs, and the binary tabular trainer.

* :mod:`~getit_ml.training.family` — the :class:`~getit_ml.training.family.Trainer` protocol the
  pipeline template calls, and the evaluation report (metrics with directions).
* :mod:`~getit_ml.training.dataset` — entity rows, the point-in-time join, the splits, matrices.
* :mod:`~getit_ml.training.steps` — the folders that travel between steps.
* :mod:`~getit_ml.training.tabular` — :class:`~getit_ml.training.tabular.BinaryTask` and its
  trainer (fraud, churn): XGBoost (:mod:`.xgb`), Optuna (:mod:`.tuning`), cost-aware evaluation
  (:mod:`.evaluation`) and the ``getit-ml evaluate`` protocol (:mod:`.table_evaluation`).
"""
