"""``python -m getit_ml.serving scorer|transformer [KServe and our flags]``: one model server.

The local launcher (``getit-ml serve fraud``) starts these as processes; containers run the
``inference_services/`` entry points, which add KServe's ``kserve.Model`` adapters.
"""

from __future__ import annotations

import sys

from getit_ml.errors import UserError


def main(argv: list[str]) -> int:
    from getit_ml.serving.entrypoints import run_scorer, run_transformer

    commands = {"scorer": run_scorer, "transformer": run_transformer}
    if not argv or argv[0] not in commands:
        sys.stderr.write("usage: python -m getit_ml.serving scorer|transformer [options]\n")
        return 2
    try:
        commands[argv[0]](argv[1:])
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
