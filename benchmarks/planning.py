"""Planning and model-based (ALGORITHMS.md §6): bandit regret curves, AlphaZero / MuZero
learning curves and win rates, iLQR iterations-to-converge and GPS policy return against the
number of guiding trajectories.

    python benchmarks/planning.py                    # every part, CPU
    python benchmarks/planning.py --parts bandits gps --quick

Each part lives in `benchmarks/planning_<part>.py` as `run(out_dir, quick) -> dict`; this script
runs the chosen parts one after another and writes benchmarks/results/planning.json (the
hardware named, the load average beside every part) and the parts' PNGs beside it. A part that
fails is recorded with its error; the parts already measured stay in the file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import RESULTS_DIR, hardware  # noqa: E402
from purerl.report import atomic_json  # noqa: E402

PARTS = ("bandits", "alphazero", "muzero", "gps")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke check of the script)")
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "planning.json"))
    args = parser.parse_args(argv)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    results = {"quick": args.quick, "parts": {}}
    if os.path.exists(args.out):  # keep the parts not rerun this time
        import json

        with open(args.out) as f:
            results["parts"] = json.load(f).get("parts", {})
    results["hardware"] = hardware()
    for part in args.parts:
        start = time.time()
        try:
            module = importlib.import_module(f"benchmarks.planning_{part}")
            row = {"ok": True, **module.run(out_dir, quick=args.quick)}
        except Exception as error:  # noqa: BLE001 - recorded, the other parts still run
            row = {"ok": False, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        row["quick"] = args.quick  # per part: the parts kept from an earlier run may differ
        row["wall_seconds"] = round(time.time() - start, 1)
        row["load_average_1_5_15min"] = list(os.getloadavg())
        row["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results["parts"][part] = row
        print(f"{part}: {'ok' if row['ok'] else row['error']} ({row['wall_seconds']} s)", flush=True)
        atomic_json(args.out, results)  # a crash leaves the earlier file intact
    return results


if __name__ == "__main__":
    main()
