"""getit-ml: the shared, typed library of the GetIt machine-learning platform.

All platform logic lives in this package; components, pipelines, model servers and notebooks are
thin adapters over it. Importing the package does nothing but define names: no environment is
read, no file is written and no heavy dependency is imported, so ``import getit_ml`` works in
both the platform environment and the monitoring environment (numpy 1.24, pydantic 1).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("getit-ml")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
