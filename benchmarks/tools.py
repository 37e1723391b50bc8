"""The researcher's tools measured: a hyperparameter sweep as one program against one program per
grid point, and the time `compare`, `eval` and `export` take on the resulting runs.

    python benchmarks/tools.py                       # PPO CartPole-v1, 4 learning rates × 8 seeds, 100k steps
    python benchmarks/tools.py --seeds 4 --steps 50000

Both ways train the same grid with the same keys (seed s of every point starts from the same key,
as the sweep does), so their final returns agree up to floating-point order; what differs is
compilation (once against once per point) and how well one program fills the cores. Whole-call
wall time of each way, compile and run seconds as the runner reports them, and the 1-minute load
average are saved to benchmarks/results/tools.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import RESULTS_DIR, hardware  # noqa: E402
from purerl.report import atomic_json  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--learning-rates", default="1e-4,3e-4,1e-3,3e-3")
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "tools.json"))
    args = parser.parse_args(argv)
    from purerl import compare, policy, run, sweep
    from purerl.algos import ppo

    rates = [float(v) for v in args.learning_rates.split(",")]
    config = ppo.Config.for_env("CartPole-v1", total_timesteps=args.steps)
    out = {"hardware": hardware(), "algorithm": "ppo", "env": "CartPole-v1", "learning_rates": rates,
           "seeds_per_point": args.seeds, "env_steps_per_seed": args.steps,
           "command": "python benchmarks/tools.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    with tempfile.TemporaryDirectory() as runs_dir:
        options = dict(num_seeds=args.seeds, runs_dir=runs_dir, progress=False, plot=False, compile_cache=False)
        start = time.perf_counter()
        result = sweep.sweep("ppo", config, {"learning_rate": rates}, run.RunOptions(run_name="sweep", **options))[0]
        out["one_program"] = {"wall_seconds": time.perf_counter() - start,
                              "compile_seconds": result.timing["compile_seconds"],
                              "run_seconds": result.timing["run_seconds"],
                              "final_mean_per_point": [p["summary"].get("mean") for p in result.points]}
        separate, finals = [], []
        start = time.perf_counter()
        for i, rate in enumerate(rates):
            r = run.train("ppo", ppo.Config.for_env("CartPole-v1", total_timesteps=args.steps, learning_rate=rate),
                          run.RunOptions(run_name=f"lr{i}", **options))
            separate.append(r.timing)
            finals.append(r.summary.get("mean"))
        out["one_program_per_point"] = {"wall_seconds": time.perf_counter() - start,
                                        "compile_seconds": sum(t["compile_seconds"] for t in separate),
                                        "run_seconds": sum(t["run_seconds"] for t in separate),
                                        "final_mean_per_point": finals}
        out["speedup_wall"] = out["one_program_per_point"]["wall_seconds"] / out["one_program"]["wall_seconds"]
        start = time.perf_counter()
        compare.compare([result.run_dir, os.path.join(runs_dir, "lr0")], os.path.join(runs_dir, "cmp"))
        out["compare_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        evaluation = policy.evaluate_run(os.path.join(runs_dir, "lr0"), best=True, episodes=10)
        out["eval_seconds_10_episodes"] = time.perf_counter() - start
        out["eval_mean_best_seed"] = evaluation["mean"]
        start = time.perf_counter()
        policy.export_policy(os.path.join(runs_dir, "lr0"), os.path.join(runs_dir, "p.npz"), best=True)
        out["export_seconds"] = time.perf_counter() - start
    out["hardware"]["load_average_after"] = list(os.getloadavg())
    atomic_json(args.out, out)
    one, per = out["one_program"], out["one_program_per_point"]
    print(f"{len(rates)} learning rates × {args.seeds} seeds, PPO CartPole-v1, {args.steps:,} steps per seed")
    print(f"  one program:           {one['wall_seconds']:6.1f} s (compile {one['compile_seconds']:.1f} s, "
          f"run {one['run_seconds']:.1f} s)")
    print(f"  one program per point: {per['wall_seconds']:6.1f} s (compile {per['compile_seconds']:.1f} s, "
          f"run {per['run_seconds']:.1f} s)   → {out['speedup_wall']:.2f}× the sweep's time")
    print(f"  final mean per point: sweep {np.round(one['final_mean_per_point'], 1).tolist()}, "
          f"separate {np.round(per['final_mean_per_point'], 1).tolist()}")
    print(f"  compare {out['compare_seconds']:.1f} s, eval (10 episodes) {out['eval_seconds_10_episodes']:.1f} s, "
          f"export {out['export_seconds']:.1f} s   → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
