"""``python -m getit_ml.deploy base|values-table``: regenerate the kustomize base from the chart and
the chart README's values table from ``values.yaml`` (run from the repository root)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from getit_ml.deploy.render import CHART_DIR, MANIFESTS_DIR, write_base
from getit_ml.deploy.values_doc import undocumented, update_readme


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m getit_ml.deploy", description=__doc__)
    parser.add_argument("what", choices=["base", "values-table"])
    args = parser.parse_args(argv)
    if args.what == "base":
        for path in write_base(CHART_DIR, MANIFESTS_DIR / "base"):
            sys.stdout.write(f"wrote {path}\n")
        return 0
    values = CHART_DIR / "values.yaml"
    missing, unknown = undocumented(values.read_text(encoding="utf-8"))
    if missing or unknown:
        sys.stderr.write(f"values without @param: {missing}; @param without value: {unknown}\n")
        return 1
    changed = update_readme(values, CHART_DIR / "README.md")
    sys.stdout.write(f"{CHART_DIR / 'README.md'}: {'updated' if changed else 'up to date'}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
