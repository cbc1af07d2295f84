"""Start the drift detector: ``python -m inference_services.drift_detector --model_name fraud
--reference_dir DIR`` and point the InferenceService's ``logger.url`` at it.

The flags (kserve 0.12.1's plus ours) and the monitor they describe are
:mod:`getit_ml.monitoring.service`'s; this adapter serves it. Configuration is flags only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from getit_ml.errors import UserError
from getit_ml.log import LOG_FORMAT


def main(argv: Sequence[str] | None = None) -> int:
    from getit_ml.monitoring.service import build_drift_service, drift_parser

    args = drift_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    try:
        import uvicorn

        from inference_services.drift_detector.model import create_application

        service = build_drift_service(args)
    except UserError as error:
        logging.getLogger("getit_ml").error("%s", error)
        return 2
    try:
        uvicorn.run(
            create_application(service.monitor),
            host=args.host,
            port=args.http_port,
            log_level=args.log_level.lower(),
        )
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
