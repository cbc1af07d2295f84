"""What serving asks of a model family: its runtime, the request its callers send, its output.

A family declares a :class:`ServingSpec`; the servers are generic and take it by the family's
name (``--family``), so no server is written for one family:

* ``runtime`` names the model server that loads the family's model folder (``xgboost-binary``:
  :class:`~getit_ml.serving.scorer.BinaryTabularScorer`, for fraud and churn); the chart runs one
  ServingRuntime per runtime, shared by every family that uses it;
* ``request`` is what the shop's service sends to the feature transformer — ids and the few
  facts only the caller knows (a checkout's amount, its payment rail), each with its v2 datatype
  and, when optional, how it defaults (:class:`RequestDefault`), and the values it may take
  (:class:`~getit_ml.serving.domains.FieldDomain`: range, categories, time window, length,
  checked before any feature is read); the transformer adds the feature service's online
  features and on-demand context and calls the model;
* ``head`` names the outputs (:class:`BinaryHead`: the positive class's probability and the
  decision at the threshold). Training writes the probability's name into the model's feature
  schema, so the scorer and the monitoring sidecars read it from the artefact;
* ``degraded`` says what the transformer does with a row the feature store could not feed
  (:class:`DegradedPolicy`: score it for review, flag it, or refuse it), so a family never
  scores blind without saying so.

Heads for ranked lists (item ids with scores) and forecasts (values per horizon) join
:data:`OutputHead` as those families arrive; the transformer and the servers do not change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from getit_ml.errors import UserError
from getit_ml.serving.domains import FieldDomain

#: Runtimes this platform serves, by name, and the entry point of each one's server.
RUNTIME_SERVERS: Final[dict[str, str]] = {"xgboost-binary": "inference_services.xgboost_scorer"}
RUNTIMES: Final = tuple(RUNTIME_SERVERS)
#: The entry point of the feature transformer (one for every family).
TRANSFORMER_SERVER: Final = "inference_services.feature_transformer"
REQUEST_DATATYPES: Final = ("INT64", "FP64", "BYTES", "BOOL")
DefaultKind = Literal["now_us", "constant", "copy"]


@dataclass(frozen=True)
class RequestDefault:
    """How an optional request input is filled when the caller leaves it out: the request's
    arrival time in microseconds (``now_us``), a constant, or a copy of another input."""

    kind: DefaultKind
    value: Any = None

    @classmethod
    def now_us(cls) -> RequestDefault:
        return cls("now_us")

    @classmethod
    def constant(cls, value: Any) -> RequestDefault:
        return cls("constant", value)

    @classmethod
    def copy_of(cls, name: str) -> RequestDefault:
        return cls("copy", name)

    def fill(self, columns: Mapping[str, list[Any]], rows: int) -> list[Any]:
        if self.kind == "now_us":
            return [int(time.time() * 1_000_000)] * rows
        if self.kind == "constant":
            return [self.value] * rows
        return list(columns[str(self.value)])


@dataclass(frozen=True)
class RequestInput:
    """One input of the transformer's request: v2 name and datatype; optional inputs carry a
    default; ``domain`` the values it may take (without one, the datatype's baseline:
    :func:`~getit_ml.serving.domains.baseline_domain`). Defaults are checked like sent values."""

    name: str
    datatype: str
    default: RequestDefault | None = None
    domain: FieldDomain | None = None

    def __post_init__(self) -> None:
        if self.datatype not in REQUEST_DATATYPES:
            raise UserError(
                f"request input {self.name}: datatype must be one of {', '.join(REQUEST_DATATYPES)}"
            )
        if self.domain is not None:
            self.domain.check_datatype(self.name, self.datatype)

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class BinaryHead:
    """The outputs of a binary scorer: the positive class's probability (FP64 ``[N]``) and the
    decision at the threshold (BOOL ``[N]``)."""

    probability: str
    decision: str = "decision"


OutputHead = BinaryHead

DegradedAction = Literal["review", "flag", "reject"]
DEGRADED_ACTIONS: Final = ("review", "flag", "reject")


@dataclass(frozen=True)
class DegradedPolicy:
    """What the transformer does with a row scored on too little of the feature store.

    A row is *degraded* when more than ``max_missing_share`` of the model's store-fed inputs
    (features of the service's feature views; not request fields, not on-demand context) are
    missing for it, and every row is degraded while a feature view's materialization watermark
    is missing (the online store was emptied). ``action``:

    * ``review``: score it, but its ``decision_status`` says ``review`` (a person decides);
    * ``flag``: score it, ``decision_status`` ``flagged`` (the caller decides what that means);
    * ``reject``: answer the request 503 with ``Retry-After`` instead of a blind score.

    Rows that are not degraded say ``scored``. The share is the family's to choose from data:
    above what its normal requests miss (a new customer legitimately has no customer history),
    below a blind score."""

    max_missing_share: float = 0.5
    action: DegradedAction = "flag"

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_missing_share <= 1.0:
            raise UserError(
                f"degraded policy: max_missing_share must be within [0, 1] "
                f"(got {self.max_missing_share})"
            )
        if self.action not in DEGRADED_ACTIONS:
            raise UserError(
                f"degraded policy: action must be one of {', '.join(DEGRADED_ACTIONS)} "
                f"(got {self.action!r})"
            )

    def degraded(self, missing_share: float) -> bool:
        return missing_share > self.max_missing_share


@dataclass(frozen=True)
class ServingSpec:
    """A family's serving declaration (see the module docstring); ``degraded`` its policy for
    rows the feature store could not feed (:class:`DegradedPolicy`)."""

    runtime: str
    feature_service: str
    request: tuple[RequestInput, ...]
    head: OutputHead
    degraded: DegradedPolicy = DegradedPolicy()

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise UserError(f"unknown serving runtime {self.runtime!r}; known: {RUNTIMES}")
        names = [i.name for i in self.request]
        if len(set(names)) != len(names) or not names:
            raise UserError("a request needs at least one input and no name twice")
        for field in self.request:
            default = field.default
            if default is not None and default.kind == "copy" and default.value not in names:
                raise UserError(
                    f"request input {field.name} copies unknown input {default.value!r}"
                )

    @property
    def inputs(self) -> dict[str, RequestInput]:
        return {i.name: i for i in self.request}

    def request_document(
        self, rows: Sequence[Mapping[str, Any]], request_id: str | None = None
    ) -> dict[str, Any]:
        """A v2 request for rows given as dicts of request inputs (what the shop's service
        sends; an input absent from every row is left out, so its default applies)."""
        if not rows:
            raise UserError("no request rows")
        inputs = []
        for spec in self.request:
            if not any(spec.name in row for row in rows):
                continue
            values = [row[spec.name] for row in rows]
            if spec.datatype == "INT64":
                values = [int(v) for v in values]
            elif spec.datatype == "FP64":
                values = [float(v) for v in values]
            elif spec.datatype == "BOOL":
                values = [bool(v) for v in values]
            else:
                values = [str(v) for v in values]
            inputs.append(
                {"name": spec.name, "datatype": spec.datatype, "shape": [len(rows)], "data": values}
            )
        document: dict[str, Any] = {"inputs": inputs}
        if request_id is not None:
            document["id"] = request_id
        return document
