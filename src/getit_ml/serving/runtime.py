"""What serving asks of a model family: its runtime, the request its callers send, its output.

A family declares a :class:`ServingSpec`; the servers are generic and take it by the family's
name (``--family``), so no server is written for one family:

* ``runtime`` names the model server that loads the family's model folder (``xgboost-binary``:
  :class:`~getit_ml.serving.scorer.BinaryTabularScorer`, for fraud and churn); the chart runs one
  ServingRuntime per runtime, shared by every family that uses it;
* ``request`` is what the shop's service sends to the feature transformer — ids and the few
  facts only the caller knows (a checkout's amount, its payment rail), each with its v2 datatype
  and, when optional, how it defaults (:class:`RequestDefault`); the transformer adds the
  feature service's online features and on-demand context and calls the model;
* ``head`` names the outputs (:class:`BinaryHead`: the positive class's probability and the
  decision at the threshold). Training writes the probability's name into the model's feature
  schema, so the scorer and the monitoring sidecars read it from the artefact.

Heads for ranked lists (item ids with scores) and forecasts (values per horizon) join
:data:`OutputHead` as those families arrive; the transformer and the servers do not change.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from getit_ml.errors import UserError

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
    default."""

    name: str
    datatype: str
    default: RequestDefault | None = None

    def __post_init__(self) -> None:
        if self.datatype not in REQUEST_DATATYPES:
            raise UserError(
                f"request input {self.name}: datatype must be one of {', '.join(REQUEST_DATATYPES)}"
            )

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


@dataclass(frozen=True)
class ServingSpec:
    """A family's serving declaration (see the module docstring)."""

    runtime: str
    feature_service: str
    request: tuple[RequestInput, ...]
    head: OutputHead

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
