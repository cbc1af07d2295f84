"""Small bridges between our library and Feast's definition API."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from feast import Field
from feast.types import Bool, Float64, Int64, PrimitiveFeastType, String

F = TypeVar("F", bound=Callable[..., object])

FEAST_TYPES: Final[dict[str, PrimitiveFeastType]] = {
    "int64": Int64,
    "float64": Float64,
    "string": String,
    "bool": Bool,
}


def feast_fields(schema: Mapping[str, str]) -> list[Field]:
    """One Feast ``Field`` per ``name: type`` of a schema dict, in order."""
    unknown = {t for t in schema.values() if t not in FEAST_TYPES}
    if unknown:
        raise ValueError(f"no Feast type for {sorted(unknown)}; known: {sorted(FEAST_TYPES)}")
    return [Field(name=name, dtype=FEAST_TYPES[kind]) for name, kind in schema.items()]


def udf_copy(function: F) -> F:
    """A private copy of ``function`` to hand to Feast's ``on_demand_feature_view`` decorator.

    The decorator rewrites the function's ``__module__`` to ``"__main__"`` in place (so dill can
    pickle it), which breaks every later source lookup of the original library function — a second
    apply, or another store in the same process, would then fail. The copy takes the damage.
    """
    if not isinstance(function, types.FunctionType):
        raise TypeError(f"an on-demand feature view body must be a function, not {function!r}")
    copy = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    copy.__module__ = function.__module__
    copy.__doc__ = function.__doc__
    copy.__annotations__ = dict(function.__annotations__)
    copy.__qualname__ = function.__qualname__
    return copy  # type: ignore[return-value]
