"""validate_data: stop the pipeline when the data breaks its contracts, with the full report."""

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_data(
    data_dir: str,
    snapshot_id: str,
    report: Output[Markdown],
    report_json: Output[Artifact],
) -> int:
    """Check every table in ``data_dir`` against the data contracts.

    ``snapshot_id`` is the folder's content id taken when the run was started: it keys the cache
    and is checked again here, so a run never validates data other than what it was started on.
    Returns the number of rows checked; raises with the readable report when any row breaks a
    contract or a table is missing.
    """
    import json
    from pathlib import Path

    from getit_ml.data.snapshot import snapshot_id as take_snapshot
    from getit_ml.data.validation import render_report, validate_dataset

    folder = Path(data_dir)
    current = take_snapshot(folder)
    if current != snapshot_id:
        raise RuntimeError(
            f"{folder} changed since the run started (snapshot {snapshot_id}, now {current})"
        )
    result = validate_dataset(folder)
    text = render_report(result)
    Path(report.path).write_text(f"# Data validation\n\n```\n{text}\n```\n", encoding="utf-8")
    Path(report_json.path).write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    if not result.ok:
        raise RuntimeError(f"data validation failed:\n{text}")
    return int(result.rows_in)
