"""Model families on the one spine: each folder here is one family (see :mod:`.base`).

:func:`get_family` finds a family by name among the sub-packages of this package: adding a
family is adding its folder, nothing is registered by hand. The layers below never import this
package; the adapters (components, pipelines, servers), the orchestration, the demo and the CLI
do.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from getit_ml.errors import UserError
from getit_ml.families.base import ModelFamily

__all__ = ["ModelFamily", "family_names", "get_family"]


@cache
def family_names() -> tuple[str, ...]:
    """Every family's name, sorted."""
    return tuple(
        sorted(
            module.name
            for module in pkgutil.iter_modules(__path__)
            if module.ispkg and not module.name.startswith("_")
        )
    )


@cache
def get_family(name: str) -> ModelFamily:
    """The family called ``name``; a :class:`UserError` naming the known ones otherwise."""
    if name not in family_names():
        raise UserError(f"unknown model family {name!r}; known: {', '.join(family_names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, ModelFamily):
        raise UserError(f"{module.__name__} defines no FAMILY (a ModelFamily)")
    if family.name != name:
        raise UserError(f"{module.__name__}.FAMILY is named {family.name!r}, not {name!r}")
    return family
