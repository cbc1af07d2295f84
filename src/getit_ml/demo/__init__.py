"""The platform's main job on the embedded default: ``getit-ml demo``, the top floor.

One stage module per layer (:mod:`.environment`, :mod:`.data`, :mod:`.features`,
:mod:`.training`, :mod:`.serving`, :mod:`.monitoring`), the stage types (:mod:`.stages`), the
working directory's layout (:mod:`.workspace`) and the runner (:mod:`.runner`). The demo uses
every layer and every family; nothing below it imports it.
"""

from getit_ml.demo.environment import (
    EmbeddedBackendsStage,
    MonitoringEnvironmentStage,
    PlatformEnvironmentStage,
)
from getit_ml.demo.runner import default_stages, family_stages, ground_floor, run_demo
from getit_ml.demo.stages import (
    DemoContext,
    DemoReport,
    Stage,
    StageOutcome,
    StageResult,
    StageStatus,
)
from getit_ml.demo.workspace import WORKSPACE_LAYOUT, data_dir, store_dir

__all__ = [
    "WORKSPACE_LAYOUT",
    "DemoContext",
    "DemoReport",
    "EmbeddedBackendsStage",
    "MonitoringEnvironmentStage",
    "PlatformEnvironmentStage",
    "Stage",
    "StageOutcome",
    "StageResult",
    "StageStatus",
    "data_dir",
    "default_stages",
    "family_stages",
    "ground_floor",
    "run_demo",
    "store_dir",
]
