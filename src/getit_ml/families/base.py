"""The model-family contract: what one family declares, for the generic spine to run it.

A family is a folder ``getit_ml/families/<name>/`` whose package exports ``FAMILY``, a
:class:`ModelFamily`. It holds what only that family knows and nothing else:

* its trainer (:class:`~getit_ml.training.family.Trainer`): the entity rows and label, the
  Feast feature service, the split, the model and its tuning space, the evaluation metrics with
  their directions (the promotion metric among them), how a champion is re-scored on a
  challenger's test set, and the ``getit-ml evaluate`` protocol on a user's table. A binary
  tabular family declares a :class:`~getit_ml.training.tabular.BinaryTask` and uses the generic
  :class:`~getit_ml.training.tabular.BinaryTabularTrainer`;
* its serving declaration (:class:`~getit_ml.serving.runtime.ServingSpec`): the runtime that
  loads its model, the request its callers send, its output head;
* its monitoring hints (reason phrases, features drift ignores, class names): part of the
  trainer's task, written by training into the model's ``feature_schema.json`` so that the
  sidecars need no family code;
* its demo (:class:`DemoSpec`): the synthetic population, how many tuning trials, sample
  requests, and the traffic shift the drift detector must catch;
* defaults of the pipeline template's parameters.

Everything else — the components, the pipeline template, registration and promotion, the v2
servers, the transformer, the sidecars, the chart — is generic and takes the family by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from getit_ml.data.generator import MarketplaceConfig
from getit_ml.errors import UserError
from getit_ml.monitoring.traffic import TrafficShift
from getit_ml.serving.runtime import ServingSpec
from getit_ml.training.family import Trainer

NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{1,30}")
#: The template's parameters a family may give defaults for (see pipelines/training).
PIPELINE_PARAMETERS: Final = frozenset(
    {
        "validation_fraction",
        "test_fraction",
        "n_trials",
        "tuning_timeout_s",
        "evaluation_options",
        "promotion_margin",
        "reference_rows",
    }
)

#: A marketplace folder and a count -> request rows (the serving spec's inputs) with the true
#: ``label`` beside them, for the demo to score and show.
SampleRequests = Callable[[Path, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class DemoSpec:
    """How the demo runs a family on one machine, sized to keep ``make demo`` short."""

    #: Folder name of the family's synthetic population under the demo's ``data/`` and
    #: ``features/`` (families sharing a population share the folders).
    population: str
    marketplace: MarketplaceConfig
    #: Optuna trials in the demo's pipeline run.
    trials: int
    sample_requests: SampleRequests
    #: One line per scored request, e.g. "bkash 1,200 BDT".
    describe_request: Callable[[Mapping[str, Any]], str]
    #: What the drift detector must catch after the normal traffic, and its name.
    shift: TrafficShift
    shift_name: str
    #: How the demo names a sample's true label: (negative, positive).
    labels: tuple[str, str] = ("negative", "positive")
    #: Pipeline parameters of the demo's run (besides ``n_trials``).
    pipeline_overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFamily:
    """One family (see the module docstring)."""

    name: str
    description: str
    trainer: Trainer
    serving: ServingSpec
    demo: DemoSpec
    #: Defaults of the pipeline template's parameters (keys of :data:`PIPELINE_PARAMETERS`).
    pipeline_defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise UserError(f"family name {self.name!r} must match {NAME_PATTERN.pattern}")
        if self.trainer.family != self.name:
            raise UserError(f"family {self.name}: its trainer is {self.trainer.family!r}'s")
        if self.serving.feature_service != self.trainer.feature_service:
            raise UserError(
                f"family {self.name}: serving reads {self.serving.feature_service}, training "
                f"{self.trainer.feature_service}"
            )
        unknown = set(self.pipeline_defaults) - PIPELINE_PARAMETERS
        if unknown:
            raise UserError(f"family {self.name}: unknown pipeline parameter(s) {sorted(unknown)}")

    @property
    def feature_service(self) -> str:
        return self.trainer.feature_service

    @property
    def registered_model(self) -> str:
        """The registry name its pipeline registers (``models:/<name>@champion``)."""
        return self.name

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.registered_model}@champion"
