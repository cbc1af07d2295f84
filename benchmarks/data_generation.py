"""Throughput and peak memory of the synthetic marketplace generator.

Runs `getit_ml.data.generator.generate` for each requested size in its own process (so peak RSS is
that run's alone), beside the issue's goal for the size: 10M events in <= 5 minutes on 2 cores with
peak RSS <= 2 GB (goal time scales linearly for smaller sizes). Prints the load average
(``os.getloadavg()``) at the start and at the end, a table, and ends with

    RESULT events=<n> seconds=<s> events_per_s=<x> peak_rss_mb=<m>

for the largest size run. Usage:

    .venv/bin/python benchmarks/data_generation.py --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DAYS = 180
#: Events per customer per day at the generator's defaults (measured; the run reports the truth).
EVENTS_PER_CUSTOMER_DAY = 0.26
GOAL_SECONDS_PER_10M = 300.0
GOAL_PEAK_RSS_MB = 2048.0

CHILD = """
import json, sys, time
from pathlib import Path
from getit_ml.data.generator import MarketplaceConfig, generate
customers, days, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
summary = generate(MarketplaceConfig(customers=customers, days=days, seed=1), out)
print(json.dumps({"events": summary.rows["events"], "rows": sum(summary.rows.values()),
                  "seconds": summary.seconds}))
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def run_size(target_events: int, workdir: Path) -> dict[str, float]:
    customers = max(100, round(target_events / (EVENTS_PER_CUSTOMER_DAY * DAYS)))
    out = workdir / f"events-{target_events}"
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(customers), str(DAYS), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"generation of {target_events} events failed")
    result = json.loads(output.strip().splitlines()[-1])
    result["customers"] = customers
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="target event counts")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (temp)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = [run_size(size, Path(tmp)) for size in sizes]
    header = (
        f"{'customers':>10} {'days':>5} {'events':>11} {'all rows':>11} {'seconds':>8} "
        f"{'events/s':>10} {'peak MB':>8} | {'goal s':>7} {'goal MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        goal_s = GOAL_SECONDS_PER_10M * r["events"] / 10_000_000
        print(
            f"{r['customers']:>10,} {DAYS:>5} {r['events']:>11,} {r['rows']:>11,} "
            f"{r['seconds']:>8.1f} {r['events'] / r['seconds']:>10,.0f} {r['peak_rss_mb']:>8.0f} | "
            f"{goal_s:>7.1f} {GOAL_PEAK_RSS_MB:>8.0f}"
        )
    largest = max(results, key=lambda r: r["events"])
    print(f"end: {load_average()}")
    print(
        f"RESULT events={largest['events']} seconds={largest['seconds']:.1f} "
        f"events_per_s={largest['events'] / largest['seconds']:.0f} "
        f"peak_rss_mb={largest['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
